"""Reading an ONNX graph as it comes: its inputs as named flat columns, and which output to explain.

Explainers perturb flat rows of named columns. A graph's inputs are tensors of any rank, one
or several, each with a batch axis first:

* ``(batch, d)`` float: ``d`` columns (``x0 .. x{d-1}`` unless named);
* ``(batch, 1)`` per raw column (skl2onnx over a DataFrame): the input's name is the column;
* ``(batch, k)`` several multi-column inputs (skl2onnx's ``num[None, 3]`` + ``cat[None, 2]``):
  ``num[0], num[1], ...``, string tensors as categorical columns;
* ``(batch, T, F)`` a sequence: :func:`~surrogate_xai.groups.sequence_feature_names`
  (``t{step}_f{j}``), and ``(batch, C, H, W)`` an image:
  :func:`~surrogate_xai.groups.image_feature_names` of ``(C, H, W)`` (``c{k}_p{row}_{col}``),
  so that ``groups.time_steps`` and ``groups.image_patches`` of the same shape group them.

The batch axis may be frozen (``torch.onnx.export`` without dynamic axes fixes it to the
example's size): then every call must carry exactly that many rows, which
:class:`~surrogate_xai.ONNXModel` arranges by padding the last chunk.

A model file is executable input: a crafted one can declare an output of 1e8 columns, or an
intermediate tensor of gigabytes. :func:`static_sizes` finds what shape inference can tell
about such tensors before anything runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import ConfigurationError, ModelLoadError
from .groups import image_feature_names, sequence_feature_names

__all__ = [
    "InputSlot",
    "OutputChoice",
    "OutputSpec",
    "choose_output",
    "graph_facts",
    "read_inputs",
    "static_sizes",
]

NUMERIC_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
STRING_TYPE = "tensor(string)"
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)", "tensor(float16)")
# Output names that converters use for un-squashed scores.
_MARGIN_HINTS = ("margin", "raw", "logit", "score")


@dataclass(frozen=True)
class InputSlot:
    """One graph input: where its values sit among the flat columns, and its shape."""

    name: str
    #: numpy type of its elements, ``object`` for a string tensor.
    dtype: Any
    #: the shape after the batch axis, e.g. ``(1, 8, 8)``; ``()`` for a rank-1 input.
    inner: tuple[int, ...]
    #: the flat columns it takes, in C order.
    columns: tuple[str, ...]

    @property
    def width(self) -> int:
        return math.prod(self.inner)

    @property
    def text(self) -> bool:
        return self.dtype is object


def _default_names(name: str, inner: tuple[int, ...], alone: bool) -> list[str]:
    """Column names of one input's flat values (see the module docstring)."""
    width = math.prod(inner)
    if len(inner) == 2:
        own = sequence_feature_names(inner[0], inner[1])
    elif len(inner) == 3:
        own = image_feature_names(inner)
    elif len(inner) > 3:
        own = ["x" + "_".join(map(str, idx)) for idx in np.ndindex(*inner)]
    elif width == 1:
        return [name]
    else:
        return [f"x{j}" for j in range(width)] if alone else [f"{name}[{j}]" for j in range(width)]
    return own if alone else [f"{name}.{n}" for n in own]


def _inner_shape(node: Any, free: int | None) -> tuple[int, ...]:
    """The fixed shape after the batch axis; one free axis is solved from ``free`` values."""
    dims = list(node.shape[1:])
    unknown = [i for i, d in enumerate(dims) if not isinstance(d, int)]
    if not unknown:
        return tuple(int(d) for d in dims)
    shown = [d if isinstance(d, int) else str(d or "?") for d in node.shape]
    known = math.prod(int(d) for d in dims if isinstance(d, int))
    if free is None or len(unknown) > 1 or known == 0 or free % known:
        if len(node.shape) == 2:
            raise ConfigurationError(f"input {node.name!r} has no fixed width; pass feature_names=")
        raise ConfigurationError(
            f"input {node.name!r} has shape {shown} with free axes after the batch axis; pass "
            f"feature_names= with one name per value (a multiple of {known}) to fix one axis"
        )
    dims[unknown[0]] = free // known
    return tuple(int(d) for d in dims)


def read_inputs(
    nodes: Sequence[Any], feature_names: Sequence[str] | None, recorded: Sequence[str] | None
) -> tuple[list[InputSlot], int | None]:
    """The graph's inputs as slots of named columns, and the frozen batch size (or None).

    Parameters
    ----------
    nodes : onnxruntime ``NodeArg`` list (``session.get_inputs()``)
    feature_names : the user's names for all flat columns, in input order, or None
    recorded : the names an export recorded in the file's metadata, or None

    Raises
    ------
    ModelLoadError
        No inputs, an unsupported element type, an input without a batch axis, batch sizes
        that disagree, or recorded names that do not fit the graph.
    ConfigurationError
        ``feature_names`` of the wrong length, or an input whose shape cannot be fixed.
    """
    if not nodes:
        raise ModelLoadError("the graph declares no inputs: there is nothing to explain")
    batches: dict[str, int] = {}
    for node in nodes:
        if node.type not in NUMERIC_TYPES and node.type != STRING_TYPE:
            raise ModelLoadError(f"input {node.name!r} has unsupported type {node.type}")
        if len(node.shape) == 0:
            raise ModelLoadError(
                f"input {node.name!r} is a scalar: it has no batch axis to put rows on"
            )
        first = node.shape[0]
        if isinstance(first, int):
            if first < 1:
                raise ModelLoadError(f"input {node.name!r} fixes its batch axis to {first} rows")
            batches[node.name] = first
    if len(set(batches.values())) > 1:
        raise ModelLoadError(
            f"the inputs fix different batch sizes ({batches}): no call can satisfy all of them"
        )
    given = None if feature_names is None else [str(n) for n in feature_names]
    # Only a lone input can take its width from the names given.
    free = len(given) if given is not None and len(nodes) == 1 else None
    inners = [_inner_shape(node, free) for node in nodes]
    for node, inner in zip(nodes, inners, strict=True):
        if 0 in inner:
            raise ModelLoadError(f"input {node.name!r} has an axis of length 0: {node.shape}")
    widths = [math.prod(inner) for inner in inners]
    total = sum(widths)
    alone = len(nodes) == 1
    if given is not None:
        names = given
        if len(names) != total:
            where = f"input {nodes[0].name!r} has" if alone else f"the {len(nodes)} inputs have"
            raise ConfigurationError(
                f"feature_names has {len(names)} names but {where} {total} columns"
            )
    elif recorded is not None:
        names = list(recorded)
        if len(names) != total:
            raise ModelLoadError(
                f"the file's metadata names {len(names)} feature columns but its inputs take "
                f"{total}: the metadata does not describe this graph"
            )
    else:
        names = [
            n
            for node, inner in zip(nodes, inners, strict=True)
            for n in _default_names(node.name, inner, alone)
        ]
    if len(set(names)) != len(names):
        raise ConfigurationError(
            f"the inputs' columns would have duplicate names; pass feature_names= ({total} names)"
        )
    slots, start = [], 0
    for node, inner, width in zip(nodes, inners, widths, strict=True):
        dtype = object if node.type == STRING_TYPE else NUMERIC_TYPES[node.type]
        slots.append(InputSlot(node.name, dtype, inner, tuple(names[start : start + width])))
        start += width
    return slots, next(iter(batches.values()), None)


def graph_facts(proto: Any) -> tuple[dict[tuple[str, int], list[str]], dict[str, list[str]]]:
    """Categories of OneHotEncoder nodes fed by a graph input (directly, or through a
    constant column ``Gather`` of a multi-column input), keyed by ``(input, column)``; and
    class labels of classifier nodes."""
    inputs = {i.name for i in proto.graph.input}
    constants = {t.name: t for t in proto.graph.initializer}
    column_of: dict[str, tuple[str, int]] = {name: (name, 0) for name in inputs}
    categories: dict[tuple[str, int], list[str]] = {}
    labels: dict[str, list[str]] = {}
    for node in proto.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type in ("Gather", "ArrayFeatureExtractor") and len(node.input) == 2:
            index = constants.get(node.input[1])
            axis = attrs["axis"].i if "axis" in attrs else (0 if node.op_type == "Gather" else 1)
            if node.input[0] in inputs and index is not None and axis in (1, -1):
                import onnx.numpy_helper

                picked = onnx.numpy_helper.to_array(index).ravel()
                if picked.size == 1:
                    column_of[node.output[0]] = (node.input[0], int(picked[0]))
        if node.op_type == "OneHotEncoder" and node.input and node.input[0] in column_of:
            if "cats_strings" in attrs:
                cats = [s.decode() for s in attrs["cats_strings"].strings]
            elif "cats_int64s" in attrs:
                cats = [str(v) for v in attrs["cats_int64s"].ints]
            else:
                continue
            categories.setdefault(column_of[node.input[0]], []).extend(cats)
        for key in ("classlabels_strings", "classlabels_int64s"):
            if key in attrs and node.op_type.endswith("Classifier"):
                attr = attrs[key]
                values = (
                    [s.decode() for s in attr.strings]
                    if attr.strings
                    else [str(v) for v in attr.ints]
                )
                labels[node.op_type] = values
    return categories, labels


# -- outputs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutputSpec:
    """One graph output as declared: its type and shape (``None`` where an axis is free)."""

    index: int
    name: str
    type: str
    shape: tuple[int | None, ...]

    @property
    def zipmap(self) -> bool:
        return self.type.startswith("seq(map")

    @property
    def numeric(self) -> bool:
        return self.type in _FLOAT_OUTPUTS or self.zipmap

    @property
    def width(self) -> int | None:
        """Values per row, if the declared shape fixes them (1 for a rank-1 output)."""
        if self.zipmap:
            return None
        dims = self.shape[1:]
        return math.prod(dims) if all(isinstance(d, int) for d in dims) else None  # type: ignore[arg-type]

    def describe(self) -> str:
        dims = ", ".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.index}: {self.name!r} {self.type} [{dims}]"

    @classmethod
    def of(cls, index: int, node: Any) -> OutputSpec:
        shape = tuple(d if isinstance(d, int) else None for d in (node.shape or []))
        return cls(index, node.name, node.type, shape)


@dataclass(frozen=True)
class OutputChoice:
    """The output explained, and why it was chosen (recorded in the model's provenance)."""

    spec: OutputSpec
    reason: str


def _listing(outs: Sequence[OutputSpec]) -> str:
    return "; ".join(o.describe() for o in outs)


def _probability(outs: Sequence[OutputSpec], n_classes: int | None) -> OutputChoice | None:
    named = [o for o in outs if "prob" in o.name.lower() and o.type != STRING_TYPE]
    if named:
        return OutputChoice(named[0], "its name says it holds probabilities")
    zipmaps = [o for o in outs if o.zipmap]
    if len(zipmaps) == 1:
        return OutputChoice(zipmaps[0], "the only output of per-class probabilities (a ZipMap)")
    if n_classes:
        fits = [o for o in outs if o.type in _FLOAT_OUTPUTS and o.width == n_classes]
        if len(fits) == 1:
            return OutputChoice(
                fits[0],
                f"the only float output whose width matches the {n_classes} classes of the "
                "graph's classifier",
            )
    floats = [o for o in outs if o.type in _FLOAT_OUTPUTS]
    labels = [o for o in outs if o.type in ("tensor(int64)", "tensor(int32)")]
    if len(floats) == 1 and labels and floats[0].width != 1:
        # A classifier's shape without a classifier node (hummingbird: Gemm trees + ArgMax).
        return OutputChoice(
            floats[0],
            f"the only float output beside integer labels {[o.name for o in labels]} "
            "(a classifier's probabilities)",
        )
    return None


def choose_output(
    outs: Sequence[OutputSpec],
    output: str | int | None,
    *,
    n_classes: int | None,
    recorded: str | None,
) -> OutputChoice:
    """The output to explain: as asked, else as the file's metadata says, else by type and width.

    Without ``output=``: probabilities first (an output named so, a ZipMap, or a float output
    as wide as the classifier's classes), then the only float output, skipping integer labels.
    Generated names (hummingbird's ``variable`` / ``onnx::ArgMax_33``) are never needed.

    Raises
    ------
    ConfigurationError
        Naming the outputs (index, name, type, shape) when the choice is ambiguous or the
        asked one does not exist.
    """
    if not outs:
        raise ModelLoadError("the graph declares no outputs")
    names = [o.name for o in outs]
    if isinstance(output, bool) or (output is not None and not isinstance(output, str | int)):
        raise ConfigurationError(f"output must be a name or an index, got {output!r}")
    if isinstance(output, int):
        if not -len(outs) <= output < len(outs):
            raise ConfigurationError(
                f"output index {output} is out of range; outputs: {_listing(outs)}"
            )
        return OutputChoice(outs[output % len(outs)], f"asked for by index {output}")
    if output == "probability":
        hit = _probability(outs, n_classes)
        if hit is None:
            raise ConfigurationError(f"the graph has no probability output; outputs: {names}")
        return hit
    if output == "margin":
        hits = [o for o in outs if any(h in o.name.lower() for h in _MARGIN_HINTS)]
        if not hits:
            raise ConfigurationError(
                f"the graph has no margin / raw-score output; outputs: {names} (the "
                "margin of a tree ensemble: sx.TreeMarginModel(ONNXModel(path)))"
            )
        return OutputChoice(hits[0], "its name says it holds raw scores (margin)")
    if output is not None:
        if output not in names:
            raise ConfigurationError(f"unknown output {output!r}; outputs: {names}")
        return OutputChoice(outs[names.index(output)], "asked for by name")
    if recorded is not None:
        if recorded not in names:
            raise ModelLoadError(
                f"the file's metadata names output {recorded!r}, which the graph does not "
                f"have (outputs: {names})"
            )
        return OutputChoice(outs[names.index(recorded)], "named in the file's metadata")
    hit = _probability(outs, n_classes)
    if hit is not None:
        return hit
    floats = [o for o in outs if o.type in _FLOAT_OUTPUTS]
    skipped = [o.name for o in outs if o not in floats]
    if len(floats) == 1:
        why = "the only float output"
        return OutputChoice(floats[0], why + (f" (skipped: {skipped})" if skipped else ""))
    if not floats:
        # e.g. a graph whose one output is an integer score: as before, the only non-label.
        scores = [o for o in outs if "label" not in o.name.lower() and o.type != STRING_TYPE]
        if len(scores) == 1:
            return OutputChoice(scores[0], "the only output that is not a label")
    raise ConfigurationError(
        f"choose an output with output= (a name or an index): {_listing(outs)}"
    )


# -- sizes known before running --------------------------------------------------------------
def static_sizes(proto: Any) -> list[tuple[str, int]]:
    """``(tensor, values)`` for intermediate and output tensors whose size shape inference
    fixes, free axes counted as 1 (so each is a lower bound for one row), largest first.

    Best effort: a graph that shape inference cannot handle yields nothing here (the
    per-call checks still apply).
    """
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)
    except Exception:  # a crafted or unusual graph: nothing is known statically
        return []
    sizes = []
    for info in [*inferred.graph.value_info, *inferred.graph.output]:
        tensor = info.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        values = 1
        for dim in tensor.shape.dim:
            values *= dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else 1
        sizes.append((info.name, values))
    return sorted(sizes, key=lambda s: -s[1])
