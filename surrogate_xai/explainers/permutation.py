"""PermutationSHAP: antithetic permutation sampling, one background row per block."""

from __future__ import annotations

from typing import Any

from ._design import BlockDesign, baseline_schedule, permutation_design, plan_blocks
from .design_explainer import Revision, SampledDesignExplainer

_BASELINES, _ORDERS = 1, 2  # stream keys


class PermutationSHAP(SampledDesignExplainer):
    """Sampled interventional Shapley values from antithetic permutations.

    A block pairs one background row with a random feature order and its reverse and walks
    both chains of prefixes, ``2 (d − 1)`` model rows per pair. The mean over orders is
    unbiased for any game and an order with its reverse is exact for games with at most
    pairwise interactions. Blocks cover the background in random order, as in
    :class:`KernelSHAP`, and the standard error comes from the spread between blocks.

    Parameters
    ----------
    max_evals : int
        Model rows evaluated per explained row, at most.
    tol : float, optional
        Stop a row early once every standard error is below ``tol``.
    random_state : int, numpy Generator or None
        Seed of the design; ``None`` draws a fresh one per call (recorded in provenance).
    batch_rows : int
        Rows built and evaluated at once per explained row.
    n_jobs : int
        Explained rows processed concurrently on threads; results do not depend on it.
    """

    method = "permutation"

    def __init__(
        self,
        *,
        max_evals: int = 20_000,
        tol: float | None = None,
        random_state: Any = None,
        batch_rows: int = 65_536,
        n_jobs: int = 1,
        revision: Revision = 2,
    ) -> None:
        self.max_evals = max_evals
        self.tol = tol
        self.random_state = random_state
        self.batch_rows = batch_rows
        self.n_jobs = n_jobs
        self.revision = revision

    def design_key(self) -> tuple[object, ...]:
        return (self.max_evals,)

    def design(self, n_units: int, n_background: int, seed: int | None) -> BlockDesign:
        per_pair = max(2 * (n_units - 1), 1)
        plan = plan_blocks(
            self.max_evals, n_background, per_pair, unit=per_pair, max_rows=None, grow=False
        )
        baselines = baseline_schedule(n_background, plan.n_blocks, self.rng(seed, _BASELINES))
        return permutation_design(
            n_units, 1, baselines, plan.cycles, n_background, self.rng(seed, _ORDERS)
        )
