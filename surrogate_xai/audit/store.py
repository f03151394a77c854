"""An append-only, hash-chained store of per-decision audit records (SQLAlchemy Core).

The tables and the database's own guards are in :mod:`.schema`; what makes a stored row a
sound record on the chain is in :mod:`.chain`. Every read checks a row before handing it out,
so nothing ``verify`` would name is ever returned as a record.

Locking: on SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (the database's
write lock is taken before the head is read; other writers wait up to ``timeout`` seconds). On
PostgreSQL the head row is read with ``SELECT ... FOR UPDATE``, which serialises writers under
the default READ COMMITTED isolation (a waiting writer gives up after ``timeout`` seconds:
``SET LOCAL lock_timeout``), and reads run at REPEATABLE READ, so :meth:`AuditStore.verify`
sees one snapshot of the records and the head even while other sessions append. Either way a
batch is one transaction: all of its records are written, or none. A writer moves the head to
the batch's last record first and then inserts the records, so the insert guard can refuse
any row the head does not cover.

What ``verify`` cannot see from inside the database: someone who controls it can remove the
newest records and rewind the head (after dropping the guards), or rebuild the whole chain.
Publish :meth:`AuditStore.head` somewhere else from time to time (a ticket, a signed log, a
write-once bucket) and pass it back as ``verify(anchor=...)``: then that, too, is evident.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    create_engine,
    func,
    insert,
    inspect,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from ..background import Background
from ..exceptions import (
    AuditError,
    RecordNotFoundError,
    StoreDamagedError,
    TamperedRecordError,
)
from ..explanation import Explanation
from ..model import Model
from ..provenance import utc_now
from ..reasons import DecisionReasons
from ..storable import text_problem
from .chain import (
    head_row,
    link_problem,
    on_chain_problem,
    record_layout_problem,
    sound_problem,
)
from .database import (
    READ_ONLY,
    damaged,
    ensure_postgres_triggers,
    hide_password,
    sqlite_begin,
)
from .location import sqlite_file
from .record import GENESIS_HASH, VERSION, build_record, canonical_json, decision_list, seal
from .replay import ReplayResult, replay_record, row_independent
from .schema import (
    HEAD,
    METADATA,
    RECORDS,
    SQLITE_TRIGGERS,
    lookup_values,
)
from .verification import PAGE, VerifyResult, sqlite_file_damage, walk_chain

logger = logging.getLogger(__name__)

# Transaction-level advisory lock taken while a store is opened on PostgreSQL: two processes
# opening a new database at once would otherwise race on CREATE TABLE and the head row.
_POSTGRES_CREATE_LOCK = 0x5358_4149_4155_4454  # "SXAIAUDT"


class AuditStore:
    """Append-only per-decision records with a hash chain.

    Parameters
    ----------
    url : str or sqlalchemy URL
        ``"sqlite:///audit.db"`` (a file, created if absent) or e.g.
        ``"postgresql+psycopg://user@host/db"``. The URL (and any password in it) is never
        written into a record, and is shown with the password hidden.
    timeout : float
        Seconds a writer waits for another writer's lock (SQLite's busy timeout, PostgreSQL's
        ``lock_timeout``); then the batch fails with :class:`AuditError`.
    create : bool
        Create the tables (and the SQLite file) when they are missing (default). With
        ``False`` the store must already exist: a missing SQLite file, or a database without
        the audit tables (an empty file, another application's database), raises
        :class:`AuditError` and is left exactly as it was, so checking a path (``sxai
        verify``, ``sxai replay``) never turns it into an empty store that "verifies".

    Examples
    --------
    >>> store = AuditStore("sqlite:///audit.db")                      # doctest: +SKIP
    >>> ids = store.record(explanation, reasons=reasons, decision_ids=app_ids)  # doctest: +SKIP
    >>> store.verify().ok                                              # doctest: +SKIP
    True
    """

    def __init__(
        self, url: str | URL = "sqlite:///audit.db", *, timeout: float = 30.0, create: bool = True
    ) -> None:
        try:
            parsed = make_url(url)
        except SQLAlchemyError as exc:
            raise AuditError(f"not a database URL: {hide_password(str(exc), None)}") from exc
        self.url = parsed.render_as_string(hide_password=True)
        self._password = parsed.password
        try:
            self._engine = create_engine(parsed)
        except (SQLAlchemyError, ImportError) as exc:
            # An unknown scheme (foo://, http://), a malformed SQLite URL (sqlite://audit.db)
            # or a dialect whose driver is not installed (mysql:// without MySQLdb): the
            # caller's mistake, named with its URL (password hidden), not a traceback.
            detail = hide_password(" ".join(str(exc).split()), parsed.password)
            raise AuditError(f"cannot use the audit store URL {self.url}: {detail}") from exc
        self._dialect = self._engine.dialect.name
        self._lock_timeout_ms = max(1, int(timeout * 1000))
        if self._dialect == "sqlite":
            sqlite_begin(self._engine, timeout)
        self.file = sqlite_file(parsed) if self._dialect == "sqlite" else None
        if not create and self.file is not None and not self.file.is_file():
            # Connecting to a SQLite file that does not exist creates it (empty): check first.
            self._engine.dispose()
            raise AuditError(f"no audit store at {self.url} (no such file)")
        try:
            if create:
                self._create()
            else:
                self._open_existing()
        except AuditError:
            self._engine.dispose()
            raise
        except (SQLAlchemyError, UnicodeDecodeError) as exc:
            self._engine.dispose()
            raise self._failure("cannot open the audit store", exc) from exc

    def __repr__(self) -> str:
        return f"AuditStore({self.url!r})"

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def _failure(self, doing: str, exc: SQLAlchemyError | UnicodeDecodeError) -> AuditError:
        """An error of the database, as the error the caller should see.

        A file the database cannot read (a corrupted page, a truncated file, text that is not
        UTF-8) is evidence that fails verification (:class:`StoreDamagedError`); anything else
        (a lock timeout, a server that is down) is an :class:`AuditError`.
        """
        detail = hide_password(" ".join(str(exc).split()), self._password)
        if damaged(exc):
            return StoreDamagedError(f"the audit store at {self.url} is damaged: {detail}")
        return AuditError(f"{doing} at {self.url}: {detail}")

    def _create(self) -> None:
        with self._write() as conn:
            if self._dialect == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_CREATE_LOCK}
                )
            METADATA.create_all(conn)
            if self._dialect == "sqlite":
                for ddl in SQLITE_TRIGGERS:
                    conn.exec_driver_sql(ddl)
            elif self._dialect == "postgresql":
                ensure_postgres_triggers(conn)
            head = conn.execute(select(HEAD.c.format_version).where(HEAD.c.id == 1)).first()
            if head is None:
                conn.execute(
                    insert(HEAD).values(id=1, sequence=0, hash=GENESIS_HASH, format_version=VERSION)
                )
            elif head.format_version != VERSION:
                raise AuditError(
                    f"the audit store at {self.url} holds records of format version "
                    f"{head.format_version}; this release writes version {VERSION}"
                )

    def _open_existing(self) -> None:
        """Check, without writing anything, that the audit tables exist and their version."""
        with self._read() as conn:
            inspector = inspect(conn)
            missing = [t.name for t in (RECORDS, HEAD) if not inspector.has_table(t.name)]
            if missing:
                raise AuditError(
                    f"no audit store at {self.url} (the database has no table "
                    f"{', '.join(missing)}; it was left unchanged)"
                )
            head = conn.execute(select(HEAD.c.format_version).where(HEAD.c.id == 1)).first()
        # A missing head row is left for verify() to report (it names it as a finding).
        if head is not None and head.format_version != VERSION:
            raise AuditError(
                f"the audit store at {self.url} holds records of format version "
                f"{head.format_version}; this release writes version {VERSION}"
            )

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``, see :func:`_sqlite_begin`)."""
        with self._engine.begin() as conn:
            if self._dialect == "postgresql":
                # Waiting for the head row (or DDL locks) is bounded like SQLite's busy timeout;
                # LOCAL: only for this transaction, so pooled connections are left as found.
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {self._lock_timeout_ms}")
            yield conn

    def _read(self) -> Connection:
        conn = self._engine.connect()
        if self._dialect == "postgresql":
            # One snapshot per read: at READ COMMITTED every statement sees the latest commits,
            # so verify() (several pages, then the head row) would report records "missing from
            # the end" whenever another session appended a batch in between.
            return conn.execution_options(isolation_level="REPEATABLE READ")
        return conn.execution_options(**{READ_ONLY: True})

    # -- writing -------------------------------------------------------------------------------
    def record(
        self,
        explanation: Explanation,
        reasons: Sequence[DecisionReasons] | None = None,
        decision_ids: Sequence[str] | None = None,
        *,
        outcomes: Sequence[Mapping[str, Any] | None] | None = None,
        record_ids: Sequence[str] | None = None,
        on_insert: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Append one record per explained row, in one transaction (all or nothing).

        Parameters
        ----------
        explanation : Explanation
            ``n_samples`` explained rows.
        reasons : sequence of DecisionReasons, optional
            One per row, as returned by :func:`~surrogate_xai.reason_codes` for this
            explanation (checked).
        decision_ids : sequence of str, optional
            The caller's id of each decision (e.g. the application number).
        outcomes : sequence of dict, optional
            Per row, what the caller decided with the prediction, e.g.
            ``{"decision": "declined", "threshold": 0.5}``; stored as given.
        record_ids : sequence of str, optional
            The new records' ids, one per row, chosen by the caller (default: new random
            ids). Each must be a random UUID in canonical form (``str(uuid.uuid4())``),
            unique in the batch and not already in the store; otherwise :class:`AuditError`
            and nothing is recorded. This lets a caller write files that name the records
            before committing them (``sxai explain`` does), with nothing to rewrite after.
        on_insert : callable, optional
            Called with the batch position after each record is inserted, inside the
            transaction (before the commit): progress for a long batch. An exception it
            raises rolls the whole batch back.

        Returns
        -------
        list of str
            The new records' ids, in row order.
        """
        if not isinstance(explanation, Explanation):
            raise AuditError(f"expected an Explanation, got {type(explanation).__name__}")
        n = len(explanation)
        ids = decision_list(decision_ids, n, "decision_ids")
        for i, d in enumerate(ids):
            if d is not None and not isinstance(d, str):
                raise AuditError(f"decision_ids[{i}] must be a string, got {type(d).__name__}")
            # The decision id is also a text column: refuse here what a database would refuse,
            # so that both backends accept the same ids and fail before writing.
            problem = None if d is None else text_problem(d)
            if problem is not None:
                raise AuditError(f"decision_ids[{i}] {problem}")
        row_reasons = decision_list(reasons, n, "reasons")
        row_outcomes = decision_list(outcomes, n, "outcomes")
        for i, o in enumerate(row_outcomes):
            if o is not None and not isinstance(o, Mapping):
                raise AuditError(f"outcomes[{i}] must be a dict or None, got {type(o).__name__}")
        new_ids = _record_id_list(record_ids, n)
        if n == 0:
            return []
        batch_id, recorded_at = str(uuid.uuid4()), utc_now()
        # Everything is built and checked before the transaction starts, so a bad row cannot
        # leave half a batch, and the lock is held only for the inserts.
        bodies = []
        for i in range(n):
            body = build_record(
                explanation,
                i,
                decision_id=ids[i],
                reasons=row_reasons[i],
                outcome=row_outcomes[i],
                batch={"id": batch_id, "position": i, "size": n},
                record_id=new_ids[i],
                recorded_at=recorded_at,
            )
            try:
                canonical_json(body)
            except (TypeError, ValueError) as exc:
                raise AuditError(f"row {i} cannot be recorded as JSON: {exc}") from exc
            bodies.append(body)
        try:
            with self._write() as conn:
                head = conn.execute(
                    select(HEAD.c.sequence, HEAD.c.hash).where(HEAD.c.id == 1).with_for_update()
                ).one()
                sequence, prev = int(head.sequence), str(head.hash)
                if record_ids is not None:
                    # Under the write lock, so no other writer can take an id in between;
                    # the unique column would refuse it too, but with a database's words.
                    _check_new_ids(conn, new_ids)
                sealed = []
                for i, body in enumerate(bodies):
                    sealed.append(seal(body, sequence + 1 + i, prev))
                    prev = sealed[-1]["hash"]
                # The head moves first: the insert guard refuses any record it does not cover.
                conn.execute(
                    update(HEAD).where(HEAD.c.id == 1).values(sequence=sequence + n, hash=prev)
                )
                for i, record in enumerate(sealed):
                    conn.execute(
                        insert(RECORDS).values(**lookup_values(record), body=canonical_json(record))
                    )
                    if on_insert is not None:
                        on_insert(i)
        except SQLAlchemyError as exc:
            raise AuditError(
                f"nothing was recorded: the database refused the batch: "
                f"{hide_password(str(exc), self._password)}"
            ) from exc
        logger.info("recorded %d decisions (sequence %d..%d)", n, sequence + 1, sequence + n)
        return [b["record_id"] for b in bodies]

    # -- reading -------------------------------------------------------------------------------
    @contextmanager
    def _reading(self, doing: str) -> Iterator[Connection]:
        """A read, with the database's errors turned into the caller's (see :meth:`_failure`)."""
        try:
            with self._read() as conn:
                yield conn
        except (SQLAlchemyError, UnicodeDecodeError) as exc:
            raise self._failure(doing, exc) from exc

    def _head(self, conn: Connection) -> Any:
        head, problem = head_row(conn)
        if head is None:
            raise TamperedRecordError(f"the audit store at {self.url}: {problem}")
        return head

    def __len__(self) -> int:
        """Rows in the records table (``verify`` says whether they all form the chain)."""
        with self._reading("cannot read the audit store") as conn:
            return int(conn.execute(select(func.count()).select_from(RECORDS)).scalar_one())

    def head(self) -> tuple[int, str]:
        """The sequence and hash of the last record (publish it elsewhere to pin the chain)."""
        with self._reading("cannot read the audit store") as conn:
            head = self._head(conn)
        return int(head.sequence), str(head.hash)

    def _checked(self, conn: Connection, row: Any, head: Any) -> dict[str, Any]:
        """The record of ``row`` once it is sound, on the chain and of the published layout."""
        problem = on_chain_problem(conn, row, head)
        record: dict[str, Any] | None = None
        if problem is None:
            record, problem = sound_problem(row)
        if problem is None and record is not None:
            problem = record_layout_problem(record)
        if problem is not None or record is None:
            raise TamperedRecordError(
                f"record {str(row.record_id)[:60]!r} (sequence {row.sequence}): {problem}"
            )
        return record

    def get(self, record_id: str) -> dict[str, Any]:
        """The record as a dict, after checking it against its hash and its place in the chain.

        Raises
        ------
        RecordNotFoundError
        TamperedRecordError
            If the stored row is not a sound record on the chain (its content changed, a
            lookup column disagrees, it lies outside the chain, a neighbour does not link to
            it) or the store is damaged (:class:`StoreDamagedError`).
        """
        with self._reading("cannot read the audit store") as conn:
            row = conn.execute(select(RECORDS).where(RECORDS.c.record_id == record_id)).first()
            if row is None:
                raise RecordNotFoundError(f"no record {record_id!r} in the audit store")
            return self._checked(conn, row, self._head(conn))

    def _on_chain(self, column: Any, value: str) -> list[dict[str, Any]]:
        """The records whose ``column`` is ``value``, within the chain, each one checked."""
        with self._reading("cannot read the audit store") as conn:
            head = self._head(conn)
            rows = conn.execute(
                select(RECORDS)
                .where(column == value)
                .where(RECORDS.c.sequence.between(1, head.sequence))
                .order_by(RECORDS.c.sequence)
            ).all()
            return [self._checked(conn, row, head) for row in rows]

    def find(self, decision_id: str) -> list[str]:
        """Ids of the records of a decision on the chain, oldest first (each one checked)."""
        return [r["record_id"] for r in self._on_chain(RECORDS.c.decision_id, decision_id)]

    def records(self, batch_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Every record on the chain (or a batch's), in chain order, each one checked.

        The whole chain is walked from the first record, each checked against its hash and
        linked to the one before; a batch's records (contiguous, one transaction) are each
        checked with their neighbours. Rows outside the chain are never returned
        (:meth:`verify` names them). Raises :class:`TamperedRecordError` at the first record
        that is not sound.
        """
        if batch_id is not None:
            yield from self._on_chain(RECORDS.c.batch_id, batch_id)
            return
        expected, prev, end = 1, GENESIS_HASH, None
        while True:
            with self._reading("cannot read the audit store") as conn:
                if end is None:
                    end = int(self._head(conn).sequence)
                rows = conn.execute(
                    select(RECORDS)
                    .where(RECORDS.c.sequence.between(expected, end))
                    .order_by(RECORDS.c.sequence)
                    .limit(PAGE)
                ).all()
            for row in rows:
                problem = link_problem(row, expected, prev)
                if problem is not None:
                    raise TamperedRecordError(
                        f"record {str(row.record_id)[:60]!r} (sequence {row.sequence}): {problem}"
                    )
                record, _ = sound_problem(row)
                assert record is not None  # link_problem found the row sound
                yield record
                prev, expected = row.hash, expected + 1
            if len(rows) < PAGE:
                if expected <= end:
                    raise TamperedRecordError(
                        f"record(s) {expected}..{end} are missing from the chain"
                    )
                return

    # -- checking ------------------------------------------------------------------------------
    def verify(self, anchor: tuple[int, str] | None = None) -> VerifyResult:
        """Walk every row of the store and report the first that is not where it should be.

        Every row in the records table must be a sound record (content matching its hash,
        canonical bytes, no duplicate key, lookup columns agreeing with the body) at the next
        position of the chain (sequence 1, 2, ... without gap, ``prev_hash`` the previous
        record's hash); the single head row must point at the last record. A row outside the
        chain (sequence 0, negative, or after the head) is named, not skipped.

        Parameters
        ----------
        anchor : (int, str), optional
            A head published earlier (``(sequence, hash)``, e.g. from :meth:`head`): the chain
            must still hold that hash at that sequence. This is what makes a cut tail with a
            rewound head, or a chain rebuilt from scratch, evident.

        Never raises for what it finds: a damaged database is a failed verification too.
        """
        try:
            with self._read() as conn:
                result = walk_chain(conn, anchor)
                damage = None
                if result.ok and self._dialect == "sqlite":
                    damage = sqlite_file_damage(conn, self.url)
                if damage is not None:
                    return VerifyResult(False, result.records, None, None, damage)
                return result
        except (SQLAlchemyError, UnicodeDecodeError) as exc:
            reason = str(self._failure("cannot read the audit store", exc))
            return VerifyResult(False, 0, None, None, reason)

    def replay(
        self,
        record_id: str,
        model: Model,
        background: Background | pd.DataFrame | np.ndarray,
    ) -> ReplayResult:
        """Re-run a record's explanation and compare it bit for bit.

        Parameters
        ----------
        record_id : str
        model : Model
            Must be the recorded model (same sha256 / identity and outputs).
        background : Background, DataFrame or array
            Must hash to the recorded background.

        Returns
        -------
        ReplayResult
            ``identical`` and, if not, the largest absolute difference per field.

        Raises
        ------
        ReplayRefusedError
            If the model or the background is not the recorded one.
        TamperedRecordError
            If the record no longer matches its hash.
        """
        record = self.get(record_id)
        batch = None
        if not row_independent(record["method"]["name"]):
            batch = list(self.records(batch_id=record["batch"]["id"]))
        return replay_record(record, model, background, batch=batch)


def _record_id_list(record_ids: Sequence[str] | None, n: int) -> list[str]:
    """Caller-chosen record ids, checked (or ``n`` new random ones)."""
    if record_ids is None:
        return [str(uuid.uuid4()) for _ in range(n)]
    ids = decision_list(record_ids, n, "record_ids")
    for i, rid in enumerate(ids):
        if not isinstance(rid, str):
            raise AuditError(f"record_ids[{i}] must be a string, got {type(rid).__name__}")
        try:
            parsed = uuid.UUID(rid)
        except ValueError:
            parsed = None
        # Canonical form only (lower case, hyphens): the id is looked up as text.
        if parsed is None or parsed.version != 4 or str(parsed) != rid:
            raise AuditError(
                f"record_ids[{i}] is {rid[:60]!r}, not a random UUID in canonical form "
                "(str(uuid.uuid4()))"
            )
    seen: set[str] = set()
    for rid in ids:
        if rid in seen:
            raise AuditError(f"record_ids: {rid} is given more than once")
        seen.add(rid)
    return ids


def _check_new_ids(conn: Connection, ids: list[str]) -> None:
    for start in range(0, len(ids), PAGE):
        taken = conn.execute(
            select(RECORDS.c.record_id)
            .where(RECORDS.c.record_id.in_(ids[start : start + PAGE]))
            .limit(1)
        ).first()
        if taken is not None:
            raise AuditError(
                f"nothing was recorded: record id {taken.record_id} is already in the audit store"
            )
