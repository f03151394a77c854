"""``sxai explain --endpoint URL --protocol NAME``: a model server instead of an ONNX file, as an
auditor runs it: columns from the data file's header, outputs from --output-names or the first
answer, a token from a header file or the environment, budgets; every mistake one line, exit 2.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from tests.cli_runner import assert_user_error, sxai_here
from tests.http_servers import ModelServer, TemplateCodec, started

TOKEN = "tok-7Hq2-very-secret"
NAMES = ["income", "debt", "purpose"]
PURPOSES = {"car": 0.4, "education": -0.2, "vacation": -0.9}


def credit_score(frame: pd.DataFrame) -> np.ndarray:
    """Elementwise float64, so the server and the in-process model agree to the bit."""
    income = frame["income"].to_numpy(dtype=np.float64)
    debt = frame["debt"].to_numpy(dtype=np.float64)
    bonus = frame["purpose"].map(PURPOSES).to_numpy(dtype=np.float64)
    z = 0.3 * income - 0.5 * debt + bonus + 0.1 * income * debt
    return 0.5 + 0.5 * z / (1.0 + np.abs(z))


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(size=n).round(3),
            "debt": rng.normal(size=n).round(3),
            "purpose": rng.choice(list(PURPOSES), size=n),
        }
    )


@pytest.fixture
def serve() -> Iterator[Callable[..., ModelServer]]:
    yield from started(feature_names=NAMES, fn=credit_score, instance_format="object")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    data = frame(4, seed=1)
    data.insert(0, "application", [f"A-{i}" for i in range(len(data))])
    data.to_csv(tmp_path / "data.csv", index=False)
    frame(12, seed=2).to_csv(tmp_path / "background.csv", index=False)
    return tmp_path


def sxai(
    *args: object, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surrogate_xai.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def test_endpoint_run_explains_like_the_local_model_and_records_it(serve, files):
    server = serve(token=TOKEN)
    proc = sxai(
        "explain",
        "--endpoint", server.url,
        "--protocol", "json",
        "--protocol-option", "instance_format=object",
        "--data", "data.csv",
        "--background", "background.csv",
        "--id-column", "application",
        "--method", "exact",
        "--max-requests", "50",
        "--model-id", "credit-score v7",
        "--out", "results.jsonl",
        "--store", "audit.db",
        cwd=files,
        env={"SXAI_ENDPOINT_TOKEN": TOKEN},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "explained 4 rows with exact" in proc.stdout
    assert set(server.auth_seen) == {f"Bearer {TOKEN}"}
    assert server.requests <= 50

    # The same numbers as the function called in-process (the answers are exact floats).
    data = pd.read_csv(files / "data.csv").drop(columns="application")
    background = pd.read_csv(files / "background.csv")
    local = sx.FunctionModel(credit_score, NAMES, categories={"purpose": sorted(PURPOSES)})
    want = sx.ExactSHAP().fit(local, background).explain(data)
    lines = [json.loads(line) for line in (files / "results.jsonl").read_text().splitlines()]
    assert [line["decision_id"] for line in lines] == ["A-0", "A-1", "A-2", "A-3"]
    assert [line["output"] for line in lines] == ["output"] * 4  # counted from the first answer
    got = np.array([[line["attributions"][n] for n in NAMES] for line in lines])
    assert np.array_equal(got, want.values[:, :, 0])

    # The record names the server and the protocol, never the token.
    with sqlite3.connect(files / "audit.db") as con:
        bodies = [row[0] for row in con.execute("SELECT body FROM sx_audit_records")]
    assert len(bodies) == 4
    record = json.loads(bodies[0])
    assert record["model"]["identity"] == "credit-score v7"
    assert record["model"]["protocol"] == "json"
    assert record["model"]["outputs_inferred"] is True
    for text in (*bodies, proc.stdout, proc.stderr, (files / "results.jsonl").read_text()):
        assert TOKEN not in text


def test_header_file_template_protocol_and_output_names(serve, files, capsys):
    server = serve(codec=TemplateCodec(), token=TOKEN)
    (files / "headers.txt").write_text(
        f"# credentials of the audit\nAuthorization: Bearer {TOKEN}\n"
    )
    template = json.dumps({"model": "credit", "payload": {"rows": "$records"}, "version": 3})
    result = sxai_here(
        "explain", "--endpoint", server.url, "--protocol", "template",
        "--protocol-option", f"template={template}",
        "--protocol-option", "response=result.scores",
        "--output-names", "p_bad",
        "--header-file", "headers.txt",
        "--data", "data.csv", "--background", "background.csv", "--id-column", "application",
        "--method", "kernelshap", "--max-evals", "64", "--batch-rows", "20",
        "--out", "r.jsonl", "--quiet",
        cwd=files, capsys=capsys,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (files / "r.jsonl").read_text().splitlines()]
    assert {line["output"] for line in lines} == {"p_bad"}
    assert max(server.rows_per_request) <= 20
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["model.onnx"], ["give an ONNX MODEL or --endpoint URL, not both"]),
        (["--protocol", "grpc"], ["option 'protocol'", "must be one of json, kserve-v1"]),
        (["--protocol-option", "format"], ["--protocol-option 'format' is not KEY=VALUE"]),
        (["--protocol-option", "fromat=csv", "--protocol", "mlflow"], ["has no option 'fromat'"]),
        (["--max-requests", "1"], ["of max_requests=1 remain; nothing was sent"]),
        (["--output-names", "a,,b"], ["--output-names must be distinct"]),
        (["--header-file", "nope.txt"], ["--header-file: no such file: nope.txt"]),
        (["--timeout", "0"], ["option 'timeout'"]),
        (["--parity", "p.json"], ["--parity is evidence about an ONNX file"]),
    ],
)
def test_endpoint_mistakes_are_one_line(serve, files, capsys, extra, fragments):
    server = serve()
    args = ["explain", "--endpoint", server.url, "--data", "data.csv", "--background", "background.csv",
            "--id-column", "application", "--protocol-option", "instance_format=object",
            "--out", "results.jsonl", *extra]  # fmt: skip
    result = sxai_here(*args, cwd=files, capsys=capsys)
    assert_user_error(result, *fragments)
    assert not (files / "results.jsonl").exists()


def test_endpoint_options_without_an_endpoint_are_refused(files, capsys):
    result = sxai_here(
        "explain", "model.onnx", "--data", "data.csv", "--background", "background.csv",
        "--protocol", "oip-v2", cwd=files, capsys=capsys,
    )  # fmt: skip
    assert_user_error(result, "--protocol applies only with --endpoint URL")


def test_a_bad_header_line_is_named_but_not_shown(serve, files, capsys):
    server = serve()
    (files / "headers.txt").write_text(f"Authorization: Bearer {TOKEN}\nX-Key {TOKEN}\n")
    result = sxai_here(
        "explain", "--endpoint", server.url, "--header-file", "headers.txt",
        "--data", "data.csv", "--background", "background.csv", cwd=files, capsys=capsys,
    )  # fmt: skip
    assert_user_error(result, "headers.txt: line 2 is not 'Name: value'")
    assert TOKEN not in result.stderr
    assert server.requests == 0


def test_server_refusals_are_one_line_without_the_token(serve, files, capsys):
    server = serve(token="another-token")
    (files / "headers.txt").write_text(f"Authorization: Bearer {TOKEN}\n")
    result = sxai_here(
        "explain", "--endpoint", server.url, "--header-file", "headers.txt",
        "--data", "data.csv", "--background", "background.csv", "--id-column", "application",
        cwd=files, capsys=capsys,
    )  # fmt: skip
    assert_user_error(result, "HTTP 401", "not retried")
    assert TOKEN not in result.stderr
    server.close()
    result = sxai_here(
        "explain", "--endpoint", server.url, "--max-retries", "0",
        "--data", "data.csv", "--background", "background.csv", "--id-column", "application",
        cwd=files, capsys=capsys,
    )  # fmt: skip
    assert_user_error(result, "connection failed")
