"""Run by test_audit_crash: record one batch, then die by SIGKILL in the middle of the next.

Usage: python tests/audit_crash_worker.py DB_PATH KILL_AT BATCH_SIZE

The first batch is committed normally. During the second, the process kills itself right after
inserting the record at batch position KILL_AT, inside the open transaction.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pandas as pd

import surrogate_xai as sx
from surrogate_xai.audit import AuditStore


def explanation(n_rows: int, seed: int) -> sx.Explanation:
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c"]
    X = pd.DataFrame(rng.normal(size=(n_rows + 10, 3)), columns=names)
    model = sx.FunctionModel(
        lambda A: np.asarray(A) @ np.array([1.0, -2.0, 0.5]), names, input_type="array"
    )
    return sx.ExactSHAP().fit(model, X.iloc[n_rows:]).explain(X.iloc[:n_rows])


def main() -> None:
    path, kill_at, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    audit = AuditStore(f"sqlite:///{path}")
    audit.record(explanation(size, 0), decision_ids=[f"first-{i}" for i in range(size)])
    print("first batch committed", flush=True)

    def die(position: int) -> None:
        if position == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    audit.record(
        explanation(size, 1), decision_ids=[f"second-{i}" for i in range(size)], on_insert=die
    )
    print("second batch committed", flush=True)  # only when KILL_AT >= BATCH_SIZE


if __name__ == "__main__":
    main()
