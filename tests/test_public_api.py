"""The public API is what we think it is."""

from __future__ import annotations

import surrogate_xai as sx

EXPECTED = {
    "AccumulatedLocalEffects",
    "AuditStore",
    "Background",
    "BaseModel",
    "Comparison",
    "ConfigurationError",
    "DecisionReasons",
    "Diagnostics",
    "ExactSHAP",
    "Explanation",
    "Fidelity",
    "FunctionModel",
    "GlobalSurrogate",
    "ImportanceSummary",
    "InputError",
    "KernelSHAP",
    "LIME",
    "LocalSurrogate",
    "LowFidelityError",
    "Model",
    "ModelError",
    "NotFittedError",
    "ONNXModel",
    "OddKernelSHAP",
    "ParityReport",
    "PartialDependence",
    "PermutationSHAP",
    "Provenance",
    "Reason",
    "ReasonCatalogue",
    "ShapKernel",
    "SurrogateXAIError",
    "TooManyFeaturesError",
    "TreeGraphError",
    "TreeMarginModel",
    "TreeSHAP",
    "accumulated_local_effects",
    "check_parity",
    "compare",
    "explain_batch",
    "mean_abs_importance",
    "partial_dependence",
    "permutation_importance",
    "reason_codes",
}


def test_exported_members():
    assert set(sx.__all__) == EXPECTED
    assert len(sx.__all__) == len(set(sx.__all__))  # its order is ruff's (RUF022)
    for name in sx.__all__:
        assert getattr(sx, name) is not None


def test_subpackages_import_under_the_package_name():
    import surrogate_xai.adapters.sklearn as sk
    import surrogate_xai.datasets as ds

    assert callable(sk.to_onnx)
    assert callable(ds.load_german_credit)
    assert sk.__name__ == "surrogate_xai.adapters.sklearn"


def test_lazily_loaded_names_are_the_real_objects():
    # The global views load on first use; the names must be the same objects as before.
    import surrogate_xai as sx
    from surrogate_xai import global_, plots
    from surrogate_xai.global_ import GlobalSurrogate

    assert sx.GlobalSurrogate is GlobalSurrogate
    assert sx.global_ is global_
    assert sx.plots is plots
    assert {"GlobalSurrogate", "plots", "groups"} <= set(dir(sx))
