"""Models whose exact interventional Shapley values are known in closed form.

For an additive model ``f(x) = c + Σ_j g_j(x_j)`` the interventional Shapley value of feature
``j`` at ``x`` over background rows ``b`` with weights ``w`` is ``g_j(x_j) − Σ_b w_b g_j(b_j)``;
for a linear model that is ``β_j (x_j − E_b[x_j])``. Tests use these as exact oracles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import factorial

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


# -- sums of unanimity games -------------------------------------------------------------------


@dataclass(frozen=True)
class UnanimityProblem:
    """A model that is a sum of unanimity terms on 0/1 features, and its exact values.

    ``f(z) = Σ_k c_k Π_{j ∈ T_k} z_j``. Explained at ``x = 1`` against the single background row
    ``b = 0`` its interventional game is ``v(S) = Σ_k c_k 1[T_k ⊆ S]``, the sum-of-unanimity game
    (SOUM) of the Shapley literature (shapiq's ``SOUM``), whose value is ``Σ_{k: j ∈ T_k}
    c_k / |T_k|``. Against any 0/1 rows the values are still closed-form
    (:meth:`shapley_values`).
    """

    X: pd.DataFrame  # rows to explain, 0/1
    background: pd.DataFrame  # 0/1
    terms: list[np.ndarray]  # feature indices of each T_k
    coefficients: np.ndarray  # c_k

    @property
    def feature_names(self) -> list[str]:
        return list(self.X.columns)

    def predict(self, A: np.ndarray) -> np.ndarray:
        A = np.asarray(A, dtype=np.float64)
        out = np.zeros(len(A))
        for c, T in zip(self.coefficients, self.terms, strict=True):
            out += c * A[:, T].prod(axis=1)
        return out

    def shapley_values(
        self, X: pd.DataFrame | np.ndarray, background: pd.DataFrame | np.ndarray
    ) -> np.ndarray:
        """Exact interventional values over an equally weighted 0/1 background.

        For one background row ``b`` a term becomes ``Π_{j ∈ A} 1[j ∈ S] Π_{j ∈ C} 1[j ∉ S]``
        with ``A`` its features where ``x = 1, b = 0`` and ``C`` where ``x = 0, b = 1`` (it is
        constant elsewhere, or zero when some feature is 0 in both). Its value is
        ``(|A| − 1)! |C|! / (|A| + |C|)!`` for a feature of ``A`` and minus
        ``|A|! (|C| − 1)! / (|A| + |C|)!`` for one of ``C``: the chance that the feature is the
        last of ``A`` to join before any of ``C`` (the first of ``C`` after all of ``A``).
        """
        A_rows = np.asarray(X, dtype=np.float64) > 0.5
        B_rows = np.asarray(background, dtype=np.float64) > 0.5
        out = np.zeros(A_rows.shape)
        for i, x in enumerate(A_rows):
            for c, T in zip(self.coefficients, self.terms, strict=True):
                for b in B_rows:
                    xt, bt = x[T], b[T]
                    if np.any(~xt & ~bt):
                        continue
                    gain, loss = T[xt & ~bt], T[~xt & bt]
                    a, k = len(gain), len(loss)
                    if a + k == 0:
                        continue
                    if a:
                        out[i, gain] += c * factorial(a - 1) * factorial(k) / factorial(a + k)
                    if k:
                        out[i, loss] -= c * factorial(a) * factorial(k - 1) / factorial(a + k)
        return out / len(B_rows)


def make_unanimity(
    n_features: int = 20,
    n_terms: int = 50,
    *,
    min_order: int = 1,
    max_order: int | None = None,
    n_samples: int = 1,
    n_background: int = 1,
    random_state: int = 0,
) -> UnanimityProblem:
    """A random sum of unanimity terms, as shapiq's ``SOUM(n, n_basis_games)`` draws them.

    Coefficients are uniform on ``[-1, 1]``; each term's size is uniform on
    ``min_order..max_order`` (default ``n_features``) and its features uniform. With the defaults
    ``n_samples = n_background = 1`` the explained row is all ones and the background row all
    zeros: exactly the SOUM game. More rows are drawn as random 0/1 rows (ones with
    probability 0.8 for explained rows, 0.2 for background rows, so most terms stay active).
    """
    rng = np.random.default_rng(random_state)
    top = n_features if max_order is None else max_order
    coefficients = rng.random(n_terms) * 2 - 1
    sizes = rng.integers(min_order, top, size=n_terms, endpoint=True)
    terms = [np.sort(rng.choice(n_features, size, replace=False)) for size in sizes]
    names = [f"p{j}" for j in range(n_features)]
    X = np.ones((n_samples, n_features))
    B = np.zeros((n_background, n_features))
    if n_samples > 1:
        X[1:] = rng.random((n_samples - 1, n_features)) < 0.8
    if n_background > 1:
        B[1:] = rng.random((n_background - 1, n_features)) < 0.2
    return UnanimityProblem(
        pd.DataFrame(X, columns=names), pd.DataFrame(B, columns=names), terms, coefficients
    )
