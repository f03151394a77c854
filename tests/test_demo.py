"""`make demo` runs the main job end to end on the bundled data."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_explains_applicants(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "surrogate_xai.demo", "--out", str(tmp_path / "o"), "--rows", "3"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert "0 decision flips" in out
    assert "applicant 2: P(bad) =" in out
    assert (tmp_path / "o" / "credit.onnx").stat().st_size > 1000
    doc = json.loads((tmp_path / "o" / "explanations.json").read_text())
    assert len(doc["values"]) == 3
