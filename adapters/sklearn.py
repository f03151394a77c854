"""scikit-learn estimators and pipelines to ONNX with skl2onnx, behind a parity gate.

Needs the ``sklearn`` extra: ``pip install 'surrogate-xai[sklearn]'``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..onnx_model import ONNXModel
from ..parity import ParityReport, check_parity


def _skl2onnx() -> Any:
    try:
        import skl2onnx
        from skl2onnx.common import data_types
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "exporting scikit-learn models needs skl2onnx: pip install 'surrogate-xai[sklearn]'"
        ) from exc
    return skl2onnx, data_types


def input_types(X: pd.DataFrame) -> list[tuple[str, Any]]:
    """One ONNX input per raw column: text as string tensors, numbers as float tensors.

    Integer columns are declared as floats: skl2onnx fails on int64 inputs feeding imputers,
    and ONNXModel casts them for the graph.
    """
    _, types = _skl2onnx()
    out = []
    for col in X.columns:
        numeric = pd.api.types.is_numeric_dtype(X[col]) and not pd.api.types.is_bool_dtype(X[col])
        out.append(
            (
                str(col),
                types.FloatTensorType([None, 1]) if numeric else types.StringTensorType([None, 1]),
            )
        )
    return out


def to_onnx(
    estimator: Any,
    X_sample: pd.DataFrame,
    output: Literal["probability", "prediction"] | None = None,
    *,
    atol: float = 1e-4,
    target_opset: int = 17,
) -> tuple[ONNXModel, ParityReport]:
    """Export a fitted estimator or Pipeline and prove it equal on ``X_sample``.

    The graph takes one input per column of ``X_sample`` (ZipMap off, so probabilities are a
    tensor). The export is checked against the estimator on ``X_sample`` and
    :class:`~surrogate_xai.exceptions.ParityError` is raised beyond ``atol`` or on any
    decision flip.

    Returns
    -------
    model : ONNXModel
    report : ParityReport
    """
    skl2onnx, _ = _skl2onnx()
    if not isinstance(X_sample, pd.DataFrame):
        raise ConfigurationError("X_sample must be a DataFrame with the estimator's raw columns")
    classifier = hasattr(estimator, "predict_proba")
    kind = output or ("probability" if classifier else "prediction")
    if kind == "probability" and not classifier:
        raise ConfigurationError("output='probability' needs an estimator with predict_proba")
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}} if classifier else None
    proto = skl2onnx.to_onnx(
        estimator, initial_types=input_types(X_sample), options=options, target_opset=target_opset
    )
    model = ONNXModel(
        proto.SerializeToString(), output="probability" if kind == "probability" else None
    )
    frame = X_sample.copy()
    for col in frame.columns:
        if not (
            pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col])
        ):
            frame[col] = frame[col].astype(str).astype(object)

    def native(rows: pd.DataFrame) -> np.ndarray:
        if kind == "probability":
            return np.asarray(estimator.predict_proba(rows))
        return np.asarray(estimator.predict(rows))

    report = check_parity(native, model, frame, atol=atol, raise_on_failure=True)
    model.parity = report.to_dict()
    return model, report
