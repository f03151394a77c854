"""surrogate-xai: explanations for any model behind ``predict(X) -> (n_samples, n_outputs)``."""

from . import groups as groups  # sx.groups.image_patches(...), a module, kept out of __all__
from .audit import AuditStore
from .background import Background
from .compare import Comparison, compare
from .exceptions import (
    ConfigurationError,
    InputError,
    ModelError,
    NotFittedError,
    SurrogateXAIError,
    TooManyFeaturesError,
)
from .explainers import ExactSHAP, KernelSHAP, PermutationSHAP, ShapKernel
from .explanation import Diagnostics, Explanation, Provenance
from .model import BaseModel, FunctionModel, Model
from .onnx_model import ONNXModel
from .parity import ParityReport, check_parity
from .reasons import DecisionReasons, Reason, ReasonCatalogue, reason_codes

__version__ = "0.1.0"

__all__ = [
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
]
