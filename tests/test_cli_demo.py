"""``sxai demo``: the whole job on bundled data, and the commands its summary tells you to try."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import surrogate_xai as sx
from surrogate_xai.reasons import load_catalogue

CLI = [sys.executable, "-m", "surrogate_xai.cli"]


def test_sxai_demo_writes_everything_and_its_commands_work(tmp_path):
    proc = subprocess.run(
        [*CLI, "demo", "--rows", "5", "--seed", "3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
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

    # The summary's commands run as printed (with `sxai` being this interpreter's module).
    commands = [
        shlex.split(line.strip())
        for line in proc.stdout.splitlines()
        if line.strip().startswith("sxai ")
    ]
    assert [c[1] for c in commands] == ["replay", "verify", "explain"]
    for command in commands[:2]:
        ran = subprocess.run(
            [*CLI, *command[1:]], capture_output=True, text=True, cwd=tmp_path, timeout=120
        )
        assert ran.returncode == 0, (command, ran.stderr)
    assert commands[0][2] in {r["record_id"] for r in results}


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
