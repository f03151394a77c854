"""The Open Inference Protocol V2 (KServe V2, MLServer, Triton, Seldon Core 2).

``POST {base}/v2/models/{name}[/versions/{v}]/infer`` with
``{"inputs": [{"name", "shape", "datatype", "data"}], "parameters": {...}}``; the answer holds
``{"outputs": [{"name", "shape", "datatype", "data"}]}`` with ``data`` flat in row-major order
(nested lists are accepted too). The tensor's ``shape`` depends on the batch, so the envelope
is built per request; its datatype comes from the values sent unless it is fixed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ...exceptions import ConfigurationError, InputError
from ._base import (
    Answer,
    ResponseFormatError,
    WireFormat,
    check_numbers,
    finite_parameters,
    json_text,
    load_json,
)

Layout = Literal["tensor", "columns"]

#: Datatypes the protocol defines; only the numeric ones are predictions.
DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)
NUMERIC = tuple(d for d in DATATYPES if d not in ("BOOL", "BYTES"))


def datatype_of(values: Sequence[Any], what: str) -> str:
    """The V2 datatype that holds ``values`` exactly: FP64, INT64, BOOL or BYTES.

    Missing values (None, sent as ``null``) do not decide it; all-missing is FP64.
    """
    kinds = {type(v) for v in values if v is not None}
    if not kinds or kinds <= {float, int}:
        return "INT64" if kinds == {int} else "FP64"
    if kinds == {bool}:
        return "BOOL"
    if kinds == {str}:
        return "BYTES"
    raise InputError(
        f"{what} mixes {', '.join(sorted(k.__name__ for k in kinds))} values, which one V2 "
        f"tensor cannot hold; use layout='columns' (one tensor per column)"
    )


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if all(not isinstance(v, list) for v in data):
        return data
    flat: list[Any] = []
    for v in data:
        flat.extend(_flatten(v))
    return flat


class OpenInferenceV2(WireFormat):
    """Rows as V2 input tensors; predictions from one output tensor.

    Parameters
    ----------
    output : str or int, optional
        The output tensor, by name or position. Without it the answer must hold exactly one.
    input_name : str
        Name of the single input tensor (``layout="tensor"``).
    layout : {"tensor", "columns"}
        ``"tensor"``: one ``[n_rows, n_features]`` tensor. ``"columns"``: one ``[n_rows, 1]``
        tensor per column, named after it (for servers that decode a DataFrame, e.g.
        MLServer with ``parameters={"content_type": "pd"}``, and for mixed text and numbers).
    datatype : str, optional
        Fix the input datatype (e.g. ``"FP32"``); default: from the data (FP64 for floats,
        INT64 for integers, BOOL, BYTES for text).
    parameters : mapping, optional
        The request's ``parameters`` object, sent unchanged.
    request_output : bool
        Name ``output`` in the request's ``outputs`` list, for servers that compute only the
        outputs asked for (MLServer's sklearn runtime: ``output="predict_proba"``).
    """

    name = "oip-v2"

    def __init__(
        self,
        *,
        output: str | int | None = None,
        input_name: str = "input-0",
        layout: Layout = "tensor",
        datatype: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        request_output: bool = False,
    ) -> None:
        if output is not None and (isinstance(output, bool) or not isinstance(output, str | int)):
            raise ConfigurationError(
                f"output must name or index an output tensor, got {type(output).__name__}"
            )
        if not isinstance(input_name, str) or not input_name:
            raise ConfigurationError("input_name must be a non-empty string")
        if layout not in ("tensor", "columns"):
            raise ConfigurationError(f"layout must be 'tensor' or 'columns', got {layout!r}")
        if datatype is not None and datatype not in DATATYPES:
            raise ConfigurationError(
                f"datatype must be one of {', '.join(DATATYPES)}, got {datatype!r}"
            )
        if request_output and not isinstance(output, str):
            raise ConfigurationError("request_output=True needs output= naming the tensor")
        self.output = output
        self.input_name = input_name
        self.layout: Layout = layout
        self.datatype = datatype
        self.parameters = finite_parameters(parameters, "parameters")
        self.request_output = bool(request_output)
        self._options = {
            "output": output,
            "input_name": input_name,
            "layout": layout,
            "datatype": datatype,
            "parameters": self.parameters,
            "request_output": self.request_output,
        }

    def encode(
        self, rows: Sequence[Sequence[Any]], keys: Sequence[str], columns: list[str]
    ) -> bytes:
        n = len(rows)
        tensors: list[bytes] = []
        if self.layout == "tensor":
            datatype = self.datatype or datatype_of(
                [v for r in rows for v in r], f"input {self.input_name!r}"
            )
            # The keys are each row's values as a JSON list: without their brackets and joined,
            # they are the flat row-major data, already encoded.
            data = b"[" + ",".join(k[1:-1] for k in keys).encode("ascii") + b"]"
            head = {"name": self.input_name, "shape": [n, len(columns)], "datatype": datatype}
            tensors.append(json_text(head)[:-1].encode("ascii") + b',"data":' + data + b"}")
        else:
            for j, col in enumerate(columns):
                values = [r[j] for r in rows]
                datatype = self.datatype or datatype_of(values, f"column {col!r}")
                doc = {"name": col, "shape": [n, 1], "datatype": datatype, "data": values}
                tensors.append(json_text(doc).encode("ascii"))
        body = b'{"inputs":[' + b",".join(tensors) + b"]"
        if self.parameters is not None:
            body += b',"parameters":' + json_text(self.parameters).encode("ascii")
        if self.request_output:
            body += b',"outputs":' + json_text([{"name": self.output}]).encode("ascii")
        return body + b"}"

    def _pick(self, tensors: list[Any]) -> dict[str, Any]:
        names = [t.get("name") if isinstance(t, dict) else None for t in tensors]
        if isinstance(self.output, str):
            if self.output not in names:
                raise ResponseFormatError(
                    f"the answer has no output tensor {self.output!r}; it has {names}"
                )
            chosen = tensors[names.index(self.output)]
        elif isinstance(self.output, int):
            if not -len(tensors) <= self.output < len(tensors):
                raise ResponseFormatError(
                    f"the answer has {len(tensors)} output tensor(s), no index {self.output}: "
                    f"{names}"
                )
            chosen = tensors[self.output]
        elif len(tensors) == 1:
            chosen = tensors[0]
        else:
            raise ResponseFormatError(
                f"the answer has {len(tensors)} output tensors {names}; choose one with output="
            )
        if not isinstance(chosen, dict):
            raise ResponseFormatError(
                f"an output tensor must be an object, got {type(chosen).__name__}"
            )
        return chosen

    def decode(self, answer: Answer, n_rows: int, outputs: list[str]) -> np.ndarray:
        doc = load_json(answer)
        tensors = doc.get("outputs") if isinstance(doc, dict) else None
        if not isinstance(tensors, list) or not tensors:
            found = sorted(doc)[:10] if isinstance(doc, dict) else type(doc).__name__
            raise ResponseFormatError(f"the answer has no 'outputs' tensors (V2); found {found}")
        tensor = self._pick(tensors)
        name = tensor.get("name")
        datatype = tensor.get("datatype")
        if datatype not in NUMERIC:
            raise ResponseFormatError(
                f"output tensor {name!r} has datatype {datatype!r}; predictions must be "
                f"numbers ({', '.join(NUMERIC)})"
            )
        shape = tensor.get("shape")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(type(d) is int and d >= 0 for d in shape)
        ):
            raise ResponseFormatError(f"output tensor {name!r} has no valid shape: {shape!r}")
        data = _flatten(tensor.get("data"))
        if math.prod(shape) != len(data):
            raise ResponseFormatError(
                f"output tensor {name!r} has shape {shape} but {len(data)} value(s)"
            )
        if shape[0] != n_rows:
            raise ResponseFormatError(
                f"output tensor {name!r} has {shape[0]} row(s) for {n_rows} row(s) sent"
            )
        check_numbers(data, f"output tensor {name!r}")
        k = len(outputs)
        width = math.prod(shape[1:])
        if width != k:
            raise ResponseFormatError(
                f"output tensor {name!r} has shape {shape}: {width} value(s) per row, expected "
                f"{k} for outputs {outputs} (give output_names=)"
            )
        return np.asarray(data, dtype=np.float64).reshape(n_rows, k)
