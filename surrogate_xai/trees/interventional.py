"""Exact interventional Shapley values of a sum of trees, in polynomial time.

For one explained row ``x``, one background row ``b`` and one tree, the game
``u(S) = tree(x_S, b_S̄)`` is a sum over the leaves a hybrid row can reach. A leaf ``l`` is
reached by the hybrid of coalition ``S`` exactly when every path unit that only ``x`` passes
is in ``S`` (set ``A``) and every one that only ``b`` passes is not (set ``B``); units both
pass are free, and a unit neither passes makes the leaf unreachable. The leaf's game
``v_l [A ⊆ S, B ∩ S = ∅]`` has the closed-form Shapley values ::

    i ∈ A:  + v_l (|A| − 1)! |B|! / (|A| + |B|)!
    j ∈ B:  − v_l |A|! (|B| − 1)! / (|A| + |B|)!

and every other unit gets 0. The leaves worth visiting are found by walking each tree with
``x`` and ``b`` together: where both go the same way there is one path; where they part on
a unit not yet assigned, the walk forks (the unit joins ``A`` on ``x``'s side and ``B`` on
``b``'s); where they part on an assigned unit, the assignment decides. The walk is vectorised
over (explained row, background row, tree) triples, one tree level at a time.

The game is linear in the background, so the values over a weighted background are the
weighted sums over its rows. A row's values are summed in an order that depends only on that
row, the background and the trees, never on the other rows explained with it: bit-identical
whatever the batch.
"""

from __future__ import annotations

from math import factorial

import numpy as np

from .graph import Ensemble

#: Triples (explained row, background row, tree) walked at once: bounds memory (each can fork
#: into a few dozen walks on deep trees) while keeping numpy's per-call overhead small.
TRIPLES_PER_BATCH = 32_768


def node_units(ensemble: Ensemble, column_unit: np.ndarray) -> np.ndarray:
    """The attribution unit of each node's tested column (-1 at leaves).

    ``column_unit[t]`` is the unit of the trees' input column ``t``.
    """
    units = np.full(len(ensemble.feature), -1, dtype=np.intp)
    inner = ~ensemble.is_leaf
    units[inner] = column_unit[ensemble.feature[inner]]
    return units


def _coefficients(depth: int) -> tuple[np.ndarray, np.ndarray]:
    """``coef_a[a, b]`` and ``coef_b[a, b]``: the leaf weights of a unit in A and in B."""
    k = depth + 1
    a = np.arange(k)[:, None]
    b = np.arange(k)[None, :]
    fact = np.array([float(factorial(i)) for i in range(2 * k + 1)])
    n = a + b
    coef_a = np.where(a > 0, fact[np.maximum(a - 1, 0)] * fact[b] / fact[n], 0.0)
    coef_b = np.where(b > 0, -fact[a] * fact[np.maximum(b - 1, 0)] / fact[n], 0.0)
    return coef_a, coef_b


def interventional_values(
    ensemble: Ensemble,
    leaf_values: np.ndarray,
    units: np.ndarray,
    n_units: int,
    dec_x: np.ndarray,
    dec_b: np.ndarray,
    weights: np.ndarray,
    background_chunk: int | None = None,
) -> np.ndarray:
    """Exact interventional Shapley values of the trees' scores.

    Parameters
    ----------
    ensemble : Ensemble
    leaf_values : array of shape (n_nodes, n_outputs)
        What each leaf adds to each explained score (the margin columns).
    units : int array of shape (n_nodes,)
        Unit of each interior node (see :func:`node_units`).
    n_units : int
    dec_x : bool array of shape (n_samples, n_nodes)
        Decisions of the explained rows (``Ensemble.decisions``).
    dec_b : bool array of shape (n_background, n_nodes)
    weights : array of shape (n_background,)
    background_chunk : int, optional
        Background rows walked together; the default depends on the number of trees only.

    Returns
    -------
    values : array of shape (n_samples, n_units, n_outputs)
    """
    n_x, n_b = len(dec_x), len(dec_b)
    n_out = leaf_values.shape[1]
    T = ensemble.n_trees
    out = np.zeros((n_x, n_units, n_out))
    if n_x == 0 or n_units == 0:
        return out
    m = background_chunk or max(1, min(n_b, TRIPLES_PER_BATCH // max(T, 1)))
    rows_per = max(1, TRIPLES_PER_BATCH // (m * T))
    coef_a, coef_b = _coefficients(ensemble.depth)
    for x0 in range(0, n_x, rows_per):
        xs = np.arange(x0, min(x0 + rows_per, n_x))
        for b0 in range(0, n_b, m):
            bs = np.arange(b0, min(b0 + m, n_b))
            _walk(
                ensemble,
                leaf_values,
                units,
                n_units,
                dec_x,
                dec_b,
                weights,
                xs,
                bs,
                coef_a,
                coef_b,
                out,
            )
    return out


def _walk(
    e: Ensemble,
    leaf_values: np.ndarray,
    units: np.ndarray,
    n_units: int,
    dec_x: np.ndarray,
    dec_b: np.ndarray,
    weights: np.ndarray,
    xs: np.ndarray,
    bs: np.ndarray,
    coef_a: np.ndarray,
    coef_b: np.ndarray,
    out: np.ndarray,
) -> None:
    """Walk all trees for the pairs ``xs × bs`` and add their values into ``out``."""
    T, depth = e.n_trees, e.depth
    # Entries ordered by explained row, then background row, then tree.
    xi = np.repeat(xs, len(bs) * T)
    bi = np.tile(np.repeat(bs, T), len(xs))
    node = np.tile(e.roots, len(xs) * len(bs))
    path_unit = np.full((len(node), max(depth, 1)), -1, dtype=np.intp)
    path_side = np.zeros((len(node), max(depth, 1)), dtype=bool)  # True: only x passes
    n_set = np.zeros(len(node), dtype=np.intp)
    n_cells = out.shape[0] * n_units
    flat = out.reshape(n_cells, -1)
    x_base = xs[0]
    while len(node):
        leaf = e.is_leaf[node]
        done = leaf & (n_set > 0)
        if done.any():
            _finish(
                leaf_values,
                weights,
                xi[done] - x_base,
                bi[done],
                node[done],
                path_unit[done],
                path_side[done],
                n_set[done],
                coef_a,
                coef_b,
                n_units,
                flat[x_base * n_units :],
            )
        go = ~leaf
        if not go.any():
            break
        xi, bi, node = xi[go], bi[go], node[go]
        path_unit, path_side, n_set = path_unit[go], path_side[go], n_set[go]
        u = units[node]
        gx = dec_x[xi, node]
        gb = dec_b[bi, node]
        to_x = np.where(gx, e.true_next[node], e.false_next[node])
        to_b = np.where(gb, e.true_next[node], e.false_next[node])
        match = path_unit == u[:, None]
        known = match.any(axis=1)
        on_x = (match & path_side).any(axis=1)
        same = gx == gb
        nxt = np.where(same | (known & on_x), to_x, to_b)
        fork = ~same & ~known
        if fork.any():
            f = np.flatnonzero(fork)
            slot = n_set[f]
            pu_x, ps_x = path_unit[f].copy(), path_side[f].copy()
            pu_x[np.arange(len(f)), slot] = u[f]
            ps_x[np.arange(len(f)), slot] = True
            pu_b = pu_x.copy()
            ps_b = ps_x.copy()
            ps_b[np.arange(len(f)), slot] = False
            nxt[f] = to_x[f]
            path_unit[f], path_side[f] = pu_x, ps_x
            n_set[f] += 1
            xi = np.concatenate([xi, xi[f]])
            bi = np.concatenate([bi, bi[f]])
            node = np.concatenate([nxt, to_b[f]])
            path_unit = np.concatenate([path_unit, pu_b])
            path_side = np.concatenate([path_side, ps_b])
            n_set = np.concatenate([n_set, n_set[f]])
        else:
            node = nxt


def _finish(
    leaf_values: np.ndarray,
    weights: np.ndarray,
    xi: np.ndarray,
    bi: np.ndarray,
    node: np.ndarray,
    path_unit: np.ndarray,
    path_side: np.ndarray,
    n_set: np.ndarray,
    coef_a: np.ndarray,
    coef_b: np.ndarray,
    n_units: int,
    flat: np.ndarray,
) -> None:
    """Add the closed-form values of the leaves reached into ``flat`` (rows × units)."""
    used = np.arange(path_unit.shape[1])[None, :] < n_set[:, None]
    n_a = (path_side & used).sum(axis=1)
    n_b = n_set - n_a
    value = leaf_values[node] * weights[bi][:, None]  # (E, n_out)
    ca = coef_a[n_a, n_b]
    cb = coef_b[n_a, n_b]
    share = np.where(path_side, ca[:, None], cb[:, None])  # (E, slots)
    r, s = np.nonzero(used)
    cell = xi[r] * n_units + path_unit[r, s]
    size = flat.shape[0]
    for o in range(value.shape[1]):
        flat[:, o] += np.bincount(cell, weights=share[r, s] * value[r, o], minlength=size)[:size]
