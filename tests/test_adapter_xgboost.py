"""XGBoost to ONNX: models fitted on named DataFrames, the parity gate, explanations."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pandas as pd
import pytest

from surrogate_xai.exceptions import ConfigurationError
from tests.adapter_checks import assert_same_attributions

xgboost = pytest.importorskip("xgboost")
pytest.importorskip("onnxmltools")

from surrogate_xai.adapters.xgboost import to_onnx  # noqa: E402

COLUMNS = ["age", "income", "debt", "tenure", "score"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """Named columns (the trap: onnxmltools wants f0, f1, ...) of float32-exact values."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, len(COLUMNS))).astype(np.float32).astype(np.float64)
    return pd.DataFrame(X, columns=COLUMNS)


@pytest.fixture(scope="module")
def classifier(data):
    y = ((data["age"] + data["income"] * data["debt"]) > 0).astype(int)
    return xgboost.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1, random_state=0).fit(
        data, y
    )


def test_classifier_on_named_columns_exports_and_explains(data, classifier):
    model = to_onnx(classifier, data.iloc[:200])
    report = model.parity_report
    assert model.feature_names == COLUMNS
    assert model.output_names == ["probabilities[0]", "probabilities[1]"]
    assert report.passed
    assert report.decision_flips == 0
    assert report.max_abs_diff < 1e-6
    assert model.describe()["parity"] == report.to_dict()
    # The user's model keeps its names; only the exported copy lost them.
    assert classifier.get_booster().feature_names == COLUMNS
    gap = assert_same_attributions(
        model, classifier.predict_proba, data.iloc[300:340], data.iloc[200:204]
    )
    assert gap < 1e-5


def test_column_order_and_extra_columns_of_the_sample(data, classifier):
    shuffled = data[COLUMNS[::-1]].assign(unused=0.0)
    model = to_onnx(classifier, shuffled.iloc[:100])
    report = model.parity_report
    assert model.feature_names == COLUMNS
    assert report.passed


def test_multiclass_and_missing_values(data):
    X = data.copy()
    X.loc[X.index[::9], "income"] = np.nan
    y = np.digitize(X["age"] + X["debt"], [-0.5, 0.5])
    clf = xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(X, y)
    model = to_onnx(clf, X)
    report = model.parity_report
    assert model.output_names == [f"probabilities[{k}]" for k in range(3)]
    assert model.allow_missing
    assert report.passed
    assert report.max_abs_diff < 1e-6


def test_regressor_is_checked_relative_to_its_scale(data):
    y = 1_000 + 100 * np.sin(data["debt"]) + data["age"] * data["income"]
    reg = xgboost.XGBRegressor(n_estimators=30, max_depth=4, n_jobs=1).fit(data, y)
    model = to_onnx(reg, data.to_numpy())  # an array sample takes the model's names
    report = model.parity_report
    assert model.feature_names == COLUMNS
    assert model.output_names == ["variable"]
    assert report.output_kind == "regression"
    assert report.passed
    assert report.max_rel_diff < 1e-6
    gap = assert_same_attributions(model, reg.predict, data.iloc[300:340], data.iloc[:4])
    assert gap < 1e-5


def test_native_categoricals_are_refused(data):
    X = data.assign(region=pd.Categorical(np.resize(["north", "south", "east"], len(data))))
    y = (X["age"] > 0).astype(int)
    clf = xgboost.XGBClassifier(n_estimators=3, enable_categorical=True, n_jobs=1).fit(X, y)
    with pytest.raises(ConfigurationError, match=r"categorical features \['region'\]"):
        to_onnx(clf, X)


def test_refusals(data, classifier):
    with pytest.raises(ConfigurationError, match="XGBClassifier or XGBRegressor"):
        to_onnx(classifier.get_booster(), data)
    with pytest.raises(ConfigurationError, match="output='prediction' does not fit"):
        to_onnx(classifier, data, output="prediction")
    with pytest.raises(ConfigurationError, match=r"lacks the model's column\(s\) \['debt'\]"):
        to_onnx(classifier, data.drop(columns="debt"))


@pytest.mark.parametrize("module", ["xgboost", "onnxmltools"])
def test_missing_extra_names_it(monkeypatch, data, classifier, module):
    import surrogate_xai.adapters as adapters

    monkeypatch.setitem(sys.modules, module, None)  # `import <module>` now fails
    monkeypatch.delitem(sys.modules, "surrogate_xai.adapters.xgboost")
    monkeypatch.delattr(adapters, "xgboost")
    fresh = importlib.import_module("surrogate_xai.adapters.xgboost")  # importing still works
    with pytest.raises(ImportError, match=r"pip install 'surrogate-xai\[xgboost\]'"):
        fresh.to_onnx(classifier, data)
