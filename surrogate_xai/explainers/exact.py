"""Exact Shapley values of the interventional game by enumerating every coalition."""

from __future__ import annotations

from ..exceptions import TooManyFeaturesError
from ..validation import check_int
from ._design import BlockDesign, exact_design
from .design_explainer import DesignExplainer


class ExactSHAP(DesignExplainer):
    """Exact interventional Shapley values by enumeration.

    Costs ``n_samples × n_background × (2**d − 2)`` model rows (fewer where the explained row
    equals a background row on some features, since those rows are known).

    Parameters
    ----------
    max_features : int
        Largest number of features (or groups) ``d`` accepted; above it ``fit`` raises
        :class:`TooManyFeaturesError` instead of starting an exponential computation.
    batch_rows : int
        Rows built and evaluated at once per explained row (a memory cap).
    n_jobs : int
        Explained rows processed concurrently on threads; results do not depend on it.
    """

    method = "exact"

    def __init__(
        self, *, max_features: int = 12, batch_rows: int = 65_536, n_jobs: int = 1
    ) -> None:
        self.max_features = max_features
        self.batch_rows = batch_rows
        self.n_jobs = n_jobs

    def validate_params(self) -> None:
        super().validate_params()
        check_int("max_features", self.max_features)

    def check_units(self, n_units: int) -> None:
        if n_units > self.max_features:
            raise TooManyFeaturesError(
                f"ExactSHAP enumerates 2**d coalitions and d={n_units} exceeds "
                f"max_features={self.max_features} ({2**n_units:,} coalitions per background "
                f"row); group features, raise max_features, or use KernelSHAP / PermutationSHAP"
            )

    def design(self, n_units: int, n_background: int, seed: int | None) -> BlockDesign:
        return exact_design(n_units, n_background)
