"""What every Shapley explainer shares: parameters, ``fit``, ``explain``, the result.

Conventions follow scikit-learn: the constructor only stores keyword parameters; ``fit`` checks
them, binds a model and a background, and sets trailing-underscore attributes; ``explain`` never
changes the explainer, so one fitted explainer can serve many calls (and threads).
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .._random import resolve_seed, stream
from ..background import Background
from ..exceptions import ConfigurationError, ModelError, NotFittedError
from ..explanation import Diagnostics, Explanation, Provenance
from ..model import Model
from ..provenance import package_versions, utc_now
from ..tabular import Codebook, TabularSchema, as_frame, resolve_groups
from ._design import BlockDesign
from ._engine import Problem, RowResult, explain_row


class BaseExplainer:
    """Parameter handling shared by all explainers (sklearn's ``get_params`` convention)."""

    method: ClassVar[str] = "base"

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self) -> dict[str, Any]:
        """Every constructor parameter with its current value (defaults included)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters (checked at the next ``fit``); returns ``self``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ConfigurationError(
                    f"{type(self).__name__} has no parameter {name!r}; parameters: {valid}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if sig.parameters[k].default is inspect.Parameter.empty
            or v != sig.parameters[k].default
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(model, background) first"
            )


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class ShapleyExplainer(BaseExplainer):
    """Base of the estimators of the interventional game ``v(S) = Σ_b w_b f(x_S, b_S̄)``.

    Subclasses choose the design (:meth:`_design`); evaluation, aggregation, standard errors
    and the result are common.
    """

    #: Rows built and evaluated at once for one explained row (memory cap and round size).
    batch_rows: int
    #: Explained rows processed concurrently on threads (the model must be thread-safe).
    n_jobs: int

    def fit(
        self,
        model: Model,
        background: pd.DataFrame | np.ndarray | Background,
        feature_groups: Mapping[str, Sequence[str]] | None = None,
    ) -> ShapleyExplainer:
        """Bind ``model`` and ``background``; predicts the background once.

        Parameters
        ----------
        model : Model
        background : DataFrame, array of shape (n_background, n_features) or Background
            The reference population; all rows are used (summarise it explicitly with
            ``Background.sample`` or ``Background.kmeans`` if it is too large).
        feature_groups : mapping of str to list of str, optional
            One attribution per group; columns in no group are attributed on their own.
        """
        self._validate_params()
        if not isinstance(model, Model):
            raise ConfigurationError(
                f"model must implement the Model protocol (predict, feature_names, ...); "
                f"got {type(model).__name__}. Wrap a callable in FunctionModel."
            )
        bg = background if isinstance(background, Background) else Background(background)
        bg = bg.with_columns(model.feature_names)
        schema = TabularSchema.infer(model, bg.data)
        frame = schema.check(bg.data, "the background")
        units, unit_index = resolve_groups(schema.columns, feature_groups)
        self._check_units(len(units))
        codebook = Codebook(schema, [frame])
        before = model.n_evaluations
        try:
            f_bg = model.predict(codebook.decode(codebook.encode(frame)))
        except ModelError as exc:
            raise type(exc)(f"while predicting the background: {exc}") from exc
        self.model_ = model
        self.background_ = bg
        self.schema_ = schema
        self.feature_names_ = units
        self.unit_index_ = unit_index
        self.feature_groups_ = {
            u: [c for c, i in zip(schema.columns, unit_index, strict=True) if i == j]
            for j, u in enumerate(units)
        }
        self.background_predictions_ = f_bg
        self.base_values_ = bg.weights @ f_bg
        self.background_evaluations_ = model.n_evaluations - before
        return self

    # -- hooks -------------------------------------------------------------------------------
    def _validate_params(self) -> None:
        _positive_int("batch_rows", self.batch_rows)
        _positive_int("n_jobs", self.n_jobs)

    def _check_units(self, n_units: int) -> None:
        """Refuse problem sizes the method cannot handle."""

    def _design(self, n_units: int, n_background: int, seed: int | None) -> BlockDesign:
        raise NotImplementedError

    def _tolerance(self) -> float | None:
        return None

    def _seed(self) -> int | None:
        return None

    def _design_key(self) -> tuple[Any, ...]:
        """The parameters the design depends on (besides sizes and seed)."""
        return ()

    # -- explaining --------------------------------------------------------------------------
    def _prepare(self, X: pd.DataFrame | np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, Codebook]:
        """Checked rows to explain, the background in the model's columns, and their codebook."""
        self._check_fitted()
        frame = self.schema_.check(as_frame(X, self.model_.feature_names), "X")
        bg_frame = self.background_.data.loc[:, list(self.schema_.columns)]
        return frame, bg_frame, Codebook(self.schema_, [bg_frame, frame])

    def explain(self, X: pd.DataFrame | np.ndarray) -> Explanation:
        """Explain the rows of ``X`` (shape ``(n_samples, n_features)``, raw feature space)."""
        return self._explain(X, 0)

    def _explain(self, X: pd.DataFrame | np.ndarray, row_offset: int) -> Explanation:
        """``explain``, with errors naming row ``row_offset + i`` for row ``i`` of ``X``.

        ``explain_batch`` explains a batch in partitions; the offset makes an error raised in
        a partition name the row's position in the whole batch.
        """
        frame, bg_frame, codebook = self._prepare(X)
        model = self.model_
        # A model may take its rows in a narrower type (an ONNX graph with a float32 input):
        # building them in that type halves the memory traffic and changes no value the
        # model sees.
        dtype = np.dtype(getattr(model, "input_dtype", np.float64))
        X_enc = codebook.encode(frame).astype(dtype, copy=False)
        seed = self._seed()
        design = _cached_design(self, len(self.feature_names_), len(self.background_), seed)

        def predict(rows: np.ndarray) -> np.ndarray:
            return model.predict(codebook.decode(rows))

        problem = Problem(
            predict=predict,
            background=codebook.encode(bg_frame).astype(dtype, copy=False),
            f_background=self.background_predictions_,
            weights=self.background_.weights,
            base_value=self.base_values_,
            unit_index=self.unit_index_,
            n_units=len(self.feature_names_),
        )
        per_round = max(1, self.batch_rows // max(design.rows_per_block, 1))
        tol = self._tolerance()

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
        return self._build(frame, results, design, seed)

    def _build(
        self, frame: pd.DataFrame, results: list[Any], design: BlockDesign, seed: int | None
    ) -> Explanation:
        values = np.stack([r.values for r in results])
        stderr = np.stack([r.stderr for r in results])
        f_x = np.stack([r.f_x for r in results])
        base = np.broadcast_to(self.base_values_, f_x.shape)
        gap = np.abs(values.sum(axis=1) - (f_x - base))
        diagnostics = Diagnostics(
            model_evaluations=np.array([r.evaluations for r in results]),
            background_evaluations=self.background_evaluations_,
            converged=np.array([r.converged for r in results]),
            efficiency_gap=gap,
            predictions=f_x,
            blocks=np.array([r.blocks_used for r in results]),
            exact=design.exact,
            # Sampled values have a standard error of 0 only where they are exact by
            # construction; these are the units, per row.
            extra={"exact_units": [_names(self.feature_names_, r.exact_units) for r in results]},
        )
        provenance = Provenance(
            method=self.method,
            parameters=_jsonable(self.get_params()),
            seed=seed,
            model=self.model_.describe(),
            background=self.background_.describe(),
            feature_groups=self.feature_groups_,
            design={
                "blocks": design.n_blocks,
                "rows_per_block": design.rows_per_block,
                "background_passes": design.cycles,
                "exact": design.exact,
            },
            versions=package_versions(),
            created_at=utc_now(),
        )
        return Explanation(
            values=values,
            base_values=base,
            stderr=stderr,
            data=frame,
            feature_names=self.feature_names_,
            output_names=self.model_.output_names,
            diagnostics=diagnostics,
            provenance=provenance,
        )


_DESIGNS: OrderedDict[tuple[Any, ...], BlockDesign] = OrderedDict()
_DESIGNS_LOCK = threading.Lock()
_DESIGNS_KEPT = 2  # designs can be tens of MB; keep the last few for repeated calls


def _cached_design(
    explainer: ShapleyExplainer, n_units: int, n_background: int, seed: int | None
) -> BlockDesign:
    """The design for these sizes and seed, built once and shared by repeated calls.

    A design is a pure function of the method, its design parameters, the sizes and the seed,
    and is never written to, so sharing it cannot change a result.
    """
    key = (type(explainer), explainer._design_key(), n_units, n_background, seed)
    with _DESIGNS_LOCK:
        hit = _DESIGNS.get(key)
        if hit is not None:
            _DESIGNS.move_to_end(key)
            return hit
    # Many small solves: BLAS threads only add contention (measured: 0.03 s alone, up to 0.2 s
    # with two threads on a busy core).
    with threadpool_limits(limits=1, user_api="blas"):
        design = explainer._design(n_units, n_background, seed)
    with _DESIGNS_LOCK:
        _DESIGNS[key] = design
        while len(_DESIGNS) > _DESIGNS_KEPT:
            _DESIGNS.popitem(last=False)
    return design


def _names(names: list[str], mask: np.ndarray | None) -> list[str]:
    return [] if mask is None else [n for n, m in zip(names, mask, strict=True) if m]


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, np.random.Generator):
            out[k] = "numpy.random.Generator"
        elif isinstance(v, np.integer | np.floating):
            out[k] = v.item()
        elif isinstance(v, int) and abs(v) > 2**53:
            out[k] = str(v)
        else:
            out[k] = v
    return out


class SampledShapleyExplainer(ShapleyExplainer):
    """Shared parameters of the sampling estimators: budget, tolerance, seed."""

    max_evals: int
    tol: float | None
    random_state: Any

    def _validate_params(self) -> None:
        super()._validate_params()
        _positive_int("max_evals", self.max_evals, minimum=3)
        if self.tol is not None and not (isinstance(self.tol, int | float) and self.tol > 0):
            raise ConfigurationError(f"tol must be a positive number or None, got {self.tol!r}")
        if not (self.random_state is None or isinstance(self.random_state, np.random.Generator)):
            resolve_seed(self.random_state)  # raises on a malformed seed

    def _tolerance(self) -> float | None:
        return None if self.tol is None else float(self.tol)

    def _seed(self) -> int | None:
        # Derived inside each call: a Generator is advanced once per call, an int reused.
        return resolve_seed(self.random_state)

    @staticmethod
    def _rng(seed: int | None, purpose: int) -> np.random.Generator:
        if seed is None:
            raise ConfigurationError("a sampled design needs a seed")
        return stream(seed, purpose)
