"""A thin backend over ``shap.KernelExplainer`` for users who must reproduce shap's numbers."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..explanation import Explanation
from ..validation import is_int
from .base import SeededExplainer


class ShapKernel(SeededExplainer):
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
    no_groups = "KernelSHAP"

    def __init__(
        self, *, nsamples: int | Literal["auto"] = "auto", random_state: Any = None
    ) -> None:
        self.nsamples = nsamples
        self.random_state = random_state

    def validate_params(self) -> None:
        super().validate_params()
        if self.nsamples != "auto" and not (is_int(self.nsamples) and self.nsamples > 0):
            raise ConfigurationError(
                f"nsamples must be 'auto' or a positive int, got {self.nsamples!r}"
            )

    def explain_rows(self, X: pd.DataFrame | np.ndarray, row_offset: int) -> Explanation:
        """Explain the rows of ``X`` in one shap call (``row_offset`` is not used: shap's rows
        depend on each other, so this backend is never explained in partitions)."""
        import shap

        frame, bg_frame, codebook = self.prepare(X)
        model = self.model_
        X_enc = codebook.encode(frame)
        seed = self.call_seed()

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
            k, d = len(model.output_names), len(self.feature_names_)
            values = np.zeros((len(X_enc), d, k))
            f_x = np.zeros((len(X_enc), k))
            evaluations = np.zeros(len(X_enc), dtype=np.int64)
            for i in range(len(X_enc)):
                before = model.n_evaluations
                raw = explainer.shap_values(
                    X_enc[i : i + 1], nsamples=self.nsamples, l1_reg=False, silent=True
                )
                values[i] = np.asarray(raw, dtype=np.float64).reshape(d, k)
                f_x[i] = np.asarray(explainer.fx, dtype=np.float64).reshape(-1)
                evaluations[i] = model.n_evaluations - before
        finally:
            np.random.set_state(state)  # noqa: NPY002
            shap_log.setLevel(level)
        return self.assemble(
            frame,
            values=values,
            stderr=np.full_like(values, np.nan),
            base_values=np.broadcast_to(self.base_values_, f_x.shape),
            predictions=f_x,
            model_evaluations=evaluations,
            converged=np.zeros(len(values), dtype=bool),
            blocks=np.ones(len(values), dtype=np.int64),
            exact=False,
            seed=seed,
            design={
                "blocks": 1,
                "rows_per_block": 0,
                "background_passes": 0,
                "exact": False,
            },
        )
