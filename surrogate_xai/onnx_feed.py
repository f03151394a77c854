"""Rows of flat columns turned into an ONNX graph's inputs, each in its element type and shape.

The columns of one input are cut from the row (a contiguous range of the flat columns),
cast exactly (:mod:`~surrogate_xai.onnx_cast`: a value the cast would change is refused,
naming its column and row) and reshaped to the input's shape after the batch axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .onnx_cast import UnfitValue, cast_any, cast_exact, numbers_of
from .onnx_graph import InputSlot

__all__ = ["InputFeed"]


class InputFeed:
    """How rows of the flat columns ``names`` become the graph's inputs ``slots``."""

    def __init__(self, slots: list[InputSlot]) -> None:
        self.slots = slots
        self.names = [c for slot in slots for c in slot.columns]
        self.dtypes: dict[str, Any] = {c: slot.dtype for slot in slots for c in slot.columns}
        #: One numeric tensor of several columns, matched by position ("tensor mode").
        self.tensor_mode = len(slots) == 1 and slots[0].width != 1 and not slots[0].text
        # Numeric columns by element type, as positions among the flat columns: for a
        # numeric array the columns of one type are converted (and checked) in one go.
        groups: dict[np.dtype, list[int]] = {}
        for j, dt in enumerate(self.dtypes.values()):
            if dt is not object:
                groups.setdefault(np.dtype(dt), []).append(j)
        self.numeric_groups = list(groups.items())

    @staticmethod
    def numeric_column(name: str, values: np.ndarray, want: np.dtype) -> np.ndarray:
        out, (where, problem) = cast_any(values, want)
        if where:
            raise UnfitValue(name, where[0], values[where[0]], problem, want)
        return out

    def _tensor(self, X: pd.DataFrame | np.ndarray, want: np.dtype) -> np.ndarray:
        """All columns as one ``(n, n_features)`` array of type ``want``."""
        if isinstance(X, pd.DataFrame):
            types = set(X.dtypes)
            if len(types) != 1 or not all(
                isinstance(dt, np.dtype) and dt.kind in "biuf" for dt in types
            ):
                # Column by column, each from its own type: one array of mixed columns would
                # put int64 through float64, and extension or object columns need converting.
                out = np.empty((len(X), X.shape[1]), dtype=want)
                for j, name in enumerate(self.names):
                    out[:, j] = self.numeric_column(name, numbers_of(X[name]), want)
                return out
            a = X.to_numpy()  # one numeric type: no copy when the columns are one block
        else:
            a = np.asarray(X)
        if a.dtype.kind not in "biuf":
            out = np.empty(a.shape, dtype=want)
            for j, name in enumerate(self.names):
                out[:, j] = self.numeric_column(name, a[:, j], want)
            return out
        out, (where, problem) = cast_exact(a, want)
        if where:
            row, j = where
            raise UnfitValue(self.names[j], row, a[row, j], problem, want)
        return np.ascontiguousarray(out)

    def _columns(self, X: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        """Each flat column of ``X`` as a 1-D array in its input's type."""
        names = self.names
        columns: dict[str, np.ndarray] = {}
        frame = X if isinstance(X, pd.DataFrame) else None
        array = np.asarray(X) if frame is None else None
        if array is not None and array.dtype.kind in "biuf":
            # A numeric array: its columns as rows of one (columns, rows) block per type,
            # so each column's values are contiguous and checked in one call.
            for want, idx in self.numeric_groups:
                block = array.T if len(idx) == array.shape[1] else array.T[idx]
                out, (where, problem) = cast_exact(block, want)
                if where:
                    i, row = where
                    raise UnfitValue(names[idx[i]], row, array[row, idx[i]], problem, want)
                for i, j in enumerate(idx):
                    columns[names[j]] = out[i]
        for j, (name, dt) in enumerate(self.dtypes.items()):
            if name in columns:
                continue
            want = np.dtype(dt)
            if frame is not None:
                col = frame[name].to_numpy() if want.kind == "O" else numbers_of(frame[name])
            else:
                assert array is not None
                col = array[:, j]
            if want.kind == "O":
                columns[name] = col.astype(str).astype(object) if col.dtype != object else col
            else:
                columns[name] = self.numeric_column(name, col, want)
        return columns

    def feed(self, X: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        """The graph's inputs for rows ``X``, each in its input's type and shape.

        Raises ``UnfitValue`` for a value the conversion would change (see
        :func:`~surrogate_xai.onnx_cast.cast_exact`).
        """
        n = len(X)
        if self.tensor_mode:
            slot = self.slots[0]
            flat = self._tensor(X, np.dtype(slot.dtype))
            return {slot.name: flat.reshape((n, *slot.inner))}
        columns = self._columns(X)
        feed = {}
        for slot in self.slots:
            if slot.width == 1:
                block = np.ascontiguousarray(columns[slot.columns[0]])
            else:
                block = np.stack([columns[c] for c in slot.columns], axis=1)
            feed[slot.name] = block.reshape((n, *slot.inner))
        return feed
