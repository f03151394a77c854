"""KernelSHAP: Shapley-kernel weighted least squares, one regression per background row."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..validation import check_int
from ._design import BlockDesign, baseline_schedule, exact_design, kernel_design, plan_blocks
from .design_explainer import Revision, SampledDesignExplainer

_BASELINES, _COALITIONS = 1, 2  # stream keys


class KernelSHAP(SampledDesignExplainer):
    """Sampled interventional Shapley values by Shapley-kernel regression.

    Each *block* pairs one background row with ``coalitions_per_block`` paired coalitions
    drawn from the Shapley kernel (the smallest and largest sizes enumerated when they fit)
    and solves the efficiency-constrained weighted least squares of that row's game. Blocks
    cover the background in random order; their weighted mean estimates the game over the
    whole background. Each block's own standard error comes from its residuals (a sandwich
    estimator with coalition pairs as the sampling units); where the budget covers only part
    of the background the spread between blocks adds the background sampling. Each block is exact
    for games with at most pairwise interactions, so only higher-order interactions and the
    choice of background rows add sampling noise. When ``max_evals`` covers every coalition for
    every background row the result is exact.

    Parameters
    ----------
    max_evals : int
        Model rows evaluated per explained row, at most (the real cost unit).
    tol : float, optional
        Stop a row early once every standard error is below ``tol``.
    coalitions_per_block : int, optional
        Coalitions per block; default ``4 d``. A block's regression needs at least
        ``2 (d − 1)``, and is noisy that close to the minimum. Once the budget covers the
        background twice, spare budget enlarges blocks.
    random_state : int, numpy Generator or None
        Seed of the design. ``None`` draws a fresh seed per call (recorded in provenance).
    batch_rows : int
        Rows built and evaluated at once per explained row (memory cap; also the granularity
        at which ``tol`` is checked).
    n_jobs : int
        Explained rows processed concurrently on threads; results do not depend on it.
    revision : {1, 2}
        The algorithm's revision. 2: a unit's spread is raised toward the other units' where
        few blocks saw it and widened by Student-t, only units exact by construction report a
        standard error of 0 (``diagnostics.extra["exact_units"]``), and designs are capped in
        size. 1: the first release's (records made with it replay with it).
    """

    method = "kernelshap"

    def __init__(
        self,
        *,
        max_evals: int = 20_000,
        tol: float | None = None,
        coalitions_per_block: int | None = None,
        random_state: Any = None,
        batch_rows: int = 65_536,
        n_jobs: int = 1,
        revision: Revision = 2,
    ) -> None:
        self.max_evals = max_evals
        self.tol = tol
        self.coalitions_per_block = coalitions_per_block
        self.random_state = random_state
        self.batch_rows = batch_rows
        self.n_jobs = n_jobs
        self.revision = revision

    def validate_params(self) -> None:
        super().validate_params()
        if self.coalitions_per_block is not None:
            check_int("coalitions_per_block", self.coalitions_per_block, minimum=2)

    def design_key(self) -> tuple[object, ...]:
        return (self.max_evals, self.coalitions_per_block, self.revision)

    def design(self, n_units: int, n_background: int, seed: int | None) -> BlockDesign:
        full = 2**n_units - 2 if n_units < 62 else None
        if full is not None and n_background * full + 1 <= self.max_evals:
            return exact_design(n_units, n_background)
        wanted = self.coalitions_per_block or 4 * n_units
        wanted += wanted % 2  # coalitions come in complementary pairs
        plan = plan_blocks(self.max_evals, n_background, wanted, unit=2, max_rows=full, grow=True)
        baselines = baseline_schedule(n_background, plan.n_blocks, self.rng(seed, _BASELINES))
        return self._kernel_blocks(
            n_units,
            plan.rows_per_block,
            baselines,
            plan.cycles,
            n_background,
            self.rng(seed, _COALITIONS),
        )

    def _kernel_blocks(
        self,
        n_units: int,
        rows: int,
        baselines: np.ndarray,
        cycles: int,
        n_background: int,
        rng: np.random.Generator,
    ) -> BlockDesign:
        """The regression blocks once sizes are planned (a subclass may refit them)."""
        return kernel_design(
            n_units, rows, baselines, cycles, n_background, rng, capped=self.revision >= 2
        )
