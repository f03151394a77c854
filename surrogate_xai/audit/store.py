"""An append-only, hash-chained store of per-decision audit records (SQLAlchemy Core).

Two tables:

``sx_audit_records``
    One row per record: ``sequence`` (the chain position, 1, 2, ...), ``record_id``,
    ``decision_id``, ``batch_id``, ``recorded_at``, ``model_id`` and the chain hashes as
    columns for lookups, and ``body``, the record's canonical JSON, which alone is hashed.
``sx_audit_head``
    One row: the sequence and hash of the last record. Every write transaction locks it first,
    so two writers can never both append after the same record (fork the chain), and
    :meth:`AuditStore.verify` compares it with the last record, so records removed from the end
    are noticed.

Locking: on SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (the database's
write lock is taken before the head is read; other writers wait up to ``timeout`` seconds). On
PostgreSQL the head row is read with ``SELECT ... FOR UPDATE``, which serialises writers under
the default READ COMMITTED isolation (a waiting writer gives up after ``timeout`` seconds:
``SET LOCAL lock_timeout``), and reads run at REPEATABLE READ, so :meth:`AuditStore.verify`
sees one snapshot of the records and the head even while other sessions append. Either way a
batch is one transaction: all of its records are written, or none.

Append-only: the store has no update or delete API, and on SQLite and PostgreSQL triggers
reject ``UPDATE`` and ``DELETE`` of records (on PostgreSQL also ``TRUNCATE``, which fires no
row trigger). Anyone with write access to the database can drop a trigger; the hash chain is
what makes such edits evident. Publishing :meth:`AuditStore.head` somewhere else from time to
time (a ticket, a signed log) also makes truncation evident.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
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
from ..exceptions import AuditError, RecordNotFoundError, TamperedRecordError
from ..explanation import Explanation
from ..model import Model
from ..provenance import utc_now
from ..reasons import DecisionReasons
from .record import (
    GENESIS_HASH,
    VERSION,
    build_record,
    canonical_json,
    check_record,
    decision_list,
    model_key,
    seal,
)
from .replay import ReplayResult, replay_record, row_independent

logger = logging.getLogger(__name__)

#: Called with the batch position after each record of a batch is inserted (inside the
#: transaction). For tests that kill the process mid-batch; None in normal use.
_between_inserts: Callable[[int], None] | None = None

_BIGINT = BigInteger().with_variant(Integer(), "sqlite")
_metadata = MetaData()
_records = Table(
    "sx_audit_records",
    _metadata,
    Column("sequence", _BIGINT, primary_key=True, autoincrement=False),
    Column("record_id", String(36), nullable=False, unique=True),
    Column("decision_id", Text, nullable=True, index=True),
    Column("batch_id", String(36), nullable=False, index=True),
    Column("recorded_at", String(40), nullable=False),
    Column("model_id", Text, nullable=False, index=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("body", Text, nullable=False),
)
_head = Table(
    "sx_audit_head",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sequence", _BIGINT, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("format_version", Integer, nullable=False),
)

_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS sx_audit_{table}_no_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    for table, op in [
        ("sx_audit_records", "UPDATE"),
        ("sx_audit_records", "DELETE"),
        ("sx_audit_head", "DELETE"),
    ]
]
# No percent sign in this DDL: pyformat drivers (psycopg) would try to interpolate it.
# (PostgreSQL 11 or later: EXECUTE FUNCTION.)
_POSTGRES_FUNCTION = (
    "CREATE OR REPLACE FUNCTION sx_audit_append_only() RETURNS trigger AS $$ BEGIN "
    "RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END; $$ "
    "LANGUAGE plpgsql"
)
# Trigger name -> DDL. TRUNCATE fires no row triggers, so it needs statement triggers of its own
# (without them the owner could empty both tables in one statement).
_POSTGRES_TRIGGERS = {
    "sx_audit_records_append_only": "CREATE TRIGGER sx_audit_records_append_only "
    "BEFORE UPDATE OR DELETE ON sx_audit_records "
    "FOR EACH ROW EXECUTE FUNCTION sx_audit_append_only()",
    "sx_audit_records_no_truncate": "CREATE TRIGGER sx_audit_records_no_truncate "
    "BEFORE TRUNCATE ON sx_audit_records "
    "FOR EACH STATEMENT EXECUTE FUNCTION sx_audit_append_only()",
    "sx_audit_head_keep": "CREATE TRIGGER sx_audit_head_keep BEFORE DELETE ON sx_audit_head "
    "FOR EACH ROW EXECUTE FUNCTION sx_audit_append_only()",
    "sx_audit_head_no_truncate": "CREATE TRIGGER sx_audit_head_no_truncate "
    "BEFORE TRUNCATE ON sx_audit_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION sx_audit_append_only()",
}
# Transaction-level advisory lock taken while a store is opened on PostgreSQL: two processes
# opening a new database at once would otherwise race on CREATE TABLE and the head row.
_POSTGRES_CREATE_LOCK = 0x5358_4149_4155_4454  # "SXAIAUDT"
_PAGE = 500
_READ = "sx_read_only"


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


def _sqlite_begin(engine: Engine, timeout: float) -> None:
    """Take SQLite's write lock at ``BEGIN`` (pysqlite would begin lazily, at the first write)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself instead of pysqlite.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(_READ, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _hide_password(message: str, password: str | None) -> str:
    """``message`` without the password: neither in a URL's ``user:password@`` nor verbatim
    (a driver may quote the URL or the connection string it was given)."""
    message = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", message)
    if password:
        message = message.replace(str(password), "***")
    return message


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
            raise AuditError(f"not a database URL: {_hide_password(str(exc), None)}") from exc
        self.url = parsed.render_as_string(hide_password=True)
        try:
            self._engine = create_engine(parsed)
        except (SQLAlchemyError, ImportError) as exc:
            # An unknown scheme (foo://, http://), a malformed SQLite URL (sqlite://audit.db)
            # or a dialect whose driver is not installed (mysql:// without MySQLdb): the
            # caller's mistake, named with its URL (password hidden), not a traceback.
            detail = _hide_password(" ".join(str(exc).split()), parsed.password)
            raise AuditError(f"cannot use the audit store URL {self.url}: {detail}") from exc
        self._dialect = self._engine.dialect.name
        self._lock_timeout_ms = max(1, int(timeout * 1000))
        if self._dialect == "sqlite":
            _sqlite_begin(self._engine, timeout)
        if not create and self._dialect == "sqlite":
            # Connecting to a SQLite file that does not exist creates it (empty): check first.
            database = parsed.database or ""
            plain = database not in ("", ":memory:") and not database.startswith("file:")
            if plain and not os.path.isfile(database):
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
        except SQLAlchemyError as exc:
            self._engine.dispose()
            detail = _hide_password(str(exc), parsed.password)
            raise AuditError(f"cannot open the audit store at {self.url}: {detail}") from exc

    def __repr__(self) -> str:
        return f"AuditStore({self.url!r})"

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def _create(self) -> None:
        with self._write() as conn:
            if self._dialect == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_CREATE_LOCK}
                )
            _metadata.create_all(conn)
            if self._dialect == "sqlite":
                for ddl in _SQLITE_TRIGGERS:
                    conn.exec_driver_sql(ddl)
            elif self._dialect == "postgresql":
                _postgres_triggers(conn)
            head = conn.execute(select(_head.c.format_version).where(_head.c.id == 1)).first()
            if head is None:
                conn.execute(
                    insert(_head).values(
                        id=1, sequence=0, hash=GENESIS_HASH, format_version=VERSION
                    )
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
            missing = [t.name for t in (_records, _head) if not inspector.has_table(t.name)]
            if missing:
                raise AuditError(
                    f"no audit store at {self.url} (the database has no table "
                    f"{', '.join(missing)}; it was left unchanged)"
                )
            head = conn.execute(select(_head.c.format_version).where(_head.c.id == 1)).first()
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
        return conn.execution_options(**{_READ: True})

    # -- writing -------------------------------------------------------------------------------
    def record(
        self,
        explanation: Explanation,
        reasons: Sequence[DecisionReasons] | None = None,
        decision_ids: Sequence[str] | None = None,
        *,
        outcomes: Sequence[Mapping[str, Any] | None] | None = None,
        record_ids: Sequence[str] | None = None,
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
            # The decision id is also a text column: refuse here what a database would refuse
            # (PostgreSQL text holds no NUL; neither backend takes lone surrogates), so that
            # both backends accept the same ids and fail with an AuditError before writing.
            if d is not None and "\x00" in d:
                raise AuditError(f"decision_ids[{i}] contains a NUL character")
            if d is not None:
                try:
                    d.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise AuditError(f"decision_ids[{i}] is not valid UTF-8 text: {exc}") from exc
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
                    select(_head.c.sequence, _head.c.hash).where(_head.c.id == 1).with_for_update()
                ).one()
                sequence, prev = int(head.sequence), str(head.hash)
                if record_ids is not None:
                    # Under the write lock, so no other writer can take an id in between;
                    # the unique column would refuse it too, but with a database's words.
                    _check_new_ids(conn, new_ids)
                for i, body in enumerate(bodies):
                    sealed = seal(body, sequence + 1 + i, prev)
                    conn.execute(
                        insert(_records).values(
                            sequence=sealed["sequence"],
                            record_id=sealed["record_id"],
                            decision_id=sealed["decision_id"],
                            batch_id=batch_id,
                            recorded_at=recorded_at,
                            model_id=model_key(sealed),
                            prev_hash=prev,
                            hash=sealed["hash"],
                            body=canonical_json(sealed),
                        )
                    )
                    prev = sealed["hash"]
                    if _between_inserts is not None:
                        _between_inserts(i)
                conn.execute(
                    update(_head).where(_head.c.id == 1).values(sequence=sequence + n, hash=prev)
                )
        except SQLAlchemyError as exc:
            raise AuditError(
                f"nothing was recorded: the database refused the batch: {exc}"
            ) from exc
        logger.info("recorded %d decisions (sequence %d..%d)", n, sequence + 1, sequence + n)
        return [b["record_id"] for b in bodies]

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(_records)).scalar_one())

    def head(self) -> tuple[int, str]:
        """The sequence and hash of the last record (publish it elsewhere to pin the chain)."""
        with self._read() as conn:
            row = conn.execute(select(_head.c.sequence, _head.c.hash).where(_head.c.id == 1)).one()
        return int(row.sequence), str(row.hash)

    def get(self, record_id: str) -> dict[str, Any]:
        """The record as a dict, after checking it against its own hash.

        Raises
        ------
        RecordNotFoundError
        TamperedRecordError
            If the stored record no longer matches its hash.
        """
        with self._read() as conn:
            row = conn.execute(select(_records).where(_records.c.record_id == record_id)).first()
        if row is None:
            raise RecordNotFoundError(f"no record {record_id!r} in the audit store")
        record, problem = _parse(row)
        if problem is not None or record is None:
            raise TamperedRecordError(f"record {record_id!r} (sequence {row.sequence}): {problem}")
        return record

    def find(self, decision_id: str) -> list[str]:
        """Ids of the records of a decision, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(_records.c.record_id)
                .where(_records.c.decision_id == decision_id)
                .order_by(_records.c.sequence)
            )
            return [r.record_id for r in rows]

    def records(self, batch_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Every record (or a batch's), in chain order, each checked against its hash."""
        last = 0
        while True:
            with self._read() as conn:
                query = select(_records).where(_records.c.sequence > last)
                if batch_id is not None:
                    query = query.where(_records.c.batch_id == batch_id)
                rows = conn.execute(query.order_by(_records.c.sequence).limit(_PAGE)).all()
            for row in rows:
                record, problem = _parse(row)
                if problem is not None or record is None:
                    raise TamperedRecordError(
                        f"record {row.record_id!r} (sequence {row.sequence}): {problem}"
                    )
                yield record
            if len(rows) < _PAGE:
                return
            last = rows[-1].sequence

    # -- checking ------------------------------------------------------------------------------
    def verify(self) -> VerifyResult:
        """Walk the chain and report the first tampered, reordered or missing record.

        Each record's body must match its hash, its ``prev_hash`` the previous record's hash,
        its sequence follow the previous one without a gap, and its lookup columns agree with
        its body; the head row must point at the last record. Never raises for what it finds.
        """
        expected, prev, count = 1, GENESIS_HASH, 0
        with self._read() as conn:
            while True:
                rows = conn.execute(
                    select(_records)
                    .where(_records.c.sequence >= expected)
                    .order_by(_records.c.sequence)
                    .limit(_PAGE)
                ).all()
                for row in rows:
                    bad = _chain_problem(row, expected, prev)
                    if bad is not None:
                        return VerifyResult(
                            False, count, row.record_id, min(int(row.sequence), expected), bad, prev
                        )
                    prev, expected, count = row.hash, expected + 1, count + 1
                if len(rows) < _PAGE:
                    break
            head = conn.execute(
                select(_head.c.sequence, _head.c.hash).where(_head.c.id == 1)
            ).first()
        if head is None:
            return VerifyResult(False, count, None, None, "the head row is missing", prev)
        if int(head.sequence) != expected - 1 or head.hash != prev:
            if int(head.sequence) > expected - 1:
                reason = (
                    f"record(s) {expected}..{head.sequence} are missing from the end of the "
                    f"chain (the head says it reaches {head.sequence})"
                )
            else:
                reason = f"the head row (sequence {head.sequence}) does not match the last record"
            return VerifyResult(False, count, None, expected, reason, prev)
        return VerifyResult(True, count, head_hash=prev)

    # -- replaying -----------------------------------------------------------------------------
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
    for start in range(0, len(ids), _PAGE):
        taken = conn.execute(
            select(_records.c.record_id)
            .where(_records.c.record_id.in_(ids[start : start + _PAGE]))
            .limit(1)
        ).first()
        if taken is not None:
            raise AuditError(
                f"nothing was recorded: record id {taken.record_id} is already in the audit store"
            )


def _postgres_triggers(conn: Connection) -> None:
    """Create the append-only triggers that are missing (all of them in a new store).

    Like SQLite's ``CREATE TRIGGER IF NOT EXISTS`` on every open, a dropped trigger comes back
    when the store is next opened. A disabled one (``ALTER TABLE ... DISABLE TRIGGER``) is left
    as the administrator set it. A role that may not create them (e.g. read-only, to run
    :meth:`AuditStore.verify`) still opens the store, with a warning.
    """
    present = set(
        conn.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgrelid IN (to_regclass(:records), to_regclass(:head))"
            ),
            {"records": _records.name, "head": _head.name},
        ).scalars()
    )
    missing = [name for name in _POSTGRES_TRIGGERS if name not in present]
    if not missing:
        return
    try:
        with conn.begin_nested():
            function = conn.execute(
                text("SELECT to_regprocedure('sx_audit_append_only()')")
            ).scalar()
            if function is None:
                conn.exec_driver_sql(_POSTGRES_FUNCTION)
            for name in missing:
                conn.exec_driver_sql(_POSTGRES_TRIGGERS[name])
    except SQLAlchemyError as exc:
        logger.warning(
            "the append-only triggers %s are missing and could not be created: %s",
            ", ".join(missing),
            exc,
        )


def _parse(row: Any) -> tuple[dict[str, Any] | None, str | None]:
    try:
        record = json.loads(row.body)
    except (TypeError, ValueError):
        return None, "its body is not valid JSON"
    if not isinstance(record, dict):
        return None, "its body is not a JSON object"
    problem = check_record(record)
    if problem is not None:
        return record, problem
    for column in ("record_id", "sequence", "prev_hash", "hash", "decision_id"):
        if record.get(column) != getattr(row, column):
            return record, f"the {column} column differs from the record's own {column}"
    if record["batch"].get("id") != row.batch_id or model_key(record) != row.model_id:
        return record, "its batch_id or model_id column differs from the record"
    return record, None


def _chain_problem(row: Any, expected: int, prev: str) -> str | None:
    if int(row.sequence) != expected:
        missing = (
            f"record {expected} is"
            if int(row.sequence) == expected + 1
            else f"records {expected}..{int(row.sequence) - 1} are"
        )
        return f"{missing} missing before this record (sequence {row.sequence})"
    _, problem = _parse(row)
    if problem is not None:
        return problem
    if row.prev_hash != prev:
        return (
            f"its prev_hash does not match the hash of record {expected - 1}: "
            "one of the two was changed"
        )
    return None
