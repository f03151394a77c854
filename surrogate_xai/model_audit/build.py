"""Computing a model audit once: :func:`build_audit_findings`.

Cost, in model rows: the global surrogate scores ``data`` once; the explainer explains
``n_explain`` rows three times (the explanation, a second seed for stability, a second
background for sensitivity).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..background import Background
from ..exceptions import (
    ConfigurationError,
    InputError,
    MissingColumnError,
    ReferenceMismatchError,
)
from ..explainers import KernelSHAP
from ..explainers.base import BaseExplainer
from ..explanation import Explanation
from ..global_ import GlobalSurrogate, mean_abs_importance
from ..model import Model
from ..parity import ParityReport
from ..provenance import frame_digest
from ..reasons import (
    ReasonCatalogue,
    adverse_mask,
    load_catalogue,
    output_index,
    reason_codes,
)
from ..seeding import RandomState, resolve_seed, stream
from ..validation import check_int, check_number
from .findings import (
    CORRELATION_LIMIT,
    DEFAULT_MAX_EVALS,
    TOP,
    AuditFindings,
    BackgroundSensitivity,
    SeedStability,
    SurrogateFindings,
    jaccard,
    reason_frequencies,
    top_adverse,
)

#: Stream keys under the audit's seed: each random choice has a stream of its own.
_ROWS, _SECOND_SEED, _ALT_BACKGROUND = 1, 2, 3


def _clone(explainer: BaseExplainer, **params: Any) -> BaseExplainer:
    """An unfitted copy with some parameters changed (the original is never touched)."""
    return type(explainer)(**{**explainer.get_params(), **params})


def _groups(explainer: BaseExplainer) -> dict[str, list[str]] | None:
    groups = {u: c for u, c in explainer.feature_groups_.items() if list(c) != [u]}
    return groups or None


def _seed_stability(
    explainer: BaseExplainer,
    X: pd.DataFrame,
    first: Explanation,
    k: int,
    adverse: str,
    seed: int,
) -> SeedStability | None:
    if "random_state" not in explainer.get_params():
        return None
    seed_a = first.provenance.seed
    seed_b = int(stream(seed, _SECOND_SEED).integers(0, 2**62))
    if seed_b == seed_a:
        seed_b += 1
    other = _clone(explainer, random_state=seed_b).fit(
        explainer.model_, explainer.background_, _groups(explainer)
    )
    second = other.explain(X)
    a = top_adverse(first.values[:, :, k], adverse)
    b = top_adverse(second.values[:, :, k], adverse)
    scores = np.array([jaccard(x, y) for x, y in zip(a, b, strict=True)])
    return SeedStability(
        seeds=(seed_a, seed_b),
        top=TOP,
        jaccard=scores,
        mean=float(scores.mean()),
        identical_rows=int(np.sum(scores == 1.0)),
    )


def _background_sensitivity(
    explainer: BaseExplainer,
    X: pd.DataFrame,
    data: pd.DataFrame,
    first: Explanation,
    k: int,
    adverse: str,
    seed: int,
) -> BackgroundSensitivity | None:
    """Explain the same rows, same seed, against a background resampled from the audit data."""
    bg = explainer.background_
    size = min(len(bg), len(data))
    alt = Background.sample(
        data.loc[:, list(bg.data.columns)], size, random_state=stream(seed, _ALT_BACKGROUND)
    )
    if alt.hash == bg.hash:
        return None
    params = (
        {"random_state": first.provenance.seed} if "random_state" in explainer.get_params() else {}
    )
    second = _clone(explainer, **params).fit(explainer.model_, alt, _groups(explainer)).explain(X)
    v1, v2 = first.values[:, :, k], second.values[:, :, k]
    scale = float(np.mean(np.abs(v1)))
    change = float(np.mean(np.abs(v2 - v1))) / scale if scale > 0 else 0.0
    a, b = top_adverse(v1, adverse), top_adverse(v2, adverse)
    return BackgroundSensitivity(
        alternative=alt.describe(),
        relative_change=change,
        top_jaccard=float(np.mean([jaccard(x, y) for x, y in zip(a, b, strict=True)])),
        base_value_shift=float(second.base_values[0, k] - first.base_values[0, k]),
    )


def _surrogate(model: Model, data: pd.DataFrame, output: str, seed: int) -> SurrogateFindings:
    est = GlobalSurrogate(
        kind="tree", max_depth=3, output=output, on_low_fidelity="flag", random_state=seed
    ).fit(model, data)
    return SurrogateFindings(
        kind="tree",
        max_depth=3,
        output=output,
        fidelity=est.fidelity_,
        rules=list(est.rules_),
        low_fidelity=bool(est.low_fidelity_),
        min_fidelity=float(est.min_fidelity),
    )


def _summarise(data: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for col in data.columns:
        s = data[col]
        entry: dict[str, Any] = {"column": str(col), "missing": int(s.isna().sum())}
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            v = s.to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            entry.update(
                kind="numeric",
                summary=(
                    f"mean {v.mean():.4g}, sd {v.std():.4g}, range [{v.min():.4g}, {v.max():.4g}]"
                    if v.size
                    else "no finite values"
                ),
            )
        else:
            counts = s.astype(str).value_counts()
            top = ", ".join(f"{k} ({n})" for k, n in counts.head(3).items())
            entry.update(
                kind="categorical", summary=f"{len(counts)} categories; most common: {top}"
            )
        out.append(entry)
    return out


def _correlations(data: pd.DataFrame) -> list[tuple[str, str, float]]:
    numeric = [
        c
        for c in data.columns
        if pd.api.types.is_numeric_dtype(data[c])
        and not pd.api.types.is_bool_dtype(data[c])
        and data[c].nunique() > 1
    ]
    if len(numeric) < 2:
        return []
    corr = data[numeric].astype(np.float64).corr(method="spearman").to_numpy()
    pairs = [
        (str(numeric[i]), str(numeric[j]), float(corr[i, j]))
        for i in range(len(numeric))
        for j in range(i + 1, len(numeric))
        if math.isfinite(corr[i, j]) and abs(corr[i, j]) >= CORRELATION_LIMIT
    ]
    return sorted(pairs, key=lambda p: -abs(p[2]))


def _classes(output: str, output_names: Sequence[str]) -> list[str] | None:
    """The class labels of a classifier's outputs ``name[label]`` that ``output`` belongs to."""
    if not (output.endswith("]") and "[" in output):
        return None
    prefix = output[: output.index("[") + 1]
    found = [o[len(prefix) : -1] for o in output_names if o.startswith(prefix) and o.endswith("]")]
    return found if len(found) >= 2 else None


def target_truth(
    target: Any, output: str, output_names: Sequence[str], what: str = "target"
) -> tuple[str, np.ndarray]:
    """The class ``output`` predicts, and per row whether the true label is that class.

    Parameters
    ----------
    target : array of shape (n_samples,)
        True labels.
    output : str
        The output decisions are made on; ``name[label]`` names its class.
    output_names : sequence of str
        All outputs of the model (``name[label]`` for each class of a classifier).
    what : str
        How to name the labels in messages (the command line names the file and column).

    Raises
    ------
    InputError
        For a missing label, a label that is not one of the model's classes, or more than
        two values where the output gives no class list (column and row named).
    ConfigurationError
        When the labels cannot be matched to the output at all.
    """
    labels = np.asarray(target)
    named = output[output.index("[") + 1 : -1] if output.endswith("]") and "[" in output else None
    missing = pd.isna(pd.Series(labels, dtype=object)).to_numpy()
    if missing.any():
        # An empty cell would become the label "nan" and be scored as a wrong prediction.
        raise InputError(f"{what} is missing a value at row {int(np.flatnonzero(missing)[0])}")
    as_text = labels.astype(str)
    values = set(as_text.tolist())
    classes = _classes(output, output_names)
    if named is not None and named in values:
        if classes is not None:
            # A label that is not one of the model's classes (a third class, a typo) would
            # silently count as the other class.
            unknown = ~np.isin(as_text, np.asarray(classes, dtype=object))
            if unknown.any():
                row = int(np.flatnonzero(unknown)[0])
                raise InputError(
                    f"{what} holds {str(as_text[row])!r} at row {row}, which is not one of the "
                    f"model's classes {', '.join(repr(c) for c in classes)}"
                )
        elif len(values) > 2:
            raise InputError(
                f"{what} holds {len(values)} different values; output {output!r} predicts "
                "one class of a binary target"
            )
        return named, as_text == named
    if set(labels.tolist()) <= {0, 1}:
        return "1", labels.astype(bool)
    raise ConfigurationError(
        f"cannot tell which value of {what} output {output!r} predicts: labels include "
        f"{sorted(values)[:5]}; name the output after its class (e.g. "
        "'probabilities[good]') or pass 0/1 labels"
    )


def _performance(
    predictions: np.ndarray,
    target: Any,
    output: str,
    threshold: float,
    n: int,
    output_names: Sequence[str] = (),
) -> dict[str, Any]:
    """The decision rule ``output > threshold`` against the labels; AUC of the output."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(target)
    if labels.shape != (n,):
        raise ConfigurationError(f"target has shape {labels.shape}, expected ({n},) like data")
    positive, truth = target_truth(labels, output, output_names)
    decided = predictions > threshold
    auc = float(roc_auc_score(truth, predictions)) if 0 < truth.sum() < n else None
    return {
        "positive_class": positive,
        "accuracy": float(np.mean(decided == truth)),
        "auc": auc,
        "rows": n,
    }


def _limitations(findings: Mapping[str, Any], explanation: Explanation, n_data: int) -> list[str]:
    out = [
        "Attributions are interventional (marginal) Shapley values: absent features are filled "
        "in from the background independently of the present ones. This assumes features can "
        "be varied independently; for correlated features the model is evaluated on unlikely "
        "combinations and credit is shared between them in ways a reason text must not "
        "over-interpret.",
        "Every attribution is relative to the background (reference population) recorded "
        "above; another reference gives other values (see background sensitivity).",
    ]
    corr = findings["correlations"]
    if corr:
        listed = "; ".join(f"{a} and {b} (Spearman {r:+.2f})" for a, b, r in corr[:8])
        out.append(f"Correlated numeric features in the audit data: {listed}.")
    out.append(
        "Only numeric column pairs were checked for correlation; associations involving "
        "categorical columns are not measured here."
    )
    if not explanation.diagnostics.exact:
        out.append(
            "Values are sampled estimates with standard errors; reasons whose intervals overlap "
            "are flagged unstable and may change with the seed."
        )
    if findings["surrogate"].low_fidelity:
        out.append(
            "The global surrogate's held-out fidelity is below its minimum: its rules do not "
            "describe the model well enough to be read as its logic."
        )
    if findings["parity"] is None:
        out.append(
            "No conversion (parity) evidence: the explained model was not compared with an original."
        )
    elif not findings["parity"].passed:
        out.append(
            "The parity check FAILED: the explained model may not be the model in production."
        )
    if findings["catalogue"] is None:
        out.append("No reason catalogue was given: reason codes are generated from feature names.")
    m = len(explanation)
    if m < n_data:
        out.append(
            f"Explanation quality and reason frequencies come from {m} rows sampled from the "
            f"{n_data} audit rows; frequencies of rare reasons are uncertain."
        )
    return out


# -- the entry point -----------------------------------------------------------------------------
def _check_inputs(
    model: Any, data: Any, adverse: Any, threshold: Any, n_explain: Any
) -> pd.DataFrame:
    if not isinstance(model, Model):
        raise ConfigurationError(
            f"model must implement the Model protocol, got {type(model).__name__}"
        )
    if not isinstance(data, pd.DataFrame):
        raise ConfigurationError(f"data must be a DataFrame, got {type(data).__name__}")
    missing = [c for c in model.feature_names if c not in data.columns]
    if missing:
        raise MissingColumnError(missing, [str(c) for c in data.columns])
    if len(data) < 8:
        raise ConfigurationError(
            f"data has {len(data)} rows; an audit needs at least 8 (the global surrogate holds "
            "a quarter out to measure its fidelity)"
        )
    if adverse not in ("decrease", "increase"):
        raise ConfigurationError(f"adverse must be 'decrease' or 'increase', got {adverse!r}")
    check_number("threshold", threshold)
    check_int("n_explain", n_explain)
    return data.loc[:, list(model.feature_names)].reset_index(drop=True)


def _fitted_explainer(
    explainer: BaseExplainer | None, model: Model, background: Background, seed: int
) -> BaseExplainer:
    if explainer is None:
        return KernelSHAP(max_evals=DEFAULT_MAX_EVALS, random_state=seed).fit(model, background)
    if not isinstance(explainer, BaseExplainer):
        raise ConfigurationError(
            f"explainer must be a fitted Shapley explainer (KernelSHAP, ExactSHAP, "
            f"PermutationSHAP), got {type(explainer).__name__}"
        )
    if not hasattr(explainer, "model_"):
        raise ConfigurationError(
            "the explainer is not fitted: call explainer.fit(model, background)"
        )
    if explainer.model_.identity != model.identity:
        raise ConfigurationError(
            f"the explainer was fitted on model {explainer.model_.identity!r}, not on the model "
            f"audited ({model.identity!r})"
        )
    if explainer.background_.hash != background.hash:
        raise ReferenceMismatchError(
            f"the explainer's background (hash {explainer.background_.hash!r}, "
            f"{len(explainer.background_)} rows) is not the background given (hash "
            f"{background.hash!r}, {len(background)} rows)"
        )
    return explainer


def build_audit_findings(
    model: Model,
    data: pd.DataFrame,
    background: Background | pd.DataFrame | np.ndarray,
    *,
    explainer: BaseExplainer | None = None,
    target: Any = None,
    catalogue: ReasonCatalogue | Mapping[str, Any] | str | None = None,
    output: int | str = 0,
    adverse: Literal["decrease", "increase"] = "decrease",
    threshold: float = 0.5,
    n_explain: int = 50,
    random_state: RandomState = 0,
    parity: ParityReport | None = None,
    command: str | None = None,
) -> AuditFindings:
    """Compute everything an auditor's report shows about ``model``.

    Parameters
    ----------
    model : Model
        The model audited (e.g. an :class:`~surrogate_xai.ONNXModel`).
    data : DataFrame of shape (n_samples, n_features)
        Rows the model scores in use (e.g. held-out applicants); at least 8. The global
        surrogate is fitted and judged on them, and ``n_explain`` of them are explained.
    background : Background, DataFrame or array
        The explainer's reference population.
    explainer : BaseExplainer, optional
        Fitted on ``model`` and ``background`` (checked). Default: ``KernelSHAP`` with
        ``max_evals=DEFAULT_MAX_EVALS`` seeded from ``random_state``.
    target : array of shape (n_samples,), optional
        True labels of ``data``, for the accuracy and AUC of the decision rule.
    catalogue : ReasonCatalogue, dict or YAML path, optional
    output : int or str
        The output decisions are made on.
    adverse : {"decrease", "increase"}
        Which direction of ``output`` is the adverse outcome.
    threshold : float
        Decision threshold on ``output`` (adverse: ``<= threshold`` for ``"decrease"``,
        ``> threshold`` for ``"increase"``).
    n_explain : int
        Rows explained (a seeded sample of ``data``; all rows if fewer).
    random_state : int, numpy Generator or None
        Seed of the row sample, the second seed, the resampled background, the surrogate's
        split and the bootstrap.
    parity : ParityReport, optional
        Conversion evidence; default the model's own ``parity_report`` if it has one.
    command : str, optional
        The command that produced the report, for the reproducibility appendix.

    Returns
    -------
    AuditFindings
    """
    frame = _check_inputs(model, data, adverse, threshold, n_explain)
    k = output_index(model.output_names, output)
    out_name = model.output_names[k]
    if target is not None:  # checked before any work, not after every explanation
        if np.asarray(target).shape != (len(frame),):
            raise ConfigurationError(
                f"target has shape {np.asarray(target).shape}, expected ({len(frame)},) like data"
            )
        target_truth(target, out_name, model.output_names)
    seed = resolve_seed(random_state)
    bg = background if isinstance(background, Background) else Background(background)
    bg = bg.with_columns(list(model.feature_names))
    fitted = _fitted_explainer(explainer, model, bg, seed)
    cat = None if catalogue is None else load_catalogue(catalogue)
    if parity is None:
        parity = model.parity_report
    if parity is not None and not isinstance(parity, ParityReport):
        raise ConfigurationError(f"parity must be a ParityReport, got {type(parity).__name__}")

    m = min(int(n_explain), len(frame))
    rows = np.sort(stream(seed, _ROWS).choice(len(frame), size=m, replace=False))
    X = frame.iloc[rows].reset_index(drop=True)
    exp = fitted.explain(X)
    reasons = reason_codes(exp, catalogue=cat, adverse=adverse, output=k)
    adverse_rows = adverse_mask(exp.diagnostics.predictions[:, k], float(threshold), adverse)
    surrogate = _surrogate(model, frame, out_name, seed)
    stability = _seed_stability(fitted, X, exp, k, adverse, seed)
    sensitivity = _background_sensitivity(fitted, X, frame, exp, k, adverse, seed)
    performance = (
        None
        if target is None
        else _performance(
            model.predict(frame)[:, k],
            target,
            out_name,
            float(threshold),
            len(frame),
            model.output_names,
        )
    )
    correlations = _correlations(frame)
    parts = {
        "correlations": correlations,
        "surrogate": surrogate,
        "parity": parity,
        "catalogue": None if cat is None else cat.describe(),
    }
    return AuditFindings(
        model=dict(model.describe()),
        output=out_name,
        adverse=adverse,
        threshold=float(threshold),
        n_data=len(frame),
        data_sha256=frame_digest(frame),
        data_summary=_summarise(frame),
        background=bg.describe(),
        explained_rows=rows,
        explanation=exp,
        importance=mean_abs_importance(exp, random_state=seed),
        surrogate=surrogate,
        parity=parity,
        efficiency_gap=np.array(exp.diagnostics.efficiency_gap[:, k]),
        stderr=np.array(exp.stderr[:, :, k]).ravel(),
        seed_stability=stability,
        background_sensitivity=sensitivity,
        reasons=reasons,
        adverse_rows=adverse_rows,
        reason_frequencies=reason_frequencies(reasons, adverse_rows),
        performance=performance,
        correlations=correlations,
        limitations=_limitations(parts, exp, len(frame)),
        reproducibility={
            "seeds": {
                "audit random_state": seed,
                "explanation": exp.provenance.seed,
                "second seed (stability)": None if stability is None else stability.seeds[1],
            },
            "hashes": {
                "model": model.identity,
                "background": bg.hash,
                "audit data": frame_digest(frame),
                **({} if cat is None else {"reason catalogue": cat.sha256}),
            },
            "versions": dict(exp.provenance.versions),
            "explainer": {"method": exp.provenance.method, **exp.provenance.parameters},
            "command": command,
        },
        catalogue=None if cat is None else cat.describe(),
    )
