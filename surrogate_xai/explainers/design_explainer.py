"""Estimators of the interventional Shapley game from a coalition design.

A :class:`DesignExplainer` chooses a *design* — which coalitions are evaluated against which
background rows, and how their values become attributions (``_design.BlockDesign``) — and the
engine (``_engine.explain_row``) evaluates it row by row and aggregates values and standard
errors. ``ExactSHAP``, ``KernelSHAP`` and ``PermutationSHAP`` are designs; a new estimator is a
design plus its estimate, and one line in the registry.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..exceptions import ConfigurationError, ModelError
from ..explanation import Explanation
from ..tabular import Codebook
from ..validation import check_int, check_number, is_int
from ._design import BlockDesign
from ._engine import Problem, RowResult, explain_row
from .base import BaseExplainer, SeededExplainer


class DesignExplainer(BaseExplainer):
    """Base of the estimators that evaluate a coalition design (see the module notes).

    Subclasses implement :meth:`design`; evaluation, aggregation, standard errors and the
    result are common.
    """

    #: Rows built and evaluated at once for one explained row (memory cap and round size).
    batch_rows: int
    #: Explained rows processed concurrently on threads (the model must be thread-safe).
    n_jobs: int

    # -- hooks -------------------------------------------------------------------------------
    def validate_params(self) -> None:
        super().validate_params()
        check_int("batch_rows", self.batch_rows)
        check_int("n_jobs", self.n_jobs)

    def design(self, n_units: int, n_background: int, seed: int | None) -> BlockDesign:
        """The coalitions and estimate for these sizes and seed (a pure function of them)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement design")

    def tolerance(self) -> float | None:
        """Stop a row once every standard error is below this (None: use the whole budget)."""
        return None

    def call_seed(self) -> int | None:
        """The seed of one ``explain`` call (None for a design that draws nothing)."""
        return None

    def design_key(self) -> tuple[Any, ...]:
        """The parameters the design depends on (besides sizes and seed)."""
        return ()

    def error_model(self) -> bool:
        """Whether the engine gives honest standard errors (see ``_estimate``)."""
        return True

    # -- explaining --------------------------------------------------------------------------
    def explain_rows(self, X: pd.DataFrame | np.ndarray, row_offset: int) -> Explanation:
        frame, bg_frame, codebook = self.prepare(X)
        # A model may take its rows in a narrower type (an ONNX graph with a float32 input):
        # building them in that type halves the memory traffic and changes no value the
        # model sees.
        X_enc = codebook.encode(frame).astype(self.model_.input_dtype, copy=False)
        seed = self.call_seed()
        design = cached_design(self, len(self.feature_names_), len(self.background_), seed)
        problem = self.problem(codebook, bg_frame)
        per_round = max(1, self.batch_rows // max(design.rows_per_block, 1))
        tol = self.tolerance()

        def one(i: int) -> RowResult:
            try:
                return explain_row(X_enc[i], problem, design, per_round, tol, self.batch_rows)
            except ModelError as exc:
                raise type(exc)(f"while explaining row {row_offset + i}: {exc}") from exc

        # Rows are independent and each row's model calls hold only its own rows, so running
        # them on threads (onnxruntime releases the GIL) cannot change any value.
        if self.n_jobs == 1 or len(X_enc) == 1:
            results = [one(i) for i in range(len(X_enc))]
        else:
            with ThreadPoolExecutor(max_workers=self.n_jobs) as pool:
                results = list(pool.map(one, range(len(X_enc))))
        return self.from_rows(frame, results, design, seed)

    def problem(self, codebook: Codebook, bg_frame: pd.DataFrame) -> Problem:
        """The fixed part of one call: the model through the codebook, the background."""
        model = self.model_
        dtype = model.input_dtype

        def predict(rows: np.ndarray) -> np.ndarray:
            return model.predict(codebook.decode(rows))

        return Problem(
            predict=predict,
            background=codebook.encode(bg_frame).astype(dtype, copy=False),
            f_background=self.background_predictions_,
            weights=self.background_.weights,
            base_value=self.base_values_,
            unit_index=self.unit_index_,
            n_units=len(self.feature_names_),
        )

    def from_rows(
        self,
        frame: pd.DataFrame,
        results: list[RowResult],
        design: BlockDesign,
        seed: int | None,
        *,
        exact: bool | None = None,
        extra: dict[str, Any] | None = None,
        design_fields: dict[str, Any] | None = None,
    ) -> Explanation:
        """The explanation of rows the engine (or a subclass's own path) explained."""
        f_x = np.stack([r.f_x for r in results])
        exact = design.exact if exact is None else exact
        # Sampled values have a standard error of 0 only where they are exact by
        # construction; these are the units, per row.
        names = self.feature_names_
        exact_units = [
            []
            if r.exact_units is None
            else [n for n, m in zip(names, r.exact_units, strict=True) if m]
            for r in results
        ]
        return self.assemble(
            frame,
            values=np.stack([r.values for r in results]),
            stderr=np.stack([r.stderr for r in results]),
            base_values=np.broadcast_to(self.base_values_, f_x.shape),
            predictions=f_x,
            model_evaluations=np.array([r.evaluations for r in results]),
            converged=np.array([r.converged for r in results]),
            blocks=np.array([r.blocks_used for r in results]),
            exact=exact,
            seed=seed,
            design={
                "blocks": design.n_blocks,
                "rows_per_block": design.rows_per_block,
                "background_passes": design.cycles,
                "exact": exact,
                **(design_fields or {}),
            },
            extra={"exact_units": exact_units, **(extra or {})},
        )


_DESIGNS: OrderedDict[tuple[Any, ...], BlockDesign] = OrderedDict()
_DESIGNS_LOCK = threading.Lock()
_DESIGNS_KEPT = 2  # designs can be tens of MB; keep the last few for repeated calls


def cached_design(
    explainer: DesignExplainer, n_units: int, n_background: int, seed: int | None
) -> BlockDesign:
    """The design for these sizes and seed, built once and shared by repeated calls.

    A design is a pure function of the method, its design parameters, the sizes and the seed,
    and is never written to, so sharing it cannot change a result.
    """
    honest = explainer.error_model()
    key = (type(explainer), explainer.design_key(), honest, n_units, n_background, seed)
    with _DESIGNS_LOCK:
        hit = _DESIGNS.get(key)
        if hit is not None:
            _DESIGNS.move_to_end(key)
            return hit
    # Many small solves: BLAS threads only add contention (measured: 0.03 s alone, up to 0.2 s
    # with two threads on a busy core).
    with threadpool_limits(limits=1, user_api="blas"):
        design = explainer.design(n_units, n_background, seed)
    if design.honest_errors != honest:
        design = dataclasses.replace(design, honest_errors=honest)
    with _DESIGNS_LOCK:
        _DESIGNS[key] = design
        while len(_DESIGNS) > _DESIGNS_KEPT:
            _DESIGNS.popitem(last=False)
    return design


#: Revisions of the sampled estimators' algorithm. 1: the first release (the plain spread
#: between blocks as standard error; KernelSHAP designs of any size). 2: honest standard
#: errors (thin spreads raised and Student-t widened, exactly-zero units named) and
#: KernelSHAP designs capped in size. A record replays with the revision it was made with.
Revision = Literal[1, 2]
REVISIONS: tuple[int, ...] = (1, 2)


class SampledDesignExplainer(DesignExplainer, SeededExplainer):
    """Shared parameters of the sampling estimators: budget, tolerance, seed, and the
    algorithm's revision (:data:`REVISIONS`; the registry replays records of an earlier
    release with the revision they were made with)."""

    max_evals: int
    tol: float | None
    revision: Revision

    def validate_params(self) -> None:
        super().validate_params()
        if not is_int(self.revision) or self.revision not in REVISIONS:
            raise ConfigurationError(f"revision must be one of {REVISIONS}, got {self.revision!r}")
        check_int("max_evals", self.max_evals, minimum=3)
        if self.tol is not None and not (isinstance(self.tol, int | float) and self.tol > 0):
            raise ConfigurationError(f"tol must be a positive number or None, got {self.tol!r}")

    def tolerance(self) -> float | None:
        return None if self.tol is None else float(self.tol)

    def call_seed(self) -> int:
        # Derived inside each call: a Generator is advanced once per call, an int reused.
        return SeededExplainer.call_seed(self)

    def error_model(self) -> bool:
        return self.revision >= 2


__all__ = ["DesignExplainer", "SampledDesignExplainer", "cached_design", "check_number"]
