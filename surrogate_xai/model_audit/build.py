"""Computing a model audit once: :func:`build_audit_findings`.

Cost, in model rows: the global surrogate scores ``data`` once; the explainer explains
``n_explain`` rows three times (the explanation, a second seed for stability, a second
background for sensitivity).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..background import Background
from ..decisions import NEUTRAL, Framing
from ..display import display_names as display_names_for
from ..exceptions import (
    ConfigurationError,
    MissingColumnError,
    ReferenceMismatchError,
)
from ..explainers import KernelSHAP
from ..explainers.base import BaseExplainer
from ..explanation import Explanation
from ..global_ import GlobalSurrogate, mean_abs_importance
from ..model import Model
from ..parity import ParityReport
from ..progress import ProgressOption, progress_bar
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
from .scoring import check_target, performance

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


def _surrogate(
    model: Model, data: pd.DataFrame, output: str, seed: int, kind: str, max_depth: int
) -> SurrogateFindings:
    est = GlobalSurrogate(
        kind=kind,  # type: ignore[arg-type]  # checked by _check_inputs
        max_depth=max_depth,
        output=output,
        on_low_fidelity="flag",
        random_state=seed,
    ).fit(model, data)
    return SurrogateFindings(
        kind=kind,
        max_depth=max_depth,
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
    check_number("threshold", threshold, optional=True)
    check_int("n_explain", n_explain)
    return data.loc[:, list(model.feature_names)].reset_index(drop=True)


def _fitted_explainer(
    explainer: BaseExplainer | None,
    model: Model,
    background: Background,
    seed: int,
    max_evals: int | None = None,
    tol: float | None = None,
) -> BaseExplainer:
    if explainer is None:
        return KernelSHAP(
            max_evals=DEFAULT_MAX_EVALS if max_evals is None else max_evals,
            tol=tol,
            random_state=seed,
        ).fit(model, background)
    if max_evals is not None or tol is not None:
        raise ConfigurationError(
            "max_evals and tol set the default explainer's budget; with explainer= given, "
            "set them on that explainer"
        )
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
    output: int | str | None = None,
    adverse: Literal["decrease", "increase"] = "decrease",
    threshold: float | None = None,
    n_explain: int = 50,
    random_state: RandomState = 0,
    parity: ParityReport | None = None,
    command: str | None = None,
    max_evals: int | None = None,
    tol: float | None = None,
    surrogate: Literal["tree", "linear"] = "tree",
    surrogate_depth: int = 3,
    framing: Framing = NEUTRAL,
    display_names: Mapping[str, str] | None = None,
    progress: ProgressOption = None,
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
    output : int or str, optional
        The output decisions are made on; default the last
        (:func:`~surrogate_xai.reasons.output_index`).
    adverse : {"decrease", "increase"}
        Which direction of ``output`` is the adverse outcome.
    threshold : float, optional
        Decision threshold on ``output`` (adverse: ``<= threshold`` for ``"decrease"``,
        ``> threshold`` for ``"increase"``). Without one no decision is made: reason
        frequencies count the reasons of every explained row.
    n_explain : int
        Rows explained (a seeded sample of ``data``; all rows if fewer).
    random_state : int, numpy Generator or None
        Seed of the row sample, the second seed, the resampled background, the surrogate's
        split and the bootstrap.
    parity : ParityReport, optional
        Conversion evidence; default the model's own ``parity_report`` if it has one.
    command : str, optional
        The command that produced the report, for the reproducibility appendix.
    max_evals, tol : optional
        Budget and tolerance of the default explainer (``KernelSHAP``); not with
        ``explainer=``.
    surrogate : {"tree", "linear"}
        The global surrogate's kind; ``surrogate_depth`` is a tree's depth.
    framing : Framing
        What a row is called and the outcome labels (default neutral).
    display_names : mapping of str to str, optional
        Names to show for features and outputs (:func:`surrogate_xai.display.display_names`;
        the catalogue's texts name the features it covers one by one).
    progress : bool, callable or None
        A progress bar over the audit's steps (:mod:`surrogate_xai.progress`; default: only
        where a person is watching).

    Returns
    -------
    AuditFindings
    """
    frame = _check_inputs(model, data, adverse, threshold, n_explain)
    if surrogate not in ("tree", "linear"):
        raise ConfigurationError(f"surrogate must be 'tree' or 'linear', got {surrogate!r}")
    k = output_index(model.output_names, output)
    out_name = model.output_names[k]
    if target is not None:  # checked before any work, not after every explanation
        if np.asarray(target).shape != (len(frame),):
            raise ConfigurationError(
                f"target has shape {np.asarray(target).shape}, expected ({len(frame)},) like data"
            )
        check_target(target, out_name, model.output_names, "target")
    seed = resolve_seed(random_state)
    bg = background if isinstance(background, Background) else Background(background)
    bg = bg.with_columns(list(model.feature_names))
    fitted = _fitted_explainer(explainer, model, bg, seed, max_evals, tol)
    cat = None if catalogue is None else load_catalogue(catalogue)
    if parity is None:
        parity = model.parity_report
    if parity is not None and not isinstance(parity, ParityReport):
        raise ConfigurationError(f"parity must be a ParityReport, got {type(parity).__name__}")

    m = min(int(n_explain), len(frame))
    rows = np.sort(stream(seed, _ROWS).choice(len(frame), size=m, replace=False))
    X = frame.iloc[rows].reset_index(drop=True)
    with progress_bar(progress, 5, "auditing", unit="steps") as advance:
        exp = fitted.explain(X)
        advance(1)
        reasons = reason_codes(exp, catalogue=cat, adverse=adverse, output=k)
        if threshold is None:  # no decision: every explained row's reasons are counted
            adverse_rows = np.zeros(len(exp), dtype=bool)
            counted = np.ones(len(exp), dtype=bool)
        else:
            adverse_rows = adverse_mask(exp.diagnostics.predictions[:, k], threshold, adverse)
            counted = adverse_rows
        global_surrogate = _surrogate(model, frame, out_name, seed, surrogate, surrogate_depth)
        advance(1)
        stability = _seed_stability(fitted, X, exp, k, adverse, seed)
        advance(1)
        sensitivity = _background_sensitivity(fitted, X, frame, exp, k, adverse, seed)
        advance(1)
        scores = (
            None
            if target is None
            else performance(
                model.predict(frame)[:, k], target, out_name, threshold, model.output_names
            )
        )
        advance(1)
    correlations = _correlations(frame)
    parts = {
        "correlations": correlations,
        "surrogate": global_surrogate,
        "parity": parity,
        "catalogue": None if cat is None else cat.describe(),
    }
    return AuditFindings(
        model=dict(model.describe()),
        output=out_name,
        adverse=adverse,
        threshold=None if threshold is None else float(threshold),
        n_data=len(frame),
        data_sha256=frame_digest(frame),
        data_summary=_summarise(frame),
        background=bg.describe(),
        explained_rows=rows,
        explanation=exp,
        importance=mean_abs_importance(exp, random_state=seed),
        surrogate=global_surrogate,
        parity=parity,
        efficiency_gap=np.array(exp.diagnostics.efficiency_gap[:, k]),
        stderr=np.array(exp.stderr[:, :, k]).ravel(),
        seed_stability=stability,
        background_sensitivity=sensitivity,
        reasons=reasons,
        adverse_rows=adverse_rows,
        reason_frequencies=reason_frequencies(reasons, counted),
        performance=scores,
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
        framing=framing,
        display_names=display_names_for(
            exp.feature_names, model.output_names, catalogue=cat, given=display_names
        ),
    )
