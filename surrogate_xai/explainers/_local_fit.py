"""Per-row fits of :class:`~surrogate_xai.explainers.local.LocalSurrogate`.

Everything that depends only on the design (regression maps, Gram matrices) is computed once
per call in :class:`Fitter`; :meth:`Fitter.row` then fits one explained row from its model
outputs with a few small matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial
from typing import TYPE_CHECKING, Any

import numpy as np

from ..regression import constrained_wls_map, lasso_path_gram, weighted_gram, weighted_ridge_map
from ._neighbourhood import Sample

if TYPE_CHECKING:
    from .local import LocalSurrogate


def weighted_r2(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted R² per output; 1 for a constant target fitted exactly, NaN if not fitted."""
    mean = w @ y
    tss = w @ (y - mean) ** 2
    rss = w @ (y - pred) ** 2
    tiny = (1e-12 * np.maximum(np.abs(y).max(axis=0), 1e-300)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - rss / tss
    flat = tss <= tiny
    return np.where(flat, np.where(rss <= tiny, 1.0, np.nan), r2)


def shapley_from_game(v: np.ndarray, k: int) -> np.ndarray:
    """Shapley values of a k-player game given on all 2**k coalitions (bit j = player j)."""
    codes = np.arange(2**k)
    sizes = np.array([bin(c).count("1") for c in codes])
    weight = np.array([factorial(s) * factorial(k - s - 1) / factorial(k) for s in range(k)])
    out = np.empty(k)
    for j in range(k):
        without = codes[(codes >> j) & 1 == 0]
        out[j] = (v[without | (1 << j)] - v[without]) @ weight[sizes[without]]
    return out


@dataclass
class RowFit:
    values: np.ndarray  # (n_units, k)
    stderr: np.ndarray  # (n_units, k)
    g_x: np.ndarray  # (k,) the surrogate at the row
    base: np.ndarray  # (k,) the surrogate at the reference
    r2: np.ndarray  # (k,)
    r2_holdout: np.ndarray  # (k,)


class Fitter:
    """The surrogate fit of one explained row, with everything shared by all rows precomputed."""

    def __init__(self, est: LocalSurrogate, fit_s: Sample, hold_s: Sample | None) -> None:
        self.est = est
        self.layout = est.layout_
        self.fit_s, self.hold_s = fit_s, hold_s
        self.U = fit_s.U
        self.U_hold = None if hold_s is None else hold_s.U
        lay = self.layout
        # Aggregation of regressor contributions into units (one row per unit).
        self.S = np.zeros((lay.n_units, lay.n_regressors))
        self.S[lay.reg_unit, np.arange(lay.n_regressors)] = 1.0
        self.single = bool(np.all(self.S.sum(axis=1) == 1))
        self.constrained = est.sampling == "masking" and est.surrogate == "ridge"
        w = fit_s.weights
        if self.constrained:
            self.present = 1.0 - self.U
            self.G, self.h = constrained_wls_map(self.present, w)
            self.f_bg = est.background_predictions_
        else:
            self.G, self.g0 = weighted_ridge_map(self.U, w, float(est.alpha))
            if est.max_features is not None or est.surrogate == "lasso":
                _, self.mean, self.gram = weighted_gram(self.U, w)
                self.Ucw = (self.U - self.mean) * w[:, None]

    # -- the pieces ---------------------------------------------------------------------------
    def _reference(self, x: np.ndarray) -> np.ndarray:
        """The reference point in regressor units, shape (p,): the row itself is u = 0."""
        lay = self.layout
        u_ref = np.ones(lay.n_regressors)
        u_ref[: lay.n_gauss] = (lay.mean - x[lay.gauss_cols]) / lay.scale
        return u_ref

    def _sandwich(self, resid: np.ndarray, multiplier: np.ndarray) -> np.ndarray:
        """Standard errors of the unit values ``S diag(multiplier) G y``, shape (units, k).

        The design's blocks are the independent units: a block's residuals move the slopes by
        ``Σ_i G[:, i] r_i`` over its samples.
        """
        size = self.fit_s.block
        n_blocks = len(self.fit_s.rows) // size
        if n_blocks < 2:
            return np.full((self.layout.n_units, resid.shape[1]), np.nan)
        H = self.G if self.single else (self.S * multiplier[None, :]) @ self.G
        # Per block: its columns of H times its residuals, as one batched product.
        blocks = np.ascontiguousarray(H.reshape(len(H), n_blocks, size).transpose(1, 0, 2))
        moves = blocks @ resid.reshape(n_blocks, size, -1)
        var = (moves**2).sum(axis=0) * n_blocks / (n_blocks - 1)
        if self.single:
            var = (self.S * multiplier[None, :] ** 2) @ var
        return np.sqrt(var)

    def row(self, x: np.ndarray, out: np.ndarray) -> RowFit:
        """Fit the surrogate for row ``x`` from the model outputs ``out`` of shape (m, k)."""
        n_fit = len(self.fit_s.rows)
        f_x, Y, Y_hold = out[0], out[1 : 1 + n_fit], out[1 + n_fit :]
        if self.constrained:
            return self._masking_ls(f_x, Y, Y_hold)
        u_ref = self._reference(x)
        if self.est.surrogate == "tree":
            return self._tree(Y, Y_hold, u_ref)
        return self._linear(Y, Y_hold, u_ref)

    def _finish(
        self,
        C: np.ndarray,
        a: np.ndarray,
        u_ref: np.ndarray,
        Y: np.ndarray,
        Y_hold: np.ndarray,
        se: np.ndarray | None,
    ) -> RowFit:
        phi_reg = -u_ref[:, None] * C
        resid = Y - (a + self.U @ C)
        r2 = weighted_r2(Y, Y - resid, self.fit_s.weights)
        if self.hold_s is not None and self.U_hold is not None:
            r2h = weighted_r2(Y_hold, a + self.U_hold @ C, self.hold_s.weights)
        else:
            r2h = np.full(len(a), np.nan)
        if se is None:
            se = self._sandwich(resid, -u_ref)
        return RowFit(self.S @ phi_reg, se, a.copy(), a + u_ref @ C, r2, r2h)

    def _linear(self, Y: np.ndarray, Y_hold: np.ndarray, u_ref: np.ndarray) -> RowFit:
        est, lay = self.est, self.layout
        C = self.G @ Y
        a = self.g0 @ Y
        if est.surrogate == "ridge" and est.max_features is None:
            return self._finish(C, a, u_ref, Y, Y_hold, None)
        xy = self.Ucw.T @ Y
        ybar = self.fit_s.weights @ Y
        C_sel = np.zeros_like(C)
        for o in range(Y.shape[1]):
            if est.surrogate == "lasso":
                C_sel[:, o] = lasso_path_gram(
                    self.gram,
                    xy[:, o],
                    alpha=float(est.alpha),
                    max_active=est.max_features,
                    groups=lay.reg_unit,
                )
            else:
                phi_units = self.S @ (-u_ref * C[:, o])
                keep = np.argsort(-np.abs(phi_units), kind="stable")[: est.max_features]
                regs = np.flatnonzero(np.isin(lay.reg_unit, keep))
                system = self.gram[np.ix_(regs, regs)] + float(est.alpha) * np.eye(len(regs))
                C_sel[regs, o] = np.linalg.pinv(system, hermitian=True) @ xy[regs, o]
        a_sel = ybar - self.mean @ C_sel
        nan = np.full((lay.n_units, Y.shape[1]), np.nan)
        return self._finish(C_sel, a_sel, u_ref, Y, Y_hold, nan)

    def _tree(self, Y: np.ndarray, Y_hold: np.ndarray, u_ref: np.ndarray) -> RowFit:
        from sklearn.tree import DecisionTreeRegressor

        est, lay = self.est, self.layout
        k = Y.shape[1]
        values = np.zeros((lay.n_units, k))
        g_x, base, r2, r2h = np.empty(k), np.empty(k), np.empty(k), np.full(k, np.nan)
        w = self.fit_s.weights
        for o in range(k):
            U = self.U
            tree = DecisionTreeRegressor(max_depth=est.max_depth, random_state=0)
            tree.fit(U, Y[:, o], sample_weight=w)
            phi = self._tree_values(tree, u_ref)
            if est.max_features is not None and np.count_nonzero(phi) > est.max_features:
                keep = np.argsort(-np.abs(phi), kind="stable")[: est.max_features]
                # Columns of dropped features are made constant, so the refit cannot use them.
                U = np.where(np.isin(lay.reg_unit, keep)[None, :], self.U, 0.0)
                tree = DecisionTreeRegressor(max_depth=est.max_depth, random_state=0)
                tree.fit(U, Y[:, o], sample_weight=w)
                phi = self._tree_values(tree, u_ref)
            values[:, o] = phi
            ends = tree.predict(np.vstack([np.zeros(lay.n_regressors), u_ref]))
            g_x[o], base[o] = ends
            r2[o] = weighted_r2(Y[:, [o]], tree.predict(U)[:, None], w)[0]
            if self.hold_s is not None and self.U_hold is not None:
                pred = tree.predict(self.U_hold)[:, None]
                r2h[o] = weighted_r2(Y_hold[:, [o]], pred, self.hold_s.weights)[0]
        return RowFit(values, np.full_like(values, np.nan), g_x, base, r2, r2h)

    def _tree_values(self, tree: Any, u_ref: np.ndarray) -> np.ndarray:
        """Exact Shapley values of the tree between the row (u = 0) and the reference."""
        lay = self.layout
        used = np.unique(tree.tree_.feature[tree.tree_.feature >= 0])
        players = np.unique(lay.reg_unit[used])
        out = np.zeros(lay.n_units)
        k = len(players)
        if k == 0:
            return out
        masks = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1).astype(bool)
        points = np.repeat(u_ref[None, :], 2**k, axis=0)
        for j, unit in enumerate(players):
            cols = lay.reg_unit == unit
            points[np.ix_(masks[:, j], cols)] = 0.0
        out[players] = shapley_from_game(tree.predict(points), k)
        return out

    def _masking_ls(self, f_x: np.ndarray, Y: np.ndarray, Y_hold: np.ndarray) -> RowFit:
        """KernelSHAP's efficiency-constrained least squares on the masking design."""
        est, lay = self.est, self.layout
        base = est.base_values_
        target = Y - self.f_bg[self.fit_s.rows]
        delta = f_x - base
        phi = self.G @ target + self.h[:, None] * delta[None, :]
        se = None
        if est.max_features is not None:
            maps: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
            chosen = np.zeros_like(phi)
            for o in range(Y.shape[1]):
                keep = tuple(
                    np.sort(
                        np.argsort(-np.abs(phi[:, o]), kind="stable")[: est.max_features]
                    ).tolist()
                )
                if keep not in maps:
                    maps[keep] = constrained_wls_map(self.present[:, keep], self.fit_s.weights)
                G, h = maps[keep]
                chosen[list(keep), o] = G @ target[:, o] + h * delta[o]
            phi = chosen
            se = np.full_like(phi, np.nan)
        resid = target - self.present @ phi
        r2 = weighted_r2(Y, Y - resid, self.fit_s.weights)
        r2h = np.full(len(f_x), np.nan)
        if self.hold_s is not None and self.U_hold is not None:
            pred = self.f_bg[self.hold_s.rows] + (1.0 - self.U_hold) @ phi
            r2h = weighted_r2(Y_hold, pred, self.hold_s.weights)
        if se is None:
            se = self._sandwich(resid, np.ones(lay.n_regressors))
        return RowFit(self.S @ phi, se, base + phi.sum(axis=0), base.copy(), r2, r2h)
