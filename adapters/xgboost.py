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
from ..parity import OutputKind, ParityReport, require_parity

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


def _sample_frame(X_sample: pd.DataFrame | np.ndarray, names: list[str] | None) -> pd.DataFrame:
    """``X_sample`` as a float DataFrame in the model's column order."""
    if isinstance(X_sample, pd.DataFrame):
        names = names or [str(c) for c in X_sample.columns]
        missing = [c for c in names if c not in X_sample.columns]
        if missing:
            raise ConfigurationError(f"X_sample lacks the model's column(s) {missing}")
        frame = X_sample.loc[:, names]
    else:
        arr = np.asarray(X_sample)
        if arr.ndim != 2:
            raise ConfigurationError(f"X_sample must be 2-D, got shape {arr.shape}")
        frame = pd.DataFrame(arr, columns=names or [f"x{j}" for j in range(arr.shape[1])])
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise ConfigurationError(
            f"column(s) {text} are not numeric; XGBoost's ONNX graph takes one float tensor"
        )
    if len(frame) == 0:
        raise ConfigurationError("X_sample has no rows to check the export on")
    return frame


def to_onnx(
    estimator: Any,
    X_sample: pd.DataFrame | np.ndarray,
    output: Literal["probability", "prediction"] | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    max_flips: int = 0,
    target_opset: int = 15,
) -> tuple[ONNXModel, ParityReport]:
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
        Tensor input, ``feature_names`` from the model (or ``X_sample``), ``model.parity``
        set to the report.
    report : ParityReport

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
    kind = output or ("probability" if classifier else "prediction")
    if kind != ("probability" if classifier else "prediction"):
        raise ConfigurationError(
            f"output={kind!r} does not fit a {type(estimator).__name__}: classifiers explain "
            "'probability', regressors 'prediction'"
        )
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
    frame = _sample_frame(X_sample, names)

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
    model = ONNXModel(
        proto.SerializeToString(),
        output="probability" if classifier else None,
        feature_names=list(frame.columns),
        allow_missing=bool(frame.isna().to_numpy().any()),
    )
    native = estimator.predict_proba if classifier else estimator.predict
    output_kind: OutputKind = "probability" if classifier else "regression"
    report = require_parity(
        native, model, frame, output_kind=output_kind, atol=atol, rtol=rtol, max_flips=max_flips
    )
    return model, report
