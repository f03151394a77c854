"""Records written by an earlier release still verify and replay bit for bit.

``tests/data/legacy_v1/`` holds a store written by the release before the store's reader was
hardened (its README says how). A change that moves one bit of an existing method's numbers,
renames an output, or tightens a check so that a legitimate old record fails would break the
evidence users already keep: this test is where that shows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.audit import AuditStore
from tests.cli_runner import sxai_here

LEGACY = Path(__file__).parent / "data" / "legacy_v1"
METHODS = {"kernelshap", "permutation", "exact", "lime", "local-surrogate", "shap-kernel"}


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A copy of the legacy folder (opening a store may add missing triggers to it)."""
    folder = tmp_path / "legacy"
    shutil.copytree(LEGACY, folder)
    return folder


def test_the_legacy_store_verifies_without_being_changed(legacy):
    before = (legacy / "audit.db").read_bytes()
    with AuditStore(f"sqlite:///{legacy / 'audit.db'}", create=False) as store:
        result = store.verify()
        assert result.ok, result
        assert result.records == len(store) == 43
    assert (legacy / "audit.db").read_bytes() == before


def test_every_legacy_record_replays_bit_for_bit(legacy):
    background = pd.read_csv(legacy / "background.csv")
    model = sx.ONNXModel(legacy / "model.onnx", feature_names=list(background.columns))
    with AuditStore(f"sqlite:///{legacy / 'audit.db'}") as store:
        records = list(store.records())
        assert {r["method"]["name"] for r in records} == METHODS
        for record in records:
            result = store.replay(record["record_id"], model, background)
            assert result.identical, (record["method"]["name"], result.differences)


def test_the_legacy_records_replay_from_the_command_line(legacy, capsys):
    """One record per method through ``sxai replay``, as the records' own reports say."""
    with AuditStore(f"sqlite:///{legacy / 'audit.db'}", create=False) as store:
        first = {}
        for record in store.records():
            first.setdefault(record["method"]["name"], record["record_id"])
    for method in sorted(METHODS - {"shap-kernel"}):  # written by the CLI
        proc = sxai_here(
            "replay",
            first[method],
            "--store",
            "audit.db",
            "--model",
            "model.onnx",
            "--background",
            "background.csv",
            cwd=legacy,
            capsys=capsys,
        )
        assert proc.returncode == 0, (method, proc.stderr)
        assert proc.stdout.startswith("identical:"), proc.stdout
