"""Checks shared by the adapter tests."""

from __future__ import annotations

import numpy as np

import surrogate_xai as sx


def assert_same_attributions(model: sx.ONNXModel, native, background, rows, rtol=1e-5):
    """KernelSHAP through the graph equals KernelSHAP on the native predict, same seed.

    Returns the largest difference relative to the largest attribution.
    """
    function = sx.FunctionModel(
        native,
        feature_names=model.feature_names,
        output_names=model.output_names,
        allow_missing=model.allow_missing,
    )
    make = lambda: sx.KernelSHAP(max_evals=2_000, random_state=4)  # noqa: E731
    a = make().fit(model, background).explain(rows)
    b = make().fit(function, background).explain(rows)
    scale = np.abs(b.values).max()
    # Relative to the attributions' scale: float32 drift is additive, so a near-zero
    # attribution cannot be matched to 1e-5 of itself.
    np.testing.assert_allclose(a.values, b.values, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(a.base_values, b.base_values, rtol=rtol, atol=rtol * scale)
    assert a.provenance.model["parity"] == model.parity
    return float(np.abs(a.values - b.values).max() / scale)
