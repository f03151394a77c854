"""Estimators of Shapley values, all returning :class:`~surrogate_xai.Explanation`."""

from .exact import ExactSHAP
from .kernel import KernelSHAP
from .permutation import PermutationSHAP
from .shap_backend import ShapKernel

__all__ = ["ExactSHAP", "KernelSHAP", "PermutationSHAP", "ShapKernel"]
