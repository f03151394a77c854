"""Text that can be stored and sent on: the one rule, shared by every place that takes text
from a user (decision ids in the CLI and the store, every string of a service request).

Two things pass Python's ``str`` and break later: a lone surrogate (``"\\ud800"``, which JSON
can carry but UTF-8, a database, a report or a model's string input cannot), and NUL, which
PostgreSQL's ``text`` cannot hold and C strings end at. Refusing both where the text arrives
names the field; refusing them in the database would name nothing and lose the batch.
"""

from __future__ import annotations


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored or sent on (a phrase such as "contains a NUL
    character"), or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end].encode("utf-8", "backslashreplace").decode()
        return (
            f"contains {bad} at position {exc.start}, which is not a character UTF-8 can encode "
            "(a lone surrogate)"
        )
    return None
