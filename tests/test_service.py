"""The REST service, run for real: ``python -m surrogate_xai.cli serve`` in a subprocess on
127.0.0.1, a real ONNX file, a real SQLite store, spoken to over HTTP with httpx."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

KEY = "test-key-3f9a1c"
OTHER_KEY = "second-key-77b2"
COLUMNS = ["age", "income", "housing", "purpose"]
HOUSING = ["free", "own", "rent"]
PURPOSE = ["car", "education", "furniture", "repairs"]


# -- shared with tests/test_service_fuzz.py and benchmarks/service_load.py ----------------------
def applicants(n: int, seed: int) -> pd.DataFrame:
    """Synthetic applicants: two numeric and two categorical columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(19, 75, size=n),
            "income": np.round(rng.gamma(3.0, 900.0, size=n), 2),
            "housing": rng.choice(HOUSING, size=n),
            "purpose": rng.choice(PURPOSE, size=n),
        }
    )


def write_service_files(folder: Path, n_background: int = 48) -> dict[str, Path]:
    """A small credit-like classifier exported to ONNX, a background CSV and a catalogue.

    48 background rows: a size whose uniform weights are not a fixed point of ``w / w.sum()``
    (nor are 100), which once made replays differ in the last bit.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from surrogate_xai.adapters.sklearn import to_onnx

    X = applicants(400, seed=5)
    logit = (
        0.04 * (X["age"] - 40)
        + 0.0004 * (X["income"] - 2700)
        + X["housing"].map({"own": 0.8, "rent": -0.4, "free": 0.0})
        + X["purpose"].map({"car": -0.3, "education": 0.5, "furniture": 0.0, "repairs": -0.6})
    )
    y = (logit + np.random.default_rng(6).normal(scale=0.7, size=len(X)) > 0).astype(int)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), ["housing", "purpose"])],
                    remainder="passthrough",
                ),
            ),
            ("gbm", GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0)),
        ]
    ).fit(X, y)
    model = to_onnx(pipe, X.iloc[:200], output="probability")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": folder / "credit.onnx",
        "background": folder / "background.csv",
        "catalogue": folder / "reasons.yaml",
    }
    paths["model"].write_bytes(model.model_bytes)
    X.iloc[200 : 200 + n_background].to_csv(paths["background"], index=False)
    paths["catalogue"].write_text(
        "name: service-test\nversion: '1'\nreasons:\n"
        "  - {code: A1, text: Age, features: [age]}\n"
        "  - {code: I1, text: Income too low, features: [income]}\n"
        "  - {code: H1, text: Housing situation, features: [housing]}\n"
        "  - {code: P1, text: Purpose of the loan, features: [purpose]}\n"
    )
    return paths


def request_rows(n: int, seed: int = 9) -> list[dict[str, Any]]:
    """``n`` applicants as JSON rows (plain Python values)."""
    return json.loads(applicants(n, seed).to_json(orient="records"))


@dataclass
class Service:
    """A running ``sxai serve`` subprocess."""

    process: subprocess.Popen[str]
    url: str
    log: list[str]

    def client(self, key: str | None = KEY, timeout: float = 60.0) -> httpx.Client:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@contextmanager
def running_service(
    files: dict[str, Path | None],
    *extra: str,
    store: Path | None = None,
    keys: Sequence[str] = (KEY, OTHER_KEY),
    env: dict[str, str] | None = None,
) -> Iterator[Service]:
    """Start ``python -m surrogate_xai.cli serve`` on a free port of 127.0.0.1 and stop it."""
    args = [
        sys.executable,
        "-m",
        "surrogate_xai.cli",
        "serve",
        str(files["model"]),
        "--background",
        str(files["background"]),
        *(["--catalogue", str(files["catalogue"])] if files.get("catalogue") else []),
        "--port",
        "0",
        *(["--store", f"sqlite:///{store}"] if store is not None else []),
        *extra,
    ]
    environ = {**os.environ, "SXAI_API_KEYS": ",".join(keys), **(env or {})}
    process = subprocess.Popen(
        args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=environ
    )
    log: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            hit = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
            if hit:
                found.append(hit.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not ready.wait(60) or not found:
            raise RuntimeError("the service did not start:\n" + "".join(log))
        yield Service(process, found[0], log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(10)
        assert process.stderr is not None
        process.stderr.close()


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_service_files(tmp_path_factory.mktemp("service"))


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "audit.db"


@pytest.fixture(scope="module")
def service(files, store_path) -> Iterator[Service]:
    with running_service(
        files, "--max-rows", "50", "--max-body-bytes", "20000", store=store_path
    ) as svc:
        yield svc


def explain(client: httpx.Client, rows: list[dict[str, Any]], **fields: Any) -> httpx.Response:
    return client.post("/v1/explanations", json={"rows": rows, **fields})


def count_records(path: Path) -> int:
    with sqlite3.connect(path) as con:
        return int(con.execute("SELECT count(*) FROM sx_audit_records").fetchone()[0])


# -- the happy path -----------------------------------------------------------------------------
def test_explanations_add_up_repeat_and_are_recorded(service, store_path):
    rows = request_rows(5)
    with service.client() as client:
        first = explain(client, rows, seed=11, n_reasons=2)
        assert first.status_code == 200, first.text
        body = first.json()
        again = explain(client, rows, seed=11, n_reasons=2).json()
        other_seed = explain(client, rows, seed=12, n_reasons=2, method="permutation").json()
    assert body["feature_names"] == COLUMNS
    assert body["output_names"] == ["probabilities[0]", "probabilities[1]"]
    assert len(body["explanations"]) == 5
    for row in body["explanations"]:
        values = np.array(row["values"])
        assert values.shape == (4, 2)
        total = values.sum(axis=0)
        expected = np.array(row["prediction"]) - np.array(row["base_values"])
        np.testing.assert_allclose(total, expected, atol=1e-6)
        assert max(row["efficiency_gap"]) < 1e-6
        # Adverse = a lower probabilities[0]: the reasons are the (at most 2) negative codes.
        assert len(row["reasons"]["reasons"]) == min(2, int(np.sum(values[:, 0] < 0)))
        for reason in row["reasons"]["reasons"]:
            assert reason["code"] in {"A1", "I1", "H1", "P1"}
    # Same seed, same JSON, to the byte (the record ids differ: they are new records).
    assert json.dumps(body["explanations"]) == json.dumps(again["explanations"])
    assert body["record_ids"] != again["record_ids"]
    assert other_seed["method"] == "permutation"
    assert other_seed["seed"] == 12
    assert count_records(store_path) >= 15


def test_predictions_match_onnxruntime_directly(service, files):
    import surrogate_xai as sx

    rows = request_rows(3, seed=21)
    with service.client() as client:
        body = explain(client, rows).json()
    model = sx.ONNXModel(files["model"])
    direct = model.predict(pd.DataFrame(rows)[COLUMNS])
    got = np.array([r["prediction"] for r in body["explanations"]])
    np.testing.assert_array_equal(got, direct)


def test_model_endpoint_describes_columns_outputs_and_limits(service, files):
    import hashlib

    with service.client() as client:
        info = client.get("/v1/model").json()
    assert info["identity"] == hashlib.sha256(files["model"].read_bytes()).hexdigest()
    assert info["feature_names"] == COLUMNS
    assert info["feature_kinds"] == {
        "age": "numeric",
        "income": "numeric",
        "housing": "categorical",
        "purpose": "categorical",
    }
    assert info["known_categories"]["housing"] == HOUSING
    assert info["limits"] == {"max_rows": 50, "max_body_bytes": 20000, "max_evals": 20000}
    assert info["store"] is True
    assert info["catalogue"]["version"] == "1"


def test_stored_record_is_served_and_replays_identically(service):
    rows = request_rows(2, seed=3)
    with service.client() as client:
        body = explain(client, rows, seed=5, decision_ids=["app-1", "app-2"]).json()
        rid = body["record_ids"][1]
        record = client.get(f"/v1/explanations/{rid}")
        assert record.status_code == 200
        replay = client.post(f"/v1/explanations/{rid}/replay")
        missing = client.get("/v1/explanations/00000000-0000-0000-0000-000000000000")
        malformed = client.get("/v1/explanations/not-a-uuid")
    rec = record.json()
    assert rec["record_id"] == rid
    assert rec["decision_id"] == "app-2"
    assert rec["attributions"]["values"] == body["explanations"][1]["values"]
    assert replay.status_code == 200, replay.text
    assert replay.json()["identical"] is True
    assert replay.json()["max_abs_diff"] == 0.0
    assert missing.status_code == 404
    assert "00000000" in missing.json()["detail"]
    assert malformed.status_code == 422


def test_a_service_record_replays_offline_with_the_cli(service, files, store_path):
    # Regeneration must not need the service: the same model file and background CSV give
    # the recorded numbers bit for bit through `sxai replay`.
    with service.client() as client:
        rid = explain(client, request_rows(1, seed=8), seed=2).json()["record_ids"][0]
    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "surrogate_xai.cli",
            "replay",
            rid,
            "--store",
            f"sqlite:///{store_path}",
            "--model",
            str(files["model"]),
            "--background",
            str(files["background"]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    assert "bit for bit" in replay.stdout


def test_openapi_is_served_and_docs_pages_need_no_cdn(service):
    with service.client(key=None) as client:
        schema = client.get("/openapi.json")
        docs = client.get("/docs")
        health = client.get("/healthz")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/v1/explanations", "/v1/model", "/healthz"} <= set(paths)
    assert "/v1/explanations/{record_id}/replay" in paths
    assert "bearer" in json.dumps(schema.json()["components"]["securitySchemes"]).lower()
    # The interactive pages load scripts from a CDN, so they are off.
    assert docs.status_code == 404
    assert health.json()["status"] == "ok"


# -- refusals -----------------------------------------------------------------------------------
def test_missing_or_wrong_key_is_401_and_never_echoed(service):
    rows = request_rows(1)
    with service.client(key=None) as anonymous:
        missing = explain(anonymous, rows)
        model = anonymous.get("/v1/model")
    with service.client(key="wrong-key-0000") as wrong:
        bad = explain(wrong, rows)
    with service.client(key=OTHER_KEY) as second:
        ok = second.get("/v1/model")
    for answer in (missing, model, bad):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
    assert "wrong-key-0000" not in bad.text
    assert ok.status_code == 200
    assert not any(KEY in line or "wrong-key-0000" in line for line in service.log)


def test_too_many_rows_and_too_large_bodies_are_413(service):
    with service.client() as client:
        rows = explain(client, request_rows(51))
        padded = request_rows(1)
        padded[0]["housing"] = "x" * 30_000  # over --max-body-bytes 20000
        declared = explain(client, padded)

        def chunks() -> Iterator[bytes]:
            # No Content-Length: the body is counted as it streams in.
            text = json.dumps({"rows": padded}).encode()
            for start in range(0, len(text), 4096):
                yield text[start : start + 4096]

    with service.client() as client:
        streamed = client.post(
            "/v1/explanations", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert rows.status_code == 413
    assert "51 rows" in rows.json()["detail"]
    assert declared.status_code == 413
    assert "20,000 bytes" in declared.json()["detail"]
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("change", "loc", "needle"),
    [
        ({"drop": "income"}, ["body", "rows", 1, "income"], "missing column"),
        ({"set": ("salary", 10)}, ["body", "rows", 1, "salary"], "unknown column"),
        ({"set": ("housing", "castle")}, ["body", "rows", 1, "housing"], "unknown category"),
        ({"set": ("age", "forty")}, ["body", "rows", 1, "age"], "expected a number"),
        ({"set": ("age", None)}, ["body", "rows", 1, "age"], "missing value"),
        ({"set": ("housing", 3)}, ["body", "rows", 1, "housing"], "expected a category"),
    ],
)
def test_bad_cells_are_422_naming_row_and_column(service, change, loc, needle):
    rows = request_rows(3)
    if "drop" in change:
        del rows[1][change["drop"]]
    else:
        column, value = change["set"]
        rows[1][column] = value
    with service.client() as client:
        answer = explain(client, rows)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail[0]["loc"] == loc
    assert needle in detail[0]["msg"]


def test_nan_and_infinity_are_422_naming_the_field(service):
    rows = request_rows(2)
    body = json.dumps({"rows": rows}).replace(str(rows[1]["income"]), "NaN", 1)
    body = body.replace(f'"age": {rows[0]["age"]}', '"age": Infinity', 1)
    with service.client() as client:
        answer = client.post(
            "/v1/explanations", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 422, answer.text
    locs = {tuple(e["loc"]): e["msg"] for e in answer.json()["detail"]}
    assert "NaN" in locs[("body", "rows", 1, "income")]
    assert "inf" in locs[("body", "rows", 0, "age")]


def test_every_bad_field_is_listed_and_budget_is_capped(service):
    rows = request_rows(2)
    rows[0]["purpose"] = "holiday"
    del rows[1]["age"]
    with service.client() as client:
        cells = explain(client, rows).json()["detail"]
        budget = explain(client, request_rows(1), max_evals=20001)
        typed = explain(client, request_rows(1), seed=-1, n_reasons=0, method="lime")
        empty = explain(client, [])
    assert [e["loc"] for e in cells] == [["body", "rows", 0, "purpose"], ["body", "rows", 1, "age"]]
    assert budget.status_code == 422
    assert budget.json()["detail"][0]["loc"] == ["body", "max_evals"]
    assert typed.status_code == 422
    assert {tuple(e["loc"]) for e in typed.json()["detail"]} == {
        ("body", "seed"),
        ("body", "n_reasons"),
        ("body", "method"),
    }
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["body", "rows"]


def test_refusals_write_no_record(service, store_path):
    before = count_records(store_path)
    rows = request_rows(4)
    rows[3]["housing"] = "castle"
    with service.client() as client:
        assert explain(client, rows).status_code == 422
        assert explain(client, request_rows(51)).status_code == 413
    assert count_records(store_path) == before


# -- concurrency --------------------------------------------------------------------------------
def test_healthz_answers_while_a_slow_batch_runs(files, tmp_path):
    with running_service(files, "--max-evals", "400000", "--workers", "1") as svc:
        slow: dict[str, Any] = {}

        def run_slow() -> None:
            with svc.client(timeout=300) as client:
                started = time.perf_counter()
                slow["answer"] = explain(
                    client, request_rows(12), method="permutation", max_evals=400000
                )
                slow["seconds"] = time.perf_counter() - started

        worker = threading.Thread(target=run_slow)
        worker.start()
        latencies = []
        busy_seen = False
        with svc.client(key=None, timeout=10) as client:
            while worker.is_alive():
                started = time.perf_counter()
                health = client.get("/healthz")
                latencies.append(time.perf_counter() - started)
                assert health.status_code == 200
                busy_seen |= health.json()["in_flight"] > 0
                time.sleep(0.05)
        worker.join()
    assert slow["answer"].status_code == 200, slow["answer"].text
    # The batch ran long enough to be observed, and health checks were not queued behind it.
    assert busy_seen
    assert len(latencies) >= 5
    assert max(latencies) < min(1.0, slow["seconds"] / 2)


def test_concurrent_requests_lose_no_record(files, tmp_path):
    store = tmp_path / "load.db"
    with running_service(files, "--workers", "2", store=store) as svc:

        async def fire() -> list[httpx.Response]:
            limit = asyncio.Semaphore(8)
            async with httpx.AsyncClient(
                base_url=svc.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120
            ) as client:

                async def one(i: int) -> httpx.Response:
                    async with limit:
                        return await client.post(
                            "/v1/explanations",
                            json={"rows": request_rows(1, seed=100 + i), "seed": i},
                        )

                return await asyncio.gather(*(one(i) for i in range(40)))

        answers = asyncio.run(fire())
    assert [a.status_code for a in answers] == [200] * 40
    ids = [a.json()["record_ids"][0] for a in answers]
    assert len(set(ids)) == 40
    assert count_records(store) == 40

    import surrogate_xai as sx

    with sx.AuditStore(f"sqlite:///{store}") as audit:
        assert audit.verify().ok
        assert len(audit) == 40


# -- start-up errors ----------------------------------------------------------------------------
def run_serve(files: dict[str, Path], *extra: str, keys: str = "") -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "surrogate_xai.cli", "serve", str(files["model"])]
    return subprocess.run(
        [*args, "--background", str(files["background"]), "--port", "0", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SXAI_API_KEYS": keys},
    )


def test_serve_refuses_to_start_without_keys_or_with_bad_inputs(files, tmp_path):
    no_keys = run_serve(files)
    assert no_keys.returncode == 2
    assert no_keys.stderr.startswith("error: ")
    assert "--no-auth" in no_keys.stderr
    assert no_keys.stderr.count("\n") == 1

    bad_background = tmp_path / "bg.csv"
    pd.DataFrame({"age": [30], "income": [1.0], "housing": ["own"]}).to_csv(bad_background)
    missing = run_serve({**files, "background": bad_background}, keys=KEY)
    assert missing.returncode == 2
    assert "'purpose'" in missing.stderr
    assert missing.stderr.count("\n") == 1

    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("not a model")
    broken = run_serve({**files, "model": not_onnx}, keys=KEY)
    assert broken.returncode == 2
    assert "not an ONNX model" in broken.stderr

    key_file = tmp_path / "keys.txt"
    key_file.write_text("# service keys\nfile-key-123\n")
    bad_method = run_serve(files, "--api-key-file", str(key_file), "--method", "lime")
    assert bad_method.returncode == 2
    assert "method" in bad_method.stderr
    assert "file-key-123" not in bad_method.stderr


def assert_one_line_start_up_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr)


def test_a_key_file_that_is_not_utf8_is_a_one_line_error(files, tmp_path):
    key_file = tmp_path / "keys.bin"
    key_file.write_bytes(b"secret-\xff\xfe-key\n")
    proc = run_serve(files, "--api-key-file", str(key_file))
    assert_one_line_start_up_error(proc, "keys.bin", "not UTF-8")
    assert "secret" not in proc.stderr


def test_a_port_in_use_or_an_unknown_host_is_a_one_line_error(files):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        in_use = run_serve(files, "--port", str(port), "--no-auth")
    assert_one_line_start_up_error(in_use, f"127.0.0.1:{port}", "in use")
    unknown = run_serve(files, "--host", "no-such-host.invalid", "--no-auth")
    assert_one_line_start_up_error(unknown, "no-such-host.invalid", "cannot be resolved")


def test_no_auth_and_key_file(files, tmp_path):
    key_file = tmp_path / "keys.txt"
    key_file.write_text("file-key-123, file-key-456\n")
    with (
        running_service(files, "--no-auth", keys=()) as open_service,
        open_service.client(key=None) as client,
    ):
        assert client.get("/v1/model").status_code == 200
        schema = client.get("/openapi.json").json()
    assert "securitySchemes" not in schema.get("components", {})
    with running_service(files, "--api-key-file", str(key_file), keys=()) as keyed:
        with keyed.client(key="file-key-456") as client:
            assert client.get("/v1/model").status_code == 200
        with keyed.client(key=None) as client:
            assert client.get("/v1/model").status_code == 401


def test_reason_contributions_are_the_attributions(service):
    rows = request_rows(4, seed=17)
    with service.client() as client:
        body = explain(client, rows, adverse="increase", output="probabilities[0]").json()
    for row in body["explanations"]:
        reasons = row["reasons"]
        assert reasons["output"] == "probabilities[0]"
        assert reasons["adverse"] == "increase"
        by_feature = dict(zip(body["feature_names"], np.array(row["values"])[:, 0], strict=True))
        for reason in reasons["reasons"]:
            (feature,) = reason["features"]
            assert math.isclose(reason["contribution"], by_feature[feature], rel_tol=0, abs_tol=0)
            assert reason["contribution"] > 0


def test_protected_attributes_are_never_reasons(service):
    rows = request_rows(6, seed=4)
    with service.client() as client:
        plain = explain(client, rows, n_reasons=4).json()
        guarded = explain(client, rows, n_reasons=4, exclude=["age"]).json()
        unknown = explain(client, rows, exclude=["gender"])
    assert any(
        "A1" in [r["code"] for r in row["reasons"]["reasons"]] for row in plain["explanations"]
    )
    for row in guarded["explanations"]:
        assert "A1" not in [r["code"] for r in row["reasons"]["reasons"]]
        assert row["reasons"]["excluded"] == ["age"]
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "exclude", 0]


# -- client mistakes are 4xx, never 5xx ------------------------------------------------------------
def post_raw(client: httpx.Client, body: bytes | str) -> httpx.Response:
    """POST a body exactly as given (so it may hold escapes json.dumps would never write)."""
    content = body.encode() if isinstance(body, str) else body
    return client.post(
        "/v1/explanations", content=content, headers={"Content-Type": "application/json"}
    )


def raw_body(rows: list[dict[str, Any]], **fields: Any) -> str:
    """The JSON text of a request; ``"@SURROGATE@"`` becomes a raw ``\\ud800`` escape."""
    return json.dumps({"rows": rows, **fields}).replace("@SURROGATE@", "\\ud800")


def locs(answer: httpx.Response) -> dict[tuple[Any, ...], dict[str, Any]]:
    assert answer.status_code == 422, answer.text
    return {tuple(e["loc"]): e for e in answer.json()["detail"]}


@pytest.mark.parametrize(
    ("where", "loc"),
    [
        ("key", ["body", "rows", 0, "\\ud800"]),
        ("category", ["body", "rows", 0, "housing"]),
        ("number", ["body", "rows", 0, "age"]),
        ("exclude", ["body", "exclude", 0]),
        ("output", ["body", "output"]),
        ("decision_id", ["body", "decision_ids", 1]),
    ],
)
def test_lone_surrogates_anywhere_are_422_naming_the_field(service, store_path, where, loc):
    before = count_records(store_path)
    rows = request_rows(2)
    fields: dict[str, Any] = {}
    if where == "key":
        rows[0]["@SURROGATE@"] = 1
    elif where in ("category", "number"):
        rows[0]["housing" if where == "category" else "age"] = "a@SURROGATE@"
    elif where == "exclude":
        fields["exclude"] = ["@SURROGATE@"]
    elif where == "output":
        fields["output"] = "@SURROGATE@"
    else:
        fields["decision_ids"] = ["ok", "@SURROGATE@"]
    with service.client() as client:
        answer = post_raw(client, raw_body(rows, **fields))
    # The answer is valid UTF-8 JSON, and names the field (its name escaped where needed).
    found = locs(answer)
    assert tuple(loc) in found, found
    assert "\\ud800" in found[tuple(loc)]["msg"] or where == "number"
    assert count_records(store_path) == before


def test_nul_characters_are_422_naming_the_field(service, store_path):
    before = count_records(store_path)
    rows = request_rows(2)
    rows[1]["purpose"] = "car\x00"
    rows[0]["job\x00"] = "x"
    with service.client() as client:
        cells = locs(explain(client, rows))
        ids = explain(client, request_rows(2), decision_ids=["a\x00b", "c"])
    assert ("body", "rows", 1, "purpose") in cells
    assert ("body", "rows", 0, "job\x00") in cells
    # Once a 503 ("the audit store failed"), raised after the whole explanation ran.
    assert locs(ids)[("body", "decision_ids", 0)]["type"] == "invalid_text"
    assert "NUL" in locs(ids)[("body", "decision_ids", 0)]["msg"]
    assert count_records(store_path) == before


def test_decision_ids_are_checked_before_explaining_and_duplicates_refused(service, store_path):
    before = count_records(store_path)
    rows = request_rows(3)
    rows[2]["housing"] = "castle"
    with service.client() as client:
        # Every problem at once: the ids are checked alongside the cells, before any model
        # row is evaluated (an unknown category cannot be explained at all).
        both = locs(explain(client, rows, decision_ids=["a", "b", "a"]))
        duplicate = locs(explain(client, request_rows(3), decision_ids=["a", "b", "a"]))
        distinct = explain(client, request_rows(3), decision_ids=["a", "b", "A"])
    assert set(both) == {("body", "rows", 2, "housing"), ("body", "decision_ids", 2)}
    error = duplicate[("body", "decision_ids", 2)]
    assert error["type"] == "duplicate"
    assert "'a'" in error["msg"]
    assert "0" in error["msg"]
    assert distinct.status_code == 200
    assert count_records(store_path) == before + 3


def test_float32_overflow_is_422_naming_row_and_column(service):
    rows = request_rows(3)
    body = json.dumps({"rows": rows})
    body = body.replace(f'"income": {rows[2]["income"]}', '"income": 1e308', 1)
    body = body.replace(f'"age": {rows[1]["age"]}', '"age": -3.5e38', 1)
    with service.client() as client:
        found = locs(post_raw(client, body))
    assert found[("body", "rows", 2, "income")]["type"] == "number_range"
    assert "float32" in found[("body", "rows", 2, "income")]["msg"]
    assert ("body", "rows", 1, "age") in found


@pytest.mark.parametrize("method", ["kernelshap", "permutation"])
def test_max_evals_below_one_block_is_422_on_max_evals(service, method):
    with service.client() as client:
        answer = explain(client, request_rows(1), method=method, max_evals=5)
    found = locs(answer)
    assert list(found) == [("body", "max_evals")]
    assert "too small" in found[("body", "max_evals")]["msg"]


# -- authentication comes first -------------------------------------------------------------------
def test_unauthenticated_requests_get_401_before_any_body_work(service):
    big = b'{"rows": [' + b" " * 30_000 + b"]}"  # over --max-body-bytes 20000
    with service.client(key=None) as anonymous:
        declared = anonymous.post(
            "/v1/explanations", content=big, headers={"Content-Type": "application/json"}
        )
        garbage = anonymous.post(
            "/v1/explanations", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    with service.client(key="wrong-key-0000") as wrong:
        streamed = wrong.post(
            "/v1/explanations",
            content=iter([big[:10_000], big[10_000:]]),
            headers={"Content-Type": "application/json"},
        )
    for answer in (declared, garbage, streamed):
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
    with service.client() as client:
        assert post_raw(client, big).status_code == 413
        assert post_raw(client, b"{not json").status_code == 422


def test_401_is_sent_without_waiting_for_the_body(service):
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(service.url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        # A body is announced but never sent: a server that reads the body before checking
        # the key would wait for it (and this read would time out).
        sock.sendall(
            b"POST /v1/explanations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n"
        )
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 401"), reply


# -- threshold and outcome ------------------------------------------------------------------------
def test_threshold_records_the_decision_by_the_shared_rule(service):
    from surrogate_xai.reasons import adverse_mask

    rows = request_rows(4, seed=31)
    with service.client() as client:
        plain = explain(client, rows, output="probabilities[1]")
        assert plain.status_code == 200, plain.text
        scores = [r["prediction"][1] for r in plain.json()["explanations"]]
        # A threshold exactly on row 0's score: "decrease" declines it (score <= threshold),
        # "increase" approves it (declined only when score > threshold).
        threshold = scores[0]
        answers = {
            adverse: explain(
                client,
                rows,
                output="probabilities[1]",
                adverse=adverse,
                threshold=threshold,
                decision_ids=[f"t-{adverse}-{i}" for i in range(4)],
            )
            for adverse in ("decrease", "increase")
        }
        records = {
            adverse: [
                client.get(f"/v1/explanations/{rid}").json() for rid in a.json()["record_ids"]
            ]
            for adverse, a in answers.items()
        }
        no_threshold = client.get(f"/v1/explanations/{plain.json()['record_ids'][0]}").json()
    for adverse, answer in answers.items():
        body = answer.json()
        assert body["threshold"] == threshold
        declined = adverse_mask(np.array(scores), threshold, adverse)  # type: ignore[arg-type]
        expected = ["declined" if d else "approved" for d in declined]
        assert [r["decision"] for r in body["explanations"]] == expected
        assert [r["outcome"] for r in records[adverse]] == [
            {
                "decision": d,
                "adverse": d == "declined",
                "threshold": threshold,
                "output": "probabilities[1]",
            }
            for d in expected
        ]
    assert answers["decrease"].json()["explanations"][0]["decision"] == "declined"
    assert answers["increase"].json()["explanations"][0]["decision"] == "approved"
    assert plain.json()["threshold"] is None
    assert plain.json()["explanations"][0]["decision"] is None
    assert no_threshold["outcome"] is None


def test_threshold_must_be_a_finite_number(service):
    rows = request_rows(1)
    with service.client() as client:
        text = locs(explain(client, rows, threshold="0.5"))
        nan = locs(post_raw(client, json.dumps({"rows": rows, "threshold": float("nan")})))
        inf = locs(post_raw(client, json.dumps({"rows": rows, "threshold": float("inf")})))
        boolean = locs(explain(client, rows, threshold=True))
    for found in (text, nan, inf, boolean):
        assert [loc[:2] for loc in found] == [("body", "threshold")]


# -- start-up ---------------------------------------------------------------------------------------
def test_serve_refuses_a_catalogue_naming_unknown_features(files, tmp_path):
    catalogue = tmp_path / "typo.yaml"
    catalogue.write_text(
        "name: typo\nversion: '1'\nreasons:\n"
        "  - {code: A1, text: Age, features: [age]}\n"
        "  - {code: P1, text: Purpose, features: [purpos]}\n"
    )
    refused = run_serve(files, "--catalogue", str(catalogue), keys=KEY)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: ")
    assert refused.stderr.count("\n") == 1
    assert "'purpos'" in refused.stderr
    assert "purpose" in refused.stderr.replace("'purpos'", "")


def test_every_problem_is_listed_at_once_with_the_budget(service):
    rows = request_rows(2)
    rows[1]["housing"] = "castle"
    with service.client() as client:
        found = locs(explain(client, rows, max_evals=5, decision_ids=["x", "x"]))
    assert set(found) == {
        ("body", "max_evals"),
        ("body", "decision_ids", 1),
        ("body", "rows", 1, "housing"),
    }


def test_a_single_tensor_model_takes_its_column_names_from_the_background(gbm_regressor, tmp_path):
    # The graph has one float tensor and no column names: the background's header names the
    # columns (as for `sxai explain`), and requests must use those names.
    _, path, X = gbm_regressor
    names = [f"f_{c}" for c in X.columns]
    background = tmp_path / "background.csv"
    X.iloc[:20].set_axis(names, axis=1).to_csv(background, index=False)
    files = {"model": path, "background": background, "catalogue": None}
    with running_service(files, "--max-evals", "2000") as svc, svc.client() as c:
        assert c.get("/v1/model").json()["feature_names"] == names
        row = dict(zip(names, X.iloc[30].tolist(), strict=True))
        answer = c.post("/v1/explanations", json={"rows": [row], "seed": 1})
        assert answer.status_code == 200, answer.text
        default = dict(zip(X.columns, X.iloc[30].tolist(), strict=True))
        refused = c.post("/v1/explanations", json={"rows": [default], "seed": 1})
        assert refused.status_code == 422
        assert "x0" in refused.text
