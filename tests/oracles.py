"""Independent reference implementations used as oracles by the tests."""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np


def brute_force_shapley(
    f, x: np.ndarray, background: np.ndarray, weights=None, units=None
) -> np.ndarray:
    """Interventional Shapley values of one row by direct enumeration, shape (d, k).

    Written plainly and separately from the library: v(S) averages f over the background with
    the columns of the units in S taken from x. ``units`` lists each unit's columns (default:
    one unit per column).
    """
    x = np.asarray(x, dtype=np.float64)
    B = np.asarray(background, dtype=np.float64)
    w = np.full(len(B), 1 / len(B)) if weights is None else np.asarray(weights) / np.sum(weights)
    units = [[j] for j in range(len(x))] if units is None else units
    d = len(units)

    def v(S: tuple[int, ...]) -> np.ndarray:
        rows = B.copy()
        cols = [c for u in S for c in units[u]]
        rows[:, cols] = x[cols]
        out = np.asarray(f(rows), dtype=np.float64)
        out = out.reshape(len(B), -1)
        return w @ out

    values = {S: v(S) for r in range(d + 1) for S in combinations(range(d), r)}
    k = len(values[()])
    phi = np.zeros((d, k))
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for r in range(d):
            weight = factorial(r) * factorial(d - r - 1) / factorial(d)
            for S in combinations(others, r):
                with_i = tuple(sorted((*S, i)))
                phi[i] += weight * (values[with_i] - values[S])
    return phi
