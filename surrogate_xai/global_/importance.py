"""Global importance: permutation importance, and summaries of local attributions.

``permutation_importance`` needs only the model and rows: with labels it measures how much a
score drops when a feature's values are shuffled; without labels (a third-party model and no
ground truth) it measures how much the model's output moves. ``mean_abs_importance`` turns any
per-row Explanation into a global ranking with bootstrap intervals over the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..background import Background
from ..exceptions import ConfigurationError, InputError
from ..explanation import Diagnostics, Explanation, Provenance
from ..model import Model
from ..provenance import package_versions, utc_now
from ..seeding import RandomState, resolve_seed, stream
from ..tabular import Codebook, TabularSchema, as_frame, resolve_groups
from ..validation import check_int

Scorer = Callable[[np.ndarray, np.ndarray], float]
_SCORINGS = (
    "r2",
    "neg_mean_squared_error",
    "neg_mean_absolute_error",
    "accuracy",
    "roc_auc",
    "neg_log_loss",
)
_PERMUTE = 31  # stream key


def _label(name: str) -> str:
    """The class an output stands for: ``probability[good]`` -> ``good``."""
    return name[name.index("[") + 1 : -1] if name.endswith("]") and "[" in name else name


def _scorer(
    scoring: str | Scorer | None, y: np.ndarray, output_names: list[str]
) -> tuple[str, Scorer]:
    """A function of (y, model outputs of shape (n, k)) that is larger for better models."""
    from sklearn import metrics

    numeric = np.issubdtype(np.asarray(y).dtype, np.number)
    if scoring is None:
        scoring = "r2" if numeric and len(output_names) == 1 else "accuracy"
    if callable(scoring):
        return getattr(scoring, "__name__", "score"), scoring
    if scoring not in _SCORINGS:
        raise ConfigurationError(
            f"scoring must be one of {_SCORINGS} or a callable, got {scoring!r}"
        )
    labels = np.asarray([_label(n) for n in output_names], dtype=object)

    def positive(out: np.ndarray) -> np.ndarray:
        return out[:, -1]

    def as_classes(out: np.ndarray) -> np.ndarray:
        return labels[np.argmax(out, axis=1)]

    table: dict[str, Scorer] = {
        "r2": lambda t, o: float(metrics.r2_score(t, o[:, 0] if o.shape[1] == 1 else o)),
        "neg_mean_squared_error": lambda t, o: (
            -float(metrics.mean_squared_error(t, o[:, 0] if o.shape[1] == 1 else o))
        ),
        "neg_mean_absolute_error": lambda t, o: (
            -float(metrics.mean_absolute_error(t, o[:, 0] if o.shape[1] == 1 else o))
        ),
        "accuracy": lambda t, o: float(np.mean(as_classes(o) == np.asarray(t).astype(str))),
        "roc_auc": lambda t, o: float(
            metrics.roc_auc_score(np.asarray(t).astype(str) == labels[-1], positive(o))
        ),
        "neg_log_loss": lambda t, o: (
            -float(metrics.log_loss(np.asarray(t).astype(str), o, labels=list(labels)))
        ),
    }
    return scoring, table[scoring]


def permutation_importance(
    model: Model,
    X: pd.DataFrame | np.ndarray,
    y: Any = None,
    scoring: str | Scorer | None = None,
    n_repeats: int = 10,
    random_state: RandomState = None,
    *,
    feature_groups: Mapping[str, Sequence[str]] | None = None,
) -> Explanation:
    """How much each feature (or group) matters to the model, by shuffling it.

    Parameters
    ----------
    model : Model
    X : DataFrame or array of shape (n_samples, n_features)
    y : array of shape (n_samples,), optional
        Labels or targets. With ``y``: importance is the drop of ``scoring`` when the feature
        is permuted. Without: the mean absolute change of each model output.
    scoring : str or callable, optional
        ``"r2"`` (default for a numeric ``y`` and one output), ``"accuracy"`` (default
        otherwise: the class is the output with the largest score, named ``label`` or
        ``...[label]``), ``"neg_mean_squared_error"``, ``"neg_mean_absolute_error"``,
        ``"roc_auc"`` (last output against its label), ``"neg_log_loss"``; or a function
        ``(y, outputs of shape (n, n_outputs)) -> float``, larger is better.
    n_repeats : int
        Permutations per feature.
    random_state : int, numpy Generator or None
    feature_groups : mapping of str to list of str, optional
        Columns permuted together (one importance per group).

    Returns
    -------
    Explanation
        ``values`` of shape (1, n_features, n_targets): the mean over repeats; ``stderr`` the
        standard error over repeats. With ``y`` there is one target, named after the score,
        and ``base_values`` is the unpermuted score; without ``y`` the targets are the model's
        outputs and ``base_values`` is 0. ``data`` is one typical row (medians, most frequent
        categories); ``diagnostics.extra["repeats"]`` holds every repeat; ``efficiency_gap``
        does not apply and is 0.
    """
    check_int("n_repeats", n_repeats, minimum=2)
    frame = as_frame(X, model.feature_names)
    schema = TabularSchema.infer(model, frame)
    frame = schema.check(frame, "X").reset_index(drop=True)
    units, unit_index = resolve_groups(schema.columns, feature_groups)
    codebook = Codebook(schema, [frame])
    enc = codebook.encode(frame)
    n = len(enc)
    before = model.n_evaluations
    base_out = model.predict(codebook.decode(enc))
    if y is not None:
        target = np.asarray(y)
        if len(target) != n:
            raise InputError(f"y has {len(target)} values for {n} rows of X")
        name, score = _scorer(scoring, target, model.output_names)
        baseline = np.array([score(target, base_out)])
        outputs = [name]
    elif scoring is not None:
        raise ConfigurationError("scoring needs labels: pass y, or drop scoring")
    else:
        outputs = list(model.output_names)
        baseline = np.zeros(len(outputs))
    seed = resolve_seed(random_state)
    repeats = np.empty((n_repeats, len(units), len(outputs)))
    for u in range(len(units)):
        cols = np.flatnonzero(unit_index == u)
        rng = stream(seed, _PERMUTE, u)
        rows = np.repeat(enc[None], n_repeats, axis=0)
        for r in range(n_repeats):
            rows[r][:, cols] = enc[rng.permutation(n)][:, cols]
        out = model.predict(codebook.decode(rows.reshape(-1, enc.shape[1]))).reshape(
            n_repeats, n, -1
        )
        for r in range(n_repeats):
            if y is not None:
                repeats[r, u, 0] = baseline[0] - score(target, out[r])
            else:
                repeats[r, u] = np.abs(out[r] - base_out).mean(axis=0)
    values = repeats.mean(axis=0)[None]
    stderr = (repeats.std(axis=0, ddof=1) / np.sqrt(n_repeats))[None]
    typical = {
        c: [frame[c].median()] if kind == "numeric" else [frame[c].astype(str).mode().iloc[0]]
        for c, kind in zip(schema.columns, schema.kinds, strict=True)
    }
    diagnostics = Diagnostics(
        model_evaluations=np.array([model.n_evaluations - before]),
        background_evaluations=0,
        converged=np.array([False]),
        efficiency_gap=np.zeros((1, len(outputs))),
        predictions=baseline[None] if y is not None else base_out.mean(axis=0)[None],
        blocks=np.array([n_repeats]),
        exact=False,
        extra={
            "kind": "score_drop" if y is not None else "output_change",
            "repeats": repeats.tolist(),
        },
    )
    params = {"n_repeats": n_repeats, "scoring": outputs[0] if y is not None else None}
    provenance = Provenance(
        method="permutation-importance",
        parameters=params,
        seed=seed,
        model=model.describe(),
        background=Background(frame).describe(),
        feature_groups={
            u: [c for c, i in zip(schema.columns, unit_index, strict=True) if i == k]
            for k, u in enumerate(units)
        },
        design={"rows": n, "n_repeats": n_repeats, "labels": y is not None},
        versions=package_versions(),
        created_at=utc_now(),
    )
    return Explanation(
        values=values,
        base_values=baseline[None] if y is not None else np.zeros((1, len(outputs))),
        stderr=stderr,
        data=pd.DataFrame(typical),
        feature_names=units,
        output_names=outputs,
        diagnostics=diagnostics,
        provenance=provenance,
    )


@dataclass(frozen=True)
class ImportanceSummary:
    """Mean absolute attribution per feature over the explained rows, with intervals.

    Attributes
    ----------
    feature_names, output_names : list of str
    mean_abs : array of shape (n_features, n_outputs)
    lower, upper : arrays of shape (n_features, n_outputs)
        Percentile bootstrap interval (rows resampled) at ``confidence``.
    stderr : array of shape (n_features, n_outputs)
        Bootstrap standard error.
    n_rows : int
    confidence : float
    """

    feature_names: list[str]
    output_names: list[str]
    mean_abs: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    stderr: np.ndarray
    n_rows: int
    confidence: float

    def to_frame(self) -> pd.DataFrame:
        """One row per (feature, output), sorted by decreasing importance per output."""
        d, k = self.mean_abs.shape
        out = pd.DataFrame(
            {
                "feature": np.repeat(np.asarray(self.feature_names, dtype=object), k),
                "output": np.tile(np.asarray(self.output_names, dtype=object), d),
                "mean_abs": self.mean_abs.ravel(),
                "lower": self.lower.ravel(),
                "upper": self.upper.ravel(),
                "stderr": self.stderr.ravel(),
            }
        )
        return out.sort_values(["output", "mean_abs"], ascending=[True, False], kind="stable")


def mean_abs_importance(
    explanation: Explanation,
    *,
    n_bootstrap: int = 1_000,
    confidence: float = 0.95,
    random_state: RandomState = None,
) -> ImportanceSummary:
    """Global importance from local attributions: mean ``|value|`` per feature.

    Parameters
    ----------
    explanation : Explanation
        Attributions of shape (n_samples, n_features, n_outputs), e.g. from KernelSHAP.
    n_bootstrap : int
        Bootstrap resamples of the rows for the interval.
    confidence : float
    random_state : int, numpy Generator or None

    Returns
    -------
    ImportanceSummary
    """
    if not 0 < confidence < 1:
        raise ConfigurationError(f"confidence must be in (0, 1), got {confidence!r}")
    check_int("n_bootstrap", n_bootstrap, minimum=2)
    mags = np.abs(explanation.values)
    n, d, k = mags.shape
    rng = stream(resolve_seed(random_state), _PERMUTE + 1)
    # Resampling rows is drawing multinomial counts: one product gives every resample's mean.
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap) / n
    boot = (counts @ mags.reshape(n, d * k)).reshape(n_bootstrap, d, k)
    tail = (1 - confidence) / 2
    return ImportanceSummary(
        list(explanation.feature_names),
        list(explanation.output_names),
        mags.mean(axis=0),
        np.quantile(boot, tail, axis=0),
        np.quantile(boot, 1 - tail, axis=0),
        boot.std(axis=0, ddof=1),
        n,
        confidence,
    )
