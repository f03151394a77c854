"""XGBoost models to ONNX with onnxmltools, behind a parity gate.

Needs the ``xgboost`` extra: ``pip install 'surrogate-xai[xgboost]'``. Importing this module
never imports xgboost; :func:`to_onnx` does.

Traps handled here:

* A model fitted on a DataFrame carries its column names in the booster, and onnxmltools
  refuses any feature name that is not ``f0, f1, ...``. The export converts a copy whose
  booster has no feature names; the user's model is not touched. The names come back as
  the ONNXModel's ``feature_names``.
* Native categorical splits (``enable_categorical=True``) cannot be converted; they are
  refused up front instead of failing deep in the converter.
* onnxmltools supports opsets up to 15.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..onnx_model import ONNXModel
from ._boosting import check_output, gated_model, sample_frame

_EXTRA = "pip install 'surrogate-xai[xgboost]'"


def _modules() -> tuple[Any, Any, Any]:
    try:
        import onnxmltools
        import xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as exc:
        raise ImportError(
            f"exporting XGBoost models needs xgboost and onnxmltools: {_EXTRA}"
        ) from exc
    return xgboost, onnxmltools, FloatTensorType


def to_onnx(
    estimator: Any,
    X_sample: pd.DataFrame | np.ndarray,
    output: Literal["probability", "prediction"] | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    max_flips: int = 0,
    target_opset: int = 15,
) -> ONNXModel:
    """Export a fitted ``XGBClassifier`` / ``XGBRegressor`` and prove it equal on ``X_sample``.

    Parameters
    ----------
    estimator : xgboost.XGBClassifier or xgboost.XGBRegressor
        Fitted, on a DataFrame with any column names or on an array.
    X_sample : DataFrame or array of shape (n_samples, n_features)
        Real rows to check the export on. A DataFrame must hold the model's columns (it is
        reordered to the training order). NaN in it lets the model accept missing values.
    output : {"probability", "prediction"}, optional
        Class probabilities (default for classifiers) or the regression prediction
        (default for regressors).
    atol, rtol, max_flips :
        Parity tolerances, see :func:`~surrogate_xai.check_parity`.
    target_opset : int
        ONNX opset; onnxmltools supports up to 15.

    Returns
    -------
    model : ONNXModel
        Tensor input, ``feature_names`` from the model (or ``X_sample``); the names, the
        output and the parity report are in the file's metadata, so a saved
        ``model.model_bytes`` reloads with ``ONNXModel(path)`` and knows its columns.

    Raises
    ------
    ParityError
        If the graph differs from ``estimator`` on ``X_sample`` beyond tolerance.
    ConfigurationError
        For native categorical features or an unsupported model.
    ImportError
        Without the ``xgboost`` extra.
    """
    xgboost, onnxmltools, FloatTensorType = _modules()
    if not isinstance(estimator, xgboost.XGBClassifier | xgboost.XGBRegressor):
        raise ConfigurationError(
            f"expected a fitted XGBClassifier or XGBRegressor, got {type(estimator).__name__} "
            "(wrap a raw Booster in the scikit-learn API)"
        )
    classifier = isinstance(estimator, xgboost.XGBClassifier)
    check_output(estimator, classifier, output)
    booster = estimator.get_booster()
    if "c" in (booster.feature_types or []):
        categorical = [
            n
            for n, t in zip(booster.feature_names or [], booster.feature_types, strict=False)
            if t == "c"
        ]
        raise ConfigurationError(
            f"XGBoost native categorical features {categorical} cannot be converted to ONNX; "
            "encode them as numbers (ordinal or one-hot) before fitting"
        )
    names = list(booster.feature_names) if booster.feature_names else None
    frame = sample_frame(X_sample, names, "encode categories as numbers before fitting")

    # onnxmltools reads feature indices from the names in the tree dump ("f3" -> 3).
    anonymous = booster.copy()
    anonymous.feature_names = None
    anonymous.feature_types = None
    exportable = copy.copy(estimator)
    exportable._Booster = anonymous
    proto = onnxmltools.convert_xgboost(
        exportable,
        initial_types=[("input", FloatTensorType([None, frame.shape[1]]))],
        target_opset=target_opset,
    )
    return gated_model(
        proto.SerializeToString(),
        frame,
        classifier,
        estimator.predict_proba if classifier else estimator.predict,
        atol=atol,
        rtol=rtol,
        max_flips=max_flips,
        converter=f"onnxmltools {onnxmltools.__version__} (xgboost {xgboost.__version__})",
    )
