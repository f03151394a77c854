"""What every wire format shares: the batch it encodes, the answer it decodes, and the strict
reading of predictions (numbers only, one per row or one list of ``n_outputs`` per row).

A format sees rows twice over: as Python values (``rows``, one list per row, in
``feature_names`` order: float, int, bool, str or None) and as their compact JSON encodings
(``keys``, one string per row, the same text the row cache uses). JSON formats splice the keys
into a body without encoding the numbers again; the others (CSV, tensor envelopes split by
column) build their body from the values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ...exceptions import ConfigurationError, RemoteModelError


class ResponseFormatError(RemoteModelError):
    """The endpoint answered 2xx with something that is not the expected predictions."""


InstanceFormat = Literal["list", "object"]

#: Marker spliced into a serialised template where the rows go (never valid user JSON text).
PLACEHOLDER = "\x00sxai-rows\x00"


@dataclass(frozen=True)
class Answer:
    """A complete 2xx answer: its bytes and its content type (lower case, no parameters)."""

    content: bytes
    content_type: str


class WireFormat:
    """How rows become a request body and an answer becomes predictions.

    Subclasses set :attr:`name` and implement :meth:`encode` and :meth:`decode`; both are pure
    functions of their arguments, so one format object serves any number of threads.
    """

    #: The protocol name ``HTTPModel(protocol=...)`` takes.
    name: str = ""
    #: The request's ``Content-Type`` and ``Accept`` headers.
    content_type: str = "application/json"
    accept: str = "application/json"

    def encode(
        self, rows: Sequence[Sequence[Any]], keys: Sequence[str], columns: list[str]
    ) -> bytes:
        """The request body for ``rows`` (their JSON encodings are ``keys``)."""
        raise NotImplementedError

    def decode(self, answer: Answer, n_rows: int, outputs: list[str]) -> np.ndarray:
        """Predictions of shape ``(n_rows, len(outputs))`` from a 2xx answer, or
        :class:`ResponseFormatError` naming what is wrong."""
        raise NotImplementedError

    #: The constructor's keyword arguments, as given: provenance, and a copy with another output.
    _options: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """The format's settings for provenance (JSON-ready; no secrets live here)."""
        return {"protocol": self.name, **self._options}

    def with_output(self, output: str | int | None) -> WireFormat:
        """This format selecting ``output`` (see each format); ``None`` keeps it as it is."""
        current = self._options.get("output")
        if output is None or output == current:
            return self
        if "output" not in self._options:
            raise ConfigurationError(f"protocol {self.name!r} takes no output=")
        if current is not None:
            raise ConfigurationError(
                f"output={output!r} conflicts with the protocol's own output={current!r}"
            )
        return type(self)(**{**self._options, "output": output})


# -- parsing answers -----------------------------------------------------------------------------
def load_json(answer: Answer, redact: Callable[[str], str] = str) -> Any:
    """The answer parsed as JSON, or :class:`ResponseFormatError` quoting its start."""
    try:
        return json.loads(answer.content)
    except ValueError:
        text = answer.content.decode("utf-8", errors="replace")
        snippet = redact(" ".join(text.split())[:120])
        raise ResponseFormatError(f"the endpoint answered non-JSON: {snippet!r}") from None


def compile_expression(expression: str, what: str) -> Any:
    """A compiled JMESPath expression, or :class:`ConfigurationError` naming ``what``."""
    import jmespath
    from jmespath.exceptions import JMESPathError

    if not isinstance(expression, str) or not expression.strip():
        raise ConfigurationError(f"{what} must be a JMESPath expression such as 'predictions'")
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise ConfigurationError(
            f"{what}={expression!r} is not a JMESPath expression: {exc}"
        ) from None


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(value: Any, row: int, outputs: list[str], col: int) -> float:
    # JSON true/false and "0.5" are not scores: np.asarray would quietly take them as 1.0 and
    # 0.5. Only JSON numbers are, and NaN/inf are left to the model's finite check.
    if type(value) is float or (type(value) is int and not isinstance(value, bool)):
        return float(value)
    kind = "null" if value is None else type(value).__name__
    raise ResponseFormatError(
        f"the prediction for row {row} output {outputs[col]!r} is {kind} ({_shown(value)}), "
        f"not a number"
    )


def select_item(item: Any, selector: Any, row: int, what: str) -> Any:
    """``selector`` (an int index or a compiled JMESPath) applied to one row's prediction."""
    if selector is None:
        return item
    if isinstance(selector, int):
        if not isinstance(item, list) or not -len(item) <= selector < len(item):
            raise ResponseFormatError(
                f"the prediction for row {row} has no element {selector} ({what}); "
                f"got {_shown(item)}"
            )
        return item[selector]
    found = selector.search(item)
    if found is None:
        raise ResponseFormatError(
            f"{what} finds nothing in the prediction for row {row}; got {_shown(item)}"
        )
    return found


def predictions(
    items: Any,
    n_rows: int,
    outputs: list[str],
    *,
    where: str,
    selector: Any = None,
    what: str = "output",
) -> np.ndarray:
    """One prediction per row, read strictly: shape ``(n_rows, len(outputs))``.

    Each item (after ``selector``) is a number (one output), a list of ``len(outputs)``
    numbers, or an object holding every output name as a key (MLflow's DataFrame answers).
    ``where`` says where the items were found, for messages.
    """
    if not isinstance(items, list):
        raise ResponseFormatError(
            f"predictions at {where} must be a list, got {type(items).__name__}"
        )
    if len(items) != n_rows:
        raise ResponseFormatError(
            f"the endpoint returned {len(items)} prediction(s) for {n_rows} row(s)"
        )
    k = len(outputs)
    out = np.empty((n_rows, k), dtype=np.float64)
    for i, raw in enumerate(items):
        item = select_item(raw, selector, i, what)
        if isinstance(item, Mapping):
            missing = [o for o in outputs if o not in item]
            if missing:
                raise ResponseFormatError(
                    f"the prediction for row {i} is an object without {missing[0]!r}; its keys "
                    f"are {sorted(item)[:10]} (name the outputs after them with output_names=)"
                )
            item = [item[o] for o in outputs]
        if isinstance(item, list):
            if len(item) == 1 and k == 1 and isinstance(item[0], list):
                item = item[0]
            if len(item) != k:
                raise ResponseFormatError(
                    f"predictions have {len(item)} value(s) for row {i}; expected {k} for "
                    f"outputs {outputs}"
                )
            for j, v in enumerate(item):
                out[i, j] = _number(v, i, outputs, j)
        elif k == 1:
            out[i, 0] = _number(item, i, outputs, 0)
        else:
            raise ResponseFormatError(
                f"predictions have 1 value for row {i}; expected {k} for outputs {outputs}"
            )
    return out


def check_numbers(values: Sequence[Any], what: str) -> None:
    """Refuse anything in a flat list of tensor data that is not a JSON number."""
    for pos, v in enumerate(values):
        if not (type(v) is float or (type(v) is int and not isinstance(v, bool))):
            kind = "null" if v is None else type(v).__name__
            raise ResponseFormatError(
                f"{what} holds {kind} ({_shown(v)}) at position {pos}, not a number"
            )


# -- encoding requests ---------------------------------------------------------------------------
def json_text(value: Any) -> str:
    """Compact JSON as every format writes it (no NaN: missing values are None already)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=True)


def splice(template: Any) -> tuple[bytes, bytes]:
    """``template`` serialised and cut where :data:`PLACEHOLDER` stands: (before, after)."""
    text = json_text(template)
    marker = json_text(PLACEHOLDER)
    if text.count(marker) != 1:
        raise ConfigurationError("the request template must hold the rows placeholder exactly once")
    before, _, after = text.partition(marker)
    return before.encode("ascii"), after.encode("ascii")


def place_rows(doc: Any, slots: Sequence[str], found: list[str]) -> Any:
    """``doc`` with each string in ``slots`` replaced by :data:`PLACEHOLDER` (the slots met
    are appended to ``found``, so the caller can insist on exactly one)."""
    if isinstance(doc, str) and doc in slots:
        found.append(doc)
        return PLACEHOLDER
    if isinstance(doc, dict):
        return {k: place_rows(v, slots, found) for k, v in doc.items()}
    if isinstance(doc, list):
        return [place_rows(v, slots, found) for v in doc]
    return doc


def records(rows: Sequence[Sequence[Any]], columns: list[str]) -> list[dict[str, Any]]:
    """Rows as objects keyed by column."""
    return [dict(zip(columns, r, strict=True)) for r in rows]


def output_selector(output: str | int | None) -> Any:
    """An output index as it is, an expression compiled (JMESPath), or None."""
    if output is None or (isinstance(output, int) and not isinstance(output, bool)):
        return output
    if isinstance(output, str):
        return compile_expression(output, "output")
    raise ConfigurationError(
        f"output must be an index or a JMESPath expression, got {type(output).__name__}"
    )


def check_instance_format(value: Any) -> InstanceFormat:
    """``value`` if it is an instance format, else :class:`ConfigurationError`."""
    if value not in ("list", "object"):
        raise ConfigurationError(f"instance_format must be 'list' or 'object', got {value!r}")
    return value


def check_options(protocol: str, given: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Refuse an option the protocol does not take, naming the ones it does."""
    unknown = [k for k in given if k not in allowed]
    if unknown:
        raise ConfigurationError(
            f"protocol {protocol!r} has no option {unknown[0]!r}; its options are "
            f"{', '.join(allowed) or 'none'}"
        )


def finite_parameters(parameters: Any, what: str) -> dict[str, Any] | None:
    """A JSON object of fixed extra fields, checked to serialise (no NaN, no odd types)."""
    if parameters is None:
        return None
    if not isinstance(parameters, Mapping) or not all(isinstance(k, str) for k in parameters):
        raise ConfigurationError(f"{what} must be a mapping of string keys to JSON values")
    try:
        json_text(parameters)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{what} cannot be sent as JSON: {exc}") from None
    return dict(parameters)


def csv_text(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> bytes:
    """Rows as CSV lines (numbers in shortest round-trip form, missing values empty)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    for row in rows:
        writer.writerow(
            ["" if v is None else json_text(v) if isinstance(v, bool) else v for v in row]
        )
    return buf.getvalue().encode("utf-8")


def csv_numbers(answer: Answer, n_rows: int, outputs: list[str], column: int | None) -> np.ndarray:
    """A CSV answer as predictions: one line per row (or one line of ``n_rows`` values for a
    single output); ``column`` picks one field of each line."""
    import csv
    import io

    text = answer.content.decode("utf-8", errors="replace")
    lines = [line for line in csv.reader(io.StringIO(text)) if line]
    k = len(outputs)
    if len(lines) == 1 and n_rows > 1 and k == 1 and column is None and len(lines[0]) == n_rows:
        lines = [[v] for v in lines[0]]  # some containers answer one comma-separated line
    if len(lines) != n_rows:
        raise ResponseFormatError(
            f"the endpoint returned {len(lines)} CSV line(s) for {n_rows} row(s)"
        )
    out = np.empty((n_rows, k), dtype=np.float64)
    for i, fields in enumerate(lines):
        if column is not None:
            if not -len(fields) <= column < len(fields):
                raise ResponseFormatError(
                    f"CSV line {i} has {len(fields)} field(s), no column {column}"
                )
            fields = [fields[column]]
        if len(fields) != k:
            raise ResponseFormatError(
                f"CSV line {i} has {len(fields)} field(s); expected {k} for outputs {outputs}"
            )
        for j, field in enumerate(fields):
            try:
                out[i, j] = float(field)
            except ValueError:
                raise ResponseFormatError(
                    f"the prediction for row {i} output {outputs[j]!r} is {_shown(field)}, "
                    f"not a number"
                ) from None
    return out
