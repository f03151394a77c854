"""A backend over ``lime.lime_tabular.LimeTabularExplainer`` for users who must reproduce lime.

lime applies its seed once, in the explainer's constructor, and every later call draws from
where the previous one stopped: the same row explained twice gets two different answers, and
a row's answer depends on the rows explained before it. This backend builds a fresh lime
explainer for every explained row, seeded with the call's seed, so a row's numbers are those
of ::

    LimeTabularExplainer(background, random_state=seed, ...).explain_instance(row, ...)

whatever else is explained in the call and in which order. lime is handed a
``numpy.random.RandomState`` of its own and so never draws from the global NumPy RNG; the
global state is saved and restored around it all the same, so that no lime code path
(present or future) can leave it changed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..background import Background
from ..exceptions import ConfigurationError, ModelError
from ..explanation import Explanation
from ..model import Model
from ..validation import check_int
from .base import SeededExplainer

_DISCRETIZERS = ("quartile", "decile", "entropy")
_SELECTIONS = ("auto", "none", "forward_selection", "lasso_path", "highest_weights")


class LIME(SeededExplainer):
    """lime's ``LimeTabularExplainer`` on the model and background, as an Explanation.

    Parameters
    ----------
    n_samples : int
        lime's ``num_samples`` (neighbourhood size, the explained row included).
    max_features : int, optional
        lime's ``num_features``; ``None`` keeps every feature.
    kernel_width : float, optional
        lime's ``kernel_width`` (default ``0.75 √d``).
    discretize_continuous : bool
    discretizer : {"quartile", "decile", "entropy"}
    sample_around_instance : bool
    feature_selection : {"auto", "none", "forward_selection", "lasso_path", "highest_weights"}
        As in lime.
    random_state : int, numpy Generator or None
        The seed of every row's lime explainer (``seed % 2**32``, as lime takes it); ``None``
        draws one per call, recorded in provenance.

    Notes
    -----
    Categorical columns are handed to lime as integer codes (sorted categories of the
    background and the explained rows), numeric columns as they are; the model always
    receives the decoded categories. ``values`` are the contributions of lime's linear model
    at the row: lime's weights (``exp.as_map()``) times the row's value in lime's
    representation, which is 1 for discretised and categorical features, so with
    ``discretize_continuous=True`` (lime's default) they are lime's weights exactly.
    ``base_values`` is lime's intercept, so values add up to lime's local prediction
    (``diagnostics.extra["local_prediction"]``) and ``efficiency_gap`` is its distance from the
    model's prediction. ``diagnostics.extra["r2"]`` is lime's ``score``. lime reports no
    standard errors (``stderr`` is NaN). Every output is explained from one neighbourhood
    (lime's ``labels``); lime's warning that the outputs are not probabilities summing to one
    is silenced, as it does not apply to scores.
    """

    method = "lime"
    no_groups = "LocalSurrogate"

    def __init__(
        self,
        *,
        n_samples: int = 5_000,
        max_features: int | None = 10,
        kernel_width: float | None = None,
        discretize_continuous: bool = True,
        discretizer: Literal["quartile", "decile", "entropy"] = "quartile",
        sample_around_instance: bool = False,
        feature_selection: Literal[
            "auto", "none", "forward_selection", "lasso_path", "highest_weights"
        ] = "auto",
        random_state: Any = None,
    ) -> None:
        self.n_samples = n_samples
        self.max_features = max_features
        self.kernel_width = kernel_width
        self.discretize_continuous = discretize_continuous
        self.discretizer = discretizer
        self.sample_around_instance = sample_around_instance
        self.feature_selection = feature_selection
        self.random_state = random_state

    def validate_params(self) -> None:
        super().validate_params()
        check_int("n_samples", self.n_samples, minimum=2)
        if self.max_features is not None:
            check_int("max_features", self.max_features)
        if self.kernel_width is not None and not (
            isinstance(self.kernel_width, int | float) and self.kernel_width > 0
        ):
            raise ConfigurationError(
                f"kernel_width must be a positive number or None, got {self.kernel_width!r}"
            )
        if self.discretizer not in _DISCRETIZERS:
            raise ConfigurationError(
                f"discretizer must be one of {_DISCRETIZERS}, got {self.discretizer!r}"
            )
        if self.feature_selection not in _SELECTIONS:
            raise ConfigurationError(
                f"feature_selection must be one of {_SELECTIONS}, got {self.feature_selection!r}"
            )

    def fit(
        self,
        model: Model,
        background: pd.DataFrame | np.ndarray | Background,
        feature_groups: Mapping[str, Sequence[str]] | None = None,
    ) -> LIME:
        """Bind ``model`` and ``background`` (lime's ``training_data``)."""
        super().fit(model, background, feature_groups)
        if not self.background_.uniform:
            raise ConfigurationError(
                "lime takes no row weights: pass the background rows themselves, not a weighted "
                "summary (e.g. Background.sample instead of Background.kmeans)"
            )
        return self

    def explain_rows(self, X: pd.DataFrame | np.ndarray, row_offset: int) -> Explanation:
        """Explain the rows of ``X`` (shape ``(n_samples, n_features)``), each with lime."""
        from lime.lime_tabular import LimeTabularExplainer

        frame, bg_frame, codebook = self.prepare(X)
        model = self.model_
        X_enc = codebook.encode(frame)
        training = codebook.encode(bg_frame)
        columns = list(self.schema_.columns)
        categorical = [j for j, c in enumerate(columns) if c in codebook.categories]
        names = {j: [str(v) for v in codebook.categories[columns[j]]] for j in categorical}
        seed = self.call_seed()
        k, d = len(model.output_names), len(columns)
        values = np.zeros((len(X_enc), d, k))
        intercept = np.zeros((len(X_enc), k))
        score = np.zeros((len(X_enc), k))
        f_x = np.zeros((len(X_enc), k))
        evaluations = np.zeros(len(X_enc), dtype=np.int64)
        state = np.random.get_state()  # noqa: NPY002 - saved only to prove lime left it alone
        try:
            for i, x in enumerate(X_enc):
                seen: list[np.ndarray] = []

                def predict(rows: np.ndarray, seen: list[np.ndarray] = seen) -> np.ndarray:
                    out = model.predict(codebook.decode(np.asarray(rows, dtype=np.float64)))
                    seen.append(out)
                    return out

                lime = LimeTabularExplainer(
                    training,
                    mode="classification",
                    feature_names=columns,
                    categorical_features=categorical,
                    categorical_names=names,
                    kernel_width=self.kernel_width,
                    discretize_continuous=self.discretize_continuous,
                    discretizer=self.discretizer,
                    sample_around_instance=self.sample_around_instance,
                    feature_selection=self.feature_selection,
                    random_state=seed % 2**32,
                )
                fits = _record_fits(lime)
                try:
                    with warnings.catch_warnings():
                        # lime warns when outputs do not sum to one; scores and single outputs
                        # are explained per output all the same.
                        warnings.filterwarnings(
                            "ignore", message=r"\s*Prediction probabilties do not sum to 1"
                        )
                        exp = lime.explain_instance(
                            x,
                            predict,
                            labels=tuple(range(k)),
                            num_features=self.max_features or d,
                            num_samples=self.n_samples,
                        )
                except ModelError as exc:
                    raise type(exc)(f"while explaining row {row_offset + i}: {exc}") from exc
                # lime's own representation of the row: 1 for binary features, the scaled value
                # for continuous features it does not discretise.
                rep = np.ones(d)
                if lime.discretizer is None:
                    scaler = lime.scaler
                    rep = (x - scaler.mean_) / scaler.scale_
                    rep[categorical] = 1.0
                for label in range(k):
                    for j, weight in exp.local_exp[label]:
                        values[i, j, label] = weight * rep[j]
                    intercept[i, label] = fits[label][0]
                    score[i, label] = fits[label][2]
                f_x[i] = seen[0][0]
                evaluations[i] = sum(len(s) for s in seen)
        finally:
            np.random.set_state(state)  # noqa: NPY002
        local = intercept + values.sum(axis=1)
        return self._assemble(frame, values, intercept, score, local, f_x, evaluations, seed)

    def _assemble(
        self,
        frame: pd.DataFrame,
        values: np.ndarray,
        intercept: np.ndarray,
        score: np.ndarray,
        local: np.ndarray,
        f_x: np.ndarray,
        evaluations: np.ndarray,
        seed: int,
    ) -> Explanation:
        return self.assemble(
            frame,
            values=values,
            stderr=np.full_like(values, np.nan),
            base_values=intercept,
            predictions=f_x,
            model_evaluations=evaluations,
            converged=np.zeros(len(values), dtype=bool),
            blocks=np.ones(len(values), dtype=np.int64),
            exact=False,
            seed=seed,
            design={"lime_random_state": seed % 2**32, "seeded": "per explained row"},
            extra={
                "r2": score.tolist(),
                "local_prediction": local.tolist(),
                "prediction_gap": (local - f_x).tolist(),
            },
        )


def _record_fits(lime: Any) -> dict[int, tuple[float, Any, float, Any]]:
    """Keep lime's per-label fit results, which ``explain_instance`` overwrites label by label.

    The recorder is an attribute of this row's own lime explainer, never of lime's class.
    """
    fits: dict[int, tuple[float, Any, float, Any]] = {}
    fit_one = lime.base.explain_instance_with_data

    def recording(
        data: Any, labels: Any, distances: Any, label: int, *args: Any, **kwargs: Any
    ) -> Any:
        result = fit_one(data, labels, distances, label, *args, **kwargs)
        fits[label] = result
        return result

    lime.base.explain_instance_with_data = recording
    return fits
