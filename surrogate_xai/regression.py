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
    # Through the (d - 1) x (d - 1) normal equations rather than an SVD of each tall design:
    # several times cheaper for many blocks of a wide design (KernelSHAP at d = 100 builds
    # hundreds). Coalition designs are well conditioned, so squaring the condition number
    # costs nothing measurable; eigenvalues below 1e-12 of the largest are treated as zero,
    # which gives the minimum-norm solution of a rank-deficient design as the pseudo-inverse
    # would.
    Xt = np.swapaxes(X, -1, -2)
    eigval, eigvec = np.linalg.eigh(Xt @ X)
    floor = 1e-12 * eigval.max(axis=-1, keepdims=True)
    inv_val = np.divide(1.0, eigval, out=np.zeros_like(eigval), where=eigval > floor)
    P = ((eigvec * inv_val[..., None, :]) @ (np.swapaxes(eigvec, -1, -2) @ Xt)) * root[..., None, :]
    G = Q @ P
    sizes = Z.sum(axis=-1)
    h = (1.0 - np.einsum("...jm,...m->...j", G, sizes)) / d
    return G, h


# -- unconstrained fits with an intercept: the local surrogates ----------------------------------
#
# A local surrogate regresses the model's outputs on designed regressors ``U`` (standardised
# deltas, replacement indicators) with a free intercept and no efficiency constraint. As for
# KernelSHAP, the design and the weights are shared by every explained row, so the fit is a
# linear map computed once per design and applied to each row's targets.


def weighted_gram(U: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted means and centred Gram matrix of a design.

    Parameters
    ----------
    U : array of shape (n_rows, n_regressors)
    weights : array of shape (n_rows,)
        Non-negative weights; they are normalised to sum to one.

    Returns
    -------
    w : array of shape (n_rows,)
        The normalised weights.
    mean : array of shape (n_regressors,)
        ``w @ U``.
    gram : array of shape (n_regressors, n_regressors)
        ``(U − mean)ᵀ diag(w) (U − mean)``.
    """
    U = np.asarray(U, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mean = w @ U
    centred = U - mean
    return w, mean, centred.T @ (w[:, None] * centred)


def weighted_ridge_map(
    U: np.ndarray, weights: np.ndarray, alpha: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Linear maps of the weighted ridge fit with an unpenalised intercept.

    For targets ``y`` the fit minimises ::

        Σ_i w_i (y_i − a − u_i·c)² + alpha ‖c‖²        (w normalised to sum to one)

    Parameters
    ----------
    U : array of shape (n_rows, n_regressors)
    weights : array of shape (n_rows,)
    alpha : float
        Ridge penalty, in the units of the normalised weights (0: weighted least squares).

    Returns
    -------
    G : array of shape (n_regressors, n_rows)
        Slopes ``c = G @ y``.
    g0 : array of shape (n_rows,)
        Intercept ``a = g0 @ y``. A rank-deficient unpenalised design gets the minimum-norm
        slopes (pseudo-inverse), as :func:`constrained_wls_map` does.
    """
    w, mean, gram = weighted_gram(U, weights)
    centred = np.asarray(U, dtype=np.float64) - mean
    system = gram + alpha * np.eye(gram.shape[0])
    G = np.linalg.pinv(system, hermitian=True) @ (centred * w[:, None]).T
    return G, w - G.T @ mean


def lasso_path_gram(
    gram: np.ndarray,
    xy: np.ndarray,
    *,
    alpha: float = 0.0,
    max_active: int | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted lasso slopes from the centred Gram form (LARS-lasso path).

    Minimises ``½ Σ_i w_i (y_i − a − u_i·c)² + alpha ‖c‖₁`` given ``gram`` from
    :func:`weighted_gram` and ``xy = (U − mean)ᵀ diag(w) y``.

    Parameters
    ----------
    gram : array of shape (n_regressors, n_regressors)
    xy : array of shape (n_regressors,)
    alpha : float
        L1 penalty; the path stops there.
    max_active : int, optional
        Return the last point of the path with at most this many active groups instead.
    groups : int array of shape (n_regressors,), optional
        Group of each regressor for ``max_active`` (default: each regressor its own).

    Returns
    -------
    coef : array of shape (n_regressors,)
    """
    from sklearn.linear_model import lars_path_gram

    _, _, path = lars_path_gram(
        np.array(xy, dtype=np.float64),
        np.array(gram, dtype=np.float64),
        n_samples=1,
        alpha_min=alpha,
        method="lasso",
    )
    if max_active is None:
        return np.asarray(path[:, -1])
    owner = np.arange(len(xy)) if groups is None else np.asarray(groups)
    best = np.zeros(len(xy))
    for step in range(path.shape[1]):
        active = np.unique(owner[path[:, step] != 0])
        if len(active) > max_active:
            break
        best = path[:, step]
    return np.asarray(best)
