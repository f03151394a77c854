"""The public API is what we think it is."""

from __future__ import annotations

import surrogate_xai as sx

EXPECTED = {
    "AuditStore",
    "Background",
    "BaseModel",
    "Comparison",
    "ConfigurationError",
    "DecisionReasons",
    "Diagnostics",
    "ExactSHAP",
    "Explanation",
    "FunctionModel",
    "InputError",
    "KernelSHAP",
    "Model",
    "ModelError",
    "NotFittedError",
    "ONNXModel",
    "ParityReport",
    "PermutationSHAP",
    "Provenance",
    "Reason",
    "ReasonCatalogue",
    "ShapKernel",
    "SurrogateXAIError",
    "TooManyFeaturesError",
    "check_parity",
    "compare",
    "reason_codes",
}


def test_exported_members():
    assert set(sx.__all__) == EXPECTED
    assert sx.__all__ == sorted(sx.__all__)
    for name in sx.__all__:
        assert getattr(sx, name) is not None


def test_subpackages_import_under_the_package_name():
    import surrogate_xai.adapters.sklearn as sk
    import surrogate_xai.datasets as ds

    assert callable(sk.to_onnx)
    assert callable(ds.load_german_credit)
    assert sk.__name__ == "surrogate_xai.adapters.sklearn"
