"""Reading a user's files: an ONNX model, CSV tables and a reason catalogue, with messages
that name the file, the column and the row.

Shared by the command line (``sxai``) and the REST service (``sxai serve`` loads its model,
background and catalogue with these), so both refuse the same files with the same words. No
command-line code here: every problem is a :class:`~surrogate_xai.exceptions.SurrogateXAIError`
and the caller decides how to show it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .exceptions import (
    InputError,
    MissingColumnError,
    ModelLoadError,
    SurrogateXAIError,
)
from .model import Model
from .onnx_model import ONNXModel
from .reasons import ReasonCatalogue
from .reasons import load_catalogue as _load_catalogue
from .tabular import TabularSchema

if TYPE_CHECKING:
    from .adapters.http import HTTPModel


def one_line(message: str) -> str:
    """``message`` on one line: a multi-line message from a dependency is joined with spaces."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _not_a_file(p: Path) -> str:
    """Why ``p`` cannot be read as a file: it is missing, or it is a folder."""
    return f"{p} is a folder, not a file" if p.is_dir() else f"no such file: {p}"


# -- models ------------------------------------------------------------------------------------
def load_model(
    path: str | os.PathLike[str],
    output: str | None = None,
    feature_names: list[str] | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> ONNXModel:
    """An :class:`~surrogate_xai.ONNXModel` from a file, with messages naming the file.

    Parameters
    ----------
    path : path
    output : str, optional
        Which graph output (see :class:`~surrogate_xai.ONNXModel`).
    feature_names : list of str, optional
        Column names of a single-tensor graph.
    columns : sequence of str, optional
        The header of the user's table. A single-tensor graph has no column names, so when
        ``feature_names`` is not given and the header has as many columns as the tensor, the
        header becomes the feature names; every other table must then use the same names in
        the same order (:func:`read_table`). Ignored for a graph with one input per column.

    Raises
    ------
    InputError
        If there is no file at ``path``.
    ModelLoadError
        If the file is not an ONNX model (its first parse error is quoted).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(_not_a_file(p))
    try:
        model = ONNXModel(p, output=output, feature_names=feature_names)
        if (
            feature_names is None
            and columns is not None
            and tensor_input(model)
            and model.feature_names_source == "graph"
        ):
            names = [str(c) for c in columns]
            if len(names) == len(model.feature_names) and names != model.feature_names:
                model = ONNXModel(p, output=output, feature_names=names)
        return model
    except ModelLoadError as exc:
        if exc.__cause__ is None:  # the graph loaded but cannot be used (e.g. an input type)
            raise ModelLoadError(f"{p}: {exc}") from exc
        cause = one_line(str(exc.__cause__))[:200]
        raise ModelLoadError(f"{p} is not an ONNX model ({cause})") from exc


def tensor_input(model: Model) -> bool:
    """Whether the graph takes one float tensor (columns matched by position, not name)."""
    return model.describe().get("input_mode") == "tensor"


# -- tables ------------------------------------------------------------------------------------
class FileMissingColumnError(MissingColumnError):
    """A missing column, worded for a file: which file, and what the model expects."""

    def __init__(self, missing: list[str], available: list[str], message: str) -> None:
        super().__init__(missing, available)
        self.args = (message,)


def read_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A CSV file with every cell as text (empty cells as missing), or an :class:`InputError`.

    Reading as text first keeps categories such as ``"none"`` or ``"NA"`` as written; numbers
    are converted only for the columns the model takes as numbers (:func:`read_table`). A
    column named twice in the header is refused (pandas would rename the second one and it
    would be silently ignored). The header is the first row pandas itself reads (after any
    blank lines it skips), so no spelling of the file can hide a repeated name from the check.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(_not_a_file(p))
    try:
        cells = pd.read_csv(
            p, header=None, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8"
        )
    except pd.errors.EmptyDataError:
        raise InputError(f"{p} has no rows") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{p} is not a readable CSV file (not UTF-8 text: {exc.reason})") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{p} is not a readable CSV file ({one_line(str(exc))[:200]})") from exc
    header = [
        f"Unnamed: {i}" if pd.isna(name) else str(name).lstrip("\ufeff")
        for i, name in enumerate(cells.iloc[0])
    ]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(f"{p}: column {name!r} appears more than once in the header")
        seen.add(name)
    frame = cells.iloc[1:].reset_index(drop=True)
    frame.columns = pd.Index(header)
    if len(frame) == 0:
        raise InputError(f"{p} has no rows")
    return frame


def read_table(
    path: str | os.PathLike[str],
    model: Model,
    what: str | None = None,
    *,
    frame: pd.DataFrame | None = None,
    drop: tuple[str, ...] = (),
    names_from: str | None = None,
) -> pd.DataFrame:
    """The rows of a CSV file in the model's columns, checked and typed.

    Columns map to the model's inputs by name (one input per column); extra columns are
    ignored. For a model that takes a single tensor, the file's columns (without ``drop``)
    must be exactly the model's feature names, in order: the tensor takes them by position,
    so a file with the same columns in another order would be scored wrongly.
    Categorical columns stay text; numeric columns become numbers.

    Parameters
    ----------
    path : path
        The CSV file (named in every message).
    model : Model
        An :class:`~surrogate_xai.ONNXModel`, or a model server from :func:`load_endpoint`.
    what : str, optional
        How to name the file in messages (default: the path as given).
    frame : DataFrame, optional
        The file's content if it was already read with :func:`read_csv`.
    drop : tuple of str
        Columns that are not model inputs (an id or target column).
    names_from : str, optional
        The file whose header gave a single-tensor model its column names (see
        :func:`load_model`'s ``columns``). A header that differs is then blamed on this
        file, with both spellings shown, not on "the model", which has no names of its own.

    Returns
    -------
    DataFrame of shape (n_samples, n_features)

    Raises
    ------
    MissingColumnError
        Naming the missing column and the columns the model expects.
    InputError
        For an empty file, a tensor model's columns in another order or under other names, a
        non-numeric value in a numeric column, a missing value, an unknown category, or a
        number the model's input type cannot hold (column, row and value named).
    """
    name = what or str(path)
    raw = read_csv(path) if frame is None else frame
    raw = raw.drop(columns=[c for c in drop if c in raw.columns])
    expected = model.feature_names
    if tensor_input(model):
        given = [str(c) for c in raw.columns]
        if len(given) != len(expected):
            raise InputError(
                f"{name} has {len(given)} columns but the model takes one tensor of "
                f"{len(expected)} columns (matched in order)"
            )
        if given != expected:
            # Matched by position, a header c,b,a against a,b,c would be accepted and give
            # wrong numbers: the names must agree.
            first = next(i for i, (g, e) in enumerate(zip(given, expected, strict=True)) if g != e)
            # Names the file's metadata declares are the model's own: a header that differs
            # is wrong whatever the other tables say.
            declared = isinstance(model, ONNXModel) and model.feature_names_source == "metadata"
            if names_from is not None and not declared:
                raise InputError(
                    f"{name}: column {first} is {given[first]!r} but {names_from} calls it "
                    f"{expected[first]!r}; the model takes one tensor with no column names of "
                    f"its own, so every table must use {names_from}'s header, in order: fix "
                    "whichever of the two is misspelt"
                )
            raise InputError(
                f"{name}: column {first} is {given[first]!r} but the model's tensor column "
                f"{first} is {expected[first]!r}; a single-tensor model takes its columns in "
                f"order, and they must be named {', '.join(expected[:12])}"
                + (", ..." if len(expected) > 12 else "")
            )
    missing = [c for c in expected if c not in raw.columns]
    if missing:
        shown = ", ".join(expected[:12]) + (", ..." if len(expected) > 12 else "")
        raise FileMissingColumnError(
            missing,
            [str(c) for c in raw.columns],
            f"{name}: missing column {missing[0]!r} (the model expects: {shown})",
        )
    kinds = model.feature_kinds or dict.fromkeys(expected, "numeric")
    typed = raw.loc[:, expected].copy()
    for col in expected:
        if kinds.get(col) == "numeric":
            converted = pd.to_numeric(typed[col], errors="coerce")
            # A value that is not a number stays as text, so the schema check names it.
            keep = converted.isna() & typed[col].notna()
            typed[col] = converted if not keep.any() else typed[col]
        else:
            typed[col] = typed[col].astype(object)
    checked = TabularSchema.infer(model, typed).check(typed, name)
    out = checked.reset_index(drop=True).pipe(_numeric_columns, kinds)
    if isinstance(model, ONNXModel):  # the graph's input types bound the values
        model.check_input_range(out, name)
    return out


def _numeric_columns(frame: pd.DataFrame, kinds: dict[str, Any]) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if kinds.get(col) == "numeric" and not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = pd.to_numeric(out[col])
    return out


# -- model servers -----------------------------------------------------------------------------
def column_kinds(
    columns: Sequence[str], tables: Sequence[pd.DataFrame]
) -> dict[str, list[str] | None]:
    """For a model with no schema of its own (a model server): each column is numeric when
    every value in ``tables`` (text, as :func:`read_csv` reads them) is a number, else
    categorical with the values seen as its categories (``None`` marks numeric)."""
    out: dict[str, list[str] | None] = {}
    for col in columns:
        values = pd.concat([t[col] for t in tables if col in t.columns], ignore_index=True)
        present = values.dropna()
        if pd.to_numeric(present, errors="coerce").notna().all():
            out[col] = None
        else:
            out[col] = sorted({str(v) for v in present})
    return out


def load_endpoint(
    url: str,
    columns: Sequence[str],
    tables: Sequence[pd.DataFrame],
    *,
    what: str,
    output_names: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> HTTPModel:
    """A model server as a :class:`~surrogate_xai.Model` whose columns are ``columns``.

    The server declares no schema, so the column kinds come from the user's tables
    (:func:`column_kinds`): text columns become categorical with the values seen. Without
    ``output_names`` the outputs are named after the server's answer for the first row of
    ``tables[0]`` (one request, counted against the budget).

    Parameters
    ----------
    url : str
    columns : sequence of str
        The model's inputs, in order (the header of the rows to explain).
    tables : sequence of DataFrame
        The rows to explain first, then the reference rows, as :func:`read_csv` reads them.
    what : str
        How to name ``tables[0]`` in messages (its file).
    output_names : sequence of str, optional
    options : mapping, optional
        Keyword arguments of :class:`~surrogate_xai.adapters.http.HTTPModel` (protocol,
        output, headers, limits).

    Raises
    ------
    ConfigurationError, RemoteModelError, BudgetExceededError
        A bad option, a server that cannot be queried, a budget too small for the probe.
    """
    try:
        from .adapters.http import HTTPModel
    except ImportError as exc:
        raise InputError(f"--endpoint needs the http extra: {exc}") from None
    kinds = column_kinds(columns, tables)
    categories = {c: v for c, v in kinds.items() if v is not None}
    model = HTTPModel(
        url,
        list(columns),
        output_names,
        categories=categories or None,
        **dict(options or {}),
    )
    if output_names is None:
        try:
            model.infer_outputs(read_table(what, model, frame=tables[0].iloc[:1]))
        except BaseException:
            model.close()
            raise
    return model


# -- catalogues --------------------------------------------------------------------------------
def load_catalogue(
    path: str | os.PathLike[str], feature_names: Sequence[str] | None = None
) -> ReasonCatalogue:
    """A reason-code catalogue from a YAML file; errors name the file.

    With ``feature_names`` (the model's), a catalogue that maps a feature the model does not
    have is refused: a typo such as ``purpos`` would otherwise leave every reason for that
    feature unmapped without a word.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(_not_a_file(p))
    try:
        catalogue = _load_catalogue(p)
        if feature_names is not None:
            catalogue.check_features(feature_names)
    except SurrogateXAIError as exc:
        message = str(exc) if str(p) in str(exc) else f"{p}: {exc}"
        raise type(exc)(message) from exc
    return catalogue


__all__ = [
    "FileMissingColumnError",
    "column_kinds",
    "load_catalogue",
    "load_endpoint",
    "load_model",
    "one_line",
    "read_csv",
    "read_table",
    "tensor_input",
]
