"""Weighted least squares under an efficiency constraint: the core shared by the regression
estimators (KernelSHAP's per-baseline blocks, and local surrogates).

For coalition vectors ``z`` (rows of ``Z``), targets ``y`` and weights ``w`` it returns the linear
map of the solution of ::

    minimise  Σ_k w_k (y_k − z_k·φ)²   subject to   Σ_j φ_j = Δ

as ``φ = G y + h Δ``. The map depends only on ``Z`` and ``w``, so it is computed once per
design and applied to the targets of every explained row.
"""

from __future__ import annotations

import numpy as np


def sum_zero_basis(n_features: int) -> np.ndarray:
    """Orthonormal basis of the vectors whose entries sum to zero, shape ``(d, d - 1)``."""
    ones = np.ones((n_features, 1))
    full = np.linalg.qr(np.hstack([ones, np.eye(n_features)[:, : n_features - 1]]))[0]
    return full[:, 1:]


def constrained_wls_map(Z: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear map of the efficiency-constrained weighted least-squares solution.

    Parameters
    ----------
    Z : array of shape (..., n_rows, n_features)
        Design rows (0/1 coalition indicators, or any real design).
    weights : array of shape (..., n_rows)
        Non-negative regression weights.

    Returns
    -------
    G : array of shape (..., n_features, n_rows)
    h : array of shape (..., n_features)
        The solution for targets ``y`` and total ``Δ`` is ``G @ y + h * Δ``. A rank-deficient
        design gets the minimum-norm solution (pseudo-inverse) rather than an error.
    """
    Z = np.asarray(Z, dtype=np.float64)
    d = Z.shape[-1]
    if d == 1:
        shape = Z.shape[:-2]
        return np.zeros((*shape, 1, Z.shape[-2])), np.ones((*shape, 1))
    Q = sum_zero_basis(d)
    root = np.sqrt(np.asarray(weights, dtype=np.float64))
    X = root[..., :, None] * (Z @ Q)
    P = np.linalg.pinv(X) * root[..., None, :]
    G = Q @ P
    sizes = Z.sum(axis=-1)
    h = (1.0 - np.einsum("...jm,...m->...j", G, sizes)) / d
    return G, h
