"""surrogate-xai: explanations for any model behind ``predict(X) -> (n_samples, n_outputs)``."""

from . import groups as groups  # sx.groups.image_patches(...), a module, kept out of __all__
from . import plots as plots  # sx.plots.bar(exp), free functions, kept out of __all__
from .audit import AuditStore
from .background import Background
from .batch import explain_batch
from .compare import Comparison, compare
from .exceptions import (
    ConfigurationError,
    InputError,
    ModelError,
    NotFittedError,
    SurrogateXAIError,
    TooManyFeaturesError,
)
from .explainers import LIME, ExactSHAP, KernelSHAP, LocalSurrogate, PermutationSHAP, ShapKernel
from .explanation import Diagnostics, Explanation, Provenance
from .global_ import (
    AccumulatedLocalEffects,
    Fidelity,
    GlobalSurrogate,
    ImportanceSummary,
    LowFidelityError,
    PartialDependence,
    accumulated_local_effects,
    mean_abs_importance,
    partial_dependence,
    permutation_importance,
)
from .model import BaseModel, FunctionModel, Model
from .onnx_model import ONNXModel
from .parity import ParityReport, check_parity
from .reasons import DecisionReasons, Reason, ReasonCatalogue, reason_codes

__version__ = "0.1.0"

__all__ = [
    "LIME",
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
    "LocalSurrogate",
    "LowFidelityError",
    "Model",
    "ModelError",
    "NotFittedError",
    "ONNXModel",
    "ParityReport",
    "PartialDependence",
    "PermutationSHAP",
    "Provenance",
    "Reason",
    "ReasonCatalogue",
    "ShapKernel",
    "SurrogateXAIError",
    "TooManyFeaturesError",
    "accumulated_local_effects",
    "check_parity",
    "compare",
    "explain_batch",
    "mean_abs_importance",
    "partial_dependence",
    "permutation_importance",
    "reason_codes",
]
