"""The audit store on a real, throwaway PostgreSQL server (tests/postgres_server.py).

Mirrors tests/test_audit_store.py (SQLite) for what PostgreSQL does differently: the plpgsql
append-only triggers, ``SELECT ... FOR UPDATE`` on the head row with concurrent writers, the
text column holding the hashed JSON, reopening an existing store, lock timeouts, and a writer
killed mid-batch. The store runs as an ordinary role (``sxai``, owner of its database); the
``postgres`` superuser plays the administrator who can switch triggers off.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

import surrogate_xai as sx
from surrogate_xai.audit import (
    AuditStore,
    canonical_json,
    explanation_from_record,
    record_hash,
    verification,
)
from surrogate_xai.audit import store as store_module
from surrogate_xai.audit.record import GENESIS_HASH
from surrogate_xai.exceptions import AuditError, RecordNotFoundError
from tests import postgres_server
from tests.audit_crash_worker import explanation as small_explanation
from tests.system_tools import skip_unless_available
from tests.test_audit_store import N_DECISIONS, SCHEMA, assert_edit_is_named, decision_ids
from tests.test_audit_store import credit as _credit_fixture

ROOT = Path(__file__).resolve().parents[1]
#: The SQLite suite's module-scoped fixture: 50 German-credit decisions (ONNX, KernelSHAP) with
#: reason codes. Rebound here so pytest finds it in this module.
credit = _credit_fixture
_MISSING = postgres_server.missing_reason()
pytestmark = skip_unless_available(
    None if _MISSING is None else f"PostgreSQL: {_MISSING}",
    install="sudo apt-get install postgresql",
)
TRIGGERS = {
    "sx_audit_records_append_only",
    "sx_audit_records_no_truncate",
    "sx_audit_records_extend_only",
    "sx_audit_head_keep",
    "sx_audit_head_no_truncate",
    "sx_audit_head_no_rewind",
}


@pytest.fixture(scope="module")
def pg():
    yield from postgres_server.start_server()


@pytest.fixture
def url(pg):
    """A fresh, empty database owned by the application role."""
    return pg.url(pg.create_database())


@pytest.fixture
def open_store():
    """``AuditStore(...)``, closed at teardown even when the test fails (no leaked sessions)."""
    opened: list[AuditStore] = []

    def open_(*args, **kwargs) -> AuditStore:
        store = AuditStore(*args, **kwargs)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def dbname(url: str) -> str:
    return url.split("@/", 1)[1].split("?", 1)[0]


def owner(pg, url):
    """A raw connection as the store's own (non-superuser) role."""
    return pg.connect(dbname(url), user=postgres_server.APP_ROLE)


def body_of(pg, url: str, record_id: str) -> str:
    with owner(pg, url) as con:
        row = con.execute(
            "SELECT body FROM sx_audit_records WHERE record_id = %s", (record_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def sequences(pg, url: str) -> list[int]:
    with owner(pg, url) as con:
        return [r[0] for r in con.execute("SELECT sequence FROM sx_audit_records ORDER BY 1")]


def triggers(pg, url: str) -> dict[str, str]:
    """Name -> enabled flag ('O' enabled, 'D' disabled) of the store's triggers."""
    with owner(pg, url) as con:
        rows = con.execute(
            "SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal "
            "AND tgrelid IN ('sx_audit_records'::regclass, 'sx_audit_head'::regclass)"
        ).fetchall()
    return {name: str(flag) for name, flag in rows}


def join_all(threads: list[threading.Thread], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a thread is stuck"


# -- the acceptance test, on PostgreSQL ------------------------------------------------------------
def test_fifty_decisions_replay_and_tampering_is_refused_then_named(pg, url, credit, open_store):
    import psycopg

    model, background, explanation, reasons = credit
    store = open_store(url)
    ids = store.record(explanation, reasons=reasons, decision_ids=decision_ids(N_DECISIONS))
    assert len(ids) == len(set(ids)) == N_DECISIONS == len(store)
    assert sequences(pg, url) == list(range(1, N_DECISIONS + 1))
    assert store.verify().ok
    assert store.head() == (N_DECISIONS, store.get(ids[-1])["hash"])
    assert store.find("app-0007") == [ids[7]]
    assert [r["record_id"] for r in store.records()] == ids
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for record_id in ids[:5]:
        validator.validate(store.get(record_id))
    for record_id in ids:
        result = store.replay(record_id, model, background)
        assert result.identical, (record_id, result.differences)
        assert result.max_abs_diff == 0.0

    victim = ids[17]
    record = json.loads(body_of(pg, url, victim))
    record["attributions"]["values"][4][1] += 0.01
    edit = "UPDATE sx_audit_records SET body = %s WHERE record_id = %s"
    # The store's own role (owner of the tables) is refused by the triggers...
    with owner(pg, url) as con:
        for sql, args in [
            (edit, (json.dumps(record), victim)),
            ("UPDATE sx_audit_records SET decision_id = 'x' WHERE sequence = 3", ()),
            ("DELETE FROM sx_audit_records WHERE record_id = %s", (victim,)),
            ("DELETE FROM sx_audit_records", ()),
            ("TRUNCATE sx_audit_records", ()),
            ("DELETE FROM sx_audit_head", ()),
            ("TRUNCATE sx_audit_head", ()),
        ]:
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                con.execute(sql, args)
    assert store.verify().ok
    assert len(store) == N_DECISIONS

    # ...a superuser can bypass every trigger, and the hash chain names the edited record.
    with pg.connect(dbname(url)) as con:
        con.execute("SET session_replication_role = replica")
        assert con.execute(edit, (json.dumps(record), victim)).rowcount == 1
    assert_edit_is_named(store, victim, model, background)
    store.close()


def test_disabled_triggers_deleted_records_and_reopening_restores_dropped_triggers(
    pg, url, linear_problem, open_store
):
    import psycopg

    problem, _, model = linear_problem
    explanation = sx.ExactSHAP().fit(model, problem.X.iloc[10:30]).explain(problem.X.iloc[:20])
    store = open_store(url)
    ids = store.record(explanation, decision_ids=decision_ids(20))
    assert set(triggers(pg, url)) == TRIGGERS
    # The owner may disable its triggers (ALTER TABLE); the chain notices the hole.
    with owner(pg, url) as con:
        con.execute("ALTER TABLE sx_audit_records DISABLE TRIGGER USER")
        con.execute("DELETE FROM sx_audit_records WHERE record_id = %s", (ids[9],))
    result = store.verify()
    assert not result.ok
    assert result.first_bad_sequence == 10
    assert result.first_bad_record_id == ids[10]
    assert "record 10 is missing" in result.reason
    # Reopening does not silently re-enable what an administrator disabled...
    open_store(url).close()
    assert triggers(pg, url)["sx_audit_records_append_only"] == "D"
    # ...but triggers that are gone are created again, as on SQLite (CREATE TRIGGER IF NOT
    # EXISTS on every open).
    with owner(pg, url) as con:
        con.execute("DROP TRIGGER sx_audit_records_append_only ON sx_audit_records")
        con.execute("DROP TRIGGER sx_audit_head_keep ON sx_audit_head")
    assert set(triggers(pg, url)) == TRIGGERS - {
        "sx_audit_records_append_only",
        "sx_audit_head_keep",
    }
    open_store(url).close()
    assert triggers(pg, url)["sx_audit_records_append_only"] == "O"
    assert set(triggers(pg, url)) == TRIGGERS
    with owner(pg, url) as con, pytest.raises(psycopg.errors.RaiseException, match="append"):
        con.execute("UPDATE sx_audit_records SET decision_id = 'x'")
    store.close()


@pytest.mark.reliability
def test_forged_inserts_and_a_rewound_head_are_refused_by_the_triggers(pg, url, open_store):
    """Without dropping a trigger, the store's own role can neither add a row outside the
    chain (at sequence 0, -7, after the head, or one well linked after it) nor rewind the head
    to cut off the newest records."""
    import psycopg

    store = open_store(url)
    store.record(small_explanation(5, 0), decision_ids=decision_ids(5))
    head = store.head()
    columns = (
        "sequence, record_id, decision_id, batch_id, recorded_at, model_id, prev_hash, hash, body"
    )
    with owner(pg, url) as con:
        last = con.execute(f"SELECT {columns} FROM sx_audit_records WHERE sequence = 5").fetchone()
        for sequence, prev in [(0, last[6]), (-7, last[6]), (9, last[7]), (6, last[7])]:
            forged = (
                sequence,
                "0b9f8e1c-2d3a-4b5c-8d6e-7f8091a2b3c4",
                *last[2:6],
                prev,
                "f" * 64,
                last[8],
            )
            with pytest.raises(psycopg.errors.RaiseException, match="extend the chain"):
                con.execute(
                    f"INSERT INTO sx_audit_records ({columns}) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    forged,
                )
        with pytest.raises(psycopg.errors.RaiseException, match="never moves backwards"):
            con.execute("UPDATE sx_audit_head SET sequence = 3")
    assert store.head() == head
    result = store.verify(anchor=head)
    assert result.ok
    assert result.records == 5
    store.close()


def test_a_read_only_role_can_verify_but_not_write(pg, url, open_store, caplog):
    store = open_store(url)
    store.record(small_explanation(4, 0), decision_ids=decision_ids(4))
    auditor = f"auditor_{dbname(url)}"
    with pg.connect() as con:
        con.execute(f"CREATE ROLE {auditor} LOGIN")
    with owner(pg, url) as con:
        con.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {auditor}")
    audit_url = url.replace(f"{postgres_server.APP_ROLE}@", f"{auditor}@")
    reader = open_store(audit_url)
    assert reader.verify().ok
    assert len(reader) == 4
    with pytest.raises(AuditError, match=r"nothing was recorded.*permission denied"):
        reader.record(small_explanation(2, 1))
    # With a trigger gone, the auditor still opens the store (and is told).
    with owner(pg, url) as con:
        con.execute("DROP TRIGGER sx_audit_head_no_truncate ON sx_audit_head")
    with caplog.at_level(logging.WARNING, logger="surrogate_xai.audit.store"):
        open_store(audit_url).verify()
    assert "sx_audit_head_no_truncate are missing and could not be created" in caplog.text
    assert "sx_audit_head_no_truncate" not in triggers(pg, url)
    open_store(url)  # the owner puts it back
    assert set(triggers(pg, url)) == TRIGGERS


# -- JSON on PostgreSQL's column types -------------------------------------------------------------
def test_bodies_are_stored_as_the_exact_hashed_text(pg, url, linear_problem, open_store):
    import psycopg

    problem, _, model = linear_problem
    explanation = sx.ExactSHAP().fit(model, problem.X.iloc[10:30]).explain(problem.X.iloc[:3])
    awkward = {
        "decision": "abgelehnt \u2013 Zoë 日本 \U0001f600",
        "tiny": 5e-324,  # the smallest subnormal
        "negative_zero": -0.0,
        "third": 1 / 3,
        "big": 2**70,  # beyond int64 and float64 precision
        "nan": math.nan,  # not JSON: recorded as null
        "inf": -math.inf,
        "nul": "a\x00b",  # a NUL character: legal in JSON text, refused by jsonb and text
        "keys": {"b": 1, "a": 2, "ä": 3, "A": 4, "aa": 5, "a ": 6},
    }
    store = open_store(url)
    ids = store.record(
        explanation,
        decision_ids=["Zoë/日本/\U0001f600", "plain", "tab\there"],
        outcomes=[awkward, None, {"x": 0.1 + 0.2}],
    )
    with owner(pg, url) as con:
        (column_type,) = con.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'sx_audit_records' AND column_name = 'body'"
        ).fetchone()
        rows = con.execute(
            "SELECT record_id, body, hash, decision_id FROM sx_audit_records ORDER BY sequence"
        ).fetchall()
        (as_jsonb,) = con.execute(
            "SELECT body::jsonb::text FROM sx_audit_records WHERE sequence = 2"
        ).fetchone()
        with pytest.raises(psycopg.errors.UntranslatableCharacter):
            con.execute("SELECT body::jsonb FROM sx_audit_records WHERE sequence = 1")
        plain_json = canonical_json({"b": -0.0, "aa": 2**70, "a": 5e-324})
        (via_jsonb,) = con.execute("SELECT %s::jsonb::text", (plain_json,)).fetchone()
    # Text, not json/jsonb: jsonb reorders keys, respaces, drops -0.0's sign and cannot hold
    # \u0000, so the hashed bytes would not survive it.
    assert column_type == "text"
    for record_id, body, digest, decision_id in rows:
        parsed = json.loads(body)
        assert canonical_json(parsed) == body  # the stored text is the canonical form
        assert record_hash(parsed) == digest == parsed["hash"]
        assert parsed["decision_id"] == decision_id
        assert store.get(record_id) == parsed
    outcome = store.get(ids[0])["outcome"]
    assert outcome["decision"] == awkward["decision"]
    assert outcome["tiny"] == 5e-324
    assert math.copysign(1.0, outcome["negative_zero"]) == -1.0
    assert outcome["third"] == 1 / 3
    assert outcome["big"] == 2**70
    assert outcome["nan"] is None
    assert outcome["inf"] is None
    assert outcome["nul"] == "a\x00b"
    assert list(outcome["keys"]) == sorted(awkward["keys"])
    assert store.get(ids[2])["outcome"] == {"x": 0.30000000000000004}
    assert store.get(ids[0])["decision_id"] == "Zoë/日本/\U0001f600"
    assert store.find("Zoë/日本/\U0001f600") == [ids[0]]
    # What jsonb makes of a body: other bytes (key order, spacing), so another hash; and not
    # even the same values once re-serialised (-0.0 loses its sign).
    assert as_jsonb != rows[1][1]
    assert json.loads(as_jsonb) == json.loads(rows[1][1])
    assert canonical_json(json.loads(via_jsonb)) != plain_json
    rebuilt = explanation_from_record(store.get(ids[1]))
    assert rebuilt.values.tobytes() == explanation.values[1:2].tobytes()
    assert rebuilt.base_values.tobytes() == explanation.base_values[1:2].tobytes()
    assert store.verify().ok
    store.close()


def test_decision_ids_postgresql_cannot_store_are_refused_before_writing(
    url, linear_problem, open_store
):
    problem, _, model = linear_problem
    explanation = sx.ExactSHAP().fit(model, problem.X.iloc[10:30]).explain(problem.X.iloc[:3])
    store = open_store(url)
    store.record(explanation)
    head = store.head()
    with pytest.raises(AuditError, match=r"decision_ids\[1\].*NUL"):
        store.record(explanation, decision_ids=["a", "b\x00", "c"])
    with pytest.raises(AuditError, match=r"decision_ids\[2\].*UTF-8"):
        store.record(explanation, decision_ids=["a", "b", "\ud800"])
    assert store.head() == head
    assert store.verify().ok
    store.close()


# -- transactions ----------------------------------------------------------------------------------
def test_a_batch_the_database_refuses_mid_way_leaves_nothing(pg, url, open_store):
    store = open_store(url)
    store.record(small_explanation(6, 0), decision_ids=[f"first-{i}" for i in range(6)])
    head = store.head()
    # A real refusal by the server at the fourth insert of six: an administrator's trigger.
    with pg.connect(dbname(url)) as con:
        con.execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
            "IF NEW.decision_id = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF; "
            "RETURN NEW; END; $$ LANGUAGE plpgsql"
        )
        con.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON sx_audit_records "
            "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        )
    inserted: list[int] = []
    ids = ["second-0", "second-1", "second-2", "poison", "second-4", "second-5"]
    with pytest.raises(AuditError, match=r"nothing was recorded.*poisoned row"):
        store.record(small_explanation(6, 1), decision_ids=ids, on_insert=inserted.append)
    assert inserted == [0, 1, 2]  # three rows were inserted, inside the failed transaction
    assert store.head() == head
    assert len(store) == 6
    assert store.verify().ok
    # The store goes on from the surviving head.
    more = store.record(small_explanation(6, 2), decision_ids=decision_ids(6, "third"))
    assert store.get(more[0])["prev_hash"] == head[1]
    assert sequences(pg, url) == list(range(1, 13))
    assert store.verify().ok
    store.close()


_KILLED_WRITER = """
import os, signal, sys
from surrogate_xai.audit import AuditStore, store
from tests.audit_crash_worker import explanation
url, kill_at, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
audit = AuditStore(url)
audit.record(explanation(size, 0), decision_ids=[f"first-{i}" for i in range(size)])
print("first batch committed", flush=True)
def die(position):
    if position == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
audit.record(
    explanation(size, 1), decision_ids=[f"second-{i}" for i in range(size)], on_insert=die
)
print("second batch committed", flush=True)
"""


def test_a_writer_killed_mid_batch_leaves_none_of_it_and_releases_the_head(pg, url, open_store):
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, url, "3", "6"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "first batch committed" in proc.stdout
    assert "second batch committed" not in proc.stdout
    # The server rolls the dead session back and frees its lock on the head row: the next
    # writer gets it at once (it would give up after `timeout` seconds otherwise).
    store = open_store(url, timeout=10)
    assert len(store) == 6
    assert {r["decision_id"] for r in store.records()} == {f"first-{i}" for i in range(6)}
    assert store.verify().ok
    store.record(small_explanation(6, 2), decision_ids=decision_ids(6, "third"))
    assert sequences(pg, url) == list(range(1, 13))
    assert store.verify().ok
    store.close()


def test_a_writer_waits_for_the_head_lock_at_most_timeout_seconds(pg, url, open_store):
    store = open_store(url, timeout=0.5)
    explanation = small_explanation(3, 0)
    store.record(explanation)
    outcome: list[BaseException | list[str]] = []

    def write() -> None:
        try:
            outcome.append(store.record(explanation))
        except BaseException as exc:  # reported below
            outcome.append(exc)

    # Another session holds the head row (as a writer in the middle of a batch does).
    with pg.connect(dbname(url), autocommit=False) as blocker:
        blocker.execute("SELECT * FROM sx_audit_head FOR UPDATE")
        started = time.monotonic()
        thread = threading.Thread(target=write)
        thread.start()
        thread.join(15)
        waited = time.monotonic() - started
        blocker.rollback()  # releases the lock, so a writer that ignored the timeout ends
    thread.join(15)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], AuditError), outcome
    assert "nothing was recorded" in str(outcome[0])
    assert "lock" in str(outcome[0])
    assert 0.4 < waited < 10
    assert len(store) == 3
    assert store.record(explanation)  # free again
    assert store.verify().ok
    store.close()


# -- concurrency -----------------------------------------------------------------------------------
def test_concurrent_writers_and_a_verifier_never_see_a_broken_chain(
    pg, url, monkeypatch, open_store
):
    # Small pages make verify() read the chain in many statements while writers commit.
    monkeypatch.setattr(store_module, "PAGE", 7)
    monkeypatch.setattr(verification, "PAGE", 7)
    open_store(url).close()
    n_writers, n_batches, size = 4, 8, 5
    explanations = [small_explanation(size, w) for w in range(n_writers)]
    errors: list[BaseException] = []
    verdicts = []
    done = threading.Event()
    barrier = threading.Barrier(n_writers + 1)

    def writer(w: int) -> None:
        try:
            with open_store(url) as store:
                barrier.wait(10)
                for b in range(n_batches):
                    store.record(explanations[w], decision_ids=decision_ids(size, f"w{w}b{b}"))
                    # A read on the same pooled connections: its REPEATABLE READ must not leak
                    # into the next write (FOR UPDATE would then fail to serialise).
                    assert len(store) >= (b + 1) * size
        except BaseException as exc:  # reported below
            errors.append(exc)

    def verifier() -> None:
        try:
            with open_store(url) as store:
                barrier.wait(10)
                while not done.is_set():
                    verdicts.append(store.verify())
        except BaseException as exc:  # reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(n_writers)]
    checker = threading.Thread(target=verifier)
    for t in [*writers, checker]:
        t.start()
    join_all(writers, 60)
    done.set()
    join_all([checker], 30)
    assert not errors, errors
    assert verdicts
    bad = [v for v in verdicts if not v.ok]
    assert not bad, f"{len(bad)} of {len(verdicts)} verify() calls failed, e.g. {bad[0]}"
    total = n_writers * n_batches * size
    assert sequences(pg, url) == list(range(1, total + 1))  # no gap, no duplicate
    store = open_store(url)
    result = store.verify()
    assert result.ok
    assert result.records == total
    assert store.head() == (total, result.head_hash)
    records = list(store.records())
    assert len({r["record_id"] for r in records}) == total
    for start in range(0, total, size):  # each batch is contiguous
        batch = [r["batch"] for r in records[start : start + size]]
        assert [b["position"] for b in batch] == list(range(size))
        assert len({b["id"] for b in batch}) == 1
    store.close()


def test_stores_opened_concurrently_on_a_new_database_agree(pg, url, open_store):
    n = 4
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    stores: list[AuditStore] = []

    def open_one() -> None:
        try:
            barrier.wait(10)
            stores.append(open_store(url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(n)]
    for t in threads:
        t.start()
    join_all(threads, 60)
    assert not errors, errors
    assert set(triggers(pg, url)) == TRIGGERS
    with owner(pg, url) as con:
        assert con.execute("SELECT id, sequence, hash FROM sx_audit_head").fetchall() == [
            (1, 0, GENESIS_HASH)
        ]
    for i, store in enumerate(stores):
        store.record(small_explanation(2, i))
    assert stores[0].verify().ok
    assert len(stores[-1]) == 2 * n
    for store in stores:
        store.close()


# -- opening ---------------------------------------------------------------------------------------
def test_reopen_lookups_and_url_without_password(pg, url, linear_problem, open_store):
    problem, _, model = linear_problem
    explanation = sx.ExactSHAP().fit(model, problem.X.iloc[10:30]).explain(problem.X.iloc[:3])
    store = open_store(url)
    first = store.record(explanation, decision_ids=["d-1", "d-2", "d-1"])
    assert store.find("d-1") == [first[0], first[2]]
    assert store.find("unknown") == []
    with pytest.raises(RecordNotFoundError, match="no record 'nope'"):
        store.get("nope")
    store.close()
    # Reopen (tables exist already), with a password in the URL (trust auth ignores it).
    secret = url.replace(f"{postgres_server.APP_ROLE}@", f"{postgres_server.APP_ROLE}:hunter2@")
    reopened = open_store(secret)
    assert "hunter2" not in repr(reopened)
    assert "hunter2" not in reopened.url
    second = reopened.record(explanation, decision_ids=["d-4", "d-5", "d-6"])
    assert reopened.head() == (6, reopened.get(second[-1])["hash"])
    assert reopened.get(second[0])["prev_hash"] == reopened.get(first[-1])["hash"]
    assert [r["record_id"] for r in reopened.records()] == first + second
    batch = reopened.get(second[1])["batch"]["id"]
    assert [r["record_id"] for r in reopened.records(batch_id=batch)] == second
    assert reopened.verify().ok
    assert set(triggers(pg, url)) == TRIGGERS
    reopened.close()


def test_an_unreachable_server_is_an_audit_error(pg):
    bad = pg.url("postgres").replace(f"port={pg.port}", "port=1")
    started = time.monotonic()
    with pytest.raises(AuditError, match="cannot open the audit store"):
        AuditStore(bad)
    assert time.monotonic() - started < 15
    with pytest.raises(AuditError, match="cannot open the audit store"):
        AuditStore(pg.url("no_such_database"))
