"""The Explanation result: frozen, views, shap interop, versioned JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.exceptions import SerializationError


@pytest.fixture
def credit_explanation(credit_model):
    _, path, X = credit_model
    model = sx.ONNXModel(path, output="probability")
    return (
        sx.KernelSHAP(max_evals=3_000, random_state=1)
        .fit(model, X.iloc[100:160])
        .explain(X.iloc[:4])
    )


def test_arrays_are_frozen(credit_explanation):
    exp = credit_explanation
    with pytest.raises(ValueError, match="read-only"):
        exp.values[0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        exp.values = np.zeros(1)  # type: ignore[misc]


def test_shapes_and_provenance(credit_explanation):
    exp = credit_explanation
    assert exp.shape == (4, 20, 2)
    prov = exp.provenance
    assert prov.method == "kernelshap"
    assert prov.parameters["max_evals"] == 3_000
    assert prov.parameters["tol"] is None  # defaults are recorded too
    assert prov.seed == 1
    assert prov.model["sha256"] == prov.model["identity"]
    assert prov.background["size"] == 60
    assert {"numpy", "onnxruntime", "surrogate-xai", "python"} <= set(prov.versions)
    assert exp.diagnostics.model_evaluations.max() <= 3_000


def test_to_frame_is_long_format(credit_explanation):
    exp = credit_explanation
    frame = exp.to_frame()
    assert len(frame) == 4 * 20 * 2
    row = frame[
        (frame.row == 2) & (frame.feature == "purpose") & (frame.output == "probabilities[bad]")
    ]
    assert row.value.item() == exp.values[2, exp.feature_names.index("purpose"), 0]


def test_to_shap_works_with_shap_plots(credit_explanation, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    sh = credit_explanation.to_shap(output="probabilities[bad]")
    assert sh.values.shape == (4, 20)
    assert (
        sh.display_data[0, sh.feature_names.index("purpose")]
        == credit_explanation.data["purpose"][0]
    )
    shap.plots.bar(sh, show=False)
    plt.savefig(tmp_path / "bar.png")
    assert (tmp_path / "bar.png").stat().st_size > 1000
    full = credit_explanation.to_shap()
    assert full.values.shape == (4, 20, 2)


def test_json_versioning(credit_explanation):
    text = credit_explanation.to_json()
    doc = json.loads(text)
    assert doc["format"] == "surrogate-xai/explanation"
    assert doc["version"] == 1
    doc["version"] = 99
    with pytest.raises(SerializationError, match="version 99 is not supported"):
        sx.Explanation.from_dict(doc)
    with pytest.raises(SerializationError, match="not a surrogate-xai explanation"):
        sx.Explanation.from_dict({"format": "other"})
    with pytest.raises(SerializationError, match="not valid JSON"):
        sx.Explanation.from_json("{")
    back = sx.Explanation.from_json(text)
    pd.testing.assert_frame_equal(back.data, credit_explanation.data, check_dtype=False)
    assert back.data["age_in_years"].dtype == np.int64
