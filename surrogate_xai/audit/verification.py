"""Checking a whole store: every row of both tables, the chain, the head, the file itself.

:meth:`AuditStore.verify` runs :func:`walk_chain` in one read snapshot and, on SQLite,
:func:`sqlite_file_damage`; what it can and cannot detect is listed in
``docs/compliance.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from .chain import anchor_text, head_row, link_problem
from .record import GENESIS_HASH
from .schema import RECORDS

PAGE = 500


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`AuditStore.verify` found.

    Attributes
    ----------
    ok : bool
        True when every record matches its hash, the chain is unbroken and complete.
    records : int
        Records checked (up to the first problem).
    first_bad_record_id : str or None
        The first record that fails (None when ``ok``, or when the missing records are at the
        end of the chain).
    first_bad_sequence : int or None
        Its chain position (or that of the first missing record).
    reason : str or None
        Why, in a sentence.
    head_hash : str
        The hash of the last record checked (the value to publish elsewhere).
    """

    ok: bool
    records: int
    first_bad_record_id: str | None = None
    first_bad_sequence: int | None = None
    reason: str | None = None
    head_hash: str = GENESIS_HASH


def walk_chain(conn: Connection, anchor: tuple[int, str] | None) -> VerifyResult:
    """Every row of both tables, in sequence order: the first that is not where it should
    be (see :meth:`AuditStore.verify`)."""
    expected, prev, count = 1, GENESIS_HASH, 0
    last: int | None = None
    while True:
        query = select(RECORDS).order_by(RECORDS.c.sequence).limit(PAGE)
        if last is not None:
            query = query.where(RECORDS.c.sequence > last)
        rows = conn.execute(query).all()
        for row in rows:
            if not isinstance(row.sequence, int):
                return VerifyResult(
                    False, count, None, expected, "a row has a sequence that is not a number"
                )
            bad = link_problem(row, expected, prev)
            if bad is not None:
                return VerifyResult(
                    False,
                    count,
                    str(row.record_id)[:60],
                    row.sequence if row.sequence < 1 else min(row.sequence, expected),
                    bad,
                    prev,
                )
            if anchor is not None and row.sequence == anchor[0] and row.hash != anchor[1]:
                return VerifyResult(
                    False,
                    count,
                    str(row.record_id),
                    row.sequence,
                    f"the chain differs from the published head {anchor_text(anchor)}: "
                    "records up to it were changed or the chain was rebuilt",
                    prev,
                )
            prev, expected, count, last = row.hash, expected + 1, count + 1, row.sequence
        if len(rows) < PAGE:
            break
    head, problem = head_row(conn)
    if head is None:
        return VerifyResult(False, count, None, None, problem, prev)
    if head.sequence != expected - 1 or head.hash != prev:
        if head.sequence > expected - 1:
            reason = (
                f"record(s) {expected}..{head.sequence} are missing from the end of the "
                f"chain (the head says it reaches {head.sequence})"
            )
        else:
            reason = f"the head row (sequence {head.sequence}) does not match the last record"
        return VerifyResult(False, count, None, expected, reason, prev)
    if anchor is not None and anchor[0] > count:
        return VerifyResult(
            False,
            count,
            None,
            count + 1,
            f"the chain ends at sequence {count}, before the published head "
            f"{anchor_text(anchor)}: records after {count} were removed",
            prev,
        )
    return VerifyResult(True, count, head_hash=prev)


# -- replaying -----------------------------------------------------------------------------


def sqlite_file_damage(conn: Connection, url: str) -> str | None:
    """SQLite's own check of the file (every page, every index against its table).

    A damaged index page is invisible to a walk of the records, yet the file is no longer
    what the store wrote.
    """
    found = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check(5)")]
    if found == ["ok"]:
        return None
    return f"the audit store at {url} is damaged: {'; '.join(found)[:300]}"
