"""A thin backend over ``shap.KernelExplainer`` for users who must reproduce shap's numbers."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._random import resolve_seed
from ..background import Background
from ..exceptions import ConfigurationError
from ..explanation import Explanation
from ..model import Model
from ._base import ShapleyExplainer
from ._design import BlockDesign
from ._engine import RowResult


class ShapKernel(ShapleyExplainer):
    """shap's KernelExplainer on the same model, background and game, as an Explanation.

    L1 regularisation is off (shap's default ``num_features(10)`` keeps only ten non-zero
    values). shap draws its coalitions from the *global* NumPy RNG, so this backend seeds it
    with ``random_state`` for the call and restores its previous state afterwards: the
    numbers match ``np.random.seed(seed); KernelExplainer(...).shap_values(X, l1_reg=False)``.
    Unlike the native estimators its values depend on which rows are explained together, and
    it reports no standard errors (``stderr`` is NaN).

    Parameters
    ----------
    nsamples : "auto" or int
        Coalitions per explained row (shap's ``nsamples``); each costs one model row per
        background row.
    random_state : int, numpy Generator or None
    """

    method = "shap-kernel"

    def __init__(
        self, *, nsamples: int | Literal["auto"] = "auto", random_state: Any = None
    ) -> None:
        self.nsamples = nsamples
        self.random_state = random_state

    def _validate_params(self) -> None:
        if self.nsamples != "auto" and not (
            isinstance(self.nsamples, int)
            and not isinstance(self.nsamples, bool)
            and self.nsamples > 0
        ):
            raise ConfigurationError(
                f"nsamples must be 'auto' or a positive int, got {self.nsamples!r}"
            )
        if not (self.random_state is None or isinstance(self.random_state, np.random.Generator)):
            resolve_seed(self.random_state)

    def fit(
        self,
        model: Model,
        background: pd.DataFrame | np.ndarray | Background,
        feature_groups: Mapping[str, Sequence[str]] | None = None,
    ) -> ShapKernel:
        if feature_groups:
            raise ConfigurationError("ShapKernel does not support feature_groups; use KernelSHAP")
        super().fit(model, background)
        return self

    def _seed(self) -> int | None:
        return resolve_seed(self.random_state)

    def explain(self, X: pd.DataFrame | np.ndarray) -> Explanation:
        import shap

        frame, bg_frame, codebook = self._prepare(X)
        model = self.model_
        X_enc = codebook.encode(frame)
        seed = resolve_seed(self.random_state)

        def predict(rows: np.ndarray) -> np.ndarray:
            return model.predict(codebook.decode(np.asarray(rows, dtype=np.float64)))

        # Uniform weights are left to shap, which normalises its own vector of ones; passing
        # ours would change the last bit of the result.
        weights = () if self.background_.uniform else (self.background_.weights.copy(),)
        data = shap.utils._legacy.DenseData(
            codebook.encode(bg_frame), list(self.schema_.columns), None, *weights
        )
        # shap logs a warning about large backgrounds on every call; the size is deliberate.
        shap_log = logging.getLogger("shap")
        level = shap_log.level
        shap_log.setLevel(logging.ERROR)
        state = np.random.get_state()  # noqa: NPY002 - shap only reads the global RNG
        try:
            np.random.seed(seed % 2**32)  # noqa: NPY002
            explainer = shap.KernelExplainer(predict, data)
            results = []
            for i in range(len(X_enc)):
                before = model.n_evaluations
                raw = explainer.shap_values(
                    X_enc[i : i + 1], nsamples=self.nsamples, l1_reg=False, silent=True
                )
                values = np.asarray(raw, dtype=np.float64).reshape(
                    len(self.feature_names_), len(model.output_names)
                )
                f_x = np.asarray(explainer.fx, dtype=np.float64).reshape(-1)
                results.append(
                    RowResult(
                        values,
                        np.full_like(values, np.nan),
                        f_x,
                        model.n_evaluations - before,
                        1,
                        False,
                    )
                )
        finally:
            np.random.set_state(state)  # noqa: NPY002
            shap_log.setLevel(level)
        design = BlockDesign(
            np.zeros((1, 0, 1), bool),
            np.zeros((1, 1, 0)),
            np.zeros((1, 1)),
            np.zeros(0, np.intp),
            False,
            0,
            len(self.background_),
        )
        return self._build(frame, results, design, seed)

    def _design(self, n_units: int, n_background: int, seed: int | None) -> BlockDesign:
        raise NotImplementedError  # explain() is overridden
