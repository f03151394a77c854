"""Global views of a model: surrogates with honest fidelity, importance and feature effects."""

from .effects import (
    AccumulatedLocalEffects,
    PartialDependence,
    accumulated_local_effects,
    partial_dependence,
)
from .importance import ImportanceSummary, mean_abs_importance, permutation_importance
from .surrogate import Fidelity, GlobalSurrogate, LowFidelityError

__all__ = [
    "AccumulatedLocalEffects",
    "Fidelity",
    "GlobalSurrogate",
    "ImportanceSummary",
    "LowFidelityError",
    "PartialDependence",
    "accumulated_local_effects",
    "mean_abs_importance",
    "partial_dependence",
    "permutation_importance",
]
