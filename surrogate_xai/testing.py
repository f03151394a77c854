"""Conformance checks every explainer must pass (in the spirit of sklearn's estimator checks).

Use :func:`check_explainer` in a test with a fitted-on-demand explainer, a model, a background
and rows to explain; each failed property raises ``AssertionError`` naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import NotFittedError
from .explanation import Explanation
from .model import Model


def _state(explainer: Any) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in vars(explainer).items() if k != "model_"}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dict__") and type(a) is type(b) and not callable(a):
        return _same(vars(a), vars(b))
    return bool(a == b)


def check_explainer(
    make: Callable[[], Any],
    model: Model,
    background: Any,
    X: pd.DataFrame | np.ndarray,
    *,
    feature_groups: Mapping[str, Sequence[str]] | None = None,
    atol: float = 1e-9,
    efficient: bool = True,
) -> Explanation:
    """Run the shared checks; returns the explanation of ``X`` for further assertions.

    ``make`` returns a new, unfitted explainer with a fixed ``random_state`` where it has one.
    ``efficient=False`` skips the check that values add up to ``prediction - base value``
    (local surrogates add up to their own prediction; the registry's ``efficient`` tag).
    """
    unfitted = make()
    try:
        unfitted.explain(X)
    except NotFittedError:
        pass
    else:
        raise AssertionError("explain() before fit() must raise NotFittedError")

    explainer = make().fit(model, background, feature_groups=feature_groups)
    params = copy.deepcopy(explainer.get_params())
    state = _state(explainer)
    first = explainer.explain(X)
    if not _same(params, explainer.get_params()):
        raise AssertionError("explain() changed the explainer's parameters")
    if not _same(state, _state(explainer)):
        raise AssertionError("explain() changed the explainer's fitted state")

    second = explainer.explain(X)
    if not np.array_equal(first.values, second.values) or not np.array_equal(
        first.stderr, second.stderr, equal_nan=True
    ):
        raise AssertionError("the same seed gave different values on a second call")

    n = len(X)
    d, k = len(explainer.feature_names_), len(model.output_names)
    if first.values.shape != (n, d, k) or first.stderr.shape != (n, d, k):
        raise AssertionError(f"values/stderr shape {first.values.shape}, expected {(n, d, k)}")
    if first.base_values.shape != (n, k):
        raise AssertionError(f"base_values shape {first.base_values.shape}, expected {(n, k)}")
    if np.any(first.stderr < 0) or not np.all(np.isfinite(first.values)):  # NaN: not estimated
        raise AssertionError("values must be finite and standard errors non-negative")

    total = first.values.sum(axis=1) + first.base_values
    scale = max(1.0, float(np.abs(first.diagnostics.predictions).max()))
    gap = float(np.abs(total - first.diagnostics.predictions).max())
    if efficient and gap > atol * scale:
        raise AssertionError(f"values do not add up to prediction - base value (gap {gap:.3g})")

    back = Explanation.from_json(first.to_json())
    for name in ("values", "base_values", "stderr"):
        if not np.array_equal(getattr(back, name), getattr(first, name), equal_nan=True):
            raise AssertionError(f"JSON round trip changed {name}")
    if back.feature_names != first.feature_names or back.provenance.seed != first.provenance.seed:
        raise AssertionError("JSON round trip changed names or provenance")
    return first
