"""From raw rows to the trees' scores and on to the graph's output; the margin as a Model.

:class:`TreeFunction` is everything read from one ONNX graph: the column chains in front of
the trees, the trees, and the map from their raw scores (the *margin*: base values plus leaf
weights, before LOGISTIC / SOFTMAX) to the explained output. The map mirrors onnxruntime's
rules, including its binary-classifier conventions (one score ``s`` becomes ``[σ(−s), σ(s)]``
or ``[1 − s, s]``), and every reading is checked against the graph itself before it is used:
a mismatch is refused with the row, output and both numbers.

:class:`TreeMarginModel` puts the margin behind the ``Model`` boundary, so any explainer can
explain log-odds (also for XGBoost and LightGBM graphs from onnxmltools, which carry no margin
output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import TreeGraphError
from ..model import BaseModel
from ..onnx_model import ONNXModel
from .graph import Ensemble, read_tree_node
from .preprocess import GraphPlan, OutputStep, apply_chain, plan_graph

#: Rows of the graph's own output compared with the parsed trees, at most, per check.
CHECK_ROWS = 2_000
#: Largest difference accepted between the parsed trees and the graph, relative to the
#: output's scale (onnxruntime sums float32 leaf weights; the parse sums them in float64).
CHECK_TOLERANCE = 1e-5


@dataclass(frozen=True)
class OutputMap:
    """Raw scores -> the graph output, as onnxruntime computes it."""

    ensemble: Ensemble
    steps: tuple[OutputStep, ...]

    @property
    def margin_targets(self) -> list[int]:
        """The score columns that carry information: a binary classifier scores one class."""
        e = self.ensemble
        if self._binary_single:
            return [e.class_ids[0]]
        return list(range(e.n_targets))

    @property
    def _binary_single(self) -> bool:
        e = self.ensemble
        return e.op_type == "TreeEnsembleClassifier" and e.n_targets == 2 and len(e.class_ids) == 1

    @property
    def affine(self) -> bool:
        """The output is an affine function of the margin (exact values follow from it)."""
        e = self.ensemble
        if self._binary_single:
            first = e.weights_positive or e.post_transform != "LOGISTIC"
        else:
            first = e.post_transform == "NONE"
        return first and all(
            s.kind == "identity" or (s.kind == "arith") or (s.kind == "rarith" and s.op != "Div")
            for s in self.steps
        )

    def check_supported(self) -> None:
        e = self.ensemble
        if self._binary_single:
            if e.class_ids != (0,) or e.n_base_values == 2 or e.post_transform == "PROBIT":
                raise TreeGraphError(
                    f"a binary {e.op_type} scoring class {e.class_ids[0]} with "
                    f"{e.n_base_values} base values and {e.post_transform}: onnxruntime's rules "
                    "for this layout are not followed"
                )
        elif e.post_transform == "PROBIT":
            raise TreeGraphError("post_transform PROBIT is not followed")

    def __call__(self, margins: np.ndarray) -> np.ndarray:
        """Outputs of shape ``(n_samples, n_outputs)`` from margins ``(n_samples, n_margins)``
        (the columns :attr:`margin_targets`)."""
        e = self.ensemble
        m = np.asarray(margins, dtype=np.float64)
        if self._binary_single:
            s = m[:, 0]
            if e.weights_positive:
                y = np.stack([1.0 - s, s], axis=1)
            elif e.post_transform == "LOGISTIC":
                y = np.stack([_logistic(-s), _logistic(s)], axis=1)
            else:
                y = np.stack([-s, s], axis=1)
        else:
            y = _post(m, e.post_transform)
        for step in self.steps:
            y = step.apply(y)
        return y

    def linear_part(self, n_margins: int) -> tuple[np.ndarray, np.ndarray]:
        """``A, c`` with ``output = margin @ A + c``, for an affine map."""
        c = self(np.zeros((1, n_margins)))[0]
        A = self(np.eye(n_margins)) - c
        return A, c


def _logistic(s: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-s)))


def _post(m: np.ndarray, post: str) -> np.ndarray:
    if post == "NONE":
        return m
    if post == "LOGISTIC":
        return _logistic(m)
    if post == "SOFTMAX":
        e = np.exp(m - m.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    if post == "SOFTMAX_ZERO":
        nz = m != 0
        big = np.where(nz, m, -np.inf).max(axis=1, keepdims=True)
        e = np.where(nz, np.exp(m - np.where(np.isfinite(big), big, 0.0)), 0.0)
        total = e.sum(axis=1, keepdims=True)
        return np.asarray(np.divide(e, total, out=np.zeros_like(e), where=total > 0))
    raise TreeGraphError(f"post_transform {post} is not followed")


@dataclass(frozen=True, eq=False)
class TreeFunction:
    """The function an ONNX graph computes, read as column chains + trees + output map."""

    plan: GraphPlan
    ensemble: Ensemble
    output: OutputMap
    feature_names: tuple[str, ...]

    @property
    def n_margins(self) -> int:
        return len(self.output.margin_targets)

    def raw_column(self, t: int) -> int:
        """The raw model column that tree input column ``t`` is computed from."""
        return self.plan.columns[t].raw

    def features(self, columns: list[np.ndarray]) -> np.ndarray:
        """The trees' input, shape ``(n_samples, n_inputs)``, from raw column values
        (``columns[j]`` holds model column ``j``: numbers, or category strings)."""
        n = len(columns[0]) if columns else 0
        Z = np.empty((n, len(self.plan.columns)), dtype=np.float64)
        for t, col in enumerate(self.plan.columns):
            Z[:, t] = apply_chain(columns[col.raw], col.steps)
        return Z

    def frame_columns(self, X: pd.DataFrame | np.ndarray) -> list[np.ndarray]:
        """Raw column values of a frame or array in the model's columns."""
        if isinstance(X, pd.DataFrame):
            return [X[c].to_numpy() for c in self.feature_names]
        arr = np.asarray(X)
        return [arr[:, j] for j in range(arr.shape[1])]

    def margins_of(self, Z: np.ndarray) -> np.ndarray:
        return self.ensemble.margins(Z, self.output.margin_targets)

    def check(self, model: ONNXModel, X: pd.DataFrame | np.ndarray, what: str) -> float:
        """Compare the parsed trees with the graph's output on (up to CHECK_ROWS) rows of
        ``X``; returns the largest difference relative to the output's scale.

        Raises
        ------
        TreeGraphError
            Naming the row and output where they differ beyond :data:`CHECK_TOLERANCE`.
        """
        part = X.iloc[:CHECK_ROWS] if isinstance(X, pd.DataFrame) else np.asarray(X)[:CHECK_ROWS]
        mine = self.output(self.margins_of(self.features(self.frame_columns(part))))
        return compare_outputs(mine, model.predict(part), model.output_names, what)


def compare_outputs(
    mine: np.ndarray, graph: np.ndarray, names: list[str], what: str, offset: int = 0
) -> float:
    """The largest difference between outputs computed from the parsed trees and the graph's
    own, relative to each output's scale.

    Raises
    ------
    TreeGraphError
        Naming the row and output where they differ beyond :data:`CHECK_TOLERANCE`.
    """
    if mine.shape != graph.shape:
        raise TreeGraphError(
            f"the trees read from the graph give {mine.shape[1]} outputs and the graph "
            f"{graph.shape[1]}: the output layout is not understood"
        )
    scale = np.maximum(1.0, np.abs(graph).max(axis=0, initial=0.0))
    rel = np.nan_to_num(np.abs(mine - graph) / scale, nan=np.inf)
    worst = float(rel.max(initial=0.0))
    if worst > CHECK_TOLERANCE:
        row, k = np.unravel_index(int(np.argmax(rel)), rel.shape)
        raise TreeGraphError(
            f"the trees read from the graph give {mine[row, k]!r} for output {names[k]!r} at "
            f"row {offset + row} of {what}, the graph gives {graph[row, k]!r}: the graph is "
            "not understood exactly, so it is not explained from its trees"
        )
    return worst


def read_function(model: ONNXModel) -> TreeFunction:
    """Read the trees behind an ONNXModel's explained output.

    Raises
    ------
    TreeGraphError
        If the graph holds no single tree ensemble, or anything between the inputs and the
        output cannot be followed exactly.
    """
    import onnx

    proto = onnx.load_from_string(model.model_bytes)
    described = model.describe()
    plan = plan_graph(
        proto, model.feature_names, described["input_mode"] == "tensor", described["output"]
    )
    ensemble = read_tree_node(plan.tree_node, len(plan.columns), plan.input_dtype)
    out = OutputMap(ensemble, plan.output_steps)
    out.check_supported()
    return TreeFunction(plan, ensemble, out, tuple(model.feature_names))


def margin_names(function: TreeFunction) -> list[str]:
    e = function.ensemble
    labels = e.class_labels
    if labels and function.output.margin_targets == [0] and len(labels) == 2:
        # One score for two classes: the log-odds (or score) of the second class.
        return [f"margin[{labels[1]}]"]
    return [
        f"margin[{labels[t]}]" if labels else ("margin" if e.n_targets == 1 else f"margin[{t}]")
        for t in function.output.margin_targets
    ]


class TreeMarginModel(BaseModel):
    """The raw score (margin) of the tree ensemble in an ONNX graph, as a Model.

    The margin is computed from the trees read out of the graph: base values plus leaf
    weights, before the graph's LOGISTIC / SOFTMAX. Log-odds for a binary classifier,
    per-class scores for a multiclass one, the prediction itself for a regressor. The first
    rows predicted (when explaining: the background) are also run through the graph, and the
    reading is refused unless the graph's own output follows from these margins.

    Parameters
    ----------
    model : ONNXModel
        The graph; its chosen output (``output=``) is the one the check compares with.

    Raises
    ------
    TreeGraphError
        If the graph's trees cannot be read exactly (at construction) or do not reproduce
        the graph's output (at the first prediction).
    """

    def __init__(self, model: ONNXModel) -> None:
        super().__init__()
        if not isinstance(model, ONNXModel):
            raise TreeGraphError(f"TreeMarginModel reads an ONNXModel, got {type(model).__name__}")
        self.onnx_model = model
        self.function = read_function(model)
        self._feature_names = model.feature_names
        self._feature_kinds = model.feature_kinds
        self._known_categories = model.known_categories
        self._allow_missing = model.allow_missing
        self._output_names = margin_names(self.function)
        self._identity = model.identity
        #: Largest difference from the graph seen by :meth:`check` (None: not checked yet).
        #: Two threads predicting first may both check; the check is the same either way.
        self._checked: float | None = None

    @property
    def input_dtype(self) -> np.dtype:
        return self.onnx_model.input_dtype

    @property
    def model_bytes(self) -> bytes:
        """The ONNX bytes the trees were read from."""
        return self.onnx_model.model_bytes

    def input_limits(self) -> dict[str, tuple[float, float]]:
        """The graph's input ranges (see :meth:`ONNXModel.input_limits`)."""
        return self.onnx_model.input_limits()

    def check_input_range(self, X: pd.DataFrame | np.ndarray, what: str = "X") -> None:
        """Refuse values the graph's input cannot hold (see ONNXModel.check_input_range)."""
        self.onnx_model.check_input_range(X, what)

    def check(self, X: pd.DataFrame | np.ndarray, what: str = "the rows given") -> float:
        """Compare the margins' image with the graph's output on ``X`` (see TreeFunction)."""
        worst = self.function.check(self.onnx_model, X, what)
        self._checked = worst if self._checked is None else max(self._checked, worst)
        return worst

    def _predict_chunk(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if self._checked is None:
            self.check(X, "the first rows predicted")
        f = self.function
        return f.margins_of(f.features(f.frame_columns(X)))

    def describe(self) -> dict[str, Any]:
        base = self.onnx_model.describe()
        return {
            **super().describe(),
            "format": "onnx",
            "sha256": self.identity,
            "output": "margin",
            "graph_output": base["output"],
            "input_mode": base["input_mode"],
            "post_transform": self.function.ensemble.post_transform,
            "checked_against_graph": self._checked is not None,
            "parity": base.get("parity"),
        }
