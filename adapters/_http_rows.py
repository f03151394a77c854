"""Rows as plain JSON values, and batches of them within a row and byte limit.

Every row becomes a list of JSON-ready values in ``feature_names`` order (float, int, bool,
str, or None for a missing value) and the compact JSON text of that list, its key: the row
cache is keyed by it, duplicates within a call are found by it, and most wire formats splice
it into their body as it is. Floats are written in shortest round-trip form, so the server
reads back exactly the float64 that was explained.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InputError
from .wire import WireFormat


def _column_values(values: np.ndarray, name: str) -> list[Any]:
    kind = values.dtype.kind
    if kind == "f":
        inf = np.isinf(values)
        if inf.any():
            row = int(np.flatnonzero(inf)[0])
            raise InputError(
                f"column {name!r} has {values[row]} at row {row}; JSON cannot carry infinity"
            )
        out = values.tolist()
        nan = np.isnan(values)
        if nan.any():
            for pos in np.flatnonzero(nan).tolist():
                out[pos] = None
        return out
    if kind in "iub":
        return values.tolist()
    if kind in "OUS":
        out = values.tolist()
        for i, v in enumerate(out):
            if isinstance(v, np.generic):
                v = out[i] = v.item()
            if v is None or v is pd.NA or (isinstance(v, float) and v != v):
                out[i] = None
            elif isinstance(v, float) and v in (float("inf"), float("-inf")):
                raise InputError(f"column {name!r} has {v} at row {i}; JSON cannot carry infinity")
            elif isinstance(v, bytes):
                out[i] = v.decode("utf-8", errors="replace")
        return out
    raise InputError(
        f"column {name!r} has dtype {values.dtype}, which has no JSON form; "
        f"convert it to numbers or strings first"
    )


def encode_rows(
    X: pd.DataFrame | np.ndarray, names: list[str]
) -> tuple[list[list[Any]], list[str]]:
    """``X`` as rows of JSON values and their compact JSON texts (the keys)."""
    if isinstance(X, np.ndarray) and X.dtype.kind in "fiub" and not np.isnan(X).any():
        if X.dtype.kind == "f" and np.isinf(X).any():
            row, col = np.argwhere(np.isinf(X))[0]
            raise InputError(
                f"column {names[col]!r} has {X[row, col]} at row {row}; JSON cannot carry infinity"
            )
        rows: list[list[Any]] = X.tolist()
    else:
        if isinstance(X, pd.DataFrame):
            columns = [_column_values(X[c].to_numpy(), c) for c in names]
        else:
            columns = [_column_values(X[:, j], c) for j, c in enumerate(names)]
        rows = [list(r) for r in zip(*columns, strict=True)]
    try:
        keys = [json.dumps(r, separators=(",", ":"), allow_nan=False) for r in rows]
    except (TypeError, ValueError) as exc:
        raise InputError(f"a row cannot be encoded as JSON: {exc}") from None
    return rows, keys


@dataclass(frozen=True)
class Batch:
    """Rows sent in one request, their keys and the request body."""

    rows: list[list[Any]]
    keys: list[str]
    body: bytes


def plan_batches(
    rows: list[list[Any]],
    keys: list[str],
    fmt: WireFormat,
    columns: list[str],
    *,
    max_rows: int,
    max_bytes: int,
) -> list[Batch]:
    """Consecutive batches of at most ``max_rows`` rows whose bodies have at most
    ``max_bytes`` bytes.

    Batches are cut from the format's size of one and two rows (its envelope and what each
    row adds beyond its key), then every body is built and checked: a body over the limit is
    split in two (an envelope whose size grows with the batch, like a V2 tensor's ``shape``,
    can make the estimate short by a few bytes).
    """
    if not rows:
        return []
    one = len(fmt.encode(rows[:1], keys[:1], columns))
    two = len(fmt.encode(rows[:1] * 2, keys[:1] * 2, columns))
    per_row = two - one - len(keys[0])  # what a row costs beyond its key
    envelope = one - len(keys[0]) - per_row
    cuts: list[tuple[int, int]] = []
    start, size = 0, envelope
    for i, key in enumerate(keys):
        cost = len(key) + per_row
        if i > start and (i - start >= max_rows or size + cost > max_bytes):
            cuts.append((start, i))
            start, size = i, envelope
        size += cost
    cuts.append((start, len(keys)))
    batches: list[Batch] = []
    for a, b in cuts:
        batches.extend(_fitted(rows[a:b], keys[a:b], fmt, columns, max_bytes))
    return batches


def _fitted(
    rows: list[list[Any]], keys: list[str], fmt: WireFormat, columns: list[str], max_bytes: int
) -> list[Batch]:
    body = fmt.encode(rows, keys, columns)
    if len(body) <= max_bytes:
        return [Batch(rows, keys, body)]
    if len(rows) == 1:
        raise InputError(
            f"a row encodes to {len(body)} bytes with its envelope ({fmt.name}), more than "
            f"batch_bytes={max_bytes}"
        )
    half = len(rows) // 2
    return _fitted(rows[:half], keys[:half], fmt, columns, max_bytes) + _fitted(
        rows[half:], keys[half:], fmt, columns, max_bytes
    )


def sent_rows(batches: Sequence[Batch]) -> int:
    return sum(len(b.rows) for b in batches)
