"""Following an ONNX graph around its tree ensemble: preprocessing in front, outputs behind.

In front of the trees, skl2onnx pipelines put scalers, imputers and one-hot encoders, joined
by ``Concat``. Each of those works column by column, so every column the trees read is a
function of exactly **one** raw input column: a chain of element-wise steps (cast, impute,
scale, an indicator of one category). That is what makes exact explanation in the raw feature
space possible: a hybrid row that takes raw column ``j`` from ``x`` takes every tree column
derived from ``j`` from ``x`` (a one-hot block moves as one feature, as everywhere else in
this package). A node that mixes columns (a matrix product, a normaliser, PCA) or one this
module does not know is refused with :class:`~surrogate_xai.exceptions.TreeGraphError`, which
names it; the explainer then falls back to sampling and records why.

Behind the trees, the chosen output may pass through ``Identity``, ``Cast``, ``ZipMap`` and
multiplications or additions by constants (onnxmltools multiplies LightGBM's probabilities
by one); those are recorded as :class:`OutputStep` and replayed by the output map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import TreeGraphError
from .graph import TREE_OPS

_ELEM_TYPES = {1: np.float32, 11: np.float64, 7: np.int64, 6: np.int32, 8: np.object_}
#: Element-wise nodes with a constant operand, and how they combine ``(value, constant)``.
_ARITH = {
    "Add": lambda v, c: v + c,
    "Sub": lambda v, c: v - c,
    "Mul": lambda v, c: v * c,
    "Div": lambda v, c: v / c,
}


@dataclass(frozen=True)
class Step:
    """One element-wise step of a column chain: ``kind`` with its constant(s)."""

    kind: str  # cast | scale | arith | rarith | impute | onehot
    dtype: np.dtype
    a: Any = None
    b: Any = None


@dataclass(frozen=True)
class Column:
    """A column of some tensor: raw input column ``raw`` after ``steps``."""

    raw: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class _Tensor:
    columns: tuple[Column, ...]
    dtype: np.dtype
    rank3: bool = False  # (N, 1, k), as OneHotEncoder returns for an (N, 1) input


def apply_chain(values: np.ndarray, steps: tuple[Step, ...]) -> np.ndarray:
    """A raw column's values after a chain of steps (in each step's element type)."""
    v: Any = values
    for s in steps:
        if s.kind == "cast":
            v = np.asarray(v).astype(s.dtype) if s.dtype != np.object_ else np.asarray(v)
        elif s.kind == "scale":
            v = ((v - s.dtype.type(s.a)) * s.dtype.type(s.b)).astype(s.dtype)
        elif s.kind == "arith":
            v = np.asarray(_ARITH[s.a](v, s.dtype.type(s.b))).astype(s.dtype)
        elif s.kind == "rarith":
            v = np.asarray(_ARITH[s.a](s.dtype.type(s.b), v)).astype(s.dtype)
        elif s.kind == "impute":
            replaced = np.isnan(v) if np.isnan(s.a) else (v == s.dtype.type(s.a))
            v = np.where(replaced, s.dtype.type(s.b), v).astype(s.dtype)
        elif s.kind == "onehot":
            v = (np.asarray(v).astype(str) == s.a).astype(s.dtype)
        else:  # pragma: no cover - steps are built in this module only
            raise ValueError(s.kind)
    return np.asarray(v)


@dataclass(frozen=True)
class OutputStep:
    """A node between the trees and the chosen output: ``kind`` (identity | arith | rarith)
    with an operator name and a constant."""

    kind: str
    op: str = ""
    constant: Any = None

    def apply(self, y: np.ndarray) -> np.ndarray:
        if self.kind == "arith":
            return np.asarray(_ARITH[self.op](y, self.constant), dtype=np.float64)
        if self.kind == "rarith":
            return np.asarray(_ARITH[self.op](self.constant, y), dtype=np.float64)
        return y


@dataclass(frozen=True)
class GraphPlan:
    """Where the trees sit in a graph and how to get from the raw inputs to them and on."""

    tree_node: Any
    columns: tuple[Column, ...]  # one per column of the tree node's input
    input_dtype: np.dtype
    output_steps: tuple[OutputStep, ...]
    score_output: str  # the tree node's output the chosen output derives from


def _fail(node: Any, why: str) -> TreeGraphError:
    return TreeGraphError(f"node {node.name or node.op_type!r} ({node.op_type}): {why}")


def plan_graph(proto: Any, feature_names: list[str], tensor_mode: bool, output: str) -> GraphPlan:
    """Trace the graph of ``proto`` from its inputs to ``output`` through one tree node.

    Parameters
    ----------
    proto : onnx.ModelProto
    feature_names : list of str
        The model's raw columns (one per input in column mode, the tensor's columns else).
    tensor_mode : bool
        Whether the graph takes one float tensor.
    output : str
        The graph output being explained.

    Raises
    ------
    TreeGraphError
        No tree node or several, a node on the way this module cannot follow exactly.
    """
    import onnx

    graph = proto.graph
    trees = [n for n in graph.node if n.op_type in TREE_OPS and n.domain == "ai.onnx.ml"]
    if len(trees) != 1:
        raise TreeGraphError(
            f"the graph holds {len(trees)} ai.onnx.ml tree-ensemble nodes; exactly one is "
            "followed (sums of several ensembles are not read)"
        )
    tree = trees[0]
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.output:
            value = next((a for a in n.attribute if a.name == "value"), None)
            if value is not None:
                constants[n.output[0]] = onnx.numpy_helper.to_array(value.t)
    producer = {o: n for n in graph.node for o in n.output}
    tensors: dict[str, _Tensor] = {}
    for k, inp in enumerate(graph.input):
        if inp.name in constants:
            continue
        elem = inp.type.tensor_type.elem_type
        dtype = np.dtype(_ELEM_TYPES.get(elem, np.float64))
        if tensor_mode:
            cols = tuple(Column(j, (Step("cast", dtype),)) for j in range(len(feature_names)))
        else:
            if inp.name not in feature_names:
                raise TreeGraphError(f"graph input {inp.name!r} is not a model column")
            cols = (Column(feature_names.index(inp.name), (Step("cast", dtype),)),)
        tensors[inp.name] = _Tensor(cols, dtype)
        if tensor_mode and k > 0:
            raise TreeGraphError("a single-tensor model with several graph inputs")

    def resolve(name: str) -> _Tensor:
        if name in tensors:
            return tensors[name]
        node = producer.get(name)
        if node is None:
            raise TreeGraphError(f"tensor {name!r} has no producer and is not an input")
        tensors[name] = _follow(
            node, [resolve(i) for i in node.input if i not in constants], constants
        )
        return tensors[name]

    x = resolve(tree.input[0])
    if x.rank3:
        raise _fail(tree, "the trees read a 3-D tensor")
    score = tree.output[1] if tree.op_type == "TreeEnsembleClassifier" else tree.output[0]
    steps = _output_path(graph, producer, constants, score, output)
    return GraphPlan(tree, x.columns, x.dtype, steps, score)


def _const(node: Any, constants: dict[str, np.ndarray]) -> tuple[np.ndarray, bool]:
    """The constant operand of a binary node and whether it comes first."""
    first, second = node.input[0], node.input[1]
    if second in constants and first not in constants:
        return np.asarray(constants[second]), False
    if first in constants and second not in constants:
        return np.asarray(constants[first]), True
    raise _fail(node, "an arithmetic node without exactly one constant operand")


def _attr(node: Any, name: str, default: Any = None) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _per_column(node: Any, values: Any, width: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 1:
        return np.full(width, arr[0])
    if arr.size != width:
        raise _fail(node, f"{arr.size} {what} for {width} columns")
    return arr


def _follow(node: Any, inputs: list[_Tensor], constants: dict[str, np.ndarray]) -> _Tensor:
    """The columns of a node's output, or TreeGraphError when they do not follow column by
    column from its inputs."""
    op = node.op_type
    if op == "Identity" and len(inputs) == 1:
        return inputs[0]
    if op == "Cast" and len(inputs) == 1:
        dtype = np.dtype(_ELEM_TYPES.get(int(_attr(node, "to")), np.float64))
        t = inputs[0]
        cols = tuple(Column(c.raw, (*c.steps, Step("cast", dtype))) for c in t.columns)
        return _Tensor(cols, dtype, t.rank3)
    if op == "Concat":
        axis = int(_attr(node, "axis", 1))
        rank3 = {t.rank3 for t in inputs}
        if len(rank3) != 1 or len({t.dtype for t in inputs}) != 1:
            raise _fail(node, "joins tensors of different shapes or types")
        r3 = rank3.pop()
        if axis not in ((-1, 2) if r3 else (-1, 1)):
            raise _fail(node, f"joins along axis {axis}, not the column axis")
        return _Tensor(tuple(c for t in inputs for c in t.columns), inputs[0].dtype, r3)
    if op in ("Reshape", "Flatten", "Squeeze") and len(inputs) == 1:
        t = inputs[0]
        if op == "Reshape":
            shape = np.asarray(_const_of(node, 1, constants)).ravel().tolist()
            if shape not in ([-1, len(t.columns)], [0, len(t.columns)]):
                raise _fail(node, f"reshapes to {shape}, not to the same columns")
        return _Tensor(t.columns, t.dtype, False)
    if op == "Scaler" and len(inputs) == 1:
        t = inputs[0]
        offset = _per_column(node, _attr(node, "offset", [0.0]), len(t.columns), "offsets")
        scale = _per_column(node, _attr(node, "scale", [1.0]), len(t.columns), "scales")
        dtype = np.dtype(np.float32) if t.dtype != np.float64 else t.dtype
        cols = tuple(
            Column(c.raw, (*c.steps, Step("cast", dtype), Step("scale", dtype, o, s)))
            for c, o, s in zip(t.columns, offset, scale, strict=True)
        )
        return _Tensor(cols, dtype)
    if op == "Imputer" and len(inputs) == 1:
        t = inputs[0]
        imputed = _attr(node, "imputed_value_floats")
        if imputed is None or _attr(node, "imputed_value_int64s") is not None:
            raise _fail(node, "integer imputation is not followed")
        values = _per_column(node, imputed, len(t.columns), "imputed values")
        replaced = float(_attr(node, "replaced_value_float", 0.0))
        cols = tuple(
            Column(c.raw, (*c.steps, Step("impute", t.dtype, replaced, v)))
            for c, v in zip(t.columns, values, strict=True)
        )
        return _Tensor(cols, t.dtype)
    if op == "OneHotEncoder" and len(inputs) == 1:
        t = inputs[0]
        if len(t.columns) != 1:
            raise _fail(node, "one-hot encodes several columns at once")
        cats = _attr(node, "cats_strings") or _attr(node, "cats_int64s")
        if not cats:
            raise _fail(node, "a one-hot encoder without categories")
        labels = [c.decode() if isinstance(c, bytes) else str(c) for c in cats]
        c = t.columns[0]
        f32 = np.dtype(np.float32)
        cols = tuple(Column(c.raw, (*c.steps, Step("onehot", f32, lab))) for lab in labels)
        return _Tensor(cols, f32, rank3=True)
    if op in _ARITH and len(inputs) == 1:
        const, first = _const(node, constants)
        t = inputs[0]
        values = _per_column(node, const, len(t.columns), "constants")
        kind = "rarith" if first else "arith"
        cols = tuple(
            Column(c.raw, (*c.steps, Step(kind, t.dtype, op, v)))
            for c, v in zip(t.columns, values, strict=True)
        )
        return _Tensor(cols, t.dtype, t.rank3)
    if op in ("Gather", "ArrayFeatureExtractor") and len(inputs) == 1:
        axis = int(_attr(node, "axis", 0 if op == "Gather" else -1))
        if op == "Gather" and axis != 1:
            raise _fail(node, f"gathers along axis {axis}, not the column axis")
        index = np.asarray(_const_of(node, 1, constants)).ravel()
        t = inputs[0]
        return _Tensor(tuple(t.columns[int(i)] for i in index), t.dtype)
    raise _fail(
        node,
        "this node is not followed column by column (only Identity, Cast, "
        "Concat, Reshape, Scaler, Imputer, OneHotEncoder, arithmetic with a "
        "constant and column selection are)",
    )


def _const_of(node: Any, position: int, constants: dict[str, np.ndarray]) -> np.ndarray:
    if len(node.input) <= position or node.input[position] not in constants:
        raise _fail(node, f"input {position} is not a constant")
    return constants[node.input[position]]


def _output_path(
    graph: Any,
    producer: dict[str, Any],
    constants: dict[str, np.ndarray],
    score: str,
    output: str,
) -> tuple[OutputStep, ...]:
    """The nodes from the tree's score output to the graph output ``output``."""
    steps: list[OutputStep] = []
    name = output
    while name != score:
        node = producer.get(name)
        if node is None:
            raise TreeGraphError(
                f"output {output!r} does not derive from the trees' scores {score!r}"
            )
        op = node.op_type
        if op in ("Identity", "ZipMap", "Cast"):
            if op == "Cast" and _ELEM_TYPES.get(int(_attr(node, "to"))) not in (
                np.float32,
                np.float64,
            ):
                raise _fail(node, "casts the scores to a non-float type")
            steps.append(OutputStep("identity"))
        elif op in _ARITH:
            const, first = _const(node, constants)
            steps.append(
                OutputStep("rarith" if first else "arith", op, np.asarray(const, dtype=np.float64))
            )
        else:
            raise _fail(node, "this node between the trees and the output is not followed")
        name = next(i for i in node.input if i not in constants)
    return tuple(reversed(steps))
