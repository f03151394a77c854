"""Raw tabular inputs: checking them against the model, and coding them as one float matrix.

Perturbations mix values of the explained row with values of background rows, column by
column. Doing that on a single float64 matrix is fast, so categorical columns are held as
integer codes into a per-call codebook and turned back into their strings right before the
model is called. The model therefore only ever sees real categories, in the raw feature space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .exceptions import (
    ConfigurationError,
    InputError,
    InvalidValueError,
    MissingColumnError,
    NonFiniteInputError,
    UnknownCategoryError,
)
from .model import FeatureKind, Model


def _row_label(frame: pd.DataFrame, position: int) -> str:
    label = frame.index[position]
    return f"row {position}" if label == position else f"row {position} (index {label!r})"


def as_frame(
    X: pd.DataFrame | np.ndarray | Sequence[Sequence[object]], columns: list[str]
) -> pd.DataFrame:
    """``X`` as a DataFrame; an array's columns are taken to be ``columns`` in order."""
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=object if not isinstance(X, np.ndarray) else None)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != len(columns):
        raise InputError(
            f"expected a DataFrame or a 2-D array with {len(columns)} columns, got shape {arr.shape}"
        )
    return pd.DataFrame(arr, columns=columns)


@dataclass(frozen=True)
class TabularSchema:
    """Columns of the model's input, their kinds, and what values each may take."""

    columns: tuple[str, ...]
    kinds: tuple[FeatureKind, ...]
    known_categories: Mapping[str, tuple[str, ...]]
    allow_missing: bool

    @classmethod
    def infer(cls, model: Model, reference: pd.DataFrame) -> TabularSchema:
        """Kinds come from the model where it declares them, else from ``reference`` dtypes."""
        columns = tuple(model.feature_names)
        missing = [c for c in columns if c not in reference.columns]
        if missing:
            raise MissingColumnError(missing, [str(c) for c in reference.columns])
        declared = model.feature_kinds or {}
        kinds: list[FeatureKind] = []
        for c in columns:
            if c in declared:
                kinds.append(declared[c])
            elif pd.api.types.is_numeric_dtype(reference[c]) and not pd.api.types.is_bool_dtype(
                reference[c]
            ):
                kinds.append("numeric")
            else:
                kinds.append("categorical")
        known = {c: tuple(v) for c, v in model.known_categories.items() if v}
        return cls(columns, tuple(kinds), known, model.allow_missing)

    @property
    def categorical(self) -> list[str]:
        return [c for c, k in zip(self.columns, self.kinds, strict=True) if k == "categorical"]

    def check(self, X: pd.DataFrame, what: str = "X") -> pd.DataFrame:
        """Validate ``X`` and return it restricted to the model's columns, in order.

        Raises a specific :class:`InputError` naming the column and row of the first problem.
        """
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise MissingColumnError(missing, [str(c) for c in X.columns])
        if len(X) == 0:
            raise InputError(f"{what} has no rows")
        frame = X.loc[:, list(self.columns)]
        for col, kind in zip(self.columns, self.kinds, strict=True):
            series = frame[col]
            if kind == "numeric":
                self._check_numeric(frame, col, series, what)
            else:
                self._check_categorical(frame, col, series, what)
        return frame

    def _check_numeric(self, frame: pd.DataFrame, col: str, series: pd.Series, what: str) -> None:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        not_numeric = np.isnan(values) & series.notna().to_numpy()
        if not_numeric.any():
            pos = int(np.flatnonzero(not_numeric)[0])
            raise InvalidValueError(
                f"column {col!r} of {what} is numeric but {_row_label(frame, pos)} holds "
                f"{series.iloc[pos]!r}"
            )
        bad = np.isinf(values) | (np.isnan(values) & (not self.allow_missing))
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            hint = (
                ""
                if np.isinf(values[pos])
                else " (the model was not declared to accept missing values)"
            )
            raise NonFiniteInputError(
                f"column {col!r} of {what} has {values[pos]} at {_row_label(frame, pos)}{hint}"
            )

    def _check_categorical(
        self, frame: pd.DataFrame, col: str, series: pd.Series, what: str
    ) -> None:
        isna = series.isna().to_numpy()
        if isna.any():
            pos = int(np.flatnonzero(isna)[0])
            raise NonFiniteInputError(
                f"categorical column {col!r} of {what} is missing a value at {_row_label(frame, pos)}"
            )
        known = self.known_categories.get(col)
        if known is None:
            return
        text = series.astype(str).to_numpy()
        unknown = ~np.isin(text, np.asarray(known, dtype=object))
        if unknown.any():
            pos = int(np.flatnonzero(unknown)[0])
            shown = ", ".join(repr(k) for k in known[:8]) + (", ..." if len(known) > 8 else "")
            raise UnknownCategoryError(
                f"column {col!r} of {what} has unknown category {text[pos]!r} at "
                f"{_row_label(frame, pos)}; the model knows {shown}"
            )


class Codebook:
    """Codes categorical values as integers (stored as float64) and decodes them back.

    Built for one explanation call from every frame it will see, so every value has a code.
    Codes are internal: the model always receives the decoded strings.
    """

    def __init__(self, schema: TabularSchema, frames: Sequence[pd.DataFrame]) -> None:
        self.schema = schema
        self.categories: dict[str, np.ndarray] = {}
        for col in schema.categorical:
            seen: set[str] = set(schema.known_categories.get(col, ()))
            for f in frames:
                seen.update(f[col].astype(str).unique().tolist())
            self.categories[col] = np.array(sorted(seen), dtype=object)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """``frame`` (already checked) as a float64 matrix of shape ``(n_samples, n_features)``."""
        out = np.empty((len(frame), len(self.schema.columns)), dtype=np.float64)
        for j, col in enumerate(self.schema.columns):
            if col in self.categories:
                cats = self.categories[col]
                out[:, j] = np.searchsorted(cats, frame[col].astype(str).to_numpy(dtype=object))
            else:
                out[:, j] = pd.to_numeric(frame[col]).to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame | np.ndarray:
        """What the model receives: the matrix itself when all columns are numeric."""
        if not self.categories:
            return matrix
        data: dict[str, np.ndarray | pd.Series] = {}
        for j, col in enumerate(self.schema.columns):
            if col in self.categories:
                # An explicit object Series: pandas 3 would otherwise convert every decoded
                # column to its string dtype, a copy the model's input path undoes again.
                codes = matrix[:, j].astype(np.intp)
                data[col] = pd.Series(self.categories[col][codes], dtype=object, copy=False)
            else:
                data[col] = matrix[:, j]
        return pd.DataFrame(data, copy=False)


def resolve_groups(
    columns: Sequence[str], feature_groups: Mapping[str, Sequence[str]] | None
) -> tuple[list[str], np.ndarray]:
    """Attribution units and, for each column, the index of the unit it belongs to.

    Columns named in no group are units of their own, kept in column order; a group takes the
    position of its first column.
    """
    columns = list(columns)
    if not feature_groups:
        return list(columns), np.arange(len(columns))
    owner: dict[str, str] = {}
    for name, members in feature_groups.items():
        if isinstance(members, str):
            raise ConfigurationError(
                f"group {name!r} must list columns, got the string {members!r}"
            )
        if not members:
            raise ConfigurationError(f"group {name!r} has no columns")
        for col in members:
            if col not in columns:
                raise ConfigurationError(f"group {name!r} names unknown column {col!r}")
            if col in owner:
                raise ConfigurationError(
                    f"column {col!r} is in both group {owner[col]!r} and group {name!r}"
                )
            owner[col] = str(name)
    clash = [n for n in feature_groups if n in columns and owner.get(n) != n]
    if clash:
        raise ConfigurationError(f"group name(s) {clash} collide with ungrouped column names")
    units: list[str] = []
    for col in columns:
        unit = owner.get(col, col)
        if unit not in units:
            units.append(unit)
    index = np.array([units.index(owner.get(col, col)) for col in columns], dtype=np.intp)
    return units, index
