"""MLflow's scoring server (``mlflow models serve``, Databricks model serving): ``POST
/invocations`` with one of its input encodings, answered ``{"predictions": [...]}``.

The encodings are the ones MLflow's server accepts: ``dataframe_split`` (columns named once,
then the rows), ``dataframe_records`` (an object per row), ``instances`` (TF Serving's rows),
``inputs`` (TF Serving's columns, or a tensor) and CSV with a header. Predictions come back as
numbers, lists, or (for a model that returns a DataFrame) an object per row keyed by column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ...exceptions import ConfigurationError
from ._base import (
    Answer,
    InstanceFormat,
    ResponseFormatError,
    WireFormat,
    check_instance_format,
    csv_text,
    finite_parameters,
    json_text,
    load_json,
    output_selector,
    predictions,
    records,
)

Encoding = Literal["dataframe_split", "dataframe_records", "instances", "inputs", "csv"]
ENCODINGS: tuple[str, ...] = ("dataframe_split", "dataframe_records", "instances", "inputs", "csv")


class MLflow(WireFormat):
    """Rows in one of MLflow's input encodings.

    Parameters
    ----------
    format : {"dataframe_split", "dataframe_records", "instances", "inputs", "csv"}
        How the rows are written (``dataframe_split`` by default: the column names once).
    instance_format : {"object", "list"}
        For ``instances`` and ``inputs`` only: ``"object"`` sends rows keyed by column
        (``instances``) or one list per column (``inputs``), which a model with a column
        signature needs; ``"list"`` sends plain rows, for a tensor signature.
    params : mapping, optional
        MLflow's inference ``params`` (JSON encodings only), sent unchanged.
    output : int or str, optional
        Picks each row's value from its prediction (an index, or a JMESPath expression).
    """

    name = "mlflow"

    def __init__(
        self,
        *,
        format: Encoding = "dataframe_split",
        instance_format: InstanceFormat = "object",
        params: Mapping[str, Any] | None = None,
        output: str | int | None = None,
    ) -> None:
        if format not in ENCODINGS:
            raise ConfigurationError(
                f"format must be one of {', '.join(ENCODINGS)}, got {format!r}"
            )
        self.format: Encoding = format
        self.instance_format = check_instance_format(instance_format)
        self.params = finite_parameters(params, "params")
        if self.params is not None and format == "csv":
            raise ConfigurationError("params cannot be sent with format='csv' (JSON only)")
        self._selector = output_selector(output)
        self.output = output
        self.content_type = "text/csv" if format == "csv" else "application/json"
        self._options = {
            "format": format,
            "instance_format": instance_format,
            "params": self.params,
            "output": output,
        }

    def _payload(
        self, rows: Sequence[Sequence[Any]], keys: Sequence[str], columns: list[str]
    ) -> tuple[str, bytes]:
        as_lists = b"[" + ",".join(keys).encode("ascii") + b"]"
        if self.format == "dataframe_split":
            head = json_text({"columns": columns})[:-1].encode("ascii")
            return "dataframe_split", head + b',"data":' + as_lists + b"}"
        if self.format == "dataframe_records" or (
            self.format == "instances" and self.instance_format == "object"
        ):
            return self.format, json_text(records(rows, columns)).encode("ascii")
        if self.format == "inputs" and self.instance_format == "object":
            columnar = {c: [r[j] for r in rows] for j, c in enumerate(columns)}
            return "inputs", json_text(columnar).encode("ascii")
        return self.format, as_lists

    def encode(
        self, rows: Sequence[Sequence[Any]], keys: Sequence[str], columns: list[str]
    ) -> bytes:
        if self.format == "csv":
            return csv_text(rows, header=columns)
        key, payload = self._payload(rows, keys, columns)
        body = b"{" + json_text(key).encode("ascii") + b":" + payload
        if self.params is not None:
            body += b',"params":' + json_text(self.params).encode("ascii")
        return body + b"}"

    def decode(self, answer: Answer, n_rows: int, outputs: list[str]) -> np.ndarray:
        doc = load_json(answer)
        if isinstance(doc, dict) and "predictions" in doc:
            items, where = doc["predictions"], "'predictions' (protocol 'mlflow')"
        elif isinstance(doc, list):
            items, where = doc, "the top level (protocol 'mlflow')"  # MLflow 1.x answers a list
        else:
            found = sorted(doc)[:10] if isinstance(doc, dict) else type(doc).__name__
            raise ResponseFormatError(f"the answer has no 'predictions' (MLflow); found {found}")
        return predictions(
            items,
            n_rows,
            outputs,
            where=where,
            selector=self._selector,
            what=f"output={self.output!r}",
        )
