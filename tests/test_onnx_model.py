"""ONNXModel on real graphs: tensor and per-column inputs, ZipMap, outputs, chunks, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.exceptions import (
    ConfigurationError,
    InvalidValueError,
    MissingColumnError,
    ModelLoadError,
)


def test_tensor_mode_matches_native(gbm_regressor):
    native, path, X = gbm_regressor
    model = sx.ONNXModel(path)
    assert model.feature_names == [f"x{j}" for j in range(8)]
    assert model.output_names == ["variable"]
    out = model.predict(X.to_numpy())
    np.testing.assert_allclose(out[:, 0], native.predict(X), rtol=1e-5, atol=1e-5)
    assert model.n_evaluations == len(X)
    assert model.identity == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_names_for_a_tensor_input(gbm_regressor):
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path, feature_names=list("abcdefgh"))
    frame = X.set_axis(list("abcdefgh"), axis=1)
    np.testing.assert_array_equal(model.predict(frame), model.predict(X.to_numpy()))
    with pytest.raises(ConfigurationError, match="feature_names has 3 names"):
        sx.ONNXModel(path, feature_names=["a", "b", "c"])


def test_chunking_under_a_memory_cap_gives_the_same_numbers(gbm_regressor):
    _, path, X = gbm_regressor
    whole = sx.ONNXModel(path).predict(X)
    small = sx.ONNXModel(path, memory_limit=8 * 8 * 7)  # 7 rows per call
    np.testing.assert_array_equal(small.predict(X), whole)
    assert small.n_evaluations == len(X)


def test_column_mode_with_text_and_known_categories(credit_model):
    pipe, path, X = credit_model
    model = sx.ONNXModel(path, output="probability")
    assert model.feature_names == list(X.columns)
    kinds = model.feature_kinds
    assert kinds["purpose"] == "categorical"
    assert kinds["age_in_years"] == "numeric"
    assert "car (new)" in model.known_categories["purpose"]
    np.testing.assert_allclose(
        model.predict(X.iloc[:50]), pipe.predict_proba(X.iloc[:50]), atol=1e-5
    )


def test_zipmap_output_is_read_as_a_matrix(credit_model, tmp_path):
    from skl2onnx import to_onnx

    from surrogate_xai.adapters.sklearn import input_types

    pipe, _, X = credit_model
    proto = to_onnx(pipe, initial_types=input_types(X), target_opset=17)  # ZipMap left on
    path = tmp_path / "zipmap.onnx"
    path.write_bytes(proto.SerializeToString())
    model = sx.ONNXModel(path)
    assert model.describe()["output"] == "output_probability"
    assert model.output_names == ["output_probability[bad]", "output_probability[good]"]
    np.testing.assert_allclose(
        model.predict(X.iloc[:20]), pipe.predict_proba(X.iloc[:20]), atol=1e-5
    )


def test_choosing_outputs(credit_model):
    _, path, _ = credit_model
    assert sx.ONNXModel(path, output="label").output_names == ["label"]
    with pytest.raises(ConfigurationError, match="unknown output 'nope'"):
        sx.ONNXModel(path, output="nope")
    with pytest.raises(ConfigurationError, match="no margin"):
        sx.ONNXModel(path, output="margin")


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("definitely not protobuf")
    with pytest.raises(ModelLoadError, match="is not a usable ONNX model"):
        sx.ONNXModel(bad)
    with pytest.raises(ModelLoadError, match="no ONNX file"):
        sx.ONNXModel(tmp_path / "missing.onnx")


def test_missing_column_and_wrong_width(credit_model, gbm_regressor):
    _, path, X = credit_model
    model = sx.ONNXModel(path)
    with pytest.raises(MissingColumnError, match="'purpose'"):
        model.predict(X.drop(columns="purpose"))
    _, gpath, G = gbm_regressor
    with pytest.raises(sx.InputError, match="2-D array with 8 columns"):
        sx.ONNXModel(gpath).predict(G.to_numpy()[:, :3])


def int_input_graph() -> bytes:
    """y = float(count) * 2 + x, with count an int64 input: a graph built by hand."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["count"], ["c"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["c", "c"], ["c2"]),
            helper.make_node("Add", ["c2", "x"], ["y"]),
        ],
        "int_input",
        [
            helper.make_tensor_value_info("count", TensorProto.INT64, [None, 1]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def test_int64_inputs_take_whole_numbers_only():
    model = sx.ONNXModel(int_input_graph())
    assert model.feature_kinds == {"count": "numeric", "x": "numeric"}
    frame = pd.DataFrame({"count": [1, 2, 3], "x": [0.5, 0.25, 0.0]})
    np.testing.assert_allclose(model.predict(frame)[:, 0], [2.5, 4.25, 6.0])
    with pytest.raises(InvalidValueError, match=r"column 'count' is an integer input .* row 1"):
        model.predict(frame.assign(count=[1.0, 2.5, 3.0]))
    # Perturbations only ever combine real values, so explaining such a model just works.
    exp = sx.ExactSHAP().fit(model, frame).explain(frame.iloc[:1])
    np.testing.assert_allclose(exp.values[0, :, 0], [2 * (1 - 2), 0.5 - 0.25], atol=1e-6)


def test_explaining_through_onnx_equals_explaining_the_native_model(credit_model):
    pipe, path, X = credit_model
    onnx_model = sx.ONNXModel(path, output="probability")
    native = sx.FunctionModel(
        lambda frame: pipe.predict_proba(pd.DataFrame(frame)),
        feature_names=list(X.columns),
        output_names=onnx_model.output_names,
    )
    make = lambda: sx.KernelSHAP(max_evals=3_000, random_state=2)  # noqa: E731
    a = make().fit(onnx_model, X.iloc[100:150]).explain(X.iloc[:3])
    b = make().fit(native, X.iloc[100:150]).explain(X.iloc[:3])
    # Same design, same rows; only float32 inside the graph differs.
    np.testing.assert_allclose(a.values, b.values, atol=2e-5)


def test_values_outside_the_input_type_are_refused_naming_column_and_row(gbm_regressor):
    # 1e308 cast to float32 is inf (numpy only warns): the model would score a row that is not
    # the one given, and the record would hold 1e308.
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path)
    huge = X.iloc[:5].copy()
    huge.iloc[3, 2] = 1e308
    with pytest.raises(
        InvalidValueError, match=r"column 'x2' of X holds 1e\+308 at row 3.*float32"
    ):
        model.predict(huge)
    with pytest.raises(InvalidValueError, match=r"column 'x2' .* at row 3"):
        model.predict(huge.to_numpy())
    assert model.n_evaluations == 0
    assert set(model.input_limits()) == {f"x{j}" for j in range(8)}
    # The largest float32 is fine, and so is a value that rounds to it.
    edge = X.iloc[:1].copy()
    edge.iloc[0, 2] = float(np.finfo(np.float32).max)
    assert np.isfinite(model.predict(edge)).all()
    # int64 columns: 1e20 does not fit (numpy would give an arbitrary integer)
    ints = sx.ONNXModel(int_input_graph())
    assert set(ints.input_limits()) == {"count", "x"}
    frame = pd.DataFrame({"count": [1.0, 1e20], "x": [0.5, 0.25]})
    with pytest.raises(InvalidValueError, match=r"column 'count' .* row 1.*int64"):
        ints.predict(frame)


def column_graph(types: list[int], path) -> sx.ONNXModel:
    """score = sigmoid(x @ w) over one (batch, 1) input per element type, w from -1 to 1."""
    from onnx import TensorProto, helper, numpy_helper

    names = [f"f{i}" for i in range(len(types))]
    nodes, floats = [], []
    for name, t in zip(names, types, strict=True):
        if t == TensorProto.FLOAT:
            floats.append(name)
        else:
            nodes.append(helper.make_node("Cast", [name], [f"{name}_f"], to=TensorProto.FLOAT))
            floats.append(f"{name}_f")
    w = np.linspace(-1, 1, len(types)).astype(np.float32).reshape(-1, 1)
    nodes += [
        helper.make_node("Concat", floats, ["x"], axis=1),
        helper.make_node("MatMul", ["x", "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "columns",
        [helper.make_tensor_value_info(n, t, [None, 1]) for n, t in zip(names, types, strict=True)],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(w, "w")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(proto.SerializeToString())
    return sx.ONNXModel(path)


def test_an_array_in_column_mode_is_checked_against_each_input_type(tmp_path):
    from onnx import TensorProto

    # f0 double, f1 float, f2 int64
    model = column_graph([TensorProto.DOUBLE, TensorProto.FLOAT, TensorProto.INT64], tmp_path / "m")
    with pytest.raises(InvalidValueError, match=r"column 'f1' of X holds 1e\+39 at row 1.*float32"):
        model.predict(np.array([[0.0, 0.0, 1.0], [0.0, 1e39, 1.0]]))
    with pytest.raises(InvalidValueError, match=r"column 'f2' of X holds 1e\+30 at row 0.*int64"):
        model.predict(np.array([[0.0, 0.0, 1e30]]))
    with pytest.raises(InvalidValueError, match=r"column 'f2' is an integer input .* 2\.5"):
        model.predict(np.array([[0.0, 0.0, 2.5]]))
    # 1e39 fits the float64 input; the model scores it (sigmoid(-1e39) = 0)
    assert model.predict(np.array([[1e39, 0.0, 1.0]]))[0, 0] == 0.0
    # f0 int64, f1 float: 1e20 is a fine float32, whatever the first input's range
    ints_first = column_graph([TensorProto.INT64, TensorProto.FLOAT], tmp_path / "m2")
    assert ints_first.predict(np.array([[1.0, 1e20]]))[0, 0] == 1.0
    with pytest.raises(InvalidValueError, match=r"column 'f1' of X holds 1e\+39 at row 0"):
        ints_first.check_input_range(np.array([[1.0, 1e39]]))


def exact_int_graph() -> bytes:
    """y = float(count - (2**63 - 2)): 1.0 only when count arrives as 2**63 - 1 exactly."""
    from onnx import TensorProto, helper, numpy_helper

    base = numpy_helper.from_array(np.array([[2**63 - 2]], dtype=np.int64), "base")
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["count", "base"], ["d"]),
            helper.make_node("Cast", ["d"], ["y"], to=TensorProto.FLOAT),
        ],
        "exact_int",
        [helper.make_tensor_value_info("count", TensorProto.INT64, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [base],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return proto.SerializeToString()


def test_int64_inputs_arrive_exactly_or_are_refused(tmp_path):
    model = sx.ONNXModel(exact_int_graph())
    top = 2**63 - 1
    # Through float64, 2**63 - 1 would become -2**63 and the model would score another row.
    for given in (
        pd.DataFrame({"count": [top - 1, top]}),
        pd.DataFrame({"count": pd.array([top - 1, top], dtype="Int64")}),
        pd.DataFrame({"count": np.array([top - 1, top], dtype=object)}),
        pd.DataFrame({"count": [str(top - 1), str(top)]}),
        np.array([[top - 1], [top]], dtype=np.int64),
        np.array([[top - 1], [top]], dtype=np.uint64),
    ):
        np.testing.assert_array_equal(model.predict(given)[:, 0], [0.0, 1.0])
    csv = tmp_path / "counts.csv"
    csv.write_text(f"count\n{top - 1}\n{top}\n")
    np.testing.assert_array_equal(model.predict(pd.read_csv(csv))[:, 0], [0.0, 1.0])
    with pytest.raises(
        InvalidValueError, match=r"column 'count' of X holds 9223372036854775808 at row 1.*int64"
    ):
        model.predict(np.array([[0], [2**63]], dtype=np.uint64))
    # 2**63 - 1 as a float is 2**63, one past the largest int64
    with pytest.raises(
        InvalidValueError, match=r"column 'count' of X holds 9\.223372036854776e\+18 at row 0"
    ):
        model.predict(pd.DataFrame({"count": [float(top)]}))
    with pytest.raises(
        InvalidValueError, match=r"column 'count' of X holds 9223372036854775808 at row 0"
    ):
        model.predict(pd.DataFrame({"count": np.array([2**63], dtype=object)}))
    with pytest.raises(
        InvalidValueError, match=r"column 'count' .* 'many' at row 0, which is not a number"
    ):
        model.predict(pd.DataFrame({"count": ["many"]}))


def test_pandas_extension_types_predict_like_numpy(credit_model, gbm_regressor):
    _, path, X = credit_model
    model = sx.ONNXModel(path)
    rows = X.iloc[:40]
    converted = rows.convert_dtypes()  # Int64 and string columns
    assert any(isinstance(dt, pd.Int64Dtype) for dt in converted.dtypes)
    np.testing.assert_array_equal(model.predict(converted), model.predict(rows))
    as_text = rows.astype(dict.fromkeys(rows.columns, "str"))  # numbers as pandas-3 str
    np.testing.assert_array_equal(model.predict(as_text), model.predict(rows))
    as_objects = rows.astype(object)
    np.testing.assert_array_equal(model.predict(as_objects.to_numpy()), model.predict(rows))
    _, gpath, G = gbm_regressor
    tensor = sx.ONNXModel(gpath)
    np.testing.assert_array_equal(tensor.predict(G.astype("Float64")), tensor.predict(G.to_numpy()))
    np.testing.assert_array_equal(
        tensor.predict(G.astype(np.float64).astype(object)), tensor.predict(G.to_numpy())
    )
    mixed = G.astype(np.float64).assign(x0=G["x0"].astype("Float64"), x1=(G["x1"] > 0))
    np.testing.assert_array_equal(
        tensor.predict(mixed), tensor.predict(mixed.astype({"x0": np.float64, "x1": np.float64}))
    )
    huge = G.iloc[:3].astype("Float64")
    huge.iloc[2, 5] = 1e300
    with pytest.raises(InvalidValueError, match=r"column 'x5' of X holds 1e\+300 at row 2"):
        tensor.predict(huge)


def test_legitimate_values_are_not_refused(tmp_path):
    from onnx import TensorProto

    model = column_graph([TensorProto.FLOAT, TensorProto.INT64], tmp_path / "m")
    frame = pd.DataFrame({"f0": [np.iinfo(np.int64).max, -5], "f1": [True, False]})
    assert np.isfinite(model.predict(frame)).all()  # int64 into float32, bool into int64
    model.check_input_range(frame.assign(f0=[np.nan, 1.0]))  # NaN is for the NaN checks
    model.check_input_range(frame.assign(f0=pd.array([None, 1.0], dtype="Float64")))
    model.check_input_range(frame.assign(f0=np.array([None, "2.5"], dtype=object)))
    assert np.isfinite(model.predict(frame.assign(f1=np.array([3, 4], dtype=np.uint8)))).all()


def test_the_refused_row_counts_from_the_start_of_x_across_chunks(gbm_regressor):
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path, memory_limit=8 * 8 * 7)  # 7 rows per call
    huge = X.iloc[:20].astype(np.float64)
    huge.iloc[17, 4] = -1e300
    with pytest.raises(InvalidValueError, match=r"column 'x4' of X holds -1e\+300 at row 17"):
        model.predict(huge)
    with pytest.raises(
        InvalidValueError, match=r"column 'x4' of data\.csv holds -1e\+300 at row 17"
    ):
        model.check_input_range(huge, "data.csv")


def test_an_int64_tensor_takes_each_column_exactly():
    from onnx import TensorProto, helper, numpy_helper

    base = numpy_helper.from_array(np.array([[2**63 - 2, 0]], dtype=np.int64), "base")
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["x", "base"], ["d"]),
            helper.make_node("Cast", ["d"], ["y"], to=TensorProto.FLOAT),
        ],
        "int_tensor",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [base],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model = sx.ONNXModel(proto.SerializeToString())
    # An int64 and a float64 column: one float64 array of both would lose the int64 value.
    frame = pd.DataFrame({"x0": [2**63 - 1], "x1": [3.0]})
    np.testing.assert_array_equal(model.predict(frame), [[1.0, 3.0]])
    with pytest.raises(InvalidValueError, match=r"column 'x1' is an integer input .* 3\.5"):
        model.predict(frame.assign(x1=[3.5]))
    with pytest.raises(InvalidValueError, match=r"column 'x1' of X holds 1e\+19 at row 0"):
        model.predict(np.array([[0.0, 1e19]]))
