"""What every model declares (input type, input limits, parity evidence), and FunctionModel
inferring its outputs from its first prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx


@pytest.fixture(scope="module")
def classifier():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    y = rng.integers(0, 3, 120)
    return LogisticRegression().fit(X, y), X


def test_predict_proba_without_output_names_is_explained(classifier):
    clf, X = classifier
    model = sx.FunctionModel(clf.predict_proba, feature_names=["a", "b", "c"])
    assert model.describe().get("outputs_inferred") is None
    exp = (
        sx.KernelSHAP(max_evals=200, random_state=0).fit(model, X.iloc[:30]).explain(X.iloc[30:32])
    )
    assert model.output_names == ["output[0]", "output[1]", "output[2]"]
    assert exp.output_names == model.output_names
    assert "from the shape of the first prediction (30 rows" in model.describe()["outputs_inferred"]
    assert exp.provenance.model["outputs_inferred"] == model.describe()["outputs_inferred"]
    # The probe is the background's own prediction: no row beyond what was asked for.
    named = sx.FunctionModel(clf.predict_proba, ["a", "b", "c"], ["p0", "p1", "p2"])
    again = (
        sx.KernelSHAP(max_evals=200, random_state=0).fit(named, X.iloc[:30]).explain(X.iloc[30:32])
    )
    assert model.n_evaluations == named.n_evaluations
    np.testing.assert_array_equal(exp.values, again.values)


def test_one_dimensional_outputs_stay_one_output(classifier):
    clf, X = classifier
    model = sx.FunctionModel(lambda f: clf.predict_proba(f)[:, 0], ["a", "b", "c"])
    model.predict(X.iloc[:4])
    assert model.output_names == ["output"]


def test_the_first_call_fixes_the_outputs(classifier):
    clf, X = classifier
    calls = []

    def fn(frame):
        calls.append(len(frame))
        return clf.predict_proba(frame)[:, : 1 + len(calls)]

    model = sx.FunctionModel(fn, ["a", "b", "c"])
    model.predict(X.iloc[:4])  # two columns: output[0], output[1]
    assert model.output_names == ["output[0]", "output[1]"]
    with pytest.raises(
        sx.ModelError, match=r"returned shape \(4, 3\) for 4 rows; expected \(4, 2\)"
    ):
        model.predict(X.iloc[:4])  # three columns now


def test_base_model_declares_the_capabilities_callers_read(classifier, gbm_regressor):
    clf, _ = classifier
    model = sx.FunctionModel(clf.predict_proba, ["a", "b", "c"])
    assert model.input_dtype == np.dtype(np.float64)
    assert model.input_limits() == {}
    assert model.parity_report is None
    assert model.parity is None
    assert isinstance(model, sx.Model)
    _, path, _ = gbm_regressor
    onnx_model = sx.ONNXModel(path)
    assert onnx_model.input_dtype == np.dtype(np.float32)
    assert onnx_model.input_limits()["x0"] == pytest.approx(
        (float(np.finfo(np.float32).min), float(np.finfo(np.float32).max))
    )


def test_no_caller_probes_a_model_with_getattr():
    """Capabilities are declared on the Model protocol, so callers read them directly."""
    import ast
    from pathlib import Path

    root = Path(sx.__file__).parent
    probes = []
    for path in [*root.rglob("*.py"), *(root.parent / "adapters").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in ("input_dtype", "input_limits", "parity_report")
            ):
                probes.append(f"{path.name}:{node.lineno}")
    assert probes == []
