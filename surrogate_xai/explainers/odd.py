"""OddKernelSHAP: KernelSHAP blocks refitted on the odd part of the game with 3-way terms.

The Shapley value depends only on the odd part of a game, ``(v(S) − v(S̄)) / 2``, and paired
coalitions isolate it (Fumagalli et al. 2026, OddSHAP, arXiv 2602.01399). In the Fourier basis
``χ_T(S) = Π_{j ∈ T} (1 − 2·1[j ∈ S])`` the odd part is ``Σ_{|T| odd} β_T χ_T(S)`` and
``φ_i = −2 Σ_{T ∋ i} β_T / |T|``. KernelSHAP's paired regression fits the singletons only, so
it is exact up to pairwise interactions and every 3-way interaction is noise to it. Once a
block holds enough coalition pairs for every 3-way term (``interaction_factor`` pairs per
regressor, ``d + C(d, 3)`` regressors) this estimator fits them too:

1. The blocks of a whole pass over the background use ``n_designs`` base designs (no
   relabelling), and the blocks of each base design are averaged first: the average of
   single-baseline games that share coalitions is itself a game, and the regression is linear,
   so fitting the average equals averaging the per-block fits (one fit per base design, its
   map computed once per design).
2. Singletons plus every triple are fitted by efficiency-constrained weighted least squares on
   the pair differences, with the Shapley-kernel weights; the standard error is the HC3
   sandwich with the sampled pairs as units (enumerated pairs are fixed by the design).

The estimate is exact for games with interactions up to order 4 (pair differences cancel the
even orders), which covers tree ensembles of depth <= 4, and linear in the model's outputs.
Below that budget (or below one pass) it is :class:`KernelSHAP`, bit for bit. At d = 10 the
refit starts at 26 passes' worth of ``2d`` rows per background row; at d >= 14 it needs more
than 64 (docs/method.md: fitting only the triples among the units with the largest KernelSHAP
variance did not pay off).
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from math import comb
from typing import Any

import numpy as np

from ._base import _positive_int
from ._design import BlockDesign, kernel_design
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


class OddRefit:
    """The 3-way odd regression of :class:`OddKernelSHAP` for one design.

    Every map is fixed by the design's coalitions and weights, so it is computed once per
    design; per explained row the engine hands over the block outputs and only matrix products
    remain (the estimate is linear in the model's outputs, as KernelSHAP's).
    """

    def __init__(self, design: BlockDesign) -> None:
        if design.layout is None or design.weights is None:
            raise ValueError("OddRefit needs a regression design with base designs")
        self.groups = design.layout.base
        masks = design.masks
        d = masks.shape[2]
        triples = np.array(list(combinations(range(d), 3)), dtype=np.intp).reshape(-1, 3)
        # phi = L beta: a singleton's coefficient is its unit's, a triple's is split in three.
        L = np.zeros((d, d + len(triples)))
        L[np.arange(d), np.arange(d)] = -2.0
        for t, T in enumerate(triples):
            L[T, d + t] = -2.0 / 3.0
        comp = _complements(masks)
        rows = np.arange(masks.shape[1])
        self.first, self.second, self.sampled = [], [], []
        self.X, self.LB, self.La, self.B, self.a, self.scale = [], [], [], [], [], []
        for g in range(masks.shape[0]):
            keep = rows < comp[g]  # each pair once
            first, second = rows[keep], comp[g][keep]
            # A pair is a sampling unit only where its rows were sampled, not enumerated.
            self.sampled.append((first >= design.sampled_from) & (second >= design.sampled_from))
            chi = 1.0 - 2.0 * masks[g, first].astype(np.float64)  # (P, d)
            X = np.concatenate(
                [chi, chi[:, triples[:, 0]] * chi[:, triples[:, 1]] * chi[:, triples[:, 2]]], 1
            )
            w = design.weights[g, first] + design.weights[g, second]
            K = X.shape[1]
            XtW = X.T * w
            kkt = np.zeros((K + 1, K + 1))
            kkt[:K, :K] = XtW @ X
            kkt[:K, K] = kkt[K, :K] = 1.0
            inv = np.linalg.pinv(kkt, hermitian=True)
            B = inv[:K, :K] @ XtW  # (K, P)
            leverage = np.einsum("pk,kp->p", X, B)
            self.first.append(first)
            self.second.append(second)
            self.X.append(X)
            self.B.append(B)
            self.a.append(inv[:K, K])
            self.LB.append(L @ B)
            self.La.append(L @ inv[:K, K])
            self.scale.append(1.0 / np.maximum(1.0 - leverage, 1e-3))

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
        groups, n_base = self.groups, len(self.X)
        W = np.bincount(groups, weights, minlength=n_base)
        ybar = np.zeros((n_base, *y.shape[1:]))
        dbar = np.zeros((n_base, delta.shape[1]))
        np.add.at(ybar, groups, weights[:, None, None] * y)
        np.add.at(dbar, groups, weights[:, None] * delta)
        used = W > 0
        ybar[used] /= W[used, None, None]
        dbar[used] /= W[used, None]
        share = W / W.sum()
        values = np.zeros((self.LB[0].shape[0], y.shape[2]))
        var = np.zeros_like(values)
        for g in np.flatnonzero(used):
            a, b = self.first[g], self.second[g]
            t = 0.5 * (ybar[g, a] - ybar[g, b])  # the odd part at each pair, (P, outputs)
            c = -0.5 * dbar[g]  # Σ_odd β_T = −(f(x) − f(b)) / 2, as χ_T(N) = −1 for odd T
            beta = self.B[g] @ t + self.a[g][:, None] * c[None, :]
            values += share[g] * (self.LB[g] @ t + self.La[g][:, None] * c[None, :])
            # HC3 sandwich, the sampled pairs as units.
            resid = (t - self.X[g] @ beta) * self.scale[g][:, None]
            s = self.sampled[g]
            var += share[g] ** 2 * ((self.LB[g][:, s] ** 2) @ (resid[s] ** 2))
        return values, np.sqrt(var)


class OddKernelSHAP(KernelSHAP):
    """Sampled interventional Shapley values: KernelSHAP plus fitted 3-way odd interactions.

    Below one pass over the background, or while a block's coalition pairs cannot carry every
    3-way term, this is :class:`KernelSHAP` (the same numbers for the same seed). Above, the
    blocks of a pass share ``n_designs`` base designs and each design's averaged game is
    refitted with every 3-way odd Fourier term (module docstring): exact for games with
    interactions up to order 4. Standard errors come from the refit's sandwich.

    Parameters
    ----------
    max_evals, tol, coalitions_per_block, random_state, batch_rows, n_jobs
        As for :class:`KernelSHAP`; ``tol`` stops at the KernelSHAP estimate (no refit).
    interaction_factor : int
        Coalition pairs per regressor the refit needs (default 2): it runs once a block holds
        ``(d + C(d, 3)) · interaction_factor`` pairs.
    n_designs : int
        Base designs of a pass once the refit runs (default 16): one solve each per design.
    """

    method = "oddkernelshap"

    def __init__(
        self,
        *,
        max_evals: int = 20_000,
        tol: float | None = None,
        coalitions_per_block: int | None = None,
        interaction_factor: int = 2,
        n_designs: int = 16,
        random_state: Any = None,
        batch_rows: int = 65_536,
        n_jobs: int = 1,
    ) -> None:
        super().__init__(
            max_evals=max_evals,
            tol=tol,
            coalitions_per_block=coalitions_per_block,
            random_state=random_state,
            batch_rows=batch_rows,
            n_jobs=n_jobs,
        )
        self.interaction_factor = interaction_factor
        self.n_designs = n_designs

    def _validate_params(self) -> None:
        super()._validate_params()
        _positive_int("interaction_factor", self.interaction_factor)
        _positive_int("n_designs", self.n_designs)

    def _design_key(self) -> tuple[object, ...]:
        return (*super()._design_key(), self.interaction_factor, self.n_designs)

    def _kernel_blocks(
        self,
        n_units: int,
        rows: int,
        baselines: np.ndarray,
        cycles: int,
        n_background: int,
        rng: np.random.Generator,
    ) -> BlockDesign:
        wanted = (n_units + comb(n_units, 3)) * self.interaction_factor  # pairs per block
        if cycles < 1 or n_units < 3 or rows // 2 < wanted:
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
        return replace(design, refit=OddRefit(design))
