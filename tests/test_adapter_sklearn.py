"""scikit-learn to ONNX: mixed-column pipelines, the parity gate, and explanations through it."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pandas as pd
import pytest

from surrogate_xai.adapters.sklearn import to_onnx
from surrogate_xai.exceptions import ConfigurationError, ParityError
from tests.adapter_checks import assert_same_attributions


def f32(values: np.ndarray) -> np.ndarray:
    """Values exactly representable in float32, so graph and sklearn see the same inputs."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


@pytest.fixture(scope="module")
def applicants() -> tuple[pd.DataFrame, pd.Series]:
    """Mixed columns: floats (one with gaps), an int count, two text columns."""
    rng = np.random.default_rng(5)
    n = 400
    X = pd.DataFrame(
        {
            "age": f32(rng.normal(40, 10, n)),
            "income": f32(rng.lognormal(10, 0.5, n)),
            "n_loans": rng.integers(0, 5, n),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "job": rng.choice(["clerk", "driver", "nurse", "chef"], n),
        }
    )
    X.loc[rng.random(n) < 0.1, "income"] = np.nan
    y = ((X["age"] > 40) ^ (X["city"] == "nice") ^ (X["n_loans"] > 2)).astype(int)
    return X, y


def preprocessing():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(), StandardScaler()),
                ["age", "income", "n_loans"],
            ),
            ("text", OneHotEncoder(handle_unknown="ignore"), ["city", "job"]),
        ]
    )


@pytest.fixture(scope="module")
def mixed_pipeline(applicants):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    X, y = applicants
    pipe = Pipeline(
        [
            ("prep", preprocessing()),
            ("gbm", GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0)),
        ]
    ).fit(X, y)
    return pipe


def test_mixed_pipeline_exports_one_input_per_column(applicants, mixed_pipeline):
    X, _ = applicants
    model = to_onnx(mixed_pipeline, X.iloc[:200])
    report = model.parity_report
    assert model.feature_names == list(X.columns)
    assert model.feature_kinds == {
        "age": "numeric",
        "income": "numeric",
        "n_loans": "numeric",
        "city": "categorical",
        "job": "categorical",
    }
    assert model.known_categories["city"] == ["lyon", "nice", "paris"]
    assert model.output_names == ["probabilities[0]", "probabilities[1]"]
    assert model.allow_missing  # income has gaps in X_sample and the graph imputes them
    assert report.passed
    assert report.rows_checked == 200
    assert report.decision_flips == 0
    assert report.max_abs_diff < 1e-6
    assert model.describe()["parity"] == report.to_dict()
    np.testing.assert_allclose(
        model.predict(X.iloc[200:]), mixed_pipeline.predict_proba(X.iloc[200:]), atol=1e-6
    )


def test_explaining_the_export_equals_explaining_the_pipeline(applicants, mixed_pipeline):
    X, _ = applicants
    model = to_onnx(mixed_pipeline, X.iloc[:200])
    gap = assert_same_attributions(
        model, mixed_pipeline.predict_proba, X.iloc[300:340], X.iloc[200:204]
    )
    assert gap < 1e-5


def test_regression_pipeline_is_checked_relative_to_its_scale(applicants):
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    X, _ = applicants
    y = 1_000 * X["age"] + 50_000 * (X["city"] == "paris") + X["income"].fillna(0)
    pipe = Pipeline(
        [("prep", preprocessing()), ("gbm", GradientBoostingRegressor(n_estimators=30))]
    ).fit(X, y)
    model = to_onnx(pipe, X)
    report = model.parity_report
    assert report.output_kind == "regression"
    assert report.passed
    assert model.output_names == ["variable"]
    # float32 output of a ~1e5 target: too far for any fixed 1e-4, tiny relative to the scale.
    assert report.max_abs_diff > 1e-4
    assert report.max_rel_diff < 1e-6
    assert_same_attributions(model, pipe.predict, X.iloc[300:330], X.iloc[:3])


def test_hist_gradient_boosting_with_native_categoricals_is_caught():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "colour": rng.integers(0, 6, n).astype(float),  # ordinal-coded categories
            "size": rng.integers(0, 4, n).astype(float),
            "weight": f32(rng.normal(size=n)),
        }
    )
    y = ((X["colour"] % 2 == 0) ^ (X["size"] == 1) ^ (X["weight"] > 0.5)).astype(int)
    # One OpenMP thread: two threads spin-waiting on a busy 2-core machine take seconds.
    with threadpool_limits(limits=1, user_api="openmp"):
        plain = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
        categorical = HistGradientBoostingClassifier(
            categorical_features=[0, 1], max_iter=30, random_state=0
        ).fit(X, y)
    report = to_onnx(plain, X).parity_report  # same model without native categoricals: exports fine
    assert report.passed
    assert report.max_abs_diff < 1e-6

    with pytest.raises(ParityError) as caught:
        to_onnx(categorical, X)
    message = str(caught.value)
    assert "rows beyond tolerance" in message
    assert "decision(s) flipped" in message
    failed = caught.value.report
    gap, flips = failed.max_abs_diff, failed.decision_flips
    beyond = failed.rows_beyond_tolerance
    # Measured with skl2onnx 1.20: |diff| 0.886, all 400 rows beyond tolerance, 184 flips.
    assert gap > 0.5
    assert beyond > 100
    assert flips > 100


def test_float32_trap_behind_a_scaler_fails_on_size_not_on_decisions(applicants):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    X, y = applicants
    pipe = Pipeline(
        [("prep", preprocessing()), ("rf", RandomForestClassifier(n_estimators=30, random_state=0))]
    ).fit(X, y)
    with pytest.raises(ParityError, match=r"0 decision\(s\) flipped.*pass a larger atol="):
        to_onnx(pipe, X)
    model = to_onnx(pipe, X, atol=0.1)  # an explicit choice, recorded in provenance
    report = model.parity_report
    assert report.passed
    assert report.decision_flips == 0
    assert report.max_abs_diff > 1e-4
    assert model.parity is not None
    assert model.parity["atol"] == 0.1


def test_numeric_estimator_gets_a_tensor_input_in_training_order():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = pd.DataFrame(f32(rng.normal(size=(200, 3))), columns=["b", "a", "c"])
    clf = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    model = to_onnx(clf, X[["c", "a", "b"]].assign(extra=1.0))
    report = model.parity_report
    assert model.describe()["input_mode"] == "tensor"
    assert model.feature_names == ["b", "a", "c"]
    assert report.passed
    assert not model.allow_missing


def test_refusals(applicants, mixed_pipeline):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LinearRegression

    X, y = applicants
    with pytest.raises(ConfigurationError, match="DataFrame"):
        to_onnx(mixed_pipeline, X.to_numpy())
    with pytest.raises(ConfigurationError, match="labels are not a score"):
        to_onnx(mixed_pipeline, X, output="prediction")
    with pytest.raises(ConfigurationError, match=r"lacks the estimator's column\(s\) \['job'\]"):
        to_onnx(mixed_pipeline, X.drop(columns="job"))
    text = X[["age", "city"]].fillna(0)
    with pytest.raises(ConfigurationError, match=r"\['city'\] need a Pipeline"):
        to_onnx(GradientBoostingClassifier(n_estimators=2).fit(text.assign(city=0), y), text)
    reg = LinearRegression().fit(X[["age"]], y)
    with pytest.raises(ConfigurationError, match="needs an estimator with predict_proba"):
        to_onnx(reg, X[["age"]], output="probability")


def test_missing_extra_names_it(monkeypatch, applicants, mixed_pipeline):
    import surrogate_xai.adapters as adapters

    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # `import skl2onnx` now fails
    monkeypatch.delitem(sys.modules, "surrogate_xai.adapters.sklearn")
    monkeypatch.delattr(adapters, "sklearn")
    fresh = importlib.import_module("surrogate_xai.adapters.sklearn")  # importing still works
    with pytest.raises(ImportError, match=r"pip install 'surrogate-xai\[sklearn\]'"):
        fresh.to_onnx(mixed_pipeline, applicants[0])
