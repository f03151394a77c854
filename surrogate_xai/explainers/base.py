"""What every explainer shares: parameters, binding the game, explaining, the one result.

The roles follow shapiq's split. :meth:`BaseExplainer.fit` binds the *game* — a model, a
background (the reference population) and the feature groups — and predicts the background
once; what an explainer does with the game is its own: :class:`DesignExplainer` estimates the
interventional Shapley values from a coalition design (``ExactSHAP``, ``KernelSHAP``,
``PermutationSHAP``), while local surrogates and the lime / shap backends implement
:meth:`BaseExplainer.explain_rows` directly. Every explainer builds its result with
:meth:`BaseExplainer.assemble`, so diagnostics and provenance are filled in one place.

Conventions follow scikit-learn: the constructor only stores keyword parameters; ``fit``
checks them, binds the game and sets trailing-underscore attributes; ``explain`` never changes
the explainer, so one fitted explainer can serve many calls (and threads).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from ..background import Background
from ..exceptions import ConfigurationError, ModelError, NotFittedError
from ..explanation import Diagnostics, Explanation, Provenance
from ..model import Model
from ..provenance import package_versions, utc_now
from ..seeding import resolve_seed, stream
from ..tabular import Codebook, TabularSchema, as_frame, resolve_groups


class BaseExplainer:
    """Parameters, ``fit`` (the game) and ``explain`` shared by every explainer.

    Subclasses set :attr:`method` (the name recorded in provenance and in the estimator
    registry), store their keyword parameters in ``__init__``, and implement
    :meth:`explain_rows`; :meth:`validate_params` and :meth:`check_units` are optional hooks.
    """

    #: The method's name in provenance, audit records and the registry.
    method: ClassVar[str] = "base"
    #: For a method that cannot attribute to feature groups: what to use instead (``fit``
    #: refuses ``feature_groups`` naming it).
    no_groups: ClassVar[str | None] = None

    # -- parameters (scikit-learn's get_params convention) ------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's parameters, in order."""
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self) -> dict[str, Any]:
        """Every constructor parameter with its current value (defaults included)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters (checked at the next ``fit``); returns ``self``."""
        valid = self.param_names()
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

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless :meth:`fit` has run."""
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(model, background) first"
            )

    # -- hooks -------------------------------------------------------------------------------
    def validate_params(self) -> None:
        """Refuse parameter values the method cannot use (called by ``fit``)."""

    def check_units(self, n_units: int) -> None:
        """Refuse problem sizes the method cannot handle (called by ``fit``)."""

    # -- the game ----------------------------------------------------------------------------
    def fit(
        self,
        model: Model,
        background: pd.DataFrame | np.ndarray | Background,
        feature_groups: Mapping[str, Sequence[str]] | None = None,
    ) -> Self:
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
        self.validate_params()
        if feature_groups and self.no_groups is not None:
            raise ConfigurationError(
                f"{type(self).__name__} does not support feature_groups; use {self.no_groups}"
            )
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
        self.check_units(len(units))
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

    # -- explaining --------------------------------------------------------------------------
    def explain(self, X: pd.DataFrame | np.ndarray) -> Explanation:
        """Explain the rows of ``X`` (shape ``(n_samples, n_features)``, raw feature space)."""
        return self.explain_rows(X, 0)

    def explain_rows(self, X: pd.DataFrame | np.ndarray, row_offset: int) -> Explanation:
        """:meth:`explain`, with errors naming row ``row_offset + i`` for row ``i`` of ``X``.

        ``explain_batch`` explains a batch in partitions; the offset makes an error raised in
        a partition name the row's position in the whole batch.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement explain_rows")

    def prepare(self, X: pd.DataFrame | np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, Codebook]:
        """Checked rows to explain, the background in the model's columns, and their codebook."""
        self.check_fitted()
        frame = self.schema_.check(as_frame(X, self.model_.feature_names), "X")
        bg_frame = self.background_.data.loc[:, list(self.schema_.columns)]
        return frame, bg_frame, Codebook(self.schema_, [bg_frame, frame])

    def assemble(
        self,
        frame: pd.DataFrame,
        *,
        values: np.ndarray,
        stderr: np.ndarray,
        base_values: np.ndarray,
        predictions: np.ndarray,
        model_evaluations: np.ndarray,
        converged: np.ndarray,
        blocks: np.ndarray,
        exact: bool,
        seed: int | None,
        design: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> Explanation:
        """The one place an :class:`Explanation` is built (shapes as in ``Explanation``).

        The efficiency gap is computed here for every method: how far the values are from
        adding up to ``prediction - base value``.
        """
        diagnostics = Diagnostics(
            model_evaluations=np.asarray(model_evaluations),
            background_evaluations=self.background_evaluations_,
            converged=np.asarray(converged, dtype=bool),
            efficiency_gap=np.abs(values.sum(axis=1) - (predictions - base_values)),
            predictions=predictions,
            blocks=np.asarray(blocks),
            exact=exact,
            extra=dict(extra or {}),
        )
        provenance = Provenance(
            method=self.method,
            parameters=jsonable_params(self.get_params()),
            seed=seed,
            model=self.model_.describe(),
            background=self.background_.describe(),
            feature_groups=self.feature_groups_,
            design=dict(design),
            versions=package_versions(),
            created_at=utc_now(),
        )
        return Explanation(
            values=values,
            base_values=base_values,
            stderr=stderr,
            data=frame,
            feature_names=self.feature_names_,
            output_names=self.model_.output_names,
            diagnostics=diagnostics,
            provenance=provenance,
        )


def jsonable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as provenance records them: numpy scalars as Python numbers, a Generator by
    its type (its state is not a parameter), integers beyond float precision as text."""
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


class SeededExplainer(BaseExplainer):
    """An explainer with a ``random_state``: an int (the same numbers on every call), a numpy
    Generator (advanced once per call) or None (a fresh seed per call, recorded)."""

    random_state: Any

    def validate_params(self) -> None:
        super().validate_params()
        if not (self.random_state is None or isinstance(self.random_state, np.random.Generator)):
            resolve_seed(self.random_state)  # raises on a malformed seed

    def call_seed(self) -> int:
        """The seed of one ``explain`` call, derived inside the call."""
        return resolve_seed(self.random_state)

    @staticmethod
    def rng(seed: int | None, purpose: int) -> np.random.Generator:
        """The stream ``purpose`` under ``seed`` (one stream per random choice)."""
        if seed is None:
            raise ConfigurationError("a sampled design needs a seed")
        return stream(seed, purpose)
