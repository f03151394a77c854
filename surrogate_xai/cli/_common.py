"""What every ``sxai`` command shares: one-line errors, store URLs and output files.

A user mistake (a missing file, a column the model needs, an unknown category, a bad config
key) ends with one line ``error: ...`` on stderr and exit code 2, never a traceback. The
checks themselves are the library's (``ONNXModel``, ``TabularSchema.check``,
``ReasonCatalogue``); the loaders for models, tables and catalogues are in
:mod:`surrogate_xai.inputs` (the service uses them too) and are re-exported here.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import typer

from ..exceptions import InputError, SurrogateXAIError, TamperedRecordError
from ..inputs import (
    FileMissingColumnError,
    load_catalogue,
    load_model,
    one_line,
    read_csv,
    read_table,
    tensor_input,
)

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


# -- stores --------------------------------------------------------------------------------------
def store_url(value: str) -> str:
    """A database URL; a plain path means a SQLite file (``audit.db`` → ``sqlite:///audit.db``).

    An in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``) is refused: the
    records would vanish when the command exits, and ``sxai verify`` on it would say
    "ok: 0 records". (The library's :class:`~surrogate_xai.AuditStore` allows it, for tests.)
    """
    url = value if "://" in value else f"sqlite:///{value}"
    from sqlalchemy import make_url
    from sqlalchemy.exc import SQLAlchemyError

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
    """A store URL as it may be printed or written: the password replaced by ``***``.

    Everything the command line shows or writes (the summary, reports, error messages) uses
    this form; the password itself goes only to the database driver.
    """
    url = value if "://" in value else f"sqlite:///{value}"
    from sqlalchemy import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        import re

        return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", url)


def existing_store(value: str) -> str:
    """The URL of a store that must already exist (a SQLite file is checked, not created)."""
    url = store_url(value)
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = Path(url[len(prefix) :].split("?", 1)[0])
        if not path.is_file():
            raise InputError(f"no audit store at {path} (no such file)")
    return url


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
    parent = path.parent if path.parent != Path("") else Path(".")
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file")
    if not parent.is_dir():
        if not create:
            raise InputError(f"{what}: the folder {parent} does not exist")
        base = _existing_ancestor(parent)
        if not base.is_dir():
            raise InputError(f"{what}: {base} is not a folder, so {parent} cannot be created")
        parent = base
    if not os.access(parent, os.W_OK):
        raise InputError(f"{what}: the folder {parent} is not writable")


class StagedFiles:
    """Output files written under temporary names and renamed into place together.

    :meth:`stage` writes each file next to its final path (so that the rename cannot cross
    file systems) and fsyncs it; :meth:`commit` renames them all; :meth:`discard` removes
    every temporary file. Until :meth:`commit`, nothing the user can see has changed. Every
    error names the user's path, never a temporary one.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def stage(self, path: Path, text: str) -> None:
        parent = path.parent if path.parent != Path("") else Path(".")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or type(exc).__name__}") from exc
        self._staged.append((Path(tmp), path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or type(exc).__name__}") from exc

    def rewrite(self, replace: dict[str, str]) -> None:
        """Substitute strings of equal length in every staged file (ids known only later).

        Equal lengths keep each file's size, so this cannot run out of space.
        """
        if not replace:
            return
        for tmp, path in self._staged:
            try:
                text = tmp.read_text(encoding="utf-8")
                for old, new in replace.items():
                    text = text.replace(old, new)
                with tmp.open("r+", encoding="utf-8", newline="\n") as fh:
                    fh.write(text)
                    fh.truncate()
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise InputError(f"{path}: {exc.strerror or type(exc).__name__}") from exc

    def commit(self) -> list[Path]:
        """Rename every staged file into place; returns the final paths."""
        done = []
        for tmp, path in self._staged:
            if path.is_dir():
                raise InputError(f"{path} is a folder, not a file")
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise InputError(f"{path}: {exc.strerror or type(exc).__name__}") from exc
            done.append(path)
        self._staged = []
        return done

    def discard(self) -> None:
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged = []


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file next to ``path``, then rename it into place.

    A crash or an error part-way leaves the previous file (or none), never half of one; an
    error names ``path``, not the temporary file.
    """
    staged = StagedFiles()
    try:
        staged.stage(path, text)
        staged.commit()
    finally:
        staged.discard()
    return path


def plain_float(x: float) -> float | None:
    """A float for JSON: NaN and infinity become null."""
    value = float(x)
    return value if math.isfinite(value) else None


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


# The loaders live in surrogate_xai.inputs (shared with the service); re-exported here.
__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "FileMissingColumnError",
    "StagedFiles",
    "check_writable_dir",
    "existing_store",
    "fail",
    "load_catalogue",
    "load_model",
    "one_line",
    "plain_float",
    "read_csv",
    "read_table",
    "shown_url",
    "stderr_is_terminal",
    "store_url",
    "tensor_input",
    "user_errors",
    "write_atomic",
]
