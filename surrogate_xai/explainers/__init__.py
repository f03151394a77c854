"""Estimators of attributions (Shapley values, local surrogates), all returning :class:`~surrogate_xai.Explanation`."""

from .exact import ExactSHAP
from .kernel import KernelSHAP
from .lime_backend import LIME
from .local import LocalSurrogate
from .odd import OddKernelSHAP
from .permutation import PermutationSHAP
from .shap_backend import ShapKernel

__all__ = [
    "LIME",
    "ExactSHAP",
    "KernelSHAP",
    "LocalSurrogate",
    "OddKernelSHAP",
    "PermutationSHAP",
    "ShapKernel",
]
