"""LightGBM models to ONNX with onnxmltools, behind a parity gate.

Needs the ``lightgbm`` extra: ``pip install 'surrogate-xai[lightgbm]'``. Importing this module
never imports lightgbm; :func:`to_onnx` does.

Traps handled here:

* onnxmltools declares the classifier's ``label`` output with a fixed batch size of 1, so
  onnxruntime logs a shape warning on every batch of more than one row (and a strict
  consumer of the file may reject it). The exported graph has that dimension made symbolic.
* onnxmltools supports opsets up to 15.
* Categorical features must be numeric codes (``categorical_feature=`` on integer-coded
  columns converts correctly); a pandas ``category`` column has no ONNX tensor equivalent
  and is refused.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..onnx_model import ONNXModel
from ._boosting import check_output, gated_model, sample_frame

_EXTRA = "pip install 'surrogate-xai[lightgbm]'"


def _modules() -> tuple[Any, Any, Any]:
    try:
        import lightgbm
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as exc:
        raise ImportError(
            f"exporting LightGBM models needs lightgbm and onnxmltools: {_EXTRA}"
        ) from exc
    return lightgbm, onnxmltools, FloatTensorType


def _free_batch_dimension(proto: Any) -> None:
    """Make a fixed leading dimension of the graph's outputs symbolic, in place."""
    for out in proto.graph.output:
        dims = out.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            dims[0].dim_param = "N"  # setting the oneof clears dim_value


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
    """Export a fitted ``LGBMClassifier`` / ``LGBMRegressor`` and prove it equal on ``X_sample``.

    Parameters
    ----------
    estimator : lightgbm.LGBMClassifier or lightgbm.LGBMRegressor
        Fitted, on a DataFrame or an array.
    X_sample : DataFrame or array of shape (n_samples, n_features)
        Real rows to check the export on. A DataFrame must hold the model's columns (it is
        reordered to the training order). NaN in it lets the model accept missing values.
    output : {"probability", "prediction"}, optional
        Class probabilities (default for classifiers, ZipMap off) or the regression
        prediction (default for regressors).
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
    ImportError
        Without the ``lightgbm`` extra.
    """
    lightgbm, onnxmltools, FloatTensorType = _modules()
    if not isinstance(estimator, lightgbm.LGBMClassifier | lightgbm.LGBMRegressor):
        raise ConfigurationError(
            f"expected a fitted LGBMClassifier or LGBMRegressor, got {type(estimator).__name__}"
        )
    classifier = isinstance(estimator, lightgbm.LGBMClassifier)
    check_output(estimator, classifier, output)
    # Names LightGBM saw at fit time; it invents Column_0, ... for arrays.
    fitted = [str(c) for c in getattr(estimator, "feature_names_in_", [])]
    frame = sample_frame(
        X_sample,
        fitted or None,
        "pass categorical features as integer codes with categorical_feature=",
    )

    proto = onnxmltools.convert_lightgbm(
        estimator,
        initial_types=[("input", FloatTensorType([None, frame.shape[1]]))],
        target_opset=target_opset,
        zipmap=False,
    )
    _free_batch_dimension(proto)
    return gated_model(
        proto.SerializeToString(),
        frame,
        classifier,
        estimator.predict_proba if classifier else estimator.predict,
        atol=atol,
        rtol=rtol,
        max_flips=max_flips,
        converter=f"onnxmltools {onnxmltools.__version__} (lightgbm {lightgbm.__version__})",
    )
