"""The audit store on real SQLite files: records, hash chain, tampering, replay, schema."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.audit import AuditStore, canonical_json, explanation_from_record, record_hash
from surrogate_xai.audit.record import GENESIS_HASH
from surrogate_xai.exceptions import (
    AuditError,
    RecordNotFoundError,
    ReplayRefusedError,
    TamperedRecordError,
)
from surrogate_xai.reasons import reason_codes

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "audit-record.schema.json").read_text())
N_DECISIONS = 50
CREDIT_CATALOGUE = {
    "name": "german-credit",
    "version": "2024-06",
    "reasons": [
        {
            "code": "R01",
            "text": "Status of existing checking account",
            "features": ["status_of_existing_checking_account"],
        },
        {
            "code": "R02",
            "text": "Loan amount or duration too high",
            "features": ["credit_amount", "duration_in_month"],
        },
        {"code": "R03", "text": "Credit history", "features": ["credit_history"]},
        {"code": "R04", "text": "Insufficient savings", "features": ["savings_account_and_bonds"]},
        {
            "code": "R07",
            "text": "Too many existing credits",
            "features": ["number_of_existing_credits_at_this_bank"],
        },
    ],
}


@pytest.fixture(scope="module")
def credit(credit_model):
    """50 German-credit decisions explained against a 60-row background, with reasons."""
    _, path, X = credit_model
    model = sx.ONNXModel(path)
    background = X.iloc[900:960]
    explainer = sx.KernelSHAP(max_evals=3_000, random_state=20240601).fit(model, background)
    explanation = explainer.explain(X.iloc[:N_DECISIONS])
    reasons = reason_codes(
        explanation,
        CREDIT_CATALOGUE,
        output="probabilities[good]",
        adverse="decrease",
        exclude=["personal_status_and_sex", "age_in_years", "foreign_worker"],
    )
    return model, background, explanation, reasons


def open_store(tmp_path: Path, name: str = "audit.db") -> tuple[AuditStore, Path]:
    path = tmp_path / name
    return AuditStore(f"sqlite:///{path}"), path


def decision_ids(n: int, prefix: str = "app") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def body_of(path: Path, record_id: str) -> dict:
    with sqlite3.connect(path) as con:
        (body,) = con.execute(
            "SELECT body FROM sx_audit_records WHERE record_id = ?", (record_id,)
        ).fetchone()
    return json.loads(body)


def drop_append_only_triggers(con: sqlite3.Connection) -> None:
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")


# -- the acceptance test -------------------------------------------------------------------------
def assert_edit_is_named(store, victim: str, model, background) -> None:
    """The 18th record was edited: verify stops there, and reading or replaying it refuses."""
    result = store.verify()
    assert not result.ok
    assert result.first_bad_record_id == victim
    assert result.first_bad_sequence == 18
    assert result.records == 17
    assert "does not match its hash" in result.reason
    with pytest.raises(TamperedRecordError, match=victim):
        store.get(victim)
    with pytest.raises(TamperedRecordError, match=victim):
        store.replay(victim, model, background)


@pytest.mark.reliability
def test_fifty_decisions_replay_bit_identically_and_tampering_is_named(credit, tmp_path):
    model, background, explanation, reasons = credit
    store, path = open_store(tmp_path)
    ids = store.record(explanation, reasons=reasons, decision_ids=decision_ids(N_DECISIONS))
    assert len(ids) == len(set(ids)) == N_DECISIONS == len(store)
    assert store.verify().ok

    for record_id in ids:
        result = store.replay(record_id, model, background)
        assert result.identical, (record_id, result.differences)
        assert result.max_abs_diff == 0.0

    # Edit one stored attribution directly in the SQLite file.
    victim = ids[17]
    record = body_of(path, victim)
    record["attributions"]["values"][4][1] += 0.01
    with sqlite3.connect(path) as con:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(
                "UPDATE sx_audit_records SET body = ? WHERE record_id = ?",
                (json.dumps(record), victim),
            )
        drop_append_only_triggers(con)  # what someone with write access to the file can do
        con.execute(
            "UPDATE sx_audit_records SET body = ? WHERE record_id = ?",
            (json.dumps(record), victim),
        )
    assert_edit_is_named(store, victim, model, background)
    store.close()


def test_record_layout_matches_the_published_schema(credit, tmp_path):
    _, _, explanation, reasons = credit
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    store, _ = open_store(tmp_path)
    ids = store.record(
        explanation,
        reasons=reasons,
        decision_ids=decision_ids(N_DECISIONS),
        outcomes=[{"decision": "declined", "threshold": 0.5}] * N_DECISIONS,
    )
    ids += store.record(explanation)  # no reasons, no decision ids
    for record_id in ids:
        validator.validate(store.get(record_id))
    record = store.get(ids[0])
    assert set(record) == set(SCHEMA["required"])
    assert record["model"]["sha256"] == record["model"]["identity"]
    assert record["model"]["format"] == "onnx"
    assert record["model"]["output"] == "probabilities"
    assert record["background"]["size"] == 60
    assert record["method"]["seed"] == "20240601"
    assert record["method"]["parameters"]["max_evals"] == 3_000
    assert record["reasons"]["catalogue"]["version"] == "2024-06"
    assert record["outcome"] == {"decision": "declined", "threshold": 0.5}
    assert record["prev_hash"] == GENESIS_HASH
    assert record["sequence"] == 1
    assert "python" in record["versions"]
    assert "onnxruntime" in record["versions"]
    broken = {**record, "extra_field": 1}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)
    without_hash = {k: v for k, v in record.items() if k != "hash"}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(without_hash)


def test_records_are_canonical_json_and_rebuild_the_explanation_row(credit, tmp_path):
    _, _, explanation, reasons = credit
    store, path = open_store(tmp_path)
    ids = store.record(explanation, reasons=reasons, decision_ids=decision_ids(N_DECISIONS))
    with sqlite3.connect(path) as con:
        bodies = [b for (b,) in con.execute("SELECT body FROM sx_audit_records ORDER BY sequence")]
    for raw in bodies:
        assert canonical_json(json.loads(raw)) == raw  # re-serialising gives the same bytes
        assert record_hash(json.loads(raw)) == json.loads(raw)["hash"]
    for row in (0, 31):
        rebuilt = explanation_from_record(store.get(ids[row]))
        assert rebuilt.values.tobytes() == explanation.values[row : row + 1].tobytes()
        assert rebuilt.stderr.tobytes() == explanation.stderr[row : row + 1].tobytes()
        assert rebuilt.base_values.tobytes() == explanation.base_values[row : row + 1].tobytes()
        pd.testing.assert_frame_equal(
            rebuilt.data, explanation.data.iloc[[row]].reset_index(drop=True)
        )
        assert rebuilt.provenance.seed == explanation.provenance.seed
        assert sx.Explanation.from_json(rebuilt.to_json()).values.tobytes() == (
            rebuilt.values.tobytes()
        )
        reason = store.get(ids[row])["reasons"]
        assert reason["reasons"] == [r.to_dict() for r in reasons[row].reasons]


def test_replay_refuses_another_model_or_background(credit, tmp_path):
    model, background, explanation, _ = credit
    store, _ = open_store(tmp_path)
    (first, *_) = store.record(explanation)
    impostor = sx.FunctionModel(
        lambda A: np.full((len(A), 2), 0.5),
        model.feature_names,
        model.output_names,
        identity="not-the-model",
    )
    with pytest.raises(ReplayRefusedError, match=f"record '{first}'.*not-the-model"):
        store.replay(first, impostor, background)
    with pytest.raises(ReplayRefusedError, match="background"):
        store.replay(first, model, background.iloc[:-1])
    with pytest.raises(RecordNotFoundError, match="no record 'nope'"):
        store.replay("nope", model, background)


def test_replay_reports_how_far_a_changed_model_moved_the_values(tmp_path, linear_problem):
    problem, _, _ = linear_problem
    names = problem.feature_names
    weights = np.arange(1.0, len(names) + 1)

    def make(scale: float) -> sx.FunctionModel:
        def fn(A):
            return np.asarray(A) @ (weights * scale)

        # Same identity on purpose: a callable has no bytes to hash, so only replay notices.
        return sx.FunctionModel(fn, names, identity="scorer-v1", input_type="array")

    background = problem.X.iloc[20:40]
    explanation = (
        sx.PermutationSHAP(max_evals=400, random_state=3)
        .fit(make(1.0), background)
        .explain(problem.X.iloc[:3])
    )
    store, _ = open_store(tmp_path)
    ids = store.record(explanation, decision_ids=decision_ids(3))
    assert store.replay(ids[1], make(1.0), background).identical
    moved = store.replay(ids[1], make(1.0 + 1e-9), background)
    assert not moved.identical
    assert 0 < moved.max_abs_diff < 1e-6
    assert set(moved.differences) >= {"values", "prediction"}


@pytest.mark.reliability
def test_missing_and_reordered_records_are_reported(credit, tmp_path):
    _, _, explanation, _ = credit
    store, path = open_store(tmp_path)
    ids = store.record(explanation, decision_ids=decision_ids(N_DECISIONS))
    with sqlite3.connect(path) as con:
        drop_append_only_triggers(con)
        con.execute("DELETE FROM sx_audit_records WHERE record_id = ?", (ids[9],))
    result = store.verify()
    assert not result.ok
    assert result.first_bad_sequence == 10
    assert result.first_bad_record_id == ids[10]
    assert "record 10 is missing" in result.reason

    store2, path2 = open_store(tmp_path, "tail.db")
    ids2 = store2.record(explanation)
    with sqlite3.connect(path2) as con:
        drop_append_only_triggers(con)
        con.execute("DELETE FROM sx_audit_records WHERE sequence > 47")
    result = store2.verify()
    assert not result.ok
    assert result.first_bad_sequence == 48
    assert result.first_bad_record_id is None
    assert "missing from the end" in result.reason
    assert result.head_hash == body_of(path2, ids2[46])["hash"]


@pytest.mark.reliability
def test_a_rehashed_edit_is_caught_by_the_next_record(credit, tmp_path):
    _, _, explanation, _ = credit
    store, path = open_store(tmp_path)
    ids = store.record(explanation, decision_ids=decision_ids(N_DECISIONS))
    record = body_of(path, ids[5])
    record["decision_id"] = "app-9999"
    record["hash"] = record_hash(record)  # a careful forger recomputes the record's own hash
    with sqlite3.connect(path) as con:
        drop_append_only_triggers(con)
        con.execute(
            "UPDATE sx_audit_records SET body = ?, hash = ?, decision_id = ? WHERE record_id = ?",
            (canonical_json(record), record["hash"], "app-9999", ids[5]),
        )
    result = store.verify()
    assert result.first_bad_record_id == ids[6]
    assert "prev_hash does not match the hash of record 6" in result.reason
    # Changing only a lookup column is caught too.
    store2, path2 = open_store(tmp_path, "columns.db")
    ids2 = store2.record(explanation, decision_ids=decision_ids(N_DECISIONS))
    with sqlite3.connect(path2) as con:
        drop_append_only_triggers(con)
        con.execute("UPDATE sx_audit_records SET decision_id = 'x' WHERE record_id = ?", (ids2[2],))
    result = store2.verify()
    assert result.first_bad_record_id == ids2[2]
    assert "decision_id column differs" in result.reason


@pytest.mark.reliability
def test_bad_batches_write_nothing(credit, constructed_other_explanation, tmp_path):
    _, _, explanation, reasons = credit
    store, _ = open_store(tmp_path)
    store.record(explanation)
    head = store.head()
    with pytest.raises(AuditError, match="decision_ids has 3 entries for 50"):
        store.record(explanation, decision_ids=["a", "b", "c"])
    shuffled = [reasons[1], reasons[0], *reasons[2:]]
    with pytest.raises(AuditError, match="reasons given for row 0"):
        store.record(explanation, reasons=shuffled)
    foreign = reason_codes(constructed_other_explanation)
    with pytest.raises(AuditError, match="reasons"):
        store.record(explanation, reasons=foreign)
    with pytest.raises(AuditError, match=r"outcomes\[0\] must be a dict"):
        store.record(explanation, outcomes=["declined"] * N_DECISIONS)
    assert store.head() == head
    assert len(store) == N_DECISIONS
    assert store.verify().ok


@pytest.fixture
def constructed_other_explanation(linear_problem):
    problem, _, model = linear_problem
    explainer = sx.ExactSHAP().fit(model, problem.X.iloc[10:30])
    return explainer.explain(problem.X.iloc[:N_DECISIONS])


@pytest.mark.reliability
def test_credentials_never_reach_the_store(tmp_path):
    httpx = pytest.importorskip("httpx")
    from surrogate_xai.adapters.http import HTTPModel

    token, password = "s3cret-T0ken-9f8e7d", "hunter2-pw-77"
    names = ["a", "b", "c"]

    def handler(request):
        rows = json.loads(request.content)["instances"]
        return httpx.Response(200, json={"predictions": [sum(r) for r in rows]})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        model = HTTPModel(
            f"https://scorer:{password}@models.example/predict?api_key={token}",
            names,
            client=client,
            headers={"Authorization": f"Bearer {token}", "X-Api-Key": token},
        )
        rng = np.random.default_rng(1)
        data = pd.DataFrame(rng.normal(size=(12, 3)), columns=names)
        explanation = sx.ExactSHAP().fit(model, data.iloc[4:]).explain(data.iloc[:4])
    store, path = open_store(tmp_path)
    store.record(explanation, decision_ids=decision_ids(4))
    store.close()
    raw = path.read_bytes()
    assert token.encode() not in raw
    assert password.encode() not in raw
    assert b"models.example" in raw  # the endpoint itself is recorded

    class Leaky(sx.FunctionModel):
        def describe(self):
            return {**super().describe(), "api_key": token}

    leaky = Leaky(lambda A: np.asarray(A).sum(axis=1), names, input_type="array")
    explanation = sx.ExactSHAP().fit(leaky, data.iloc[4:]).explain(data.iloc[:2])
    store = AuditStore(f"sqlite:///{path}")
    with pytest.raises(AuditError, match=r"model\.api_key"):
        store.record(explanation)
    assert len(store) == 4


@pytest.mark.reliability
def test_concurrent_writers_never_fork_the_chain(tmp_path, linear_problem):
    problem, _, model = linear_problem
    explanation = sx.ExactSHAP().fit(model, problem.X.iloc[10:30]).explain(problem.X.iloc[:5])
    path = tmp_path / "shared.db"
    AuditStore(f"sqlite:///{path}").close()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            with AuditStore(f"sqlite:///{path}") as store:
                for b in range(4):
                    store.record(explanation, decision_ids=decision_ids(5, f"w{w}b{b}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = AuditStore(f"sqlite:///{path}")
    assert len(store) == 4 * 4 * 5
    result = store.verify()
    assert result.ok
    assert result.records == 80
    # Each batch is contiguous in the chain: nothing interleaves inside a transaction.
    batches = [r["batch"] for r in store.records()]
    for start in range(0, 80, 5):
        assert [b["position"] for b in batches[start : start + 5]] == list(range(5))
        assert len({b["id"] for b in batches[start : start + 5]}) == 1


def test_lookups_reopen_and_url_without_password(tmp_path, linear_problem):
    problem, _, model = linear_problem
    explanation = sx.ExactSHAP().fit(model, problem.X.iloc[10:30]).explain(problem.X.iloc[:3])
    store, path = open_store(tmp_path)
    first = store.record(explanation, decision_ids=["d-1", "d-2", "d-1"])
    assert store.find("d-1") == [first[0], first[2]]
    assert store.find("unknown") == []
    store.close()
    reopened = AuditStore(f"sqlite:///{path}")
    second = reopened.record(explanation, decision_ids=["d-4", "d-5", "d-6"])
    assert reopened.head() == (6, reopened.get(second[-1])["hash"])
    assert reopened.get(second[0])["prev_hash"] == reopened.get(first[-1])["hash"]
    assert [r["record_id"] for r in reopened.records()] == first + second
    batch = reopened.get(second[1])["batch"]["id"]
    assert [r["record_id"] for r in reopened.records(batch_id=batch)] == second
    assert reopened.verify().ok
    assert repr(AuditStore("sqlite://")) == "AuditStore('sqlite://')"
    with pytest.raises(AuditError, match="not a database URL"):
        AuditStore("not a url")


def test_shap_backend_records_replay_with_their_batch(tmp_path):
    pytest.importorskip("shap")
    rng = np.random.default_rng(7)
    names = [f"x{j}" for j in range(5)]
    data = pd.DataFrame(rng.normal(size=(30, 5)), columns=names)

    def fn(A):
        A = np.asarray(A)
        return np.tanh(A[:, 0] * A[:, 1]) + A[:, 2] * A[:, 3] - A[:, 4]

    model = sx.FunctionModel(fn, names, identity="interactions", input_type="array")
    explanation = (
        sx.ShapKernel(nsamples=20, random_state=5).fit(model, data.iloc[10:20]).explain(data[:3])
    )
    store, _ = open_store(tmp_path)
    ids = store.record(explanation, reasons=reason_codes(explanation, adverse="increase"))
    record = store.get(ids[2])
    assert record["attributions"]["stderr"][0] == [None]
    jsonschema.Draft202012Validator(SCHEMA).validate(record)
    for record_id in ids:
        assert store.replay(record_id, model, data.iloc[10:20]).identical


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("foo://bar", "foo://bar"),
        ("http://x:1/", "http://x:1/"),
        ("sqlite://audit.db", "Invalid SQLite URL"),
        ("mysql://auditor:s3cr3t-pw@h/db", "mysql://auditor:***@h/db"),
        ("foo://auditor:s3cr3t-pw@h/db", "foo://auditor:***@h/db"),
    ],
)
def test_unusable_urls_are_audit_errors_without_the_password(tmp_path, url, fragment):
    with pytest.raises(AuditError) as info:
        AuditStore(url)
    message = str(info.value)
    assert fragment in message
    assert "s3cr3t-pw" not in message
    assert "\n" not in message


# -- caller-chosen record ids, and opening without creating ------------------------------------
def test_caller_chosen_record_ids_are_checked_and_used(tmp_path, constructed_other_explanation):
    import uuid

    exp = constructed_other_explanation
    n = len(exp)
    store, _ = open_store(tmp_path)
    with store:
        ids = [str(uuid.uuid4()) for _ in range(n)]
        assert store.record(exp, decision_ids=decision_ids(n), record_ids=ids) == ids
        assert [r["record_id"] for r in store.records()] == ids
        assert store.verify().ok
        upper = [str(uuid.uuid4()) for _ in range(n)]
        upper[3] = upper[3].upper()
        uuid1 = [str(uuid.uuid4()) for _ in range(n)]
        uuid1[5] = str(uuid.uuid1())
        twice = [str(uuid.uuid4()) for _ in range(n)]
        twice[7] = twice[2]
        taken = [str(uuid.uuid4()) for _ in range(n)]
        taken[-1] = ids[10]
        for bad, fragment in [
            (ids[:-1], f"{n - 1} entries for {n}"),
            ([*ids[:-1], 7], "must be a string"),
            (["not-a-uuid"] * n, "record_ids[0]"),
            (upper, "record_ids[3]"),
            (uuid1, "record_ids[5]"),
            (twice, "more than once"),
            (taken, f"{ids[10]} is already in the audit store"),
        ]:
            with pytest.raises(AuditError, match=fragment.replace("[", r"\[")):
                store.record(exp, decision_ids=decision_ids(n), record_ids=bad)
            assert len(store) == n  # nothing of the refused batch was written
        assert store.verify().ok


def test_create_false_opens_a_store_but_never_makes_one(tmp_path, constructed_other_explanation):
    missing = tmp_path / "missing.db"
    with pytest.raises(AuditError, match="no such file"):
        AuditStore(f"sqlite:///{missing}", create=False)
    assert not missing.exists()

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(AuditError, match="no audit store"):
        AuditStore(f"sqlite:///{empty}", create=False)
    assert empty.read_bytes() == b""

    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    before = other.read_bytes()
    with pytest.raises(AuditError, match="sx_audit_records"):
        AuditStore(f"sqlite:///{other}", create=False)
    assert other.read_bytes() == before

    store, path = open_store(tmp_path)
    with store:
        ids = store.record(constructed_other_explanation)
    with AuditStore(f"sqlite:///{path}", create=False) as reopened:
        assert [r["record_id"] for r in reopened.records()] == ids
        assert reopened.verify().ok
