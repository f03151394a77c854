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

from dataclasses import dataclass
from functools import cached_property
from math import factorial

import numpy as np

from .graph import Ensemble

#: Triples (explained row, background row, tree) walked at once: bounds memory (each can fork
#: into a few dozen walks on deep trees) while keeping numpy's per-call overhead small.
TRIPLES_PER_BATCH = 131_072


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


@dataclass(frozen=True, eq=False)
class TreeGame:
    """What stays fixed while rows are explained: the trees, their units, the background.

    Attributes
    ----------
    ensemble : Ensemble
    leaf_values : array of shape (n_nodes, n_outputs)
        What each leaf adds to each explained score (the margin columns).
    units : int array of shape (n_nodes,)
        Unit of each interior node (see :func:`node_units`).
    n_units : int
    dec_b : bool array of shape (n_background, n_nodes)
        Decisions of the background rows (``Ensemble.decisions``).
    weights : array of shape (n_background,)
    """

    ensemble: Ensemble
    leaf_values: np.ndarray
    units: np.ndarray
    n_units: int
    dec_b: np.ndarray
    weights: np.ndarray

    @cached_property
    def layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``tree_of``, ``slot``, ``slot_unit``: each node's tree, the position of its unit
        among the units its tree tests, and each tree's units by position (-1 padded).

        Walks record their units as bits of these per-tree positions: a tree of depth 6
        tests at most 63 units, so one 64-bit word holds a walk's sets whatever ``d`` is.
        """
        e = self.ensemble
        tree_of = np.full(len(e.feature), -1, dtype=np.intp)
        level = e.roots
        tree_of[level] = np.arange(e.n_trees)
        while len(level):
            level = level[~e.is_leaf[level]]
            for nxt in (e.true_next[level], e.false_next[level]):
                tree_of[nxt] = tree_of[level]
            level = np.unique(np.concatenate([e.true_next[level], e.false_next[level]]))
        inner = np.flatnonzero(~e.is_leaf)
        pairs = np.unique(np.stack([tree_of[inner], self.units[inner]], axis=1), axis=0)
        counts = np.bincount(pairs[:, 0], minlength=e.n_trees)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(len(pairs)) - starts[pairs[:, 0]]
        slot_unit = np.full((e.n_trees, max(int(counts.max(initial=0)), 1)), -1, dtype=np.intp)
        slot_unit[pairs[:, 0], rank] = pairs[:, 1]
        slot = np.full(len(e.feature), -1, dtype=np.intp)
        key = tree_of[inner] * (self.n_units + 1) + self.units[inner]
        order = pairs[:, 0] * (self.n_units + 1) + pairs[:, 1]  # sorted, as np.unique sorts
        slot[inner] = rank[np.searchsorted(order, key)]
        return tree_of, slot, slot_unit


def interventional_values(
    game: TreeGame, dec_x: np.ndarray, background_chunk: int | None = None
) -> np.ndarray:
    """Exact interventional Shapley values of the trees' scores.

    Parameters
    ----------
    game : TreeGame
    dec_x : bool array of shape (n_samples, n_nodes)
        Decisions of the explained rows (``Ensemble.decisions``).
    background_chunk : int, optional
        Background rows walked together; the default depends on the number of trees only.

    Returns
    -------
    values : array of shape (n_samples, n_units, n_outputs)
    """
    n_x, n_b = len(dec_x), len(game.dec_b)
    T = game.ensemble.n_trees
    out = np.zeros((n_x, game.n_units, game.leaf_values.shape[1]))
    if n_x == 0 or game.n_units == 0:
        return out
    m = background_chunk or max(1, min(n_b, TRIPLES_PER_BATCH // max(T, 1)))
    rows_per = max(1, TRIPLES_PER_BATCH // (m * T))
    coef = _coefficients(game.ensemble.depth)
    for x0 in range(0, n_x, rows_per):
        xs = np.arange(x0, min(x0 + rows_per, n_x))
        for b0 in range(0, n_b, m):
            _walk(game, dec_x, xs, np.arange(b0, min(b0 + m, n_b)), coef, out)
    return out


def _walk(
    game: TreeGame,
    dec_x: np.ndarray,
    xs: np.ndarray,
    bs: np.ndarray,
    coef: tuple[np.ndarray, np.ndarray],
    out: np.ndarray,
) -> None:
    """Walk all trees for the pairs ``xs × bs`` and add their values into ``out``.

    A walk's assignment is two bit sets over its tree's units, ``on_x`` (only ``x`` passes:
    set A) and ``on_b`` (set B): one uint64 per walk when every tree tests at most 64 units
    (any tree of depth <= 6), else one row of words.
    """
    e = game.ensemble
    T = e.n_trees
    _, slot, slot_unit = game.layout
    n_words = -(-slot_unit.shape[1] // 64)
    n_nodes = dec_x.shape[1]
    x_base = xs[0]
    # Entries ordered by explained row, then background row, then tree. A walk keeps the
    # offsets of its two rows in the flattened decision tables.
    px = np.repeat((xs - x_base) * n_nodes, len(bs) * T)
    pb = np.tile(np.repeat(bs * n_nodes, T), len(xs))
    node = np.tile(e.roots, len(xs) * len(bs))
    shape = (len(node),) if n_words == 1 else (len(node), n_words)
    on_x = np.zeros(shape, dtype=np.uint64)
    on_b = np.zeros(shape, dtype=np.uint64)
    flat_x, flat_b = dec_x[x_base:].ravel(), game.dec_b.ravel()
    child = np.stack([e.false_next, e.true_next], axis=1).ravel()  # [node * 2 + went true]
    word = slot // 64
    bit = np.left_shift(np.uint64(1), (slot % 64).astype(np.uint64))
    flat = out.reshape(out.shape[0] * game.n_units, -1)[x_base * game.n_units :]
    while len(node):
        leaf = e.is_leaf[node]
        if leaf.any():
            done = np.flatnonzero(leaf)
            _finish(
                game, px[done] // n_nodes, pb[done] // n_nodes, node[done], on_x[done],
                on_b[done], coef, flat,
            )  # fmt: skip
            go = ~leaf
            px, pb, node, on_x, on_b = px[go], pb[go], node[go], on_x[go], on_b[go]
            if not len(node):
                break
        gx = flat_x[px + node]
        gb = flat_b[pb + node]
        to_x = child[2 * node + gx]
        to_b = child[2 * node + gb]
        m = bit[node]
        if n_words == 1:
            in_a = (on_x & m) != 0
            assigned = ((on_x | on_b) & m) != 0
        else:
            rows, w = np.arange(len(node)), word[node]
            in_a = (on_x[rows, w] & m) != 0
            assigned = ((on_x[rows, w] | on_b[rows, w]) & m) != 0
        same = gx == gb
        fork = np.flatnonzero(~same & ~assigned)
        node = np.where(same | in_a, to_x, to_b)
        if len(fork):
            # The walk goes on to x's side with the unit in A, a copy to b's with it in B.
            fm = m[fork]
            copy_x, copy_b = on_x[fork], on_b[fork]
            if n_words == 1:
                copy_b |= fm
                on_x[fork] |= fm
            else:
                fw = w[fork]
                copy_b[np.arange(len(fork)), fw] |= fm
                on_x[fork, fw] |= fm
            node[fork] = to_x[fork]
            px = np.concatenate([px, px[fork]])
            pb = np.concatenate([pb, pb[fork]])
            node = np.concatenate([node, to_b[fork]])
            on_x = np.concatenate([on_x, copy_x])
            on_b = np.concatenate([on_b, copy_b])


def _finish(
    game: TreeGame,
    xi: np.ndarray,
    bi: np.ndarray,
    node: np.ndarray,
    on_x: np.ndarray,
    on_b: np.ndarray,
    coef: tuple[np.ndarray, np.ndarray],
    flat: np.ndarray,
) -> None:
    """Add the closed-form values of the leaves reached into ``flat`` (rows × units).

    A walk's bits are positions among its tree's units (``TreeGame.layout``).
    """
    on_x, on_b = on_x.reshape(len(on_x), -1), on_b.reshape(len(on_b), -1)
    n_a = np.bitwise_count(on_x).sum(axis=1, dtype=np.intp)
    n_b = np.bitwise_count(on_b).sum(axis=1, dtype=np.intp)
    keep = np.flatnonzero((n_a + n_b) > 0)
    if not len(keep):
        return
    xi, node, n_a, n_b = xi[keep], node[keep], n_a[keep], n_b[keep]
    value = game.leaf_values[node] * game.weights[bi[keep]][:, None]  # (E, n_out)
    coef_a, coef_b = coef
    n_units = game.n_units
    tree_of, _, slot_unit = game.layout
    tree = tree_of[node]
    one = np.uint64(1)
    cells: list[np.ndarray] = []
    shares: list[np.ndarray] = []
    walks: list[np.ndarray] = []
    for sets, share in ((on_x[keep], coef_a[n_a, n_b]), (on_b[keep], coef_b[n_a, n_b])):
        for w in range(sets.shape[1]):
            # Peel off the lowest set bit of every walk's word until none is left: each
            # round gives one unit per walk (a path has at most depth units).
            bits = sets[:, w].copy()
            live = np.flatnonzero(bits)
            while len(live):
                word = bits[live]
                low = word & (~word + one)
                position = np.bitwise_count(low - one).astype(np.intp) + 64 * w
                cells.append(xi[live] * n_units + slot_unit[tree[live], position])
                shares.append(share[live])
                walks.append(live)
                bits[live] = word ^ low
                live = live[bits[live] != 0]
    # One sum per output; a cell's terms come in an order fixed by its own row's walks.
    cell = np.concatenate(cells)
    share = np.concatenate(shares)
    walk = np.concatenate(walks)
    size = flat.shape[0]
    for o in range(value.shape[1]):
        flat[:, o] += np.bincount(cell, weights=share * value[walk, o], minlength=size)[:size]
