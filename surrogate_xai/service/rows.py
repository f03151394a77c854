"""JSON rows from a request, checked cell by cell and turned into the model's DataFrame.

The library checks a DataFrame too, but stops at the first problem and names it in prose. A
client of an API wants every problem at once, each with its location (``loc``), in the same
shape as FastAPI's own validation errors, so this module checks the cells itself against the
fitted explainer's schema. The library's check still runs afterwards as a second line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InputError
from ..storable import text_problem
from ..tabular import TabularSchema

#: Errors reported per request, at most (a body of a thousand bad rows needs no thousand lines).
MAX_ERRORS = 50
_INT64 = 2**63 - 1


@dataclass(frozen=True)
class FieldError:
    """One problem in a request, located like a pydantic error."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def to_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class RequestFieldsError(InputError):
    """Fields of a request that cannot be used; ``errors`` locates each one."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{'.'.join(map(str, first.loc))}: {first.msg}{more}")


def _shown(values: Sequence[str], limit: int = 8) -> str:
    text = ", ".join(repr(v) for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


def text_problems(
    rows: Sequence[Mapping[str, Any]],
    decision_ids: Sequence[str] | None,
    exclude: Sequence[str],
    output: int | str,
) -> list[FieldError]:
    """Every string of a request that is not storable text (see :func:`text_problem`).

    Row keys are located by themselves (``("body", "rows", i, key)``; the error answer
    escapes what cannot be encoded), values by their column.
    """
    errors: list[FieldError] = []

    def check(loc: tuple[str | int, ...], value: Any, what: str) -> None:
        if len(errors) < MAX_ERRORS and isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                errors.append(FieldError(loc, f"{what} {_quoted(value)} {problem}", "invalid_text"))

    for i, row in enumerate(rows):
        for key, value in row.items():
            check(("body", "rows", i, key), key, "column name")
            if text_problem(key) is None:
                check(("body", "rows", i, key), value, "value")
    for i, d in enumerate(decision_ids or ()):
        check(("body", "decision_ids", i), d, "decision id")
    for i, name in enumerate(exclude):
        check(("body", "exclude", i), name, "feature")
    check(("body", "output"), output, "output")
    return errors


def decision_id_problems(decision_ids: Sequence[str]) -> list[FieldError]:
    """Decision ids that appear more than once in a request (the CLI refuses them too)."""
    first: dict[str, int] = {}
    errors: list[FieldError] = []
    for i, d in enumerate(decision_ids):
        if d in first and len(errors) < MAX_ERRORS:
            errors.append(
                FieldError(
                    ("body", "decision_ids", i),
                    f"decision id {_quoted(d)} appears more than once (first at index {first[d]})",
                    "duplicate",
                )
            )
        first.setdefault(d, i)
    return errors


def _quoted(text: str, limit: int = 80) -> str:
    """``repr`` of a client's string, cut to ``limit`` characters."""
    shown = repr(text[:limit])
    return shown + ("..." if len(text) > limit else "")


def _numeric_problem(
    value: Any, allow_missing: bool, limits: tuple[float, float] | None = None
) -> tuple[str, str] | None:
    """(message, type) when ``value`` cannot go into a numeric column, else None."""
    if value is None:
        if allow_missing:
            return None
        return "missing value (null); the model was not declared to accept missing values", (
            "missing_value"
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {type(value).__name__} {value!r}", "number_type"
    if isinstance(value, int):
        if abs(value) > _INT64:
            return f"integer {value} is out of range", "number_range"
        if limits is not None and not limits[0] <= value <= limits[1]:
            return _out_of_range(value, limits)
        return None
    if math.isnan(value):
        if allow_missing:
            return None
        return "NaN is not accepted; the model was not declared to accept missing values", (
            "non_finite"
        )
    if math.isinf(value):
        return f"{value} is not a finite number", "non_finite"
    if limits is not None and not limits[0] <= value <= limits[1]:
        return _out_of_range(value, limits)
    return None


#: The element type an input range belongs to, by its upper end (for the message).
_TYPE_OF_HIGH: dict[float, str] = {
    **{float(np.finfo(t).max): np.dtype(t).name for t in (np.float16, np.float32)},
    **{float(np.iinfo(t).max): np.dtype(t).name for t in (np.int8, np.int16, np.int32, np.int64)},
    **{float(np.iinfo(t).max): np.dtype(t).name for t in (np.uint8, np.uint16, np.uint32)},
}


def _out_of_range(value: float, limits: tuple[float, float]) -> tuple[str, str]:
    low, high = limits
    kind = _TYPE_OF_HIGH.get(high, "numeric")
    return (
        f"{value!r} is outside the finite range of the model's {kind} input "
        f"({low:.7g} to {high:.7g})",
        "number_range",
    )


def _category_problem(value: Any, known: Sequence[str] | None) -> tuple[str, str] | None:
    if not isinstance(value, str):
        shown = "null" if value is None else f"{type(value).__name__} {value!r}"
        return f"expected a category (a string), got {shown}", "category_type"
    if known is not None and value not in known:
        return f"unknown category {value!r}; the model knows {_shown(list(known))}", (
            "unknown_category"
        )
    return None


def rows_to_frame(
    rows: Sequence[Mapping[str, Any]],
    schema: TabularSchema,
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """The request's rows as a DataFrame in the model's columns, or every problem located.

    Parameters
    ----------
    rows : sequence of dict
        One mapping of column name to JSON value per row.
    schema : TabularSchema
        The fitted explainer's schema (columns, kinds, known categories).
    limits : mapping, optional
        Per numeric column, the finite range the model's input type holds
        (``ONNXModel.input_limits()``: about ±3.4e38 for a float32 input); a value outside it
        would reach the model as infinity.

    Returns
    -------
    DataFrame of shape (n_rows, n_columns)
        Numeric columns as int64 when every value is an integer, else float64; categorical
        columns as strings (object).

    Raises
    ------
    RequestFieldsError
        Listing, with ``loc = ("body", "rows", i, column)``, missing and unknown columns,
        values of the wrong type, NaN / infinity / null where the model cannot take them,
        numbers outside the model input's range, and unknown categories (at most
        ``MAX_ERRORS``).
    """
    columns = list(schema.columns)
    wanted = set(columns)
    kinds = dict(zip(columns, schema.kinds, strict=True))
    errors: list[FieldError] = []

    def add(i: int, col: str, msg: str, kind: str) -> None:
        if len(errors) < MAX_ERRORS:
            errors.append(FieldError(("body", "rows", i, col), msg, kind))

    for i, row in enumerate(rows):
        for col in row:
            if col not in wanted:
                add(
                    i,
                    col,
                    f"unknown column {col!r}; the model's columns are {_shown(columns)}",
                    "unknown_column",
                )
        for col in columns:
            if col not in row:
                add(i, col, f"missing column {col!r}", "missing_column")
                continue
            value = row[col]
            if kinds[col] == "numeric":
                problem = _numeric_problem(value, schema.allow_missing, (limits or {}).get(col))
            else:
                problem = _category_problem(value, schema.known_categories.get(col))
            if problem is not None:
                add(i, col, *problem)
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise RequestFieldsError(errors)

    data: dict[str, Any] = {}
    for col in columns:
        values = [row[col] for row in rows]
        if kinds[col] != "numeric":
            data[col] = pd.Series(values, dtype=object)
        elif all(isinstance(v, int) for v in values):
            # Integers stay integers, as they would when read from a CSV file.
            data[col] = np.array(values, dtype=np.int64)
        else:
            data[col] = np.array(
                [np.nan if v is None else float(v) for v in values], dtype=np.float64
            )
    return pd.DataFrame(data)
