"""Estimators of Shapley values, all returning :class:`~surrogate_xai.Explanation`."""

from .exact import ExactSHAP
from .kernel import KernelSHAP
from .permutation import PermutationSHAP

__all__ = ["ExactSHAP", "KernelSHAP", "PermutationSHAP"]
