"""What every ``sxai`` command shares: one-line errors, store URLs and output files.

A user mistake (a missing file, a column the model needs, an unknown category, a bad config
key) ends with one line ``error: ...`` on stderr and exit code 2, never a traceback. The
checks themselves are the library's (``ONNXModel``, ``TabularSchema.check``,
``ReasonCatalogue``); the loaders for models, tables and catalogues are in
:mod:`surrogate_xai.inputs` (the service uses them too) and are re-exported here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import typer

from ..decisions import decision_output
from ..exceptions import ConfigurationError, InputError, SurrogateXAIError, TamperedRecordError
from ..inputs import (
    FileMissingColumnError,
    load_catalogue,
    load_model,
    one_line,
    read_csv,
    read_table,
    tensor_input,
)
from ..model import Model
from ..output_files import write_target
from ..staging import StagedFiles, write_atomic

#: Exit code of a user mistake (the same code click uses for usage errors).
EXIT_USAGE = 2
#: Exit code of a check that ran and failed: a replay that differs, a tampered store.
EXIT_FAILED = 1


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


# -- decisions -------------------------------------------------------------------------------
def score_index(model: Model, score: str | None) -> int:
    """The output column a decision is made on (see :func:`surrogate_xai.decisions.decision_output`)."""
    try:
        return decision_output(model.output_names, score)
    except ConfigurationError:
        raise ConfigurationError(
            f"--score {score!r} is not an output of the model; outputs: {model.output_names}"
        ) from None


# -- stores --------------------------------------------------------------------------------------
def store_url(value: str) -> str:
    """A database URL; a plain path means a SQLite file (``audit.db`` → ``sqlite:///audit.db``).

    An in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``) is refused: the
    records would vanish when the command exits, and ``sxai verify`` on it would say
    "ok: 0 records". (The library's :class:`~surrogate_xai.AuditStore` allows it, for tests.)
    """
    from sqlalchemy import make_url
    from sqlalchemy.engine import URL
    from sqlalchemy.exc import SQLAlchemyError

    # A path is the file's name as typed: escaped into the URL, so that a '%', '?' or '#' in
    # it reaches the driver as itself.
    url = value if "://" in value else URL.create("sqlite", database=value).render_as_string()
    try:
        parsed = make_url(url)
    except SQLAlchemyError:
        return url  # AuditStore names the URL (password hidden) when it refuses it
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or "mode=memory" in database
        or parsed.query.get("mode") == "memory"
    ):
        raise InputError(
            f"--store {shown_url(url)} is an in-memory database: its records would be lost "
            "when sxai exits; give a file (audit.db or sqlite:///audit.db) or a server URL"
        )
    return url


def shown_url(value: str) -> str:
    """A store as it may be printed or written: a file path as given, a URL with its
    password replaced by ``***``.

    Everything the command line shows or writes (the summary, reports, error messages) uses
    this form; the password itself goes only to the database driver. A path stays a path, so
    a printed ``sxai replay --store ...`` names the file the user typed (a URL would have to
    percent-encode spaces and parentheses).
    """
    if "://" not in value:
        return value
    from sqlalchemy import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return make_url(value).render_as_string(hide_password=True)
    except SQLAlchemyError:
        import re

        return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", value)


def existing_store(value: str) -> str:
    """The URL of a store that must already exist (a SQLite file is checked, not created).

    Open it with ``AuditStore(url, create=False)``: a database without the audit tables (an
    empty file, another application's database) is then refused instead of being turned
    into an empty audit store.
    """
    url = store_url(value)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise InputError(f"no audit store at {path} (no such file)")
    return url


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite store URL opens, resolved as the database driver resolves it (every
    spelling of one file gives the same path); None for other databases."""
    from ..audit.location import sqlite_file

    return sqlite_file(url)


def check_distinct_paths(outputs: dict[str, Path], inputs: dict[str, Path]) -> None:
    """Refuse an output path that is also an input (or another output) of the same run.

    ``--out audit.db --store audit.db`` would rename the results over the audit store (and
    its years of records); ``--out rows.csv --data rows.csv`` would replace the input. Paths
    are compared after resolving symlinks, ``..`` and the working folder, so two spellings of
    one file are the same file. ``outputs`` and ``inputs`` map a label (an option name) to a
    path.
    """

    def real(p: Path) -> str:
        return os.path.normcase(os.path.realpath(p))

    seen: dict[str, str] = {real(p): label for label, p in inputs.items()}
    for label, p in outputs.items():
        key = real(p)
        other = seen.get(key)
        if other is not None:
            raise InputError(
                f"{label} {p} is the same file as {other}; it would be overwritten: "
                "give another path"
            )
        seen[key] = label


# -- output files ----------------------------------------------------------------------------------
def _existing_ancestor(path: Path) -> Path:
    here = path
    while not here.exists() and here != here.parent:
        here = here.parent
    return here


def check_writable_dir(path: Path, what: str, *, create: bool = False) -> None:
    """Fail before any work when ``path``'s folder cannot take a new file.

    With ``create``, a folder that does not exist yet is fine when it can be created (its
    nearest existing ancestor is a writable folder): the command creates it, with its
    parents, when it writes.
    """
    # A symlink is written through to its target; a device or pipe is refused here, before
    # any work (renaming a file over /dev/stdout would replace the device node).
    path = write_target(path, what)
    parent = path.parent if path.parent != Path("") else Path(".")
    if not parent.is_dir():
        if not create:
            raise InputError(f"{what}: the folder {parent} does not exist")
        base = _existing_ancestor(parent)
        if not base.is_dir():
            raise InputError(f"{what}: {base} is not a folder, so {parent} cannot be created")
        parent = base
    if not os.access(parent, os.W_OK):
        raise InputError(f"{what}: the folder {parent} is not writable")


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block is done, then raise it.

    Used from the audit commit to the last rename: once records are committed, the files that
    carry their ids must be renamed into place, so an interrupt in between must not leave
    records without their results and reports. Outside the main thread (where signal handlers
    cannot be set) the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    # Only reached when the block finished normally: an exception already propagating wins.
    if caught:
        raise KeyboardInterrupt


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


# The loaders live in surrogate_xai.inputs (shared with the service); re-exported here.
__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "FileMissingColumnError",
    "StagedFiles",
    "check_distinct_paths",
    "check_writable_dir",
    "deferred_interrupts",
    "existing_store",
    "fail",
    "load_catalogue",
    "load_model",
    "one_line",
    "read_csv",
    "read_table",
    "score_index",
    "shown_url",
    "sqlite_path",
    "stderr_is_terminal",
    "store_url",
    "tensor_input",
    "user_errors",
    "write_atomic",
]
