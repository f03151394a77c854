"""Attacks on the audit store's SQLite file: forged, edited, removed, reordered and corrupted
records. Each must be refused by the schema or named by ``verify`` (and by every read), and the
command line must answer with one line and exit 1, never a traceback.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import surrogate_xai as sx
from surrogate_xai.audit import AuditStore, canonical_json, record_hash
from surrogate_xai.exceptions import TamperedRecordError
from tests.cli_runner import sxai_here

pytestmark = pytest.mark.reliability
N = 20


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A store of 20 records (ExactSHAP on a linear model), written once per module."""
    from surrogate_xai.datasets import make_linear

    problem, _ = make_linear(n_samples=60, n_features=4, random_state=5)
    model = sx.FunctionModel(problem.predict, feature_names=problem.feature_names)
    explanation = sx.ExactSHAP().fit(model, problem.X.iloc[30:40]).explain(problem.X.iloc[:N])
    path = tmp_path_factory.mktemp("store") / "audit.db"
    with AuditStore(f"sqlite:///{path}") as store:
        store.record(explanation, decision_ids=[f"app-{i}" for i in range(N)])
    return path


@pytest.fixture
def db(pristine: Path, tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    shutil.copy(pristine, path)
    return path


def open_store(path: Path) -> AuditStore:
    return AuditStore(f"sqlite:///{path}", create=False)


def rows(path: Path) -> list[dict]:
    with sqlite3.connect(path) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM sx_audit_records ORDER BY sequence")]


def tamper(path: Path, sql: str, params: tuple = ()) -> None:
    """Run ``sql`` as someone with write access to the file: the triggers dropped first, and
    the CHECK constraints of the table ignored (as in a store made by an older release)."""
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA ignore_check_constraints = ON")
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            con.execute(f"DROP TRIGGER {name}")
        con.execute(sql, params)


def forged_copy(row: dict, sequence: int, decision: str = "FORGED") -> dict:
    """Row ``row`` re-made as a careful forger would: new id, edited outcome, own hash."""
    record = json.loads(row["body"])
    record.update(
        sequence=sequence,
        record_id="0b9f8e1c-2d3a-4b5c-8d6e-7f8091a2b3c4",
        outcome={"decision": decision, "threshold": 0.5, "output": "output"},
    )
    record["hash"] = record_hash(record)
    return {
        **row,
        "sequence": sequence,
        "record_id": record["record_id"],
        "hash": record["hash"],
        "body": canonical_json(record),
    }


def insert(path: Path, row: dict, *, drop_triggers: bool) -> None:
    sql = (
        "INSERT INTO sx_audit_records (sequence, record_id, decision_id, batch_id, "
        "recorded_at, model_id, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    values = tuple(
        row[c]
        for c in (
            "sequence",
            "record_id",
            "decision_id",
            "batch_id",
            "recorded_at",
            "model_id",
            "prev_hash",
            "hash",
            "body",
        )
    )
    if drop_triggers:
        tamper(path, sql, values)
    else:
        with sqlite3.connect(path) as con:
            con.execute(sql, values)


def cli_verify(path: Path, capsys, attack, *extra: str):
    proc = attack.cli(
        sxai_here("verify", "--store", path.name, *extra, cwd=path.parent, capsys=capsys)
    )
    assert "Traceback" not in proc.stderr
    return proc


def assert_fails_verification(path: Path, capsys, attack, *fragments: str) -> str:
    proc = cli_verify(path, capsys, attack)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# -- forged records ------------------------------------------------------------------------------
@pytest.mark.parametrize("sequence", [0, -7, N + 1, N + 5])
def test_a_forged_insert_is_refused_by_the_schema(db, sequence):
    forged = forged_copy(rows(db)[4], sequence)
    if sequence == N + 1:
        forged["prev_hash"] = rows(db)[-1]["hash"]  # even a well-linked one: the head says N
    with pytest.raises(sqlite3.DatabaseError):
        insert(db, forged, drop_triggers=False)
    assert open_store(db).verify().ok


@pytest.mark.parametrize("sequence", [0, -7])
def test_a_record_outside_the_chain_is_named_and_never_read(db, sequence, capsys, attack):
    original = rows(db)[4]
    forged = forged_copy(original, sequence)
    insert(db, forged, drop_triggers=True)
    store = open_store(db)
    result = store.verify()
    assert not result.ok
    assert result.first_bad_record_id == forged["record_id"]
    assert "outside the chain" in result.reason
    with pytest.raises(TamperedRecordError, match=forged["record_id"]):
        store.get(forged["record_id"])
    assert store.find(original["decision_id"]) == [original["record_id"]]
    assert forged["record_id"] not in {r["record_id"] for r in store.records()}
    store.close()
    assert_fails_verification(db, capsys, attack, forged["record_id"], "outside the chain")


def test_a_record_after_the_head_is_named_and_never_read(db):
    last = rows(db)[-1]
    forged = forged_copy(last, N + 1)
    forged["prev_hash"] = last["hash"]
    body = json.loads(forged["body"])
    body["prev_hash"] = last["hash"]
    body["hash"] = forged["hash"] = record_hash(body)
    forged["body"] = canonical_json(body)
    insert(db, forged, drop_triggers=True)
    store = open_store(db)
    result = store.verify()
    assert not result.ok
    assert "head" in result.reason
    with pytest.raises(TamperedRecordError, match="beyond the head"):
        store.get(forged["record_id"])


def test_a_duplicate_key_in_a_body_is_named(db, capsys, attack):
    """Python's parser keeps the last key, SQLite's json_extract the first: both must agree."""
    victim = rows(db)[6]
    forged = '{"outcome":{"decision":"FORGED"},' + victim["body"][1:]
    tamper(db, "UPDATE sx_audit_records SET body = ? WHERE sequence = 7", (forged,))
    with sqlite3.connect(db) as con:
        (seen,) = con.execute(
            "SELECT json_extract(body, '$.outcome.decision') FROM sx_audit_records "
            "WHERE sequence = 7"
        ).fetchone()
    assert seen == "FORGED"  # what a non-Python reader of the file would believe
    result = open_store(db).verify()
    assert not result.ok
    assert result.first_bad_sequence == 7
    assert "duplicate key" in result.reason
    assert_fails_verification(db, capsys, attack, victim["record_id"], "duplicate key")


@pytest.mark.parametrize("spacing", ["spaces", "trailing", "escapes"])
def test_a_body_that_is_not_canonical_is_named(db, spacing):
    """The same content in other bytes (a reader parsing it would see the record, but the
    stored text is not what was hashed)."""
    body = rows(db)[2]["body"]
    content = json.loads(body)
    other = {
        "spaces": json.dumps(content, sort_keys=True, separators=(", ", ": ")),
        "trailing": body + " ",
        "escapes": json.dumps(
            content, sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).replace('"format"', '"\\u0066ormat"'),
    }[spacing]
    assert json.loads(other) == content
    tamper(db, "UPDATE sx_audit_records SET body = ? WHERE sequence = 3", (other,))
    result = open_store(db).verify()
    assert not result.ok
    assert result.first_bad_sequence == 3
    assert "canonical" in result.reason


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("record_id", "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
        ("decision_id", "app-999"),
        ("batch_id", "7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"),
        ("recorded_at", "2020-01-01T00:00:00.000000Z"),
        ("model_id", "another-model"),
        ("prev_hash", "f" * 64),
        ("hash", "e" * 64),
    ],
)
def test_every_lookup_column_must_agree_with_the_body(db, column, value):
    victim = rows(db)[8]
    tamper(db, f"UPDATE sx_audit_records SET {column} = ? WHERE sequence = 9", (value,))
    result = open_store(db).verify()
    assert not result.ok
    assert result.first_bad_sequence == 9
    assert column in result.reason
    with pytest.raises(TamperedRecordError):
        open_store(db).get(value if column == "record_id" else victim["record_id"])


def test_a_column_of_another_type_is_named(db):
    tamper(db, "UPDATE sx_audit_records SET body = CAST(body AS BLOB) WHERE sequence = 2")
    result = open_store(db).verify()
    assert not result.ok
    assert result.first_bad_sequence == 2


# -- removed, reordered, renumbered ------------------------------------------------------------
def test_reordered_records_are_named(db):
    tamper(db, "UPDATE sx_audit_records SET sequence = -sequence WHERE sequence IN (4, 5)")
    tamper(db, "UPDATE sx_audit_records SET sequence = 5 WHERE sequence = -4")
    tamper(db, "UPDATE sx_audit_records SET sequence = 4 WHERE sequence = -5")
    result = open_store(db).verify()
    assert not result.ok
    assert result.first_bad_sequence == 4


def test_renumbered_records_are_named(db):
    tamper(db, "UPDATE sx_audit_records SET sequence = sequence + 100")
    tamper(db, "UPDATE sx_audit_head SET sequence = sequence + 100")
    result = open_store(db).verify()
    assert not result.ok
    assert "outside the chain" in result.reason or "missing" in result.reason


def test_a_cut_tail_with_a_rewound_head_shows_only_against_a_published_head(db, capsys, attack):
    """Rewriting the head after removing the newest records leaves a valid shorter chain:
    only a head published elsewhere (a ticket, a signed log) shows that anything is gone."""
    published = open_store(db).verify()
    assert published.ok
    anchor = f"{N}:{published.head_hash}"
    keep = rows(db)[14]
    tamper(db, "DELETE FROM sx_audit_records WHERE sequence > 15")
    tamper(db, "UPDATE sx_audit_head SET sequence = 15, hash = ?", (keep["hash"],))
    assert open_store(db).verify().ok  # nothing inside the file can tell
    result = open_store(db).verify(anchor=(N, published.head_hash))
    assert not result.ok
    assert "published head" in result.reason
    proc = cli_verify(db, capsys, attack, "--anchor", anchor)
    assert proc.returncode == 1
    assert "published head" in proc.stderr


def test_a_published_head_is_checked_on_an_intact_chain_too(db, capsys, attack):
    store = open_store(db)
    head = store.verify().head_hash
    assert store.verify(anchor=(N, head)).ok
    assert store.verify(anchor=(10, rows(db)[9]["hash"])).ok  # an older anchor still holds
    bad = store.verify(anchor=(10, "a" * 64))
    assert not bad.ok
    assert "published head" in bad.reason
    proc = cli_verify(db, capsys, attack, "--anchor", f"{N}:{head}")
    assert proc.returncode == 0
    assert f"head {N}:{head}" in proc.stdout
    proc = cli_verify(db, capsys, attack, "--anchor", "twenty:abc")
    assert proc.returncode == 2
    assert "--anchor" in proc.stderr


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM sx_audit_head",
        "INSERT INTO sx_audit_head (id, sequence, hash, format_version) VALUES (2, 0, 'x', 1)",
    ],
)
def test_a_missing_or_second_head_row_is_named(db, sql):
    tamper(db, sql)
    result = open_store(db).verify()
    assert not result.ok
    assert "head" in result.reason


# -- crafted and corrupted files -----------------------------------------------------------------
def test_a_deeply_nested_body_is_named_not_a_recursion_error(db, capsys, attack):
    victim = rows(db)[4]
    tamper(
        db,
        "UPDATE sx_audit_records SET body = ? WHERE sequence = 5",
        ("[" * 100_000 + "]" * 100_000,),
    )
    store = open_store(db)
    result = store.verify()
    assert not result.ok
    assert result.first_bad_sequence == 5
    assert "nested" in result.reason
    with pytest.raises(TamperedRecordError, match=victim["record_id"]):
        store.get(victim["record_id"])
    assert_fails_verification(db, capsys, attack, victim["record_id"])
    proc = attack.cli(
        sxai_here(
            "replay",
            victim["record_id"],
            "--store",
            db.name,
            "--model",
            "m.onnx",
            "--background",
            "b.csv",
            cwd=db.parent,
            capsys=capsys,
        )
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr


def test_a_corrupted_page_fails_verification_with_exit_1(db, capsys, attack):
    data = bytearray(db.read_bytes())
    page = 4096
    data[2 * page : 3 * page] = b"\xa5" * page
    db.write_bytes(bytes(data))
    line = assert_fails_verification(db, capsys, attack)
    assert "damaged" in line or "fails verification" in line


@pytest.mark.parametrize("keep", [0.5, 0.1, 100 / 16384])
def test_a_truncated_store_fails_verification_with_exit_1(db, capsys, attack, keep):
    data = db.read_bytes()
    db.write_bytes(data[: int(len(data) * keep)])
    assert_fails_verification(db, capsys, attack)


def test_random_byte_corruptions_never_give_a_traceback(pristine, tmp_path, capsys, attack):
    """A bounded fuzz of the reader: 120 corrupted copies of a real store (fixed seed).

    Each is either still verified — then with the original head, so nothing was changed —
    or a failure named in one line with exit 1.
    """
    with open_store(pristine) as store:
        original = store.verify().head_hash
    data = pristine.read_bytes()
    rng = np.random.default_rng(20261204)
    outcomes = {0: 0, 1: 0}
    for case in range(120):
        corrupted = bytearray(data)
        kind = case % 3
        if kind == 0:  # a few single bytes
            for at in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
                corrupted[at] = int(rng.integers(0, 256))
        elif kind == 1:  # a run of bytes
            at = int(rng.integers(0, len(data) - 64))
            corrupted[at : at + 64] = rng.integers(0, 256, size=64, dtype=np.uint8).tobytes()
        else:  # bit flips in the record pages
            for at in rng.integers(4096, len(data), size=8):
                corrupted[at] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"case{case}.db"
        path.write_bytes(bytes(corrupted))
        proc = cli_verify(path, capsys, attack)
        assert proc.returncode in (0, 1), (case, proc.stderr)
        if proc.returncode == 0:
            assert f"{original}" in proc.stdout, (case, proc.stdout)
        else:
            assert len(proc.stderr.splitlines()) == 1, (case, proc.stderr)
        outcomes[proc.returncode] += 1
    assert outcomes[1] > 30  # the fuzz really hit records


def test_concurrent_writers_and_a_live_verifier_never_see_a_broken_chain(tmp_path):
    """Four writers append batches while a verifier walks the chain over and over: every
    verification passes, and the final chain holds every batch whole."""
    import threading

    from surrogate_xai.datasets import make_linear

    problem, _ = make_linear(n_samples=30, n_features=3, random_state=2)
    model = sx.FunctionModel(problem.predict, feature_names=problem.feature_names)
    explanation = sx.ExactSHAP().fit(model, problem.X.iloc[10:20]).explain(problem.X.iloc[:4])
    path = tmp_path / "shared.db"
    AuditStore(f"sqlite:///{path}").close()
    errors: list[BaseException] = []
    results = []
    writing = threading.Event()

    def writer(w: int) -> None:
        try:
            with AuditStore(f"sqlite:///{path}") as store:
                for b in range(5):
                    store.record(explanation, decision_ids=[f"w{w}b{b}r{i}" for i in range(4)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    def verifier() -> None:
        with AuditStore(f"sqlite:///{path}", create=False) as store:
            while writing.is_set():
                results.append(store.verify())

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    writing.set()
    checker = threading.Thread(target=verifier)
    checker.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    writing.clear()
    checker.join()
    assert not errors
    assert results
    assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
    with AuditStore(f"sqlite:///{path}", create=False) as store:
        final = store.verify()
        assert final.ok
        assert final.records == 4 * 5 * 4
