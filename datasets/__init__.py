"""Data shipped with surrogate-xai, or generated (imported as ``surrogate_xai.datasets``)."""

from .german_credit import load_german_credit
from .synthetic import AdditiveProblem, UnanimityProblem, make_additive, make_linear, make_unanimity

__all__ = [
    "AdditiveProblem",
    "UnanimityProblem",
    "load_german_credit",
    "make_additive",
    "make_linear",
    "make_unanimity",
]
