"""``sxai demo``: the whole job on bundled data, and the commands its summary tells you to try."""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import surrogate_xai as sx
from surrogate_xai.reasons import load_catalogue

CLI = [sys.executable, "-m", "surrogate_xai.cli"]
#: The console script `make install` puts into the venv (what `make demo` runs).
SCRIPT = Path(sys.prefix) / "bin" / "sxai"


def fresh_shell_env() -> dict[str, str]:
    """A new login's environment as far as ``sxai`` cares: no virtualenv activated, so no
    ``sxai`` on ``PATH`` (the project's ``.venv/bin`` is not there)."""
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "USER")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


def printed_commands(stdout: str) -> list[str]:
    """The lines under the demo's "Try" heading, as printed."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Try"))
    return [line.strip() for line in lines[start + 1 :] if line.startswith("  ")]


def run_pasted(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``line`` pasted into a fresh bash, as the README tells a first-time user to."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", line],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=fresh_shell_env(),
        timeout=300,
    )


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`make demo`'s command (the console script, with --force) in a shell without the venv."""
    cwd = tmp_path_factory.mktemp("first-hour")
    assert shutil.which("sxai", path=fresh_shell_env()["PATH"]) is None  # really not on PATH
    proc = subprocess.run(
        [str(SCRIPT), "demo", "--force"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=fresh_shell_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return cwd, proc


def test_every_command_the_demo_prints_works_pasted_into_a_fresh_shell(demo_run):
    cwd, proc = demo_run
    commands = printed_commands(proc.stdout)
    assert [shlex.split(c)[1] for c in commands] == ["replay", "verify", "explain"]
    for line in commands:
        # Not the bare name, which a shell without the venv cannot find.
        assert not line.startswith("sxai "), line
        ran = run_pasted(line, cwd)
        assert ran.returncode == 0, (line, ran.stdout, ran.stderr)
        assert "warning" not in ran.stderr
    # The rerun went to its own store: the demo's store still holds one record per applicant.
    with sx.AuditStore(f"sqlite:///{cwd / 'sxai-demo' / 'audit.db'}") as store:
        assert len(store) == 20
    with sx.AuditStore(f"sqlite:///{cwd / 'sxai-demo' / 'rerun.db'}") as store:
        assert len(store) == 20
    # The commands the reports print work the same way: a decision's replay command, and the
    # command line recorded in the report of an `sxai audit` run.
    report = next((cwd / "sxai-demo" / "reports").glob("decision-*.html")).read_text()
    replay = html.unescape(re.search(r'<pre id="replay-command">(.*?)</pre>', report, re.S)[1])
    ran = run_pasted(replay, cwd)
    assert ran.returncode == 0, (replay, ran.stderr)
    assert ran.stdout.startswith("identical: ")
    audit = run_pasted(
        shlex.join([str(SCRIPT), "audit", "sxai-demo/credit.onnx", "--data",
                    "sxai-demo/holdout.csv", "--report", "again.html", "--n-explain", "8"]),
        cwd,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stderr
    recorded = (cwd / "again.html").read_text()
    command = html.unescape(re.search(r'<pre id="command">(.*?)</pre>', recorded, re.S)[1])
    assert not command.startswith("sxai ")
    assert run_pasted(command, cwd).returncode == 0


def test_the_demo_looks_healthy(demo_run):
    """No warning; every explanation converged; the global surrogate passes."""
    cwd, proc = demo_run
    out = cwd / "sxai-demo"
    assert "warning" not in proc.stderr.lower()
    assert "warning" not in proc.stdout.lower()
    assert "converged 20 of 20" in proc.stdout
    for report in (out / "reports").glob("decision-*.html"):
        text = report.read_text()
        assert "<dd>yes: every standard error is below the tolerance 0.002</dd>" in text
        assert "Values of this applicant" in text
    audit = (out / "audit.html").read_text()
    assert 'class="badge good" id="surrogate-verdict"' in audit
    assert "do not read its rules" not in audit
    assert "<dd>40 of 40 (every standard error below the tolerance 0.002)</dd>" in audit


def test_sxai_demo_writes_everything(tmp_path):
    proc = subprocess.run(
        [*CLI, "demo", "--rows", "5", "--seed", "3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr  # another seed is just as healthy
    out = tmp_path / "sxai-demo"
    assert "0 decision flips" in proc.stdout
    for name in ("credit.onnx", "background.csv", "applicants.csv", "reasons.yaml", "audit.html"):
        assert (out / name).stat().st_size > 100, name
    # The export's parity evidence is written beside the model and shown by both reports.
    evidence = json.loads((out / "credit.parity.json").read_text())
    assert evidence["model_sha256"] == sx.ONNXModel(out / "credit.onnx").identity
    assert "parity passed" in (out / "audit.html").read_text()
    assert "parity passed" in next((out / "reports").glob("decision-*.html")).read_text()
    results = [json.loads(s) for s in (out / "results.jsonl").read_text().splitlines()]
    assert len(results) == 5
    declined = sum(r["decision"] == "declined" for r in results)
    assert f"{declined} of 5 applicants declined" in proc.stdout
    reports = sorted(p.name for p in (out / "reports").glob("decision-*.html"))
    assert reports == sorted(f"decision-{r['decision_id']}.html" for r in results)

    # A real catalogue: specific texts, protected attributes never given as a reason.
    catalogue = load_catalogue(out / "reasons.yaml")
    assert catalogue.entry_for("status_of_existing_checking_account") is not None
    assert catalogue.entry_for("personal_status_and_sex") is None
    codes = {r["code"] for line in results for r in line["reasons"]}
    assert codes
    assert all(not c.startswith("UNMAPPED") for c in codes)

    with sx.AuditStore(f"sqlite:///{out / 'audit.db'}") as store:
        assert len(store) == 5
        assert store.verify().ok
    # Run from this interpreter (`python -m`, its venv not on PATH), the printed commands
    # still name a program that exists.
    commands = printed_commands(proc.stdout)
    assert commands[0].split()[1] == "replay"
    assert commands[0].split()[2] in {r["record_id"] for r in results}
    assert Path(shlex.split(commands[0])[0]).is_file() or shlex.split(commands[0])[0] == "sxai"


def test_sxai_demo_never_deletes_an_earlier_audit_store(tmp_path):
    out = tmp_path / "earlier"
    out.mkdir()
    with sx.AuditStore(f"sqlite:///{out / 'audit.db'}"):
        pass
    before = (out / "audit.db").read_bytes()
    proc = subprocess.run(
        [*CLI, "demo", "--out", str(out), "--rows", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: ")
    assert "audit.db" in proc.stderr
    assert "--force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "audit.db").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["audit.db"]
