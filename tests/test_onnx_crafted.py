"""Crafted model files: a model file is executable input. Each one gets a specific error
naming the input or output at fault (a ``SurrogateXAIError``), never a traceback, and none
is allowed to take more memory or time than the model's limits."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

import surrogate_xai as sx
from surrogate_xai.exceptions import (
    ConfigurationError,
    ModelEvaluationError,
    ModelLoadError,
    OutputShapeError,
    ResourceLimitError,
    SurrogateXAIError,
)

pytestmark = pytest.mark.reliability  # part of the reliability suite (tests/reliability.py)


def _model(nodes, inputs, outputs, initializers=(), opset=17) -> bytes:
    graph = helper.make_graph(nodes, "crafted", inputs, outputs, initializer=list(initializers))
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)]
    ).SerializeToString()


def _x(shape=("N", 1), name="x", kind=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, kind, list(shape))


def _y(shape=("N", 1), name="y"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def no_inputs() -> bytes:
    value = numpy_helper.from_array(np.ones((1, 1), np.float32), "c")
    return _model([helper.make_node("Constant", [], ["y"], value=value)], [], [_y((1, 1))])


def declared_outputs(width: int) -> bytes:
    """A graph of ~100 bytes whose one output declares ``width`` values per row."""
    return _model([helper.make_node("Identity", ["x"], ["y"])], [_x()], [_y(("N", width))])


def test_a_graph_without_inputs_is_refused_at_load():
    data = no_inputs()
    assert len(data) < 200
    with pytest.raises(ModelLoadError, match="declares no inputs"):
        sx.ONNXModel(data)


def test_a_declared_output_beyond_the_memory_cap_is_refused_before_anything_is_built():
    # The old code built one name per declared value: 1e8 names took 38 s and 7.2 GB. Here a
    # 2e6-wide declaration against a 1 MB cap (cheap on the old code too: it did not fail).
    with pytest.raises(ResourceLimitError, match=r"output 'y' declares 2000000 values per row"):
        sx.ONNXModel(declared_outputs(2_000_000), memory_limit=2**20)
    data = declared_outputs(100_000_000)
    assert len(data) < 120
    start = time.perf_counter()
    with pytest.raises(ResourceLimitError, match="more than memory_limit"):
        sx.ONNXModel(data)  # the default cap
    assert time.perf_counter() - start < 5  # refused from the declaration, not by running


def test_an_output_larger_than_declared_is_refused_naming_it():
    # Declares (N, 1) but tiles each row into 5 values.
    reps = numpy_helper.from_array(np.array([1, 5], np.int64), "reps")
    data = _model([helper.make_node("Tile", ["x", "reps"], ["y"])], [_x()], [_y()], [reps])
    model = sx.ONNXModel(data)
    with pytest.raises(OutputShapeError, match=r"output 'y' returned shape \(3, 5\) for 3 rows"):
        model.predict(np.zeros((3, 1)))


def test_an_output_that_explodes_at_run_time_is_stopped_by_the_cap():
    # The width comes from the data (x + 1 values per row): nothing to see before running.
    one = numpy_helper.from_array(np.array(1.0, np.float32), "1.0")
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m0"], keepdims=0),
        helper.make_node("Add", ["m0", "1.0"], ["m"]),
        helper.make_node("Cast", ["m"], ["k"], to=TensorProto.INT64),
        helper.make_node("Constant", [], ["one"], value_ints=[1]),
        helper.make_node("Reshape", ["k", "one"], ["k1"]),
        helper.make_node("Constant", [], ["n"], value_ints=[1]),
        helper.make_node("Concat", ["n", "k1"], ["shape"], axis=0),
        helper.make_node("Expand", ["x", "shape"], ["y"]),
    ]
    data = _model(nodes, [_x(("N", 1))], [_y(("N", "W"))], [one])
    model = sx.ONNXModel(data, memory_limit=64 * 1024)
    assert model.output_names == ["y"]  # probed on a row of zeros: width 1
    with pytest.raises(ResourceLimitError, match=r"output 'y' returned 20000 values"):
        model.predict(np.array([[19_999.0]]))


def test_a_constant_expand_bomb_is_refused_before_it_runs():
    shape = numpy_helper.from_array(np.array([1, 10**9], np.int64), "shape")
    nodes = [
        helper.make_node("Expand", ["x", "shape"], ["big"]),
        helper.make_node("ReduceSum", ["big"], ["y"], keepdims=1),
    ]
    data = _model(nodes, [_x()], [_y((1, 1))], [shape], opset=13)
    with pytest.raises(ResourceLimitError, match=r"tensor 'big' holds at least 1000000000 values"):
        sx.ONNXModel(data)


def loop_bomb() -> bytes:
    """A Loop of 10**12 iterations: no shape is wrong, it only never ends."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "acc_in"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, ["N", 1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, ["N", 1]),
        ],
    )
    trips = numpy_helper.from_array(np.array(10**12, np.int64), "trips")
    cond = numpy_helper.from_array(np.array(True), "cond")
    return _model(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)],
        [_x()],
        [_y()],
        [trips, cond],
    )


def test_a_call_that_runs_too_long_is_stopped_by_the_timeout():
    model = sx.ONNXModel(loop_bomb(), output="y", timeout=0.5)
    start = time.perf_counter()
    with pytest.raises(ResourceLimitError, match=r"output 'y' took longer than timeout=0.5 s"):
        model.predict(np.zeros((2, 1)))
    assert time.perf_counter() - start < 10


FAILURES = [
    # (graph, keyword arguments, error, fragment naming the input or output)
    (lambda: no_inputs(), {}, ModelLoadError, "no inputs"),
    (
        lambda: _model(
            [helper.make_node("Cast", ["x"], ["y"], to=1)], [_x(kind=TensorProto.BOOL)], [_y()]
        ),
        {},
        ModelLoadError,
        "input 'x' has unsupported type tensor(bool)",
    ),
    (
        lambda: _model([helper.make_node("Identity", ["x"], ["y"])], [_x(())], [_y(())]),
        {},
        ModelLoadError,
        "input 'x' is a scalar",
    ),
    (
        lambda: _model(
            [
                helper.make_node("Identity", ["a"], ["y"]),
                helper.make_node("Identity", ["b"], ["z"]),
            ],
            [_x((4, 1), "a"), _x((8, 1), "b")],
            [_y((4, 1)), _y((8, 1), "z")],
        ),
        {},
        ModelLoadError,
        "fix different batch sizes ({'a': 4, 'b': 8})",
    ),
    (
        lambda: _model([helper.make_node("Identity", ["x"], ["y"])], [_x(("N", "T", 3))], [_y()]),
        {},
        ConfigurationError,
        "input 'x' has shape ['N', 'T', 3] with free axes",
    ),
    (
        lambda: declared_outputs(3),
        {"feature_names": ["a", "b"]},
        ConfigurationError,
        "input 'x' has 1 columns",
    ),
    (
        lambda: declared_outputs(1),
        {"output": "z"},
        ConfigurationError,
        "unknown output 'z'; outputs: ['y']",
    ),
]


@pytest.mark.parametrize(("make", "kwargs", "error", "fragment"), FAILURES)
def test_every_load_failure_is_ours_and_names_what_is_wrong(make, kwargs, error, fragment):
    with pytest.raises(error) as caught:
        sx.ONNXModel(make(), **kwargs)
    assert isinstance(caught.value, SurrogateXAIError)
    assert fragment in str(caught.value)


def test_an_onnxruntime_failure_while_predicting_is_wrapped_and_names_the_input():
    # The graph only works for batches of 3 (a constant reshape inside).
    shape = numpy_helper.from_array(np.array([3, 1], np.int64), "shape")
    data = _model([helper.make_node("Reshape", ["x", "shape"], ["y"])], [_x()], [_y()], [shape])
    model = sx.ONNXModel(data, output="y")
    with pytest.raises(ModelEvaluationError, match="while predicting") as caught:
        model.predict(np.zeros((2, 1)))
    assert "onnxruntime" in type(caught.value.__cause__).__module__


def test_text_output_is_refused_when_predicting_naming_it():
    data = _model(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.STRING)],
        [_x()],
        [helper.make_tensor_value_info("y", TensorProto.STRING, ["N", 1])],
    )
    model = sx.ONNXModel(data, output="y")
    with pytest.raises(ModelEvaluationError, match="output 'y' holds"):
        model.predict(np.zeros((2, 1)))


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crafted")
    (folder / "noinputs.onnx").write_bytes(no_inputs())
    (folder / "bomb.onnx").write_bytes(declared_outputs(100_000_000))
    pd.DataFrame({"x": [0.0, 1.0, 2.0]}).to_csv(folder / "rows.csv", index=False)
    return folder


@pytest.mark.parametrize("name", ["noinputs.onnx", "bomb.onnx"])
@pytest.mark.parametrize("command", ["explain", "serve"])
def test_the_cli_gives_one_line_for_a_crafted_file(cli_files, name, command, attack):
    args = [name, "--background", "rows.csv"]
    args += ["--data", "rows.csv"] if command == "explain" else ["--port", "0", "--no-auth"]
    proc = attack.cli(
        subprocess.run(
            [sys.executable, "-m", "surrogate_xai.cli", command, *args],
            capture_output=True,
            text=True,
            cwd=cli_files,
            timeout=120,
        )
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert ("no inputs" if name == "noinputs.onnx" else "output 'y' declares") in lines[0]
