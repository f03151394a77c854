"""Reading stored rows as evidence: what makes a row a sound record, and a link of the chain.

Every read of the store (``verify``, ``get``, ``find``, ``records``, replay, the service) goes
through these checks, so a row that ``verify`` would name is never handed out as a record.
A row is sound when

- its body is text that parses as one JSON object with no key given twice (Python keeps the
  last of two equal keys and SQLite's ``json_extract`` the first: a forger could make the two
  disagree), not nested beyond reason;
- its content matches its hash, and the body is byte for byte the canonical JSON of that
  content (so every reader of the file sees the same record);
- each lookup column equals the field of the body it copies (:data:`schema.LOOKUP_COLUMNS`).

A sound row is on the chain when its sequence is between 1 and the head's, its ``prev_hash`` is
the hash of the record before it (or the genesis hash), and the record after it (or the head)
names its hash. Nothing here raises for what it finds: each check returns the problem in a
sentence, or None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from .record import GENESIS_HASH, canonical_json, check_record
from .schema import HEAD, LOOKUP_COLUMNS, RECORDS


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_body(body: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The record a stored body holds, or None and why it is not one."""
    if not isinstance(body, str):
        return None, f"its body is stored as {type(body).__name__}, not as text"
    try:
        record = json.loads(body, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        return None, (
            f"its body has a duplicate key {exc.key[:60]!r} (readers would disagree on which "
            "value is the record's)"
        )
    except RecursionError:
        return None, "its body is nested too deeply to be a record"
    except ValueError:
        return None, "its body is not valid JSON"
    if not isinstance(record, dict):
        return None, "its body is not a JSON object"
    return record, None


def sound_problem(row: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The row's record, and why the row is not sound (None when it is)."""
    record, problem = parse_body(row.body)
    if record is None:
        return None, problem
    problem = check_record(record)
    if problem is not None:
        return record, problem
    try:
        canonical = canonical_json(record)
    except (TypeError, ValueError, RecursionError):
        return record, "its body cannot be serialised canonically"
    if canonical != row.body:
        return record, (
            "its body is not stored in canonical form: the bytes differ from the canonical "
            "JSON of the same content"
        )
    for column, field in LOOKUP_COLUMNS.items():
        try:
            expected = field(record)
        except (KeyError, TypeError, IndexError):
            return record, f"its body has no field for the {column} column"
        stored = getattr(row, column)
        if type(stored) is not type(expected) or stored != expected:
            return record, f"the {column} column differs from the record's own {column}"
    return record, None


def link_problem(row: Any, expected: int, prev: str) -> str | None:
    """Why ``row`` is not the sound record at chain position ``expected`` after ``prev``."""
    if row.sequence < 1:
        return f"it is outside the chain (sequence {row.sequence}; the chain starts at 1)"
    if row.sequence != expected:
        missing = (
            f"record {expected} is"
            if row.sequence == expected + 1
            else f"records {expected}..{row.sequence - 1} are"
        )
        return f"{missing} missing before this record (sequence {row.sequence})"
    _, problem = sound_problem(row)
    if problem is not None:
        return problem
    if row.prev_hash != prev:
        return (
            f"its prev_hash does not match the hash of record {expected - 1}: "
            "one of the two was changed"
        )
    return None


def head_row(conn: Connection) -> tuple[Any | None, str | None]:
    """The head row, or None and why there is no single head."""
    heads = conn.execute(select(HEAD)).all()
    if not heads:
        return None, "the head row is missing"
    if len(heads) > 1 or heads[0].id != 1:
        return None, f"the head table holds {len(heads)} rows where the store writes one"
    head = heads[0]
    if not isinstance(head.sequence, int) or not isinstance(head.hash, str):
        return None, "the head row is not a sequence and a hash"
    return head, None


def on_chain_problem(conn: Connection, row: Any, head: Any) -> str | None:
    """Why one row, read alone, is not a sound record on the chain (None when it is).

    Checks the row itself and its links to both neighbours; :meth:`AuditStore.verify` checks
    the whole chain.
    """
    sequence = row.sequence
    if not isinstance(sequence, int) or sequence < 1:
        return f"it is outside the chain (sequence {sequence}; the chain starts at 1)"
    if sequence > head.sequence:
        return f"it lies beyond the head of the chain (the head is at sequence {head.sequence})"
    prev = GENESIS_HASH
    if sequence > 1:
        before = conn.execute(
            select(RECORDS.c.hash).where(RECORDS.c.sequence == sequence - 1)
        ).first()
        if before is None:
            return f"record {sequence - 1} is missing before it"
        prev = before.hash
    problem = link_problem(row, sequence, prev)
    if problem is not None:
        return problem
    if sequence == head.sequence:
        if head.hash != row.hash:
            return "the head of the chain names another hash for it"
        return None
    after = conn.execute(
        select(RECORDS.c.prev_hash).where(RECORDS.c.sequence == sequence + 1)
    ).first()
    if after is None:
        return f"record {sequence + 1} is missing after it"
    if after.prev_hash != row.hash:
        return f"record {sequence + 1} does not name it as its predecessor"
    return None


def parsed_anchor(value: str) -> tuple[int, str]:
    """``"SEQUENCE:HASH"`` (as ``sxai verify`` prints the head) as a pair, or ValueError."""
    sequence, sep, digest = value.partition(":")
    if not sep or not sequence.isdigit() or int(sequence) < 1:
        raise ValueError(f"{value!r} is not SEQUENCE:HASH (e.g. 20:3f5a...)")
    digest = digest.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{value!r}: the hash must be 64 hexadecimal digits")
    return int(sequence), digest


def anchor_text(anchor: tuple[int, str]) -> str:
    return f"{anchor[0]}:{anchor[1]}"


def record_layout_problem(record: Mapping[str, Any]) -> str | None:
    """Why a (sound) record does not have the published layout, or None.

    Checked on every record handed out one by one (``get``), so readers that rebuild an
    explanation from it never meet a missing field or a value of the wrong type.
    """
    from .layout import layout_problem

    return layout_problem(record)
