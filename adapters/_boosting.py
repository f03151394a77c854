"""What the XGBoost and LightGBM exports share: one float tensor in, a parity gate out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..onnx_model import ONNXModel
from ..parity import OutputKind, require_parity


def check_output(
    estimator: Any, classifier: bool, output: Literal["probability", "prediction"] | None
) -> None:
    """Classifiers are explained on their probabilities, regressors on their prediction."""
    expected = "probability" if classifier else "prediction"
    if (output or expected) != expected:
        raise ConfigurationError(
            f"output={output!r} does not fit a {type(estimator).__name__}: classifiers explain "
            "'probability', regressors 'prediction'"
        )


def sample_frame(
    X_sample: pd.DataFrame | np.ndarray, names: list[str] | None, advice: str
) -> pd.DataFrame:
    """``X_sample`` as a numeric DataFrame in the model's column order.

    ``advice`` ends the error for non-numeric columns (how this framework takes categories).
    """
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
    bad = [
        c
        for c in frame.columns
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    ]
    if bad:
        raise ConfigurationError(
            f"column(s) {bad} are not numeric; the ONNX graph takes one float tensor ({advice})"
        )
    if len(frame) == 0:
        raise ConfigurationError("X_sample has no rows to check the export on")
    return frame


def gated_model(
    graph: bytes,
    frame: pd.DataFrame,
    classifier: bool,
    native: Callable[[Any], Any],
    *,
    atol: float | None,
    rtol: float | None,
    max_flips: int,
    converter: str,
) -> ONNXModel:
    """The exported graph as a self-describing ONNXModel, proven equal to ``native`` on
    ``frame``: its column names, output and parity report are in the file's metadata."""
    model = ONNXModel(
        graph,
        output="probability" if classifier else None,
        feature_names=list(frame.columns),
        allow_missing=bool(frame.isna().to_numpy().any()),
    )
    kind: OutputKind = "probability" if classifier else "regression"
    report = require_parity(
        native, model, frame, output_kind=kind, atol=atol, rtol=rtol, max_flips=max_flips
    )
    return model.with_export_metadata(report, converter=converter)
