"""Scoring the audited output against the true outcome: classes or numbers.

A classifier's output ``name[label]`` is the score of one class, and the target's labels say
per row whether that class is the truth (accuracy of the decision rule, AUC). A regression's
output is a number, and so is its target (R², RMSE, MAE). Which of the two applies is read
from the output's name and the target's values, once, by :func:`target_kind`; a target that
fits neither is refused before the audit runs, with one sentence on what to give instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError, InputError

TargetKind = Literal["classes", "values"]


def output_class(output: str) -> str | None:
    """The class a classifier's output ``name[label]`` is the score of, else None."""
    if output.endswith("]") and "[" in output:
        return output[output.index("[") + 1 : -1]
    return None


def model_classes(output: str, output_names: Sequence[str]) -> list[str] | None:
    """The class labels of a classifier's outputs ``name[label]`` that ``output`` belongs to."""
    if output_class(output) is None:
        return None
    prefix = output[: output.index("[") + 1]
    found = [o[len(prefix) : -1] for o in output_names if o.startswith(prefix) and o.endswith("]")]
    return found if len(found) >= 2 else None


def _numbers(labels: np.ndarray) -> np.ndarray | None:
    """The labels as float64 when every one is a number, else None."""
    values = pd.to_numeric(pd.Series(labels, dtype=object), errors="coerce")
    if values.isna().any():
        return None
    return values.to_numpy(dtype=np.float64)


def _check_missing(labels: np.ndarray, what: str) -> None:
    missing = pd.isna(pd.Series(labels, dtype=object)).to_numpy()
    if missing.any():
        # An empty cell would become the label "nan" and be scored as a wrong prediction.
        raise InputError(f"{what} is missing a value at row {int(np.flatnonzero(missing)[0])}")


def target_kind(target: Any, output: str, what: str = "target") -> TargetKind:
    """``"values"`` for a numeric target on an output that names no class (a regression),
    ``"classes"`` otherwise. A target of only 0 and 1 is a binary label either way."""
    labels = np.asarray(target)
    _check_missing(labels, what)
    numbers = _numbers(labels)
    if output_class(output) is None and numbers is not None and not set(numbers) <= {0.0, 1.0}:
        return "values"
    return "classes"


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
        When the labels cannot be matched to the output at all (the message says what to
        give instead).
    """
    labels = np.asarray(target)
    _check_missing(labels, what)
    named = output_class(output)
    as_text = labels.astype(str)
    values = set(as_text.tolist())
    classes = model_classes(output, output_names)
    if named is not None and classes is not None and values <= set(classes):
        # Labels that are the model's own classes are read as classes, even when the scored
        # class does not occur among them (0/1 labels of a 3-class model are classes 0 and 1,
        # not "is class 2").
        return named, as_text == named
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
    numbers = _numbers(labels)
    if numbers is not None and set(numbers) <= {0.0, 1.0}:
        return "1", numbers.astype(bool)
    shown = ", ".join(repr(v) for v in sorted(values)[:5]) + (", ..." if len(values) > 5 else "")
    if named is not None and numbers is not None:
        raise ConfigurationError(
            f"{what} holds numbers ({shown}) but output {output!r} is the score of class "
            f"{named!r}, so there is nothing to compare: give the class labels "
            f"({', '.join(repr(c) for c in classes or [named])}) or 0/1 for class {named!r}"
        )
    raise ConfigurationError(
        f"{what} holds the labels {shown}, none of which is the class output {output!r} "
        "scores: choose the output of one of these classes as the score (sxai: --score; "
        f"the outputs are {', '.join(output_names)}) or give 0/1 labels"
    )


def check_target(target: Any, output: str, output_names: Sequence[str], what: str) -> None:
    """Refuse a target that cannot be scored against ``output`` (before any work)."""
    if target_kind(target, output, what) == "classes":
        target_truth(target, output, output_names, what)


def performance(
    predictions: np.ndarray,
    target: Any,
    output: str,
    threshold: float | None,
    output_names: Sequence[str] = (),
) -> dict[str, Any]:
    """How well ``output`` predicts the target.

    For classes: the decision rule ``output > threshold`` (accuracy; without a threshold,
    none) and the AUC of the output. For values: R², RMSE and MAE of the output.
    """
    labels = np.asarray(target)
    n = len(predictions)
    if labels.shape != (n,):
        raise ConfigurationError(f"target has shape {labels.shape}, expected ({n},) like data")
    if target_kind(labels, output) == "values":
        truth = _numbers(labels)
        if truth is None:  # target_kind found every label a number; kept for the type checker
            raise ConfigurationError("the target holds a value that is not a number")
        residual = truth - predictions
        spread = float(np.sum((truth - truth.mean()) ** 2))
        return {
            "kind": "regression",
            "r2": 1.0 - float(np.sum(residual**2)) / spread if spread > 0 else None,
            "rmse": float(np.sqrt(np.mean(residual**2))),
            "mae": float(np.mean(np.abs(residual))),
            "rows": n,
        }
    from sklearn.metrics import roc_auc_score

    positive, truth_class = target_truth(labels, output, output_names)
    auc = float(roc_auc_score(truth_class, predictions)) if 0 < truth_class.sum() < n else None
    return {
        "kind": "classification",
        "positive_class": positive,
        "accuracy": None
        if threshold is None
        else float(np.mean((predictions > threshold) == truth_class)),
        "auc": auc,
        "rows": n,
    }


__all__ = ["check_target", "model_classes", "output_class", "performance", "target_truth"]
