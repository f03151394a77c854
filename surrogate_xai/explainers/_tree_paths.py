"""Probability space for tree ensembles: exact enumeration where cheap, else sampling with the
exact margin values as a control variate.

The interventional game of ``σ(margin)`` is not a sum over trees, so it has no closed form.
Two ways per explained row:

* **enumeration**: a background row ``b`` and ``x`` differ, as far as any split can tell, on
  a set ``D_b`` of units; ``f(x_S, b_S̄)`` depends on ``S ∩ D_b`` only, and the units outside
  ``D_b`` are dummies of that baseline's game. So its exact Shapley values take
  ``2**|D_b| − 2`` model rows. When their sum over the background fits in the budget, the
  row is explained exactly (standard errors 0).
* **control variate**: otherwise the model-agnostic permutation estimator runs on the
  residual game ``h = f − g C``, where ``g`` is the margin, whose exact values ``φ_g`` the
  trees give, and ``C`` the least-squares slope of ``f(b) − f(x)`` on ``g(b) − g(x)`` over the
  background (fixed before sampling, so the estimate stays unbiased and linear). The
  estimate is ``φ̂_h + φ_g C``: the part of ``f`` that moves with the margin is exact, only
  the curvature of the link is sampled, and the standard errors are those of ``φ̂_h``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._design import BlockDesign, shapley_pairs
from ._engine import Problem, RowResult, explain_row

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RowPath:
    """One row's result and the path it took (``"enumerated"`` or ``"control-variate"``)."""

    result: RowResult
    path: str


def differing_units(
    dec_x: np.ndarray, dec_b: np.ndarray, node_unit: np.ndarray, n_units: int
) -> np.ndarray:
    """``(n_background, n_units)``: units on which some split sends ``x`` and ``b`` apart."""
    apart = dec_b != dec_x[None, :]
    out = np.zeros((len(dec_b), n_units), dtype=bool)
    for u in range(n_units):
        nodes = np.flatnonzero(node_unit == u)
        if len(nodes):
            out[:, u] = apart[:, nodes].any(axis=1)
    return out


def enumeration_cost(differs: np.ndarray) -> int:
    """Model rows the exact enumeration of one row needs."""
    k = differs.sum(axis=1)
    return int(np.sum(np.where(k >= 2, 2.0**k - 2, 0)))


def enumerate_row(
    x: np.ndarray,
    f_x: np.ndarray,
    differs: np.ndarray,
    problem: Problem,
    batch_rows: int,
) -> RowResult:
    """Exact values of one encoded row ``x`` by enumerating each baseline's differing units.

    Baselines are taken in groups of equal ``|D_b|`` so each group shares one Shapley map.
    """
    n_out = len(f_x)
    values = np.zeros((problem.n_units, n_out))
    k_of = differs.sum(axis=1)
    evaluations = 0
    for k in np.unique(k_of):
        members = np.flatnonzero(k_of == k)
        if k == 0:
            continue
        if k == 1:
            # One differing unit takes the whole difference.
            unit = differs[members].argmax(axis=1)
            np.add.at(
                values, unit, problem.weights[members, None] * (f_x - problem.f_background[members])
            )
            continue
        codes = np.arange(2**k, dtype=np.int64)
        bits = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)  # (2**k, k)
        plus, minus, weight = (a[0] for a in shapley_pairs(int(k)))
        per_block = max(1, batch_rows // max(2**k - 2, 1))
        for start in range(0, len(members), per_block):
            group = members[start : start + per_block]
            units = np.stack([np.flatnonzero(differs[b]) for b in group])  # (g, k)
            # Coalition code c switches the units units[g, bits[c]] to x.
            inner = bits[1:-1]
            col_mask = np.zeros((len(group), len(inner), problem.n_units), dtype=bool)
            g_idx = np.arange(len(group))[:, None, None]
            col_mask[g_idx, np.arange(len(inner))[None, :, None], units[:, None, :]] = inner[None]
            cols = col_mask[:, :, problem.unit_index]
            rows = np.broadcast_to(problem.background[group][:, None, :], cols.shape).copy()
            np.copyto(rows, np.broadcast_to(x, cols.shape), where=cols)
            y = problem.predict(rows.reshape(-1, len(x))).reshape(len(group), len(inner), n_out)
            evaluations += len(inner) * len(group)
            v = np.concatenate(
                [
                    problem.f_background[group][:, None, :],
                    y,
                    np.broadcast_to(f_x, (len(group), 1, n_out)),
                ],
                axis=1,
            )  # (g, 2**k, n_out) over coalition codes
            phi = ((v[:, plus] - v[:, minus]) * weight[None, :, :, None]).sum(axis=2)  # (g, k, out)
            np.add.at(values, units, problem.weights[group, None, None] * phi)
    return RowResult(values, np.zeros_like(values), f_x, evaluations, len(differs), True)


def control_slope(
    f_x: np.ndarray, g_x: np.ndarray, f_b: np.ndarray, g_b: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """``C`` of shape ``(n_margins, n_outputs)``: weighted least squares of ``f(b) − f(x)`` on
    ``g(b) − g(x)`` over the background (the secant slopes of the link)."""
    sw = np.sqrt(w)[:, None]
    C, *_ = np.linalg.lstsq(sw * (g_b - g_x), sw * (f_b - f_x), rcond=None)
    return np.asarray(C)


def control_variate_row(
    x: np.ndarray,
    problem: Problem,
    margins: Predict,
    g_x: np.ndarray,
    g_b: np.ndarray,
    phi_g: np.ndarray,
    f_x: np.ndarray,
    design: BlockDesign,
    per_round: int,
    tol: float | None,
    batch_rows: int,
) -> RowResult:
    """Permutation sampling of the residual game ``f − g C`` plus the exact ``φ_g C``."""
    C = control_slope(f_x, g_x, problem.f_background, g_b, problem.weights)
    residual_b = problem.f_background - g_b @ C
    predict = problem.predict

    def residual(rows: np.ndarray) -> np.ndarray:
        return np.asarray(predict(rows) - margins(rows) @ C)

    game = Problem(
        predict=residual,
        background=problem.background,
        f_background=residual_b,
        weights=problem.weights,
        base_value=problem.weights @ residual_b,
        unit_index=problem.unit_index,
        n_units=problem.n_units,
    )
    r = explain_row(x, game, design, per_round, tol, batch_rows)
    values = r.values + phi_g @ C
    return RowResult(values, r.stderr, f_x, r.evaluations, r.blocks_used, r.converged)
