"""The ``sxai`` command line end to end: real subprocesses, a real ONNX file, CSVs, SQLite."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx

N_ROWS = 6
CATALOGUE = """\
name: tiny-credit
version: "1"
reasons:
  - code: R01
    text: Income too low
    features: [income]
  - code: R02
    text: Purpose of the loan
    features: [purpose]
  - code: R03
    text: Housing situation
    features: [housing]
"""


def sxai(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m surrogate_xai.cli`` as a user would (stdout/stderr are not terminals)."""
    return subprocess.run(
        [sys.executable, "-m", "surrogate_xai.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def sxai_here(*args: object, cwd: Path, capsys: pytest.CaptureFixture[str]) -> Result:
    """The same entry point in this process (for the many small error cases: no start-up)."""
    import os

    from surrogate_xai.cli import main

    before = Path.cwd()
    os.chdir(cwd)
    try:
        code = main([str(a) for a in args])
    finally:
        os.chdir(before)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def assert_user_error(proc: Result | subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, exactly one line on stderr, ``error: ...``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small credit-like model (numbers + categories) exported to ONNX, and its CSVs."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from surrogate_xai.adapters.sklearn import to_onnx

    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(3.0, 1.0, n).round(3),
            "purpose": rng.choice(["car", "house", "education"], n).astype(object),
            "housing": rng.choice(["own", "rent"], n).astype(object),
        }
    )
    logit = 1.2 * X["income"] - 3.0 + (X["purpose"] == "house") - 0.8 * (X["housing"] == "rent")
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "good", "bad")
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("t", OneHotEncoder(), ["purpose", "housing"])], remainder="passthrough"
                ),
            ),
            ("lr", LogisticRegression()),
        ]
    ).fit(X, y)
    folder = tmp_path_factory.mktemp("cli")
    model = to_onnx(pipe, X.iloc[:100], output="probability")
    (folder / "model.onnx").write_bytes(model.model_bytes)
    rows = X.iloc[:N_ROWS].assign(app=[f"A/{i}" for i in range(N_ROWS)])
    rows[["app", *X.columns]].to_csv(folder / "rows.csv", index=False)
    X.iloc[200:240].to_csv(folder / "ref.csv", index=False)
    (folder / "reasons.yaml").write_text(CATALOGUE)
    (folder / "model.txt").write_text("this is not a model\n")
    return folder


@pytest.fixture(scope="module")
def explained(work: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One full run: store, results file and per-decision reports."""
    run = work / "run"
    run.mkdir()
    proc = sxai(
        "explain", "model.onnx", "--data", "rows.csv", "--background", "ref.csv",
        "--method", "kernelshap", "--seed", "11", "--max-evals", "500",
        "--catalogue", "reasons.yaml", "--id-column", "app", "--score", "probabilities[good]",
        "--threshold", "0.5", "--exclude", "age",
        "--out", "run/results.jsonl", "--report-dir", "run/reports",
        "--store", "sqlite:///run/audit.db",
        cwd=work,
    )  # fmt: skip
    return run, proc


def test_explain_writes_results_records_and_reports(work, explained):
    run, proc = explained
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bars when stderr is not a terminal
    assert "explained 6 rows with kernelshap" in proc.stdout
    lines = [json.loads(s) for s in (run / "results.jsonl").read_text().splitlines()]
    assert [r["decision_id"] for r in lines] == [f"A/{i}" for i in range(N_ROWS)]
    # The same numbers as the library gives for the same model, background, method and seed.
    model = sx.ONNXModel(work / "model.onnx")
    X = pd.read_csv(work / "rows.csv").drop(columns="app")
    ref = pd.read_csv(work / "ref.csv")
    exp = sx.KernelSHAP(max_evals=500, random_state=11).fit(model, ref).explain(X)
    k = model.output_names.index("probabilities[good]")
    for i, line in enumerate(lines):
        assert line["output"] == "probabilities[good]"
        assert line["prediction"] == exp.diagnostics.predictions[i, k]
        assert line["decision"] == ("declined" if line["prediction"] < 0.5 else "approved")
        assert list(line["attributions"]) == ["age", "income", "purpose", "housing"]
        assert list(line["attributions"].values()) == exp.values[i, :, k].tolist()
        assert set(line["stderr"]) == set(line["attributions"])
        assert all(set(r) == {"code", "text", "contribution", "stable"} for r in line["reasons"])
        # reasons push toward the adverse outcome (a lower P(good)); age is protected
        assert all(r["contribution"] < 0 for r in line["reasons"])
        assert all(r["code"] != "UNMAPPED:age" for r in line["reasons"])
        assert len(line["record_id"]) == 36
        report = run / "reports" / f"decision-A_{i}.html"
        html = report.read_text()
        assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
        assert line["record_id"] in html
    assert {line["decision"] for line in lines} == {"declined", "approved"}
    with sx.AuditStore(f"sqlite:///{run / 'audit.db'}") as store:
        assert len(store) == N_ROWS
        record = store.get(lines[2]["record_id"])
    assert record["decision_id"] == "A/2"
    assert record["outcome"]["decision"] == lines[2]["decision"]
    assert [r["code"] for r in record["reasons"]["reasons"]] == [
        r["code"] for r in lines[2]["reasons"]
    ]


def test_replay_and_verify_pass_then_tampering_fails(work, explained, capsys):
    run, proc = explained
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(s) for s in (run / "results.jsonl").read_text().splitlines()]
    rid = lines[3]["record_id"]
    args = ("--store", "run/audit.db", "--model", "model.onnx", "--background", "ref.csv")
    ok = sxai("replay", rid, *args, cwd=work)
    assert ok.returncode == 0, ok.stderr
    assert f"identical: record {rid}" in ok.stdout
    verified = sxai("verify", "--store", "sqlite:///run/audit.db", cwd=work)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"ok: {N_ROWS} records")

    # the wrong background is refused (a user mistake), not reported as a difference
    wrong = sxai_here("replay", rid, *args[:-1], "rows.csv", cwd=work, capsys=capsys)
    assert_user_error(wrong, "background")
    missing = sxai_here("replay", "no-such-id", *args, cwd=work, capsys=capsys)
    assert_user_error(missing, "no-such-id")
    typo = sxai_here("verify", "--store", "run/typo.db", cwd=work, capsys=capsys)
    assert_user_error(typo, "typo.db")
    assert not (work / "run" / "typo.db").exists()

    # Tamper with one stored attribution (the append-only triggers must be dropped first).
    con = sqlite3.connect(run / "audit.db")
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    body = json.loads(
        con.execute("SELECT body FROM sx_audit_records WHERE record_id = ?", (rid,)).fetchone()[0]
    )
    body["attributions"]["values"][1][0] += 0.01
    con.execute("UPDATE sx_audit_records SET body = ? WHERE record_id = ?", (json.dumps(body), rid))
    con.commit()
    con.close()
    tampered = sxai("verify", "--store", "run/audit.db", cwd=work)
    assert tampered.returncode == 1
    assert tampered.stderr.count("\n") == 1
    assert "Traceback" not in tampered.stderr
    assert rid in tampered.stderr
    assert tampered.stderr.startswith("error: ")
    replayed = sxai_here("replay", rid, *args, cwd=work, capsys=capsys)
    assert replayed.returncode == 1, replayed.stderr
    assert replayed.stderr.count("\n") == 1
    assert "tampered" in replayed.stderr


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing-column", ["rows-bad.csv: missing column 'income'", "the model expects: age"]),
        ("not-onnx", ["model.txt is not an ONNX model ("]),
        ("unknown-category", ["column 'purpose'", "'boat'", "row 1"]),
        ("empty-csv", ["rows-bad.csv has no rows"]),
        ("empty-file", ["rows-bad.csv has no rows"]),
        ("text-in-number", ["column 'income'", "'lots'", "row 0"]),
        ("no-data", ["missing --data"]),
        ("bad-score", ["--score", "probabilities[bad]"]),
        ("duplicate-id", ["id 'A/0' appears more than once"]),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    work, tmp_path, capsys, case, fragments
):
    rows = pd.read_csv(work / "rows.csv")
    bad = tmp_path / "rows-bad.csv"
    model, extra = work / "model.onnx", ["--id-column", "app"]
    if case == "missing-column":
        rows.drop(columns="income").to_csv(bad, index=False)
    elif case == "not-onnx":
        model = work / "model.txt"
        rows.to_csv(bad, index=False)
    elif case == "unknown-category":
        rows.assign(purpose=["car", "boat", *rows["purpose"][2:]]).to_csv(bad, index=False)
    elif case == "empty-csv":
        rows.iloc[:0].to_csv(bad, index=False)
    elif case == "empty-file":
        bad.write_text("")
    elif case == "text-in-number":
        rows.assign(income=["lots", *rows["income"][1:]]).to_csv(bad, index=False)
    elif case == "bad-score":
        rows.to_csv(bad, index=False)
        extra += ["--score", "probability-of-default"]
    elif case == "duplicate-id":
        rows.assign(app="A/0").to_csv(bad, index=False)
    data = [] if case == "no-data" else ["--data", bad]
    out = tmp_path / "results.jsonl"
    args = (
        "explain", model, *data, "--background", work / "ref.csv", *extra,
        "--out", out, "--store", tmp_path / "audit.db", "--report-dir", tmp_path / "reports",
    )  # fmt: skip
    # The four cases run as real processes; the others through the same entry point
    # in this process (process start-up is most of their cost).
    if case in ("missing-column", "not-onnx", "unknown-category", "empty-csv"):
        proc: Result | subprocess.CompletedProcess[str] = sxai(*args, cwd=tmp_path)
    else:
        proc = sxai_here(*args, cwd=tmp_path, capsys=capsys)
    line = assert_user_error(proc, *fragments)
    assert "rows-bad.csv" in line or case in ("no-data", "not-onnx", "bad-score")
    assert not out.exists()
    assert not (tmp_path / "reports").exists()
    assert list(tmp_path.glob(".results.jsonl.*")) == []


def test_usage_errors_are_one_line_too(work, capsys):
    assert_user_error(sxai("explain", "--threshold", "high", cwd=work), "--threshold")

    def here(*args: object) -> Result:
        return sxai_here(*args, cwd=work, capsys=capsys)

    assert_user_error(here("explain", "--no-such-option"), "--no-such-option")
    assert_user_error(
        here("explain", "model.onnx", "--data", "rows.csv", "--method", "magic"), "method"
    )
    assert_user_error(here("replay"), "record_id")
    helped = here("explain", "--help")
    assert helped.returncode == 0
    for option in ("--data", "--background", "--method", "--seed", "--config", "--store"):
        assert option in helped.stdout


def test_config_file_with_command_line_override(work, tmp_path):
    config = tmp_path / "explain.yaml"
    config.write_text(
        f"model: {work / 'model.onnx'}\n"
        f"data: {work / 'rows.csv'}\n"
        f"background: {work / 'ref.csv'}\n"
        "id-column: app\n"
        "method: exact\n"
        "seed: 3\n"
        "score: probabilities[good]\n"
        "threshold: 0.9\n"
        "out: results.jsonl\n"  # relative to the config file's folder
    )
    proc = sxai("explain", "--config", config, "--threshold", "0.1", cwd=work)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(s) for s in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(lines) == N_ROWS
    assert {line["threshold"] for line in lines} == {0.1}  # the command line won
    assert all(v == 0.0 for line in lines for v in line["stderr"].values())  # exact: no error
    for line in lines:  # exact values add up to prediction - base value
        total = sum(line["attributions"].values())
        assert total == pytest.approx(line["prediction"] - line["base_value"], abs=1e-9)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("seeed: 3\n", ["unknown option 'seeed'"]),
        ("max_evals: lots\n", ["option 'max_evals'", "integer"]),
        ("method: magic\n", ["option 'method'"]),
        ("- just\n- a list\n", ["must hold a mapping"]),
        ("model: [unclosed\n", ["not valid YAML"]),
    ],
)
def test_invalid_config_names_the_key(work, tmp_path, capsys, text, fragments):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    proc = sxai_here(
        "explain", "model.onnx", "--data", "rows.csv", "--config", config, cwd=work, capsys=capsys
    )
    assert_user_error(proc, *fragments)


def test_dask_gives_the_same_numbers(work, explained, tmp_path):
    run, first = explained
    assert first.returncode == 0, first.stderr
    out = tmp_path / "dask.jsonl"
    proc = sxai(
        "explain", "model.onnx", "--data", "rows.csv", "--background", "ref.csv",
        "--seed", "11", "--max-evals", "500", "--catalogue", "reasons.yaml",
        "--id-column", "app", "--score", "probabilities[good]", "--exclude", "age",
        "--dask", "local:1", "--out", out, "--quiet",
        cwd=work,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # --quiet
    here = [json.loads(s) for s in out.read_text().splitlines()]
    before = [json.loads(s) for s in (run / "results.jsonl").read_text().splitlines()]
    for a, b in zip(here, before, strict=True):
        b.pop("record_id")
        assert a == b  # bit-identical: JSON floats round-trip exactly


def test_bad_dask_spec_is_refused_before_any_work(work, tmp_path, capsys):
    proc = sxai_here(
        "explain", "model.onnx", "--data", "rows.csv", "--background", "ref.csv",
        "--dask", "scheduler:8786", "--out", tmp_path / "x.jsonl",
        cwd=work, capsys=capsys,
    )  # fmt: skip
    assert_user_error(proc, "option 'dask'", "local:N")


def test_audit_writes_one_report(work, tmp_path):
    data = pd.read_csv(work / "ref.csv").assign(
        outcome=lambda f: np.where(f["income"] > 3, "good", "bad")
    )
    data.to_csv(tmp_path / "audit.csv", index=False)
    report = tmp_path / "audit.html"
    proc = sxai(
        "audit", work / "model.onnx", "--data", tmp_path / "audit.csv", "--target", "outcome",
        "--report", report, "--score", "probabilities[good]", "--n-explain", "8",
        "--catalogue", work / "reasons.yaml",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"audit report: {report}"
    html = report.read_text()
    assert html.lower().startswith("<!doctype html>")
    assert sx.ONNXModel(work / "model.onnx").identity in html
    assert "R01" in html  # reason-code frequencies from the catalogue
    missing = sxai(
        "audit", work / "model.onnx", "--data", tmp_path / "audit.csv", "--target", "label",
        "--report", tmp_path / "other.html",
        cwd=tmp_path,
    )  # fmt: skip
    assert_user_error(missing, "no target column 'label'")
    assert not (tmp_path / "other.html").exists()


def test_replay_with_a_100_row_background_is_bit_identical(work, tmp_path, capsys):
    # 1/100 weights are not exact in binary: a replay must not renormalise them again.
    ref = pd.read_csv(work / "ref.csv")
    pd.concat([ref, ref, ref], ignore_index=True).iloc[:100].to_csv(
        tmp_path / "ref100.csv", index=False
    )
    proc = sxai_here(
        "explain", work / "model.onnx", "--data", work / "rows.csv", "--id-column", "app",
        "--background", tmp_path / "ref100.csv", "--max-evals", "200",
        "--out", tmp_path / "r.jsonl", "--store", tmp_path / "a.db",
        cwd=tmp_path, capsys=capsys,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rid = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])["record_id"]
    replayed = sxai_here(
        "replay", rid, "--store", tmp_path / "a.db", "--model", work / "model.onnx",
        "--background", tmp_path / "ref100.csv",
        cwd=tmp_path, capsys=capsys,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
