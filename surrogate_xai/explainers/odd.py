"""OddKernelSHAP: KernelSHAP blocks refitted on the odd part of the game with 3-way terms.

The Shapley value depends only on the odd part of a game, ``(v(S) − v(S̄)) / 2``, and paired
coalitions isolate it (Fumagalli et al. 2026, OddSHAP, arXiv 2602.01399). In the Fourier basis
``χ_T(S) = Π_{j ∈ T} (1 − 2·1[j ∈ S])`` the odd part is ``Σ_{|T| odd} β_T χ_T(S)`` and
``φ_i = −2 Σ_{T ∋ i} β_T / |T|``. KernelSHAP's paired regression fits the singletons only, so
it is exact up to pairwise interactions and every 3-way interaction is noise to it. Once a
block holds ``2 d · interaction_factor`` coalition pairs this estimator fits 3-way terms too:

1. The blocks of a whole pass over the background use ``n_designs`` base designs (no
   relabelling), and the blocks of each base design are averaged first: the average of
   single-baseline games that share coalitions is itself a game, and least squares is linear,
   so fitting the average equals averaging the per-block fits (one fit per design).
2. Triples are chosen by greedy rounds pooled over designs (:meth:`OddRefit._select`): fit
   the current terms, score every candidate triple by its squared correlation with the
   residuals, keep the best, up to one regressor per ``interaction_factor`` pairs; every
   triple is a candidate, so the refit runs up to d = 30 only. (OddSHAP
   finds its terms from a gradient-boosted proxy; a proxy is not needed here.)
3. Singletons plus the chosen triples are fitted by efficiency-constrained weighted least
   squares on the pair differences with the Shapley-kernel weights, per design; the standard
   error is the HC3 sandwich with the sampled pairs as units.

Exact for games whose odd part lies in the chosen terms, which includes depth-3 tree ensembles
once the triples are found (measured: docs/benchmarks.md). The choice of terms makes it
non-linear in the model's outputs and consistent rather than unbiased (a finite-budget bias,
measured in tests/test_odd.py). Below its budget, or below one pass, it is :class:`KernelSHAP`,
bit for bit.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from typing import Any

import numpy as np

from ..validation import check_int
from ._design import BlockDesign, kernel_design
from .design_explainer import Revision
from .kernel import KernelSHAP


def _complements(masks: np.ndarray) -> np.ndarray:
    """Row of each coalition's complement within each base design, shape (n_base, rows)."""
    out = np.empty(masks.shape[:2], dtype=np.intp)
    for g, m in enumerate(masks):
        key = np.packbits(m, axis=1)
        comp = np.packbits(~m, axis=1)
        width = key.shape[1]
        kv = np.ascontiguousarray(key).view(np.dtype((np.void, width))).ravel()
        cv = np.ascontiguousarray(comp).view(np.dtype((np.void, width))).ravel()
        order = np.argsort(kv)
        pos = np.searchsorted(kv[order], cv)
        out[g] = order[np.minimum(pos, len(order) - 1)]
        if not np.array_equal(kv[out[g]], cv):
            raise ValueError("a coalition of the design has no complement in it")
    return out


def _kkt(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Xᵀ W`` and the KKT matrix of weighted least squares under ``Σ β = c``."""
    K = X.shape[1]
    XtW = X.T * w
    kkt = np.zeros((K + 1, K + 1))
    kkt[:K, :K] = XtW @ X
    kkt[:K, K] = kkt[K, :K] = 1.0
    return XtW, kkt


def _solve(kkt: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(kkt, rhs)
    except np.linalg.LinAlgError:  # a triple collinear with others on these pairs
        return np.linalg.lstsq(kkt, rhs, rcond=None)[0]


def _constrained_fit(X: np.ndarray, w: np.ndarray, t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Weighted least squares of ``t`` on ``X`` with ``Σ β = c``: ``β`` of shape (K, outputs)."""
    XtW, kkt = _kkt(X, w)
    return _solve(kkt, np.concatenate([XtW @ t, c[None, :]]))[:-1]


def _triple_columns(chi: np.ndarray, triples: np.ndarray) -> np.ndarray:
    return chi[:, triples[:, 0]] * chi[:, triples[:, 1]] * chi[:, triples[:, 2]]


#: Rounds of the greedy selection: each adds a quarter of the triples, refits, re-screens.
_ROUNDS = 4
#: Units at most for the refit: every triple of them is a candidate (C(30, 3) = 4,060).
_MAX_UNITS = 30

#: Per design: the odd part at each pair, or the efficiency constraint.
_Odd = dict[int, np.ndarray]

#: Regressors of one fit at most: its cost grows with their square (d = 30 at 64 passes of 2d
#: rows per background row uses 240).
_MAX_REGRESSORS = 256
#: Designs whose residuals select the triples (every design is then fitted with them).
_SELECTING = 4


class OddRefit:
    """The odd regression of :class:`OddKernelSHAP` for one design (module docstring).

    Built once per design (the coalitions, their pair differences and weights); called per
    explained row by the engine with that row's block outputs.
    """

    def __init__(self, design: BlockDesign, factor: int) -> None:
        if design.layout is None or design.weights is None:
            raise ValueError("OddRefit needs a regression design with base designs")
        self.groups = design.layout.base
        self.factor = factor
        masks = design.masks
        comp = _complements(masks)
        rows = np.arange(masks.shape[1])
        self.first, self.second, self.sampled, self.chi, self.w = [], [], [], [], []
        for g in range(masks.shape[0]):
            keep = rows < comp[g]  # each pair once
            first, second = rows[keep], comp[g][keep]
            self.first.append(first)
            self.second.append(second)
            # A pair is a sampling unit only where its rows were sampled, not enumerated.
            self.sampled.append((first >= design.sampled_from) & (second >= design.sampled_from))
            self.chi.append(1.0 - 2.0 * masks[g, first].astype(np.float64))
            self.w.append(design.weights[g, first] + design.weights[g, second])
        self.n_units = masks.shape[2]

    def n_triples(self) -> int:
        """Triples the fit affords: ``factor`` pairs per regressor in the smallest design, at
        most :data:`_MAX_REGRESSORS` regressors."""
        pairs = min(len(a) for a in self.first)
        return max(0, min(pairs // self.factor, _MAX_REGRESSORS) - self.n_units)

    def __call__(
        self, y: np.ndarray, delta: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Values and standard errors, shape (n_units, n_outputs) each.

        Parameters
        ----------
        y : array of shape (n_blocks, rows, n_outputs)
            Block outputs minus each block's ``f(b)``.
        delta : array of shape (n_blocks, n_outputs)
            ``f(x) − f(b)`` per block.
        weights : array of shape (n_blocks,)
            Background weight of each block's row (one pass: they sum to one).
        """
        groups, n_base = self.groups, len(self.chi)
        W = np.bincount(groups, weights, minlength=n_base)
        ybar = np.zeros((n_base, *y.shape[1:]))
        dbar = np.zeros((n_base, delta.shape[1]))
        np.add.at(ybar, groups, weights[:, None, None] * y)
        np.add.at(dbar, groups, weights[:, None] * delta)
        used = [int(g) for g in np.flatnonzero(W > 0)]
        ybar[used] /= W[used, None, None]
        dbar[used] /= W[used, None]
        share = W / W.sum()
        # The odd part at each pair, and the efficiency constraint Σ_odd β = −(f(x) − f(b)) / 2
        # (χ_T(N) = −1 for odd T).
        t = {g: 0.5 * (ybar[g, self.first[g]] - ybar[g, self.second[g]]) for g in used}
        c = {g: -0.5 * dbar[g] for g in used}
        triples = self._select(used, share, t, c)
        d = self.n_units
        L = np.zeros((d, d + len(triples)))  # phi = L beta
        L[np.arange(d), np.arange(d)] = -2.0
        for k, T in enumerate(triples):
            L[T, d + k] = -2.0 / 3.0
        values = np.zeros((d, y.shape[2]))
        var = np.zeros_like(values)
        for g in used:
            X = np.concatenate([self.chi[g], _triple_columns(self.chi[g], triples)], axis=1)
            XtW, kkt = _kkt(X, self.w[g])
            K = X.shape[1]
            # One solve gives β and L K⁻¹ (the KKT matrix is symmetric), hence φ's map.
            rhs = np.concatenate(
                [
                    np.concatenate([XtW @ t[g], c[g][None, :]]),
                    np.concatenate([L.T, np.zeros((1, d))]),
                ],
                axis=1,
            )
            sol = _solve(kkt, rhs)
            beta, LK = sol[:K, : t[g].shape[1]], sol[:K, t[g].shape[1] :].T
            values += share[g] * (L @ beta)
            # HC3 sandwich with the sampled pairs as units: a pair's residual over (1 − its
            # leverage), which also accounts for the triples having been chosen on these pairs.
            s = self.sampled[g]
            hat = _solve(kkt, np.concatenate([XtW[:, s], np.zeros((1, int(s.sum())))]))[:K]
            leverage = np.einsum("pk,kp->p", X[s], hat)
            resid = (t[g] - X @ beta)[s] / np.maximum(1.0 - leverage, 1e-3)[:, None]
            var += share[g] ** 2 * (((LK @ XtW[:, s]) ** 2) @ (resid**2))
        return values, np.sqrt(var)

    def _select(self, used: list[int], share: np.ndarray, t: _Odd, c: _Odd) -> np.ndarray:
        """Triples by greedy rounds on every design's residuals at once.

        Each round fits the triples chosen so far, correlates every candidate's Fourier
        character with the residuals over the sampled pairs (normalised), adds up the
        share-weighted squared correlations over the designs and keeps the largest. Squares,
        not signed sums: a triple's coefficient in a single-baseline game changes sign with the
        baseline (``(x_a − b_a)(x_b − b_b)(x_c − b_c)``), its energy does not. Pooling designs
        is what makes the selection reliable: one design's pairs alone pick spurious triples.
        """
        d, budget = self.n_units, self.n_triples()
        if budget < 1 or d < 3:
            return np.zeros((0, 3), dtype=np.intp)
        # Selecting on a few designs costs a quarter of selecting on all 16 and loses little
        # (breast-cancer GBM at 64x: 0.06% / 0.13% error against 0.04% / 0.08%).
        used = used[:_SELECTING]
        candidates = np.array(list(combinations(range(d), 3)), dtype=np.intp).reshape(-1, 3)
        chosen: list[int] = []
        per_round = -(-min(budget, len(candidates)) // _ROUNDS)
        while len(chosen) < min(budget, len(candidates)):
            current = candidates[chosen]
            total = np.zeros(len(candidates))
            for g in used:
                chi, s = self.chi[g], self.sampled[g]
                X = np.concatenate([chi, _triple_columns(chi, current)], axis=1)
                beta = _constrained_fit(X, self.w[g], t[g], c[g])
                resid = (t[g] - X @ beta)[s].astype(np.float32)
                # Characters are ±1: every column has norm sqrt(#sampled pairs), and float32
                # is exact for them (the scores only rank candidates; no estimate uses them).
                signs = chi[s].astype(np.float32)
                for lo in range(0, len(candidates), 1024):
                    cols = _triple_columns(signs, candidates[lo : lo + 1024])
                    corr = (cols.T @ resid) / np.sqrt(max(s.sum(), 1))
                    total[lo : lo + 1024] += share[g] * (corr**2).sum(axis=1)
            total[chosen] = -1.0
            order = np.argsort(-total, kind="stable")
            chosen += [int(i) for i in order[:per_round] if total[i] >= 0][
                : min(budget, len(candidates)) - len(chosen)
            ]
        return candidates[np.sort(np.array(chosen, dtype=np.intp))]


class OddKernelSHAP(KernelSHAP):
    """Sampled interventional Shapley values: KernelSHAP plus fitted 3-way odd interactions.

    Below one pass over the background, or below ``2 d · interaction_factor`` coalition pairs
    per block, this is :class:`KernelSHAP` (the same numbers for the same seed). Above, the
    blocks of a pass share ``n_designs`` base designs and each design's averaged game is
    refitted with singletons and the 3-way odd Fourier terms its residuals point to (module
    docstring). Standard errors come from the refit's HC3 sandwich.

    Parameters
    ----------
    max_evals, tol, coalitions_per_block, random_state, batch_rows, n_jobs
        As for :class:`KernelSHAP`; ``tol`` stops at the KernelSHAP estimate (no refit).
    interaction_factor : int
        Coalition pairs per regressor of the refit (default 8): it runs once a block holds
        ``2 d · interaction_factor`` pairs and fits at most one regressor per that many pairs.
    n_designs : int
        Base designs of a pass once the refit runs (default 8): one fit each per row.
    """

    method = "oddkernelshap"

    def __init__(
        self,
        *,
        max_evals: int = 20_000,
        tol: float | None = None,
        coalitions_per_block: int | None = None,
        interaction_factor: int = 8,
        n_designs: int = 8,
        random_state: Any = None,
        batch_rows: int = 65_536,
        n_jobs: int = 1,
        revision: Revision = 2,
    ) -> None:
        super().__init__(
            max_evals=max_evals,
            tol=tol,
            coalitions_per_block=coalitions_per_block,
            random_state=random_state,
            batch_rows=batch_rows,
            n_jobs=n_jobs,
            revision=revision,
        )
        self.interaction_factor = interaction_factor
        self.n_designs = n_designs

    def validate_params(self) -> None:
        super().validate_params()
        check_int("interaction_factor", self.interaction_factor)
        check_int("n_designs", self.n_designs)

    def design_key(self) -> tuple[object, ...]:
        return (*super().design_key(), self.interaction_factor, self.n_designs)

    def _kernel_blocks(
        self,
        n_units: int,
        rows: int,
        baselines: np.ndarray,
        cycles: int,
        n_background: int,
        rng: np.random.Generator,
    ) -> BlockDesign:
        # The refit needs a whole pass, room for at least d triples beside the singletons, and
        # every triple as a candidate: at d = 100 (triples among 30 units) it did not pay off
        # (depth-5 XGBoost, 16 passes: 0.88% against KernelSHAP's 0.68%; 64: 0.33% / 0.34%).
        if (
            cycles < 1
            or not 3 <= n_units <= _MAX_UNITS
            or rows // 2 < 2 * n_units * self.interaction_factor
        ):
            return super()._kernel_blocks(n_units, rows, baselines, cycles, n_background, rng)
        design = kernel_design(
            n_units,
            rows,
            baselines,
            cycles,
            n_background,
            rng,
            n_base=self.n_designs,
            relabel=False,
        )
        if design.weights is None:  # every coalition enumerated: exact already
            return design
        return replace(design, refit=OddRefit(design, self.interaction_factor))
