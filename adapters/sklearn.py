"""scikit-learn estimators and pipelines to ONNX with skl2onnx, behind a parity gate.

Needs the ``sklearn`` extra: ``pip install 'surrogate-xai[sklearn]'``.

Two input layouts, chosen by the estimator, not by a flag:

* a Pipeline whose first step is a ``ColumnTransformer`` gets one ONNX input per raw
  column (text as string tensors, numbers as float tensors), so a graph with
  ``OneHotEncoder`` / ``SimpleImputer`` / ``StandardScaler`` takes the user's DataFrame as is;
* anything else (a bare estimator, a Pipeline of numeric steps) gets one float tensor of
  shape ``(n_samples, n_features)``: skl2onnx converters of plain estimators take a single
  input.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import pandas as pd

from ..exceptions import ConfigurationError
from ..onnx_model import ONNXModel
from ..parity import OutputKind, require_parity

_EXTRA = "pip install 'surrogate-xai[sklearn]'"


def _skl2onnx() -> Any:
    try:
        import skl2onnx
        from skl2onnx.common import data_types
    except ImportError as exc:
        raise ImportError(f"exporting scikit-learn models needs skl2onnx: {_EXTRA}") from exc
    return skl2onnx, data_types


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def input_types(X: pd.DataFrame) -> list[tuple[str, Any]]:
    """One ONNX input per raw column: text as string tensors, numbers as float tensors.

    Integer columns are declared as floats: skl2onnx fails on int64 inputs feeding imputers,
    and ONNXModel casts them for the graph.
    """
    _, types = _skl2onnx()
    return [
        (
            str(col),
            types.FloatTensorType([None, 1])
            if _is_numeric(X[col])
            else types.StringTensorType([None, 1]),
        )
        for col in X.columns
    ]


def _ends(estimator: Any) -> tuple[Any, Any]:
    """First and last step of a (possibly nested) Pipeline; the estimator itself otherwise."""
    first = last = estimator
    while hasattr(first, "steps"):
        first = first.steps[0][1]
    while hasattr(last, "steps"):
        last = last.steps[-1][1]
    return first, last


def _convert(skl2onnx: Any, estimator: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        # skl2onnx 1.20's HistGradientBoosting converter hands numpy bools to
        # onnx.helper.make_attribute; protobuf 6 stores them correctly and warns (protobuf 7
        # rejects them, hence the protobuf<7 pin in the extra). Nothing for the user to fix.
        warnings.filterwarnings(
            "ignore",
            message="Field onnx.AttributeProto.ints: Expected an int, got a boolean",
            category=DeprecationWarning,
        )
        return skl2onnx.to_onnx(estimator, **kwargs)


def to_onnx(
    estimator: Any,
    X_sample: pd.DataFrame,
    output: Literal["probability", "prediction"] | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    max_flips: int = 0,
    target_opset: int = 17,
) -> ONNXModel:
    """Export a fitted estimator or Pipeline and prove it equal on ``X_sample``.

    Parameters
    ----------
    estimator : fitted scikit-learn estimator or Pipeline
        A classifier with ``predict_proba`` or a regressor.
    X_sample : DataFrame of shape (n_samples, n_features)
        Real rows with the estimator's raw columns (extra columns are ignored). They define
        the graph's inputs and are the rows the export is checked on; numeric NaN in them
        lets the model accept missing values (the check proved the graph imputes them as
        the estimator does).
    output : {"probability", "prediction"}, optional
        Class probabilities (default for classifiers, ZipMap off so they are a tensor) or
        the regression prediction (default for regressors).
    atol, rtol, max_flips :
        Parity tolerances, see :func:`~surrogate_xai.check_parity`; the defaults depend on
        the output kind.
    target_opset : int
        ONNX opset of the graph.

    Returns
    -------
    model : ONNXModel
        A self-describing graph: the columns, categories, output and the parity report are
        in its ``metadata_props``, so ``model.model_bytes`` saved and reloaded with
        ``ONNXModel(path)`` knows them. ``model.parity_report`` reaches every explanation's
        provenance.

    Raises
    ------
    ParityError
        If the graph's outputs differ from the estimator's on ``X_sample`` beyond tolerance
        or any decision flips (e.g. HistGradientBoosting with native categorical features,
        which skl2onnx 1.20 converts without error but wrongly).
    ImportError
        Without the ``sklearn`` extra.
    """
    skl2onnx, types = _skl2onnx()
    from sklearn.base import is_classifier
    from sklearn.compose import ColumnTransformer

    if not isinstance(X_sample, pd.DataFrame):
        raise ConfigurationError("X_sample must be a DataFrame with the estimator's raw columns")
    if len(X_sample) == 0:
        raise ConfigurationError("X_sample has no rows to check the export on")
    classifier = is_classifier(estimator)
    kind = output or ("probability" if classifier else "prediction")
    if kind == "probability" and not hasattr(estimator, "predict_proba"):
        raise ConfigurationError("output='probability' needs an estimator with predict_proba")
    if kind == "prediction" and classifier:
        raise ConfigurationError(
            "a classifier's predicted labels are not a score to explain; use output='probability'"
        )
    if kind not in ("probability", "prediction"):
        raise ConfigurationError(f"output must be 'probability' or 'prediction', got {kind!r}")

    names = [str(c) for c in getattr(estimator, "feature_names_in_", X_sample.columns)]
    missing = [c for c in names if c not in X_sample.columns]
    if missing:
        raise ConfigurationError(f"X_sample lacks the estimator's column(s) {missing}")
    frame = X_sample.loc[:, names]
    first, final = _ends(estimator)
    column_mode = isinstance(first, ColumnTransformer)
    if column_mode:
        initial = input_types(frame)
    else:
        text = [c for c in names if not _is_numeric(frame[c])]
        if text:
            raise ConfigurationError(
                f"non-numeric column(s) {text} need a Pipeline whose first step is a "
                "ColumnTransformer (e.g. with a OneHotEncoder)"
            )
        initial = [("X", types.FloatTensorType([None, len(names)]))]

    proto = _convert(
        skl2onnx,
        estimator,
        initial_types=initial,
        options={id(final): {"zipmap": False}} if classifier else None,
        target_opset=target_opset,
    )
    numeric = [c for c in names if _is_numeric(frame[c])]
    model = ONNXModel(
        proto.SerializeToString(),
        output="probability" if kind == "probability" else None,
        feature_names=None if column_mode else names,
        allow_missing=bool(frame[numeric].isna().to_numpy().any()),
    )
    native = estimator.predict_proba if kind == "probability" else estimator.predict
    output_kind: OutputKind = "probability" if kind == "probability" else "regression"
    report = require_parity(
        native, model, frame, output_kind=output_kind, atol=atol, rtol=rtol, max_flips=max_flips
    )
    return model.with_export_metadata(report, converter=f"skl2onnx {skl2onnx.__version__}")
