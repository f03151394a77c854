"""Models whose exact interventional Shapley values are known in closed form.

For an additive model ``f(x) = c + Σ_j g_j(x_j)`` the interventional Shapley value of feature
``j`` at ``x`` over background rows ``b`` with weights ``w`` is ``g_j(x_j) − Σ_b w_b g_j(b_j)``;
for a linear model that is ``β_j (x_j − E_b[x_j])``. Tests use these as exact oracles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class AdditiveProblem:
    """Data, a model and its exact attributions."""

    X: pd.DataFrame
    predict: Callable[[np.ndarray], np.ndarray]
    terms: list[Callable[[np.ndarray], np.ndarray]]
    intercept: float

    @property
    def feature_names(self) -> list[str]:
        return list(self.X.columns)

    def shapley_values(
        self,
        X: pd.DataFrame | np.ndarray,
        background: pd.DataFrame | np.ndarray,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Exact values, shape ``(n_samples, n_features)``."""
        A = np.asarray(X, dtype=np.float64)
        B = np.asarray(background, dtype=np.float64)
        w = (
            np.full(len(B), 1.0 / len(B))
            if weights is None
            else np.asarray(weights) / np.sum(weights)
        )
        out = np.empty_like(A)
        for j, g in enumerate(self.terms):
            out[:, j] = g(A[:, j]) - w @ g(B[:, j])
        return out


def _scaled(b: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: b * np.asarray(v, dtype=np.float64)


def make_linear(
    n_samples: int = 200, n_features: int = 5, random_state: int = 0
) -> tuple[AdditiveProblem, np.ndarray]:
    """A linear model ``f(x) = c + β·x`` on correlated Gaussian data; returns it and ``β``."""
    rng = np.random.default_rng(random_state)
    cov = 0.5 * np.eye(n_features) + 0.5
    X = rng.multivariate_normal(np.zeros(n_features), cov, size=n_samples)
    beta = rng.normal(size=n_features) * 2
    intercept = float(rng.normal())
    terms = [_scaled(float(b)) for b in beta]

    def predict(A: np.ndarray) -> np.ndarray:
        return intercept + np.asarray(A, dtype=np.float64) @ beta

    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    return AdditiveProblem(frame, predict, terms, intercept), beta


def make_additive(
    n_samples: int = 200, n_features: int = 6, random_state: int = 0
) -> AdditiveProblem:
    """A non-linear additive model (sines, squares, steps, a dummy feature last)."""
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-2, 2, size=(n_samples, n_features))
    shapes: list[Callable[[np.ndarray], np.ndarray]] = [
        np.sin,
        np.square,
        lambda v: (v > 0.3).astype(np.float64),
        np.abs,
        lambda v: 0.5 * v**3,
    ]
    scales = rng.uniform(0.5, 2, size=n_features - 1)

    def term(
        shape: Callable[[np.ndarray], np.ndarray], scale: float
    ) -> Callable[[np.ndarray], np.ndarray]:
        return lambda v: scale * shape(v)

    terms = [term(shapes[j % len(shapes)], float(scales[j])) for j in range(n_features - 1)]
    terms.append(lambda v: np.zeros_like(v, dtype=np.float64))
    intercept = 1.5

    def predict(A: np.ndarray) -> np.ndarray:
        A = np.asarray(A, dtype=np.float64)
        out = np.full(len(A), intercept)
        for j, g in enumerate(terms):
            out += g(A[:, j])
        return out

    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    return AdditiveProblem(frame, predict, terms, intercept)
