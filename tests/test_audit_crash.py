"""A process killed in the middle of ``record`` leaves all or none of its batch."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from surrogate_xai.audit import AuditStore

pytestmark = pytest.mark.reliability  # part of the reliability suite (tests/reliability.py)

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "audit_crash_worker.py"
BATCH = 6


def run_worker(db: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), str(db), str(kill_at), str(BATCH)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.parametrize("kill_at", [0, BATCH // 2, BATCH - 1])
def test_killed_mid_batch_leaves_none_of_it_and_the_chain_verifies(tmp_path, kill_at):
    db = tmp_path / "audit.db"
    proc = run_worker(db, kill_at)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "first batch committed" in proc.stdout
    assert "second batch committed" not in proc.stdout

    store = AuditStore(f"sqlite:///{db}")
    assert len(store) == BATCH  # the first batch, whole; nothing of the second
    assert {r["decision_id"] for r in store.records()} == {f"first-{i}" for i in range(BATCH)}
    result = store.verify()
    assert result.ok, result
    assert store.head()[0] == BATCH

    # The store is usable afterwards and the chain continues from the surviving head.
    from tests.audit_crash_worker import explanation

    store.record(explanation(BATCH, 2), decision_ids=[f"third-{i}" for i in range(BATCH)])
    assert len(store) == 2 * BATCH
    assert store.verify().ok
    store.close()


def test_worker_without_a_kill_commits_both_batches(tmp_path):
    db = tmp_path / "audit.db"
    proc = run_worker(db, kill_at=BATCH)  # never reached: no kill
    assert proc.returncode == 0, proc.stderr
    store = AuditStore(f"sqlite:///{db}")
    assert len(store) == 2 * BATCH
    assert store.verify().ok
