"""LightGBM to ONNX: the label-shape fix, the parity gate, explanations through the graph."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pandas as pd
import pytest

from surrogate_xai.exceptions import ConfigurationError
from tests.adapter_checks import assert_same_attributions

lightgbm = pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

from surrogate_xai.adapters.lightgbm import to_onnx  # noqa: E402

COLUMNS = ["age", "income", "debt", "tenure", "region"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """float32-exact numbers and an integer-coded categorical column."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame(
        rng.normal(size=(400, 4)).astype(np.float32).astype(np.float64), columns=COLUMNS[:4]
    )
    X["region"] = rng.integers(0, 6, len(X))
    return X


@pytest.fixture(scope="module")
def classifier(data):
    y = ((data["age"] + data["income"] * data["debt"] > 0) ^ data["region"].isin([1, 4])).astype(
        int
    )
    return lightgbm.LGBMClassifier(
        n_estimators=30, min_child_samples=5, n_jobs=1, verbose=-1, random_state=0
    ).fit(data, y, categorical_feature=["region"])


def test_classifier_with_a_coded_categorical_exports_and_explains(data, classifier):
    model = to_onnx(classifier, data.iloc[:200])
    report = model.parity_report
    assert model.feature_names == COLUMNS
    assert model.output_names == ["probabilities[0]", "probabilities[1]"]
    assert report.passed
    assert report.decision_flips == 0
    assert report.max_abs_diff < 1e-6
    assert model.describe()["parity"] == report.to_dict()
    gap = assert_same_attributions(
        model, classifier.predict_proba, data.iloc[300:340], data.iloc[200:204]
    )
    assert gap < 1e-5


def test_the_label_output_has_a_free_batch_dimension(data, classifier, capfd):
    import onnx
    import onnxruntime as ort

    model = to_onnx(classifier, data.iloc[:50])
    label = next(o for o in onnx.load_from_string(model.model_bytes).graph.output)
    assert label.name == "label"
    assert label.type.tensor_type.shape.dim[0].dim_param == "N"
    # onnxmltools declares it as 1: onnxruntime then warns on every batch of more rows.
    options = ort.SessionOptions()
    options.log_severity_level = 1
    session = ort.InferenceSession(
        model.model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )
    labels, _ = session.run(None, {"input": data.to_numpy(np.float32)[:20]})
    assert labels.shape == (20,)
    assert "VerifyOutputSizes" not in capfd.readouterr().err


def test_multiclass_and_missing_values(data):
    X = data.copy()
    X.loc[X.index[::7], "income"] = np.nan
    y = np.digitize(X["age"] + X["tenure"], [-0.5, 0.5])
    clf = lightgbm.LGBMClassifier(n_estimators=20, n_jobs=1, verbose=-1).fit(X, y)
    model = to_onnx(clf, X)
    report = model.parity_report
    assert model.output_names == [f"probabilities[{k}]" for k in range(3)]
    assert model.allow_missing
    assert report.passed
    assert report.max_abs_diff < 1e-6


def test_regressor_is_checked_relative_to_its_scale(data):
    y = 1_000 + 100 * np.sin(data["debt"]) + data["age"] * data["income"]
    reg = lightgbm.LGBMRegressor(n_estimators=30, n_jobs=1, verbose=-1).fit(
        data.to_numpy(), y
    )  # fitted on an array: the sample's names are used
    model = to_onnx(reg, data)
    report = model.parity_report
    assert model.feature_names == COLUMNS
    assert model.output_names == ["variable"]
    assert report.output_kind == "regression"
    assert report.passed
    assert report.max_rel_diff < 1e-6
    gap = assert_same_attributions(model, reg.predict, data.iloc[300:340], data.iloc[:4])
    assert gap < 1e-5


def test_refusals(data, classifier):
    with pytest.raises(ConfigurationError, match="LGBMClassifier or LGBMRegressor"):
        to_onnx(classifier.booster_, data)
    with pytest.raises(ConfigurationError, match="output='prediction' does not fit"):
        to_onnx(classifier, data, output="prediction")
    text = data.assign(region=data["region"].astype(str))
    with pytest.raises(ConfigurationError, match=r"\['region'\] are not numeric"):
        to_onnx(classifier, text)


def test_missing_extra_names_it(monkeypatch, data, classifier):
    import surrogate_xai.adapters as adapters

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # `import lightgbm` now fails
    monkeypatch.delitem(sys.modules, "surrogate_xai.adapters.lightgbm")
    monkeypatch.delattr(adapters, "lightgbm")
    fresh = importlib.import_module("surrogate_xai.adapters.lightgbm")  # importing still works
    with pytest.raises(ImportError, match=r"pip install 'surrogate-xai\[lightgbm\]'"):
        fresh.to_onnx(classifier, data)
