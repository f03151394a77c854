"""Attacks through the command line: outputs aimed at the audit store under other spellings,
CSV headers that hide a duplicate, processes killed while their outputs are staged, and
printed commands that must work when pasted into a shell."""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import surrogate_xai as sx
from tests.cli_runner import assert_user_error, hidden, make_work, sxai_here

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_work(tmp_path_factory)


def explain(work: Path, *extra: object) -> tuple[object, ...]:
    return (
        "explain", work / "model.onnx", "--data", work / "rows.csv", "--id-column", "app",
        "--background", work / "ref.csv", "--max-evals", "200", *extra,
    )  # fmt: skip


@pytest.fixture
def store_of_3(work: Path, tmp_path: Path, capsys) -> Path:
    """A store in ``d/audit.db`` holding one run's records."""
    (tmp_path / "d").mkdir()
    proc = sxai_here(*explain(work, "--store", "d/audit.db"), cwd=tmp_path, capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "d" / "audit.db"


# -- outputs over the store, under every spelling of its URL --------------------------------------
@pytest.mark.parametrize(
    ("store", "option", "value"),
    [
        ("sqlite+pysqlite:///d/audit.db", "--out", "d/audit.db"),
        ("sqlite:///d/audit%2Edb", "--out", "d/audit.db"),
        ("sqlite:///file:d/audit.db?uri=true", "--out", "d/audit.db"),
        ("sqlite:///d/./sub/../audit.db", "--out", "d/audit.db"),
        ("d/audit.db", "--out", "d/../d/audit.db"),
    ],
)
def test_an_output_over_the_store_is_refused_whatever_the_spelling(
    work, tmp_path, store_of_3, capsys, attack, store, option, value
):
    before = store_of_3.read_bytes()
    proc = attack.cli(
        sxai_here(*explain(work, "--store", store, option, value), cwd=tmp_path, capsys=capsys)
    )
    assert_user_error(proc, option, "same file as --store")
    assert store_of_3.read_bytes() == before
    with sx.AuditStore(f"sqlite:///{store_of_3}", create=False) as audit:
        assert audit.verify().ok


def test_a_report_over_the_store_is_refused(work, tmp_path, capsys, attack):
    reports = tmp_path / "reports"
    reports.mkdir()
    store = reports / "decision-A_0.html"  # a store named like the first decision's report
    proc = sxai_here(*explain(work, "--store", store), cwd=tmp_path, capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    before = store.read_bytes()
    proc = attack.cli(
        sxai_here(
            *explain(work, "--store", f"sqlite+pysqlite:///{store}", "--report-dir", reports),
            cwd=tmp_path,
            capsys=capsys,
        )
    )
    assert_user_error(proc, "the report of 'A/0'", "same file as --store")
    assert store.read_bytes() == before


# -- CSV headers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("blank", ["\n", "\n\n", "\r\n"])
@pytest.mark.parametrize("which", ["--data", "--background", "audit"])
def test_a_duplicate_header_after_blank_lines_is_refused(
    work, tmp_path, capsys, attack, blank, which
):
    source = work / ("ref.csv" if which != "--data" else "rows.csv")
    lines = source.read_text().splitlines()
    text = blank + lines[0] + ",purpose\n" + "".join(f"{line},car\n" for line in lines[1:])
    bad = tmp_path / "dup.csv"
    bad.write_text(text, newline="")
    if which == "audit":
        args: tuple[object, ...] = (
            "audit", work / "model.onnx", "--data", bad, "--report", tmp_path / "a.html",
        )  # fmt: skip
    elif which == "--data":
        args = (
            "explain", work / "model.onnx", "--data", bad, "--id-column", "app",
            "--background", work / "ref.csv", "--out", tmp_path / "r.jsonl",
        )  # fmt: skip
    else:
        args = (
            "explain", work / "model.onnx", "--data", work / "rows.csv", "--id-column", "app",
            "--background", bad, "--out", tmp_path / "r.jsonl",
        )  # fmt: skip
    proc = attack.cli(sxai_here(*args, cwd=tmp_path, capsys=capsys))
    assert_user_error(proc, "dup.csv", "'purpose' appears more than once")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup.csv"]


# -- killed while the outputs are staged ----------------------------------------------------------
KILLED = """
import os, signal, sys
from surrogate_xai import staging
from surrogate_xai.cli import main

where = sys.argv.pop(1)

def die(*_args):
    os.kill(os.getpid(), signal.SIGKILL)

if where == "before-commit":  # inside the store's transaction: nothing is committed
    from surrogate_xai.audit import AuditStore
    _record = AuditStore.record
    hook = lambda position: die() if position == 1 else None
    AuditStore.record = lambda self, *a, **k: _record(self, *a, on_insert=hook, **k)
else:  # records committed, nothing renamed yet
    staging.StagedFiles.commit = die
sys.exit(main(sys.argv[1:]))
"""


def run_killed(where: str, args: tuple[object, ...], cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, where, *map(str, args), "--quiet"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr


def outputs(tmp_path: Path, name: str) -> tuple[object, ...]:
    return ("--out", tmp_path / f"{name}.jsonl", "--report-dir", tmp_path / name)


@pytest.mark.parametrize("where", ["before-commit", "after-commit"])
def test_what_a_killed_run_staged_is_finished_or_removed_by_the_next_run(
    work, tmp_path, capsys, attack, where
):
    store = tmp_path / "audit.db"
    args = explain(work, "--store", store, *outputs(tmp_path, "first"))
    run_killed(where, args, tmp_path)
    assert any(p.name.startswith(".sxai-staging-") for p in tmp_path.iterdir())
    assert not (tmp_path / "first.jsonl").exists()

    proc = attack.cli(
        sxai_here(
            *explain(work, "--store", store, *outputs(tmp_path, "first")),
            cwd=tmp_path,
            capsys=capsys,
        )
    )
    assert proc.returncode == 0, proc.stderr
    assert hidden(tmp_path) == []
    assert hidden(tmp_path / "first") == []
    with sx.AuditStore(f"sqlite:///{store}", create=False) as audit:
        assert audit.verify().ok
        recorded = [r["record_id"] for r in audit.records()]
    lines = [json.loads(s) for s in (tmp_path / "first.jsonl").read_text().splitlines()]
    if where == "before-commit":
        assert "cleaned:" in proc.stdout
        assert len(recorded) == len(lines)  # only the second run's records
    else:
        assert "recovered:" in proc.stdout
        assert len(recorded) == 2 * len(lines)
    assert [line["record_id"] for line in lines] == recorded[-len(lines) :]


def test_the_killed_runs_outputs_appear_when_its_records_were_committed(
    work, tmp_path, capsys, attack
):
    """The next run writes other files into the same folder: the dead run's own results file,
    naming its committed records, is moved into place."""
    store = tmp_path / "audit.db"
    run_killed(
        "after-commit", explain(work, "--store", store, *outputs(tmp_path, "first")), tmp_path
    )
    proc = attack.cli(
        sxai_here(
            *explain(work, "--store", store, *outputs(tmp_path, "second")),
            cwd=tmp_path,
            capsys=capsys,
        )
    )
    assert proc.returncode == 0, proc.stderr
    with sx.AuditStore(f"sqlite:///{store}", create=False) as audit:
        first_ids = [r["record_id"] for r in audit.records()][:6]
    lines = [json.loads(s) for s in (tmp_path / "first.jsonl").read_text().splitlines()]
    assert [line["record_id"] for line in lines] == first_ids


def test_temporary_files_of_earlier_releases_are_removed(work, tmp_path, capsys, attack):
    (tmp_path / "reports").mkdir()
    old = [
        tmp_path / ".r.jsonl.a1b2c3d4.tmp",
        tmp_path / "reports" / ".decision-A_0.html.zz9_x1y2.tmp",
    ]
    for p in old:
        p.write_text("partial")
    keep = tmp_path / ".unrelated.tmp"
    keep.write_text("not ours")
    proc = attack.cli(
        sxai_here(
            *explain(work, "--out", tmp_path / "r.jsonl", "--report-dir", tmp_path / "reports"),
            cwd=tmp_path,
            capsys=capsys,
        )
    )
    assert proc.returncode == 0, proc.stderr
    assert not any(p.exists() for p in old)
    assert keep.exists()


# -- printed commands work when pasted ----------------------------------------------------------
def test_the_replay_command_in_a_report_works_with_spaces_and_parentheses(
    work, tmp_path, capsys, attack
):
    folder = tmp_path / "paths (1)"
    folder.mkdir()
    model = folder / "credit model (v2).onnx"
    shutil.copy(work / "model.onnx", model)
    shutil.copy(work / "ref.csv", folder / "ref $HOME 'x'.csv")
    proc = attack.cli(
        sxai_here(
            "explain",
            model.name,
            "--data",
            work / "rows.csv",
            "--id-column",
            "app",
            "--background",
            "ref $HOME 'x'.csv",
            "--max-evals",
            "200",
            "--store",
            "audit (1).db",
            "--report-dir",
            "reports (a&b)",
            cwd=folder,
            capsys=capsys,
        )
    )
    assert proc.returncode == 0, proc.stderr
    report = next((folder / "reports (a&b)").glob("decision-*.html")).read_text()
    (command,) = {html.unescape(m) for m in re.findall(r"sxai replay [^<]+", report)}
    argv = shlex.split(command)
    assert argv[:2] == ["sxai", "replay"]
    # Pasted into a shell in the folder where it was written: it must find everything.
    ran = attack.cli(
        subprocess.run(
            [sys.executable, "-m", "surrogate_xai.cli", *argv[1:]],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=120,
        )
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("identical:")
    shell = attack.cli(
        subprocess.run(
            [
                "bash",
                "-c",
                f'sxai() {{ {shlex.quote(sys.executable)} -m surrogate_xai.cli "$@"; }}; {command}',
            ],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=120,
        )
    )
    assert shell.returncode == 0, shell.stderr
