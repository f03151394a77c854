"""ONNX files nobody on this project made: plain ``torch.onnx.export`` of a CNN and an LSTM
(dynamo on and off, dynamic and frozen batch), skl2onnx's grouped inputs, CatBoost's own
export, and a graph with hummingbird's generated output names. Each loads with
``sx.ONNXModel(path)`` and nothing else."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai import groups
from surrogate_xai.exceptions import ConfigurationError

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402 - only once torch is known to be installed

T_STEPS, N_FEATURES, FROZEN = 6, 3, 4


class SmallCNN(nn.Module):
    """(1, 8, 8) -> probabilities of 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        h = nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return torch.softmax(self.head(h.flatten(1)), dim=1)


class SmallLSTM(nn.Module):
    """(T, F) -> one number from the last hidden state."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_FEATURES, 5, batch_first=True)
        self.head = nn.Linear(5, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def _export(module, shape, path, *, dynamo: bool, dynamic: bool) -> None:
    """``torch.onnx.export`` as a user calls it: no adapter, weights inside the file."""
    example = torch.randn(FROZEN, *shape, generator=torch.Generator().manual_seed(1))
    kwargs = {}
    if dynamic:
        kwargs = (
            {"dynamic_shapes": ({0: torch.export.Dim("batch")},)}
            if dynamo
            else {"dynamic_axes": {"input": {0: "batch"}}}
        )
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's own deprecation notices
        if dynamo:
            torch.onnx.export(
                module, (example,), str(path), dynamo=True, input_names=["input"],
                external_data=False, **kwargs,
            )  # fmt: skip
        else:
            torch.onnx.export(
                module, (example,), str(path), dynamo=False, input_names=["input"], **kwargs
            )


CASES = [
    (kind, dynamo, dynamic)
    for kind in ("cnn", "lstm")
    for dynamo in (False, True)
    for dynamic in (True, False)
]


@pytest.fixture(scope="module")
def modules():
    torch.manual_seed(0)
    return {
        "cnn": (SmallCNN().eval(), (1, 8, 8)),
        "lstm": (SmallLSTM().eval(), (T_STEPS, N_FEATURES)),
    }


@pytest.mark.parametrize(("kind", "dynamo", "dynamic"), CASES)
def test_plain_torch_exports_load_match_and_explain_per_group(
    modules, tmp_path, kind, dynamo, dynamic
):
    module, shape = modules[kind]
    path = tmp_path / f"{kind}.onnx"
    _export(module, shape, path, dynamo=dynamo, dynamic=dynamic)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no side file of weights

    model = sx.ONNXModel(path)  # no hand work
    if kind == "cnn":
        names, units = groups.image_feature_names(shape), groups.image_patches(shape, 4)
    else:
        names, units = (
            groups.sequence_feature_names(*shape),
            groups.time_steps(*shape),
        )
    assert model.feature_names == names
    assert model.input_shapes == {"input": shape}
    assert model.batch_size == (None if dynamic else FROZEN)

    def native(rows: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
        with torch.no_grad():
            return module(x.reshape(len(rows), *shape)).numpy().astype(np.float64)

    rng = np.random.default_rng(3)
    X = rng.normal(size=(9, len(names))).astype(np.float32)  # 9: a frozen batch pads
    np.testing.assert_allclose(model.predict(X), native(X), atol=1e-5, rtol=0)

    # Patches / time steps through the graph equal the same game on the module itself.
    background, rows = X[:3], X[3:5]
    through = sx.ExactSHAP().fit(model, background, feature_groups=units).explain(rows)
    function = sx.FunctionModel(native, names, model.output_names, input_type="array")
    direct = sx.ExactSHAP().fit(function, background, feature_groups=units).explain(rows)
    assert through.feature_names == list(units)
    scale = np.abs(direct.values).max()
    np.testing.assert_allclose(through.values, direct.values, atol=1e-5 * max(scale, 1.0))


def test_grouped_multi_column_inputs_of_skl2onnx(tmp_path):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 200
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n).astype(np.float32),
            "b": rng.normal(size=n).astype(np.float32),
            "c": rng.normal(size=n).astype(np.float32),
            "d": rng.choice(["x", "y"], n),
            "e": rng.choice(["p", "q", "r"], n),
        }
    )
    y = (X["a"] + (X["d"] == "x") + (X["e"] == "q")) > 0.8
    prep = ColumnTransformer([("n", StandardScaler(), [0, 1, 2]), ("c", OneHotEncoder(), [3, 4])])
    pipe = Pipeline([("prep", prep), ("lr", LogisticRegression())]).fit(X.to_numpy(object), y)
    proto = to_onnx(
        pipe,
        initial_types=[("num", FloatTensorType([None, 3])), ("cat", StringTensorType([None, 2]))],
        target_opset=17,
        options={id(pipe.steps[-1][1]): {"zipmap": False}},
    )
    path = tmp_path / "grouped.onnx"
    path.write_bytes(proto.SerializeToString())

    model = sx.ONNXModel(path)
    assert model.feature_names == ["num[0]", "num[1]", "num[2]", "cat[0]", "cat[1]"]
    assert model.feature_kinds["cat[1]"] == "categorical"
    assert model.known_categories == {"cat[0]": ["x", "y"], "cat[1]": ["p", "q", "r"]}
    assert "probabilities" in model.describe()["output"]
    named = sx.ONNXModel(path, feature_names=list(X.columns))
    np.testing.assert_allclose(named.predict(X), pipe.predict_proba(X.to_numpy(object)), atol=1e-6)
    exp = sx.ExactSHAP().fit(named, X.iloc[:20]).explain(X.iloc[20:22])
    assert exp.values.shape == (2, 5, 2)
    np.testing.assert_allclose(
        exp.values.sum(axis=1) + exp.base_values, exp.diagnostics.predictions, atol=1e-6
    )


def _hummingbird_like() -> bytes:
    """Outputs as hummingbird-ml writes them: ``variable`` (int64 labels) first, then the
    probabilities under a generated name."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array([[1.0, -1.0], [0.5, 0.25]], np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input_0", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["onnx::ArgMax_33"], axis=1),
            helper.make_node("ArgMax", ["onnx::ArgMax_33"], ["variable"], axis=1, keepdims=0),
        ],
        "hb",
        [helper.make_tensor_value_info("input_0", TensorProto.FLOAT, ["N", 2])],
        [
            helper.make_tensor_value_info("variable", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("onnx::ArgMax_33", TensorProto.FLOAT, ["N", 2]),
        ],
        initializer=[w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_generated_output_names_pick_the_probabilities():
    data = _hummingbird_like()
    model = sx.ONNXModel(data)
    assert model.output_names == ["onnx::ArgMax_33[0]", "onnx::ArgMax_33[1]"]
    assert "only float output" in model.output_reason
    assert "variable" in model.output_reason  # the label it skipped
    assert model.describe()["output_reason"] == model.output_reason
    X = np.array([[0.2, 1.0], [-1.0, 0.5]], np.float32)
    logits = X @ np.array([[1.0, -1.0], [0.5, 0.25]])
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(X), expected, atol=1e-6)
    # by index, and the reason says so
    by_index = sx.ONNXModel(data, output=1)
    assert by_index.output_names == model.output_names
    assert by_index.output_reason == "asked for by index 1"
    assert sx.ONNXModel(data, output="probability").output_names == model.output_names
    with pytest.raises(ConfigurationError, match=r"output index 2 is out of range.*'variable'"):
        sx.ONNXModel(data, output=2)


def test_two_float_outputs_without_a_hint_ask_which_one():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Neg", ["x"], ["b"])],
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 3]),
        ],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(
        ConfigurationError,
        match=r"output= \(a name or an index\): 0: 'a' tensor\(float\) \[N, 3\]; 1: 'b'",
    ):
        sx.ONNXModel(data)
    assert sx.ONNXModel(data, output="b").output_names == ["b[0]", "b[1]", "b[2]"]


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_catboost_native_onnx_loads_and_matches(tmp_path, kind):
    catboost = pytest.importorskip("catboost")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    options = {"iterations": 30, "verbose": 0, "random_seed": 0, "thread_count": 1}
    options["allow_writing_files"] = False
    if kind == "classifier":
        native = catboost.CatBoostClassifier(**options).fit(X, (X[:, 0] + X[:, 1] > 0).astype(int))
        predict = native.predict_proba
    else:
        native = catboost.CatBoostRegressor(**options).fit(X, X[:, 0] - 2 * X[:, 2])
        predict = native.predict
    path = tmp_path / f"catboost_{kind}.onnx"
    native.save_model(str(path), format="onnx")
    model = sx.ONNXModel(path)
    expected = np.asarray(predict(X), dtype=np.float64).reshape(len(X), -1)
    np.testing.assert_allclose(model.predict(X), expected, atol=1e-5, rtol=1e-5)
    if kind == "classifier":
        assert model.output_names == ["probabilities[0]", "probabilities[1]"]
    else:
        assert model.output_names == ["predictions"]
