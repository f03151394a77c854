"""Rows converted into an ONNX input's element type exactly, or refused naming the value.

numpy's casts change values silently: 1e308 becomes inf in float32, 2.5 becomes 2 in int64,
2**63 - 1 through float64 becomes -2**63. The model would then score a row the record does
not hold. The functions here cast as numpy does, but report where the first value is that
the cast would change, so :class:`~surrogate_xai.ONNXModel` can name its column and row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InvalidValueError

__all__ = ["UnfitValue", "cast_any", "cast_exact", "numbers_of"]


class UnfitValue(InvalidValueError):
    """A value the model's input type cannot take, located within the rows converted.

    Internal: :meth:`located` turns it into the :class:`InvalidValueError` users see, with
    the row counted from the start of the caller's rows (a chunk may start later).
    """

    def __init__(self, column: str, row: int, value: Any, problem: str, want: np.dtype) -> None:
        super().__init__(f"column {column!r}, row {row}: {problem}")
        self.column = column
        self.row = row
        self.value = value.item() if isinstance(value, np.generic) else value
        self.problem = problem
        self.want = want

    def located(self, offset: int, what: str) -> InvalidValueError:
        name, row, value, kind = self.column, self.row + offset, self.value, self.want.name
        if self.problem == "integer":
            message = (
                f"column {name!r} is an integer input of the model but row {row} of {what} "
                f"holds {value!r}"
            )
        elif self.problem == "number":
            message = (
                f"column {name!r} of {what} holds {value!r} at row {row}, which is not a "
                f"number (the model's input is {kind})"
            )
        else:
            info = np.finfo(self.want) if self.want.kind == "f" else np.iinfo(self.want)
            message = (
                f"column {name!r} of {what} holds {value!r} at row {row}, outside the finite "
                f"range of the model's {kind} input ({float(info.min):.7g} to "
                f"{float(info.max):.7g})"
            )
        return InvalidValueError(message)


def _first(mask: np.ndarray) -> tuple[int, ...] | None:
    """The position of the first true entry (row-major), or None."""
    if not mask.any():
        return None
    return tuple(int(k) for k in np.argwhere(mask)[0])


def cast_exact(
    values: np.ndarray, want: np.dtype
) -> tuple[np.ndarray, tuple[tuple[int, ...], str]]:
    """Numeric ``values`` (1-D or 2-D) in the input type ``want``, exactly as numpy casts them,
    or where the first value is that the cast would change into another number (an empty
    position when all survive).

    Over-large floats become inf in float32; integers never go through float64 (2**63 - 1
    would come out as -2**63) and floats reach an integer input only when they are whole and
    in range. NaN and inf pass into float inputs: the tabular checks name them as such.
    """
    have = values.dtype
    if have == want:
        return values, ((), "")
    if want.kind == "f":
        with np.errstate(over="ignore"):
            out = values.astype(want, order="C")
        if have.kind == "f" and have.itemsize > want.itemsize:
            inf = np.isinf(out)
            if inf.any():
                where = _first(inf & np.isfinite(values))
                if where is not None:
                    return out, (where, "range")
        return out, ((), "")
    info = np.iinfo(want)
    if have.kind == "b" or np.can_cast(have, want):
        return values.astype(want, order="C"), ((), "")
    if have.kind in "iu":
        where = _first((values < info.min) | (values > info.max))
        problem = "range"
    else:  # floats: whole numbers in [min, max + 1), both ends exact in float64
        with np.errstate(invalid="ignore"):
            broken = ~np.isfinite(values) | (values != np.trunc(values))
            outside = (values < float(info.min)) | (values >= -float(info.min))
        where = _first(broken | outside)
        problem = "integer" if where is not None and broken[where] else "range"
    if where is not None:
        return values, (where, problem)
    return values.astype(want, order="C"), ((), "")


def _cast_objects(
    col: np.ndarray, want: np.dtype
) -> tuple[np.ndarray, tuple[tuple[int, ...], str]]:
    """Like :func:`cast_exact` for a 1-D object column (numbers, numeric strings, None, NaN)."""
    if want.kind == "f":
        try:
            with np.errstate(over="ignore"):
                out = np.asarray(col, dtype=want)
        except (TypeError, ValueError, OverflowError):
            pass  # pd.NA, text or an integer too large for a float: sorted out below
        else:
            inf = np.flatnonzero(np.isinf(out))
            if len(inf):
                finite = np.isfinite(np.asarray(col[inf], dtype=np.float64))
                if finite.any():
                    return out, ((int(inf[finite][0]),), "range")
            return out, ((), "")
    numbers = pd.to_numeric(pd.Series(col, copy=False), errors="coerce")
    where = _first(numbers.isna().to_numpy() & ~pd.isna(col))
    if where is not None:
        value = col[where[0]]
        real = isinstance(value, int | float) and not isinstance(value, bool)
        return col, (where, "range" if real else "number")
    values = numbers.to_numpy()
    if values.dtype.kind not in "biuf":  # e.g. integers beyond uint64, kept as objects
        values = np.asarray(values, dtype=np.float64)
    return cast_exact(values, want)


def cast_any(col: np.ndarray, want: np.dtype) -> tuple[np.ndarray, tuple[tuple[int, ...], str]]:
    if col.dtype.kind in "biuf":
        return cast_exact(col, want)
    return _cast_objects(col if col.dtype == object else col.astype(object), want)


def numbers_of(series: pd.Series) -> np.ndarray:
    """A column's values as a numpy array: numeric extension types (Int64, Float64,
    boolean) as their numpy type, or float64 with NaN where missing; anything else
    (``str``, categorical, object) as objects."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        return series.to_numpy()
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if isinstance(numpy_dtype, np.dtype) and numpy_dtype.kind in "biuf":
        if not series.hasnans:
            return series.to_numpy(dtype=numpy_dtype)
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return series.to_numpy(dtype=object)
