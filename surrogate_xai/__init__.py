"""surrogate-xai: explanations for any model behind ``predict(X) -> (n_samples, n_outputs)``."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

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
    TreeGraphError,
)
from .explainers import (
    LIME,
    ExactSHAP,
    KernelSHAP,
    LocalSurrogate,
    OddKernelSHAP,
    PermutationSHAP,
    ShapKernel,
    TreeSHAP,
)
from .explanation import Diagnostics, Explanation, Provenance
from .model import BaseModel, FunctionModel, Model
from .onnx_model import ONNXModel
from .parity import ParityReport, check_parity
from .reasons import DecisionReasons, Reason, ReasonCatalogue, reason_codes
from .trees import TreeMarginModel

# The global views (scikit-learn surrogates, plots) cost most of the import time and are not
# needed to explain, record or serve; they load on first use, so `sxai --help` and the service
# start without them. Same names, same objects: `sx.GlobalSurrogate`, `from surrogate_xai
# import plots`.
_LAZY = {
    "AccumulatedLocalEffects": ".global_",
    "Fidelity": ".global_",
    "GlobalSurrogate": ".global_",
    "ImportanceSummary": ".global_",
    "LowFidelityError": ".global_",
    "PartialDependence": ".global_",
    "accumulated_local_effects": ".global_",
    "mean_abs_importance": ".global_",
    "partial_dependence": ".global_",
    "permutation_importance": ".global_",
    "global_": ".global_",  # the subpackage itself, as before these names became lazy
    "groups": ".groups",  # sx.groups.image_patches(...), a module, kept out of __all__
    "plots": ".plots",  # sx.plots.bar(exp), free functions, kept out of __all__
}

if TYPE_CHECKING:
    from . import global_ as global_
    from . import groups as groups
    from . import plots as plots
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


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(where, __name__)
    value = module if where == f".{name}" else getattr(module, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
]
