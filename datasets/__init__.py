"""Data shipped with surrogate-xai, or generated (imported as ``surrogate_xai.datasets``)."""

from .german_credit import load_german_credit
from .synthetic import AdditiveProblem, make_additive, make_linear

__all__ = ["AdditiveProblem", "load_german_credit", "make_additive", "make_linear"]
