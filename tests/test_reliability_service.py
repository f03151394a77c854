"""Attacks on the running service: keys in query strings, and a store tampered with or damaged
under it. The service is ``sxai serve`` in a subprocess on 127.0.0.1."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.test_service import KEY, explain, request_rows, running_service, write_service_files

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_service_files(tmp_path_factory.mktemp("service"))


def wait_for(log: list[str], fragment: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(fragment in line for line in log):
            return
        time.sleep(0.05)


def test_a_key_in_the_query_string_never_reaches_the_log(files, attack):
    with running_service(files) as service, service.client(key=None) as client:
        refused = attack.http(client.get(f"/v1/model?api_key={KEY}&token={KEY}"))
        with service.client() as authorised:
            fine = attack.http(authorised.get(f"/v1/model?x={KEY}"))
        wait_for(service.log, '"GET /v1/model HTTP/1.1" 200')
        log = "".join(service.log)
    assert refused.status_code == 401
    assert fine.status_code == 200
    assert KEY not in log
    assert '- "GET /v1/model HTTP/1.1" 401' in log  # the request is still logged, path only
    assert '"GET /v1/model HTTP/1.1" 200' in log


def tamper(store: Path, sql: str, params: tuple = ()) -> None:
    with sqlite3.connect(store) as con:
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            con.execute(f"DROP TRIGGER {name}")
        con.execute(sql, params)


def test_a_tampered_or_damaged_store_is_named_never_a_500(files, tmp_path, attack):
    store = tmp_path / "audit.db"
    with running_service(files, store=store) as service, service.client() as client:
        body = explain(client, request_rows(3, seed=4), seed=1).json()
        ids = body["record_ids"]
        tamper(
            store,
            "UPDATE sx_audit_records SET body = ? WHERE record_id = ?",
            ("[" * 100_000 + "]" * 100_000, ids[1]),
        )
        nested = attack.http(client.get(f"/v1/explanations/{ids[1]}"))
        nested_replay = attack.http(client.post(f"/v1/explanations/{ids[1]}/replay"))
        neighbour = attack.http(client.get(f"/v1/explanations/{ids[0]}"))
        data = bytearray(store.read_bytes())
        for page in range(1, len(data) // 4096):
            data[page * 4096 + 100 : page * 4096 + 400] = b"\xa5" * 300
        store.write_bytes(bytes(data))
        damaged = attack.http(client.get(f"/v1/explanations/{ids[2]}"))
        health = attack.http(client.get("/healthz"))
    assert nested.status_code == 409, nested.text
    assert ids[1] in nested.json()["detail"]
    assert "nested" in nested.json()["detail"]
    assert nested_replay.status_code == 409
    # The record before it is untouched and still linked: it is served as before.
    assert neighbour.status_code == 200
    assert damaged.status_code == 409, damaged.text
    assert health.status_code == 200
