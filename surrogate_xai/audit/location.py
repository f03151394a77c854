"""Where a store's URL points: the file a SQLite URL opens, as the database driver resolves it.

Comparing an output path with a store by the URL's text misses every other spelling of the
same file (``sqlite+pysqlite:///d/a.db``, ``sqlite:///d/a%2Edb``,
``sqlite:///file:d/a.db?uri=true``); an output renamed over the store would destroy it. The
URL is therefore parsed by SQLAlchemy and handed to the SQLite dialect, which gives the exact
arguments it passes to ``sqlite3.connect``; a ``file:`` URI is then read as SQLite reads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError


def _uri_file(uri: str) -> Path | None:
    """The file of a SQLite ``file:`` URI (None for an in-memory database)."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        return None  # SQLite refuses other hosts
    params = dict(p.partition("=")[::2] for p in parts.query.split("&") if p)
    path = unquote(parts.path)
    if params.get("mode") == "memory" or path in ("", ":memory:"):
        return None
    return Path(path)


def sqlite_file(url: str | URL) -> Path | None:
    """The absolute file a SQLite store URL opens; None for an in-memory database or a URL
    of another database (or one no dialect can read)."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return None
        args, kwargs = parsed.get_dialect()().create_connect_args(parsed)
    except (ArgumentError, NoSuchModuleError, ValueError, TypeError):
        return None
    database = args[0] if args else kwargs.get("database", "")
    database = str(database)
    if kwargs.get("uri"):
        if not database.startswith("file:"):
            return None if database in ("", ":memory:") else Path(os.path.abspath(database))
        found = _uri_file(database)
        return None if found is None else Path(os.path.abspath(found))
    if database in ("", ":memory:"):
        return None
    return Path(os.path.abspath(database))
