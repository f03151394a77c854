"""Is an exported model the model it was exported from? Evidence before explanation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import ParityError
from .model import Model


@dataclass(frozen=True)
class ParityReport:
    """How far an exported model's outputs are from the original's on the same rows.

    ``decision_flips`` counts rows whose decision differs: the arg-max class for more than one
    output, ``output > threshold`` for a single one.
    """

    rows_checked: int
    max_abs_diff: float
    max_rel_diff: float
    decision_flips: int
    atol: float
    max_flips: int
    threshold: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_parity(
    native_predict: Callable[[Any], Any],
    model: Model,
    X: pd.DataFrame | np.ndarray,
    *,
    atol: float = 1e-4,
    max_flips: int = 0,
    threshold: float | None = 0.5,
    raise_on_failure: bool = False,
) -> ParityReport:
    """Compare ``native_predict(X)`` with ``model.predict(X)``.

    Parameters
    ----------
    native_predict : callable
        The original model's scoring function on ``X`` (e.g. ``pipeline.predict_proba``),
        returning the same outputs as ``model``.
    model : Model
        The exported model.
    X : DataFrame or array
        Rows to check on.
    atol : float
        Largest absolute difference tolerated. float32 arithmetic alone moves tree-ensemble
        probabilities by ~1e-6; a scaler in front of a forest, by up to ~1e-2.
    max_flips : int
        Decisions allowed to differ.
    threshold : float, optional
        Decision threshold for a single output; ignored for several.
    raise_on_failure : bool
        Raise :class:`ParityError` instead of returning a failed report.
    """
    ours = model.predict(X)
    theirs = np.asarray(native_predict(X), dtype=np.float64)
    if theirs.ndim == 1:
        theirs = theirs.reshape(-1, 1)
    if theirs.shape != ours.shape:
        raise ParityError(f"native output has shape {theirs.shape}, exported {ours.shape}")
    diff = np.abs(theirs - ours)
    rel = diff / np.maximum(np.abs(theirs), 1e-12)
    if ours.shape[1] > 1:
        flips = int(np.sum(theirs.argmax(axis=1) != ours.argmax(axis=1)))
    elif threshold is not None:
        flips = int(np.sum((theirs[:, 0] > threshold) != (ours[:, 0] > threshold)))
    else:
        flips = 0
    max_abs = float(diff.max(initial=0.0))
    report = ParityReport(
        rows_checked=len(ours),
        max_abs_diff=max_abs,
        max_rel_diff=float(rel.max(initial=0.0)),
        decision_flips=flips,
        atol=atol,
        max_flips=max_flips,
        threshold=threshold if ours.shape[1] == 1 else None,
        passed=max_abs <= atol and flips <= max_flips,
    )
    if raise_on_failure and not report.passed:
        raise ParityError(
            f"exported model differs from the original on {report.rows_checked} rows: "
            f"max |diff| {report.max_abs_diff:.3g} (tolerance {atol:g}), "
            f"{report.decision_flips} decision flip(s) (allowed {max_flips})"
        )
    return report
