"""docs/examples/plain_torch_export.py runs as documented: third-party torch.onnx.export
files load with ONNXModel(path) alone and come out as plots and decision reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "plain_torch_export.py"


@pytest.mark.slow
def test_plain_export_example_writes_plots_and_reports(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr == ""  # the exporters' noise stays inside the export
    assert sorted(p.name for p in out.iterdir()) == [
        "digit_heatmap.png",
        "digit_report.html",
        "digits_cnn.onnx",
        "lstm_time_steps.png",
        "sequence_lstm.onnx",
        "sequence_report.html",
    ]
    assert "frozen batch 4" in run.stdout
    share = float(run.stdout.split("LSTM: ")[2].split("%")[0])
    assert share > 50  # the one step the target reads carries most of the attribution
    assert "Where in the image" in (out / "digit_report.html").read_text()
    assert "Over time" in (out / "sequence_report.html").read_text()
