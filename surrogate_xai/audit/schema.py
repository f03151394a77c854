"""The audit store's tables, the columns kept for lookups, and the database's own guards.

Two tables:

``sx_audit_records``
    One row per record: ``sequence`` (the chain position, 1, 2, ...), lookup columns
    (:data:`LOOKUP_COLUMNS`, each a copy of a field of the body) and ``body``, the record's
    canonical JSON, which alone is hashed.
``sx_audit_head``
    One row: the sequence and hash of the last record. Every write transaction locks it first,
    so two writers can never both append after the same record (fork the chain), and
    ``verify`` compares it with the last record, so records removed from the end are noticed.

Guards in the database itself (SQLite and PostgreSQL triggers), so that nothing short of
dropping a trigger can change the evidence:

- records are never updated or deleted, and the head row is never deleted (on PostgreSQL
  neither table can be truncated, which fires no row trigger);
- the head never moves backwards, so the newest records cannot be cut off by rewinding it;
- a record is inserted only where the chain continues: its sequence is one past the last,
  its ``prev_hash`` is the last record's hash, and the head (which a writer moves first, in
  the same transaction) already covers it. A row forged at sequence 0, -7 or after the head
  is refused, however well its hash is made.

Anyone who controls the database can drop a trigger; the hash chain, checked by ``verify``,
is what makes such edits evident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from .record import GENESIS_HASH, model_key

_BIGINT = BigInteger().with_variant(Integer(), "sqlite")
METADATA = MetaData()
RECORDS = Table(
    "sx_audit_records",
    METADATA,
    Column("sequence", _BIGINT, primary_key=True, autoincrement=False),
    Column("record_id", String(36), nullable=False, unique=True),
    Column("decision_id", Text, nullable=True, index=True),
    Column("batch_id", String(36), nullable=False, index=True),
    Column("recorded_at", String(40), nullable=False),
    Column("model_id", Text, nullable=False, index=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("body", Text, nullable=False),
    # New stores refuse what the store never writes (older ones get the insert trigger).
    CheckConstraint("sequence >= 1", name="sx_audit_records_sequence_positive"),
)
HEAD = Table(
    "sx_audit_head",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sequence", _BIGINT, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("format_version", Integer, nullable=False),
)

#: Lookup column -> the field of the record it copies. Written from the record at insert and
#: checked against it by every read, so no column can say something the body does not.
LOOKUP_COLUMNS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "sequence": lambda r: r["sequence"],
    "record_id": lambda r: r["record_id"],
    "decision_id": lambda r: r["decision_id"],
    "batch_id": lambda r: r["batch"]["id"],
    "recorded_at": lambda r: r["recorded_at"],
    "model_id": model_key,
    "prev_hash": lambda r: r["prev_hash"],
    "hash": lambda r: r["hash"],
}


def lookup_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """The lookup columns of a sealed record, as they are inserted."""
    return {column: field(record) for column, field in LOOKUP_COLUMNS.items()}


_R, _H = RECORDS.name, HEAD.name
_REFUSE_OFF_CHAIN = "a record must extend the chain: one past the last, linked, within the head"

SQLITE_TRIGGERS = [
    *(
        f"CREATE TRIGGER IF NOT EXISTS sx_audit_{table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for table, op in [(_R, "UPDATE"), (_R, "DELETE"), (_H, "DELETE")]
    ),
    f"CREATE TRIGGER IF NOT EXISTS sx_audit_{_H}_no_rewind BEFORE UPDATE ON {_H} "
    f"WHEN NEW.sequence < OLD.sequence OR NEW.id IS NOT OLD.id "
    f"BEGIN SELECT RAISE(ABORT, '{_H} never moves backwards'); END",
    f"CREATE TRIGGER IF NOT EXISTS sx_audit_{_R}_extend_only BEFORE INSERT ON {_R} "
    f"WHEN NEW.sequence IS NOT (SELECT COALESCE(MAX(sequence), 0) + 1 FROM {_R}) "
    f"OR NEW.sequence > (SELECT sequence FROM {_H} WHERE id = 1) "
    f"OR NEW.prev_hash IS NOT COALESCE("
    f"(SELECT hash FROM {_R} WHERE sequence = NEW.sequence - 1), '{GENESIS_HASH}') "
    f"BEGIN SELECT RAISE(ABORT, '{_REFUSE_OFF_CHAIN}'); END",
]

# No percent sign in this DDL: pyformat drivers (psycopg) would try to interpolate it.
# (PostgreSQL 11 or later: EXECUTE FUNCTION.)
POSTGRES_FUNCTIONS = {
    "sx_audit_append_only": "CREATE OR REPLACE FUNCTION sx_audit_append_only() RETURNS trigger "
    "AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END; $$ "
    "LANGUAGE plpgsql",
    "sx_audit_no_rewind": "CREATE OR REPLACE FUNCTION sx_audit_no_rewind() RETURNS trigger AS $$ "
    "BEGIN IF NEW.sequence < OLD.sequence OR NEW.id <> OLD.id THEN RAISE EXCEPTION USING "
    f"MESSAGE = '{_H} never moves backwards'; END IF; RETURN NEW; END; $$ LANGUAGE plpgsql",
    "sx_audit_extend_only": "CREATE OR REPLACE FUNCTION sx_audit_extend_only() RETURNS trigger "
    "AS $$ BEGIN "
    f"IF NEW.sequence IS DISTINCT FROM (SELECT COALESCE(MAX(sequence), 0) + 1 FROM {_R}) "
    f"OR NEW.sequence > (SELECT sequence FROM {_H} WHERE id = 1) "
    f"OR NEW.prev_hash IS DISTINCT FROM COALESCE("
    f"(SELECT hash FROM {_R} WHERE sequence = NEW.sequence - 1), '{GENESIS_HASH}') "
    f"THEN RAISE EXCEPTION USING MESSAGE = '{_REFUSE_OFF_CHAIN}'; END IF; RETURN NEW; END; $$ "
    "LANGUAGE plpgsql",
}
# Trigger name -> DDL. TRUNCATE fires no row triggers, so it needs statement triggers of its own
# (without them the owner could empty both tables in one statement).
POSTGRES_TRIGGERS = {
    "sx_audit_records_append_only": f"CREATE TRIGGER sx_audit_records_append_only "
    f"BEFORE UPDATE OR DELETE ON {_R} FOR EACH ROW EXECUTE FUNCTION sx_audit_append_only()",
    "sx_audit_records_no_truncate": f"CREATE TRIGGER sx_audit_records_no_truncate "
    f"BEFORE TRUNCATE ON {_R} FOR EACH STATEMENT EXECUTE FUNCTION sx_audit_append_only()",
    "sx_audit_records_extend_only": f"CREATE TRIGGER sx_audit_records_extend_only "
    f"BEFORE INSERT ON {_R} FOR EACH ROW EXECUTE FUNCTION sx_audit_extend_only()",
    "sx_audit_head_keep": f"CREATE TRIGGER sx_audit_head_keep BEFORE DELETE ON {_H} "
    "FOR EACH ROW EXECUTE FUNCTION sx_audit_append_only()",
    "sx_audit_head_no_truncate": f"CREATE TRIGGER sx_audit_head_no_truncate "
    f"BEFORE TRUNCATE ON {_H} FOR EACH STATEMENT EXECUTE FUNCTION sx_audit_append_only()",
    "sx_audit_head_no_rewind": f"CREATE TRIGGER sx_audit_head_no_rewind BEFORE UPDATE ON {_H} "
    "FOR EACH ROW EXECUTE FUNCTION sx_audit_no_rewind()",
}


def missing_postgres_triggers(conn: Connection) -> list[str]:
    """The guard triggers that are not (or no longer) defined on the audit tables."""
    present = set(
        conn.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgrelid IN (to_regclass(:records), to_regclass(:head))"
            ),
            {"records": _R, "head": _H},
        ).scalars()
    )
    return [name for name in POSTGRES_TRIGGERS if name not in present]


def create_postgres_triggers(conn: Connection, names: list[str]) -> None:
    """(Re)define the trigger functions and create the triggers ``names``."""
    for ddl in POSTGRES_FUNCTIONS.values():
        conn.exec_driver_sql(ddl)
    for name in names:
        conn.exec_driver_sql(POSTGRES_TRIGGERS[name])
