"""Shared fixtures: small real models, exported to real ONNX files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.datasets import make_linear
from tests.reliability import (  # noqa: F401  (the reliability suite's fixture and hooks)
    attack,
    pytest_runtest_logreport,
    pytest_terminal_summary,
)

#: Says at the end of a run which tests a missing system program kept from running.
pytest_plugins = ["tests.system_tools"]


def float32_frame(X: np.ndarray, prefix: str = "x") -> pd.DataFrame:
    """Data exactly representable in float32, so ONNX (float32) and numpy agree on splits."""
    X = np.asarray(X, dtype=np.float32).astype(np.float64)
    return pd.DataFrame(X, columns=[f"{prefix}{j}" for j in range(X.shape[1])])


@pytest.fixture(scope="session")
def gbm_regressor(tmp_path_factory: pytest.TempPathFactory):
    """A sklearn GradientBoostingRegressor on d=8 features, its ONNX file and data."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(11)
    X = float32_frame(rng.normal(size=(300, 8)))
    y = (
        X["x0"] * X["x1"]
        + np.sin(2 * X["x2"])
        + (X["x3"] > 0) * X["x4"]
        + 0.1 * rng.normal(size=300)
    )
    native = GradientBoostingRegressor(n_estimators=60, max_depth=4, random_state=0).fit(X, y)
    proto = to_onnx(native, initial_types=[("input", FloatTensorType([None, 8]))], target_opset=17)
    path = Path(tmp_path_factory.mktemp("onnx")) / "gbm.onnx"
    path.write_bytes(proto.SerializeToString())
    return native, path, X


@pytest.fixture(scope="session")
def credit_model(tmp_path_factory: pytest.TempPathFactory):
    """German Credit pipeline (OneHotEncoder + GBM) exported with one ONNX input per column."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from surrogate_xai.adapters.sklearn import to_onnx
    from surrogate_xai.datasets import load_german_credit

    X, y = load_german_credit()
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("t", OneHotEncoder(handle_unknown="ignore"), text)], remainder="passthrough"
                ),
            ),
            ("gbm", GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0)),
        ]
    ).fit(X, y)
    model = to_onnx(pipe, X.iloc[:200], output="probability")
    path = Path(tmp_path_factory.mktemp("credit")) / "credit.onnx"
    path.write_bytes(model.model_bytes)
    return pipe, path, X


@pytest.fixture
def linear_problem():
    problem, beta = make_linear(n_samples=60, n_features=5, random_state=3)
    model = sx.FunctionModel(
        problem.predict, feature_names=problem.feature_names, input_type="array"
    )
    return problem, beta, model
