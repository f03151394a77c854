"""Estimators of attributions (Shapley values, local surrogates), all returning :class:`~surrogate_xai.Explanation`.

The list of estimators, with what each can be used for, is :mod:`.registry`; the base classes
are :mod:`.base` (every explainer) and :mod:`.design_explainer` (coalition designs)."""

from .exact import ExactSHAP
from .kernel import KernelSHAP
from .lime_backend import LIME
from .local import LocalSurrogate
from .odd import OddKernelSHAP
from .permutation import PermutationSHAP
from .shap_backend import ShapKernel
from .trees import TreeSHAP

__all__ = [
    "LIME",
    "ExactSHAP",
    "KernelSHAP",
    "LocalSurrogate",
    "OddKernelSHAP",
    "PermutationSHAP",
    "ShapKernel",
    "TreeSHAP",
]
