"""The cross-framework comparison example runs end to end (sklearn, XGBoost, torch via ONNX)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "compare_frameworks.py"


def test_compare_frameworks_example(capsys):
    spec = importlib.util.spec_from_file_location("compare_frameworks", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--rows", "3", "--max-evals", "3000"])
    assert set(result.explanations) == {"sklearn", "xgboost", "torch"}
    for exp in result.explanations.values():
        assert exp.values.shape == (3, 20, 2)
        assert exp.provenance.model["parity"]["passed"]
        assert exp.provenance.seed == 7  # one protocol: the same seed and design for all
    assert len(result.agreement) == 3
    # The two tree ensembles on the same data agree more with each other than with the MLP.
    agree = result.agreement.set_index(["model_a", "model_b"]).spearman_mean
    assert agree["sklearn", "xgboost"] > max(agree["sklearn", "torch"], agree["xgboost", "torch"])
    assert np.isfinite(result.differences.mean_abs_diff).all()
    assert "Rank agreement" in capsys.readouterr().out
