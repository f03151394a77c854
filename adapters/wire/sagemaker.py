"""SageMaker-style endpoints (``POST .../invocations`` of a SageMaker container, or its
runtime URL with SigV4 signing): CSV or JSON Lines in, CSV, JSON Lines or JSON out.

The settings follow SageMaker Clarify's model config, so an auditor can copy them: the request
``content_type`` (``text/csv``: one row per line, no header; ``application/jsonlines``: one
JSON document per row, from ``record_template``), the answer's ``accept`` type, and ``output``
to select the score: a column index for a CSV answer, a JMESPath expression for JSON answers
(Clarify's ``probability``/``label``: ``"score"``, ``"probabilities[1]"``, or for a JSON answer
holding all rows ``"predictions[*].score"``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ...exceptions import ConfigurationError
from ._base import (
    Answer,
    ResponseFormatError,
    WireFormat,
    compile_expression,
    csv_numbers,
    csv_text,
    json_text,
    load_json,
    place_rows,
    predictions,
    splice,
)

RequestType = Literal["text/csv", "application/jsonlines"]
AnswerType = Literal["text/csv", "application/jsonlines", "application/json"]
REQUEST_TYPES = ("text/csv", "application/jsonlines")
ANSWER_TYPES = ("text/csv", "application/jsonlines", "application/json")
#: The JSON Lines record Clarify sends by default.
DEFAULT_RECORD = {"features": "$features"}


class SageMaker(WireFormat):
    """Rows as CSV or JSON Lines; predictions from CSV, JSON Lines or JSON.

    Parameters
    ----------
    content_type : {"text/csv", "application/jsonlines"}
        How rows are sent.
    accept : {"text/csv", "application/jsonlines", "application/json"}
        What the endpoint answers (sent as ``Accept``).
    output : int or str, optional
        CSV answer: the column holding the score (default: every column, one per output).
        JSON Lines: a JMESPath applied to each line. JSON: a JMESPath applied to the whole
        answer that yields one prediction per row (default: the answer is that list).
    record_template : mapping or str, optional
        JSON Lines requests: each line's document, holding ``"$features"`` (the row as a list)
        or ``"$record"`` (the row as an object) once. Default ``{"features": "$features"}``.
    """

    name = "sagemaker"

    def __init__(
        self,
        *,
        content_type: RequestType = "text/csv",
        accept: AnswerType = "text/csv",
        output: str | int | None = None,
        record_template: Any = None,
    ) -> None:
        if content_type not in REQUEST_TYPES:
            raise ConfigurationError(
                f"content_type must be one of {', '.join(REQUEST_TYPES)}, got {content_type!r}"
            )
        if accept not in ANSWER_TYPES:
            raise ConfigurationError(
                f"accept must be one of {', '.join(ANSWER_TYPES)}, got {accept!r}"
            )
        if accept == "text/csv":
            if output is not None and (isinstance(output, bool) or not isinstance(output, int)):
                raise ConfigurationError("with accept='text/csv', output must be a column index")
            self._selector: Any = output
        elif accept == "application/jsonlines" and type(output) is int:
            self._selector = output
        elif output is None or isinstance(output, str):
            self._selector = None if output is None else compile_expression(output, "output")
        else:
            raise ConfigurationError(
                f"with accept={accept!r}, output must be a JMESPath expression"
            )
        if record_template is not None and content_type != "application/jsonlines":
            raise ConfigurationError(
                "record_template applies to content_type='application/jsonlines'"
            )
        doc = DEFAULT_RECORD if record_template is None else record_template
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except ValueError as exc:
                raise ConfigurationError(f"record_template is not valid JSON: {exc}") from None
        found: list[str] = []
        self._record_before, self._record_after = splice(
            place_rows(doc, ("$features", "$record"), found)
        )
        if len(found) != 1:
            raise ConfigurationError(
                f"record_template must hold '$features' or '$record' exactly once, found {len(found)}"
            )
        self._as_object = found[0] == "$record"
        self.content_type = content_type
        self.accept = accept
        self.output = output
        self._options = {
            "content_type": content_type,
            "accept": accept,
            "output": output,
            "record_template": record_template,
        }

    def encode(
        self, rows: Sequence[Sequence[Any]], keys: Sequence[str], columns: list[str]
    ) -> bytes:
        if self.content_type == "text/csv":
            return csv_text(rows)
        lines = []
        for row, key in zip(rows, keys, strict=True):
            value = (
                json_text(dict(zip(columns, row, strict=True))).encode("ascii")
                if self._as_object
                else key.encode("ascii")
            )
            lines.append(self._record_before + value + self._record_after)
        return b"\n".join(lines) + b"\n"

    def decode(self, answer: Answer, n_rows: int, outputs: list[str]) -> np.ndarray:
        what = f"output={self.output!r}"
        if self.accept == "text/csv":
            return csv_numbers(answer, n_rows, outputs, self._selector)
        if self.accept == "application/json":
            doc = load_json(answer)
            items = doc if self._selector is None else self._selector.search(doc)
            return predictions(items, n_rows, outputs, where=what, what=what)
        docs = []
        text = answer.content.decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except ValueError:
                raise ResponseFormatError(
                    f"line {number} of the JSON Lines answer is not JSON"
                ) from None
        return predictions(
            docs, n_rows, outputs, where="the JSON Lines answer", selector=self._selector, what=what
        )
