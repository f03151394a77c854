"""What every ``sxai`` command shares: one-line errors, reading models, tables and catalogues.

A user mistake (a missing file, a column the model needs, an unknown category, a bad config
key) ends with one line ``error: ...`` on stderr and exit code 2, never a traceback. The
checks themselves are the library's (``ONNXModel``, ``TabularSchema.check``,
``ReasonCatalogue``); this module only reads files and words the messages for a command line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import typer

from ..exceptions import (
    InputError,
    MissingColumnError,
    ModelLoadError,
    SurrogateXAIError,
    TamperedRecordError,
)
from ..onnx_model import ONNXModel
from ..reasons import ReasonCatalogue
from ..reasons import load_catalogue as _load_catalogue
from ..tabular import TabularSchema

#: Exit code of a user mistake (the same code click uses for usage errors).
EXIT_USAGE = 2
#: Exit code of a check that ran and failed: a replay that differs, a tampered store.
EXIT_FAILED = 1


def one_line(message: str) -> str:
    """``message`` on one line: a multi-line message from a dependency is joined with spaces."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def _os_message(exc: OSError) -> str:
    return f"{exc.filename}: {exc.strerror or type(exc).__name__}"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into ``error: ...`` and an exit code.

    Usable as a context manager or a decorator. Library errors and unreadable paths exit
    with 2; a tampered audit record with 1 (the check ran and found a problem). Anything
    else is a bug and keeps its traceback.
    """
    from pydantic import ValidationError

    from ._config import validation_message

    try:
        yield
    except TamperedRecordError as exc:
        fail(f"the audit store has been tampered with: {exc}", EXIT_FAILED)
    except SurrogateXAIError as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(validation_message(exc, "the options"))
    except OSError as exc:
        if exc.filename is None:  # not about a path the user gave (e.g. a missing template)
            raise
        fail(_os_message(exc))


# -- models ------------------------------------------------------------------------------------
def load_model(
    path: str | os.PathLike[str],
    output: str | None = None,
    feature_names: list[str] | None = None,
) -> ONNXModel:
    """An :class:`~surrogate_xai.ONNXModel` from a file, or a one-line error.

    Raises
    ------
    InputError
        If there is no file at ``path``.
    ModelLoadError
        If the file is not an ONNX model (its first parse error is quoted).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file: {p}")
    try:
        return ONNXModel(p, output=output, feature_names=feature_names)
    except ModelLoadError as exc:
        if exc.__cause__ is None:  # the graph loaded but cannot be used (e.g. an input type)
            raise ModelLoadError(f"{p}: {exc}") from exc
        cause = one_line(str(exc.__cause__))[:200]
        raise ModelLoadError(f"{p} is not an ONNX model ({cause})") from exc


def tensor_input(model: ONNXModel) -> bool:
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
    are converted only for the columns the model takes as numbers (:func:`read_table`).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file: {p}")
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise InputError(f"{p} has no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{p} is not a readable CSV file ({one_line(str(exc))[:200]})") from exc
    if len(frame) == 0:
        raise InputError(f"{p} has no rows")
    duplicated = [str(c) for c in frame.columns[frame.columns.duplicated()]]
    if duplicated:
        raise InputError(f"{p}: column {duplicated[0]!r} appears more than once")
    return frame


def read_table(
    path: str | os.PathLike[str],
    model: ONNXModel,
    what: str | None = None,
    *,
    frame: pd.DataFrame | None = None,
    drop: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The rows of a CSV file in the model's columns, checked and typed.

    Columns map to the model's inputs by name (one input per column); for a model that
    takes a single tensor, the file's columns (without ``drop``) map to it in order.
    Categorical columns stay text; numeric columns become numbers.

    Parameters
    ----------
    path : path
        The CSV file (named in every message).
    model : ONNXModel
    what : str, optional
        How to name the file in messages (default: the path as given).
    frame : DataFrame, optional
        The file's content if it was already read with :func:`read_csv`.
    drop : tuple of str
        Columns that are not model inputs (an id or target column).

    Returns
    -------
    DataFrame of shape (n_samples, n_features)

    Raises
    ------
    MissingColumnError
        Naming the missing column and the columns the model expects.
    InputError
        For an empty file, a non-numeric value in a numeric column, a missing value, or an
        unknown category (column, row and value named).
    """
    name = what or str(path)
    raw = read_csv(path) if frame is None else frame
    raw = raw.drop(columns=[c for c in drop if c in raw.columns])
    expected = model.feature_names
    if tensor_input(model):
        if raw.shape[1] != len(expected):
            raise InputError(
                f"{name} has {raw.shape[1]} columns but the model takes one tensor of "
                f"{len(expected)} columns (matched in order)"
            )
        raw = raw.set_axis(expected, axis=1)
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
    return checked.reset_index(drop=True).pipe(_numeric_columns, kinds)


def _numeric_columns(frame: pd.DataFrame, kinds: dict[str, Any]) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if kinds.get(col) == "numeric" and not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = pd.to_numeric(out[col])
    return out


# -- catalogues, stores, output files ------------------------------------------------------------
def load_catalogue(path: str | os.PathLike[str]) -> ReasonCatalogue:
    """A reason-code catalogue from a YAML file; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file: {p}")
    try:
        return _load_catalogue(p)
    except SurrogateXAIError as exc:
        raise type(exc)(f"{p}: {exc}") from exc


def store_url(value: str) -> str:
    """A database URL; a plain path means a SQLite file (``audit.db`` → ``sqlite:///audit.db``)."""
    return value if "://" in value else f"sqlite:///{value}"


def existing_store(value: str) -> str:
    """The URL of a store that must already exist (a SQLite file is checked, not created)."""
    url = store_url(value)
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        path = Path(url[len(prefix) :])
        if not path.is_file():
            raise InputError(f"no audit store at {path} (no such file)")
    return url


def check_writable_dir(path: Path, what: str) -> None:
    """Fail before any work when ``path``'s folder cannot take a new file."""
    parent = path.parent if path.parent != Path("") else Path(".")
    if not parent.is_dir():
        raise InputError(f"{what}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{what}: the folder {parent} is not writable")


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file next to ``path``, then rename it into place.

    A crash or an error part-way leaves the previous file (or none), never half of one.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def plain_float(x: float) -> float | None:
    """A float for JSON: NaN and infinity become null."""
    return float(x) if np.isfinite(x) else None


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
