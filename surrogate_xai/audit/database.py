"""The database under an audit store: connections, locking, guards and what its errors mean.

SQLite: every write transaction starts with ``BEGIN IMMEDIATE`` (the write lock is taken
before the head is read; other writers wait up to the busy timeout). PostgreSQL: the guard
triggers of :mod:`.schema` are (re)created when missing. A database error is shown without
the URL's password, and a file the database cannot read is told apart from other failures.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import SQLAlchemyError

from .schema import create_postgres_triggers, missing_postgres_triggers

logger = logging.getLogger("surrogate_xai.audit.store")
#: Execution option of a read-only connection (SQLite: a plain BEGIN, no write lock).
READ_ONLY = "sx_read_only"


def sqlite_begin(engine: Engine, timeout: float) -> None:
    """Take SQLite's write lock at ``BEGIN`` (pysqlite would begin lazily, at the first write)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself instead of pysqlite.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def hide_password(message: str, password: str | None) -> str:
    """``message`` without the password: neither in a URL's ``user:password@`` nor verbatim
    (a driver may quote the URL or the connection string it was given)."""
    message = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", message)
    if password:
        message = message.replace(str(password), "***")
    return message


def ensure_postgres_triggers(conn: Connection) -> None:
    """Create the guard triggers that are missing (all of them in a new store).

    Like SQLite's ``CREATE TRIGGER IF NOT EXISTS`` on every open, a dropped trigger comes back
    when the store is next opened. A disabled one (``ALTER TABLE ... DISABLE TRIGGER``) is left
    as the administrator set it. A role that may not create them (e.g. read-only, to run
    :meth:`AuditStore.verify`) still opens the store, with a warning.
    """
    missing = missing_postgres_triggers(conn)
    if not missing:
        return
    try:
        with conn.begin_nested():
            create_postgres_triggers(conn, missing)
    except SQLAlchemyError as exc:
        logger.warning(
            "the append-only triggers %s are missing and could not be created: %s",
            ", ".join(missing),
            exc,
        )


def damaged(exc: SQLAlchemyError | UnicodeDecodeError) -> bool:
    """Whether the database failed because its file (or pages) cannot be read as stored."""
    if isinstance(exc, UnicodeDecodeError):
        return True
    orig = getattr(exc, "orig", None)
    name = str(getattr(orig, "sqlite_errorname", "") or "")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return True
    if getattr(orig, "sqlstate", None) in ("XX001", "XX002"):  # data_corrupted, index_corrupted
        return True
    return "could not decode to utf-8" in str(orig).lower()
