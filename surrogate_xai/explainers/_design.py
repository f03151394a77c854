"""Sampling designs: which coalitions are evaluated against which background rows.

The interventional game ``v(S) = Σ_b w_b f(x_S, b_S̄)`` is linear in the background, so its
Shapley value is the weighted mean over background rows ``b`` of the Shapley values of the
single-baseline games ``u_b(S) = f(x_S, b_S̄)``. Every estimator here is built from *blocks*:
a block pairs one background row with a set of coalitions and yields a linear estimate of that
baseline's Shapley values, ::

    φ_k = G_k (y_k − f(b_k)) + h_k (f(x) − f(b_k)),

where ``y_k`` holds the model's outputs on the block's rows. Both ``f(b)`` (computed once per fit)
and ``f(x)`` are known exactly, so every block is efficient by construction. Blocks are exact for
additive games and, with paired coalitions or antithetic permutations, for games with pairwise
interactions; averaging blocks over background rows replaces evaluating every background row
for every coalition, which is where model evaluations go in classical KernelSHAP.

A design depends on the seed and the problem size only, never on the rows explained, so all
rows share it and each row's result is independent of batch composition and order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import combinations
from math import comb, factorial

import numpy as np

from ..exceptions import ConfigurationError
from ..regression import constrained_wls_map


@dataclass(frozen=True)
class PairSandwich:
    """Pieces of the HC3 sandwich variance of regression blocks, pairs as sampling units.

    Attributes
    ----------
    masks : float array of shape (n_blocks, rows_per_block, n_units)
        The coalitions as numbers, for residuals ``y − Z φ``.
    G_first, G_second : arrays of shape (n_blocks, n_units, n_pairs)
        The columns of ``G`` of each sampled pair's coalition and of its complement.
    inverse : array of shape (n_blocks, n_pairs, 2, 2)
        ``(I − H_pp)^-1``, with ``H_pp`` the pair's block of the hat matrix.
    rows : int array of shape (n_pairs, 2)
        Rows of each pair within a block.
    """

    masks: np.ndarray
    G_first: np.ndarray
    G_second: np.ndarray
    inverse: np.ndarray
    rows: np.ndarray


@dataclass(frozen=True)
class Relabeling:
    """Blocks built from a few base designs with their units relabelled.

    Block ``k`` is base design ``base[k]`` with unit ``u`` playing the base design's unit
    ``units[k, u]``. The Shapley kernel is the same for every labelling, so a relabelled base
    design is as valid a sample as a fresh one, and its regression map is the base map with
    rows permuted: no solve per block. That keeps wide designs (d = 100, a thousand
    background rows) to a few dozen solves and megabytes instead of a thousand and gigabytes.
    """

    base: np.ndarray  # (n_blocks,) index into the leading axis of the design's arrays
    units: np.ndarray | None  # (n_blocks, n_units) a permutation per block; None: as in base


@dataclass(frozen=True)
class BlockDesign:
    """Blocks of coalitions, each evaluated against one background row.

    Attributes
    ----------
    masks : bool array of shape (n_blocks or 1, rows_per_block, n_units)
        Coalitions per block (never empty or full: those values are known).
    G : array of shape (n_blocks or 1, n_units, rows_per_block)
    h : array of shape (n_blocks or 1, n_units)
        The linear map of each block (width 0 and unused when ``pairs`` gives the
        difference form).
    baselines : int array of shape (n_blocks,)
        Background row of each block.
    exact_blocks : bool
        Each block is the exact Shapley value of its baseline's game.
    cycles : int
        Complete passes over the background (0 when fewer blocks than background rows).
    """

    masks: np.ndarray
    G: np.ndarray
    h: np.ndarray
    baselines: np.ndarray
    exact_blocks: bool
    cycles: int
    n_background: int
    #: Optional difference form, arrays of shape (n_blocks or 1, n_units, n_terms): unit
    #: ``i``'s value is ``Σ_p weight[i, p] (v[plus[i, p]] − v[minus[i, p]])`` over the block's
    #: values ``v`` of ``[∅, masks..., full]``. Exact enumeration and permutations use it, so
    #: that a unit the model ignores gets exactly zero (every difference is exactly zero)
    #: rather than the rounding noise of a matrix product.
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    #: Optional, for regression blocks: what each block's own standard error needs.
    sandwich: PairSandwich | None = None
    #: Optional: the arrays above hold base designs that blocks relabel.
    layout: Relabeling | None = None
    #: Optional, for regression blocks: each base design's row weights, and the first row that
    #: was sampled rather than enumerated (rows before it are fixed by the design).
    weights: np.ndarray | None = None
    sampled_from: int = 0
    #: Optional second estimate from all of a row's block outputs at once (see odd.py): called
    #: as ``refit(y, delta, weights)`` with the centred outputs ``(n_blocks, rows, outputs)``,
    #: ``f(x) − f(b)`` per block and the blocks' background weights; returns values, stderr.
    refit: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = (
        None
    )
    #: The standard-error model: honest spreads (see _estimate.honest_variance) and exactly
    #: zero units, or the plain spread between blocks of releases before them.
    honest_errors: bool = True

    def __post_init__(self) -> None:
        # Designs are cached and shared between calls and threads: make them read-only.
        for value in (self.masks, self.G, self.h, self.baselines):
            value.flags.writeable = False

    @property
    def n_blocks(self) -> int:
        return len(self.baselines)

    @property
    def rows_per_block(self) -> int:
        return self.masks.shape[1]

    @property
    def exact(self) -> bool:
        """The design yields the exact game value (no sampling anywhere)."""
        return self.exact_blocks and self.cycles >= 1

    def block(self, k: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """masks, G, h of the blocks in ``k`` (broadcast when shared by all blocks)."""
        if self.layout is not None and self.layout.units is None:
            r = self.layout.base[k]
            return self.masks[r], self.G[r], self.h[r]
        if self.layout is not None and self.layout.units is not None:
            r, units = self.layout.base[k], self.layout.units[k]
            return (
                np.take_along_axis(self.masks[r], units[:, None, :], axis=2),
                np.take_along_axis(self.G[r], units[:, :, None], axis=1),
                np.take_along_axis(self.h[r], units, axis=1),
            )
        n = len(range(*k.indices(self.n_blocks)))

        def per_block(a: np.ndarray) -> np.ndarray:
            return np.broadcast_to(a, (n, *a.shape[1:])) if a.shape[0] == 1 else a[k]

        return per_block(self.masks), per_block(self.G), per_block(self.h)

    def sandwich_block(self, k: slice) -> PairSandwich:
        """The sandwich pieces of the blocks in ``k``."""
        sw = self.sandwich
        if sw is None:
            raise ValueError("this design has no per-block variance")
        if self.layout is None:
            return PairSandwich(sw.masks[k], sw.G_first[k], sw.G_second[k], sw.inverse[k], sw.rows)
        r, units = self.layout.base[k], self.layout.units
        if units is None:
            return PairSandwich(sw.masks[r], sw.G_first[r], sw.G_second[r], sw.inverse[r], sw.rows)
        units = units[k]
        return PairSandwich(
            np.take_along_axis(sw.masks[r], units[:, None, :], axis=2),
            np.take_along_axis(sw.G_first[r], units[:, :, None], axis=1),
            np.take_along_axis(sw.G_second[r], units[:, :, None], axis=1),
            sw.inverse[r],  # the hat matrix does not depend on the labels
            sw.rows,
        )


# -- block size planning ------------------------------------------------------------------


@dataclass(frozen=True)
class BlockPlan:
    n_blocks: int
    rows_per_block: int
    cycles: int


def plan_blocks(
    max_evals: int,
    n_background: int,
    min_rows: int,
    unit: int,
    max_rows: int | None,
    grow: bool,
) -> BlockPlan:
    """How many blocks of how many rows fit in ``max_evals`` model rows per explained row.

    One row per explained row is kept for ``f(x)``. The budget buys as many minimal blocks as
    fit, cycling through the background in random passes (fewer blocks than background rows
    draw the rows without replacement). With ``grow`` (regression blocks, whose variance falls
    quickly with their size and which carry their own standard error) one whole pass is kept
    once affordable and the spare budget makes blocks larger instead.
    """
    budget = max_evals - 1
    rows = min_rows if max_rows is None else min(min_rows, max_rows)
    most = budget // max(rows, 1)
    if most < 2:
        raise ConfigurationError(
            f"max_evals={max_evals} is too small: one block costs {rows} model rows and at least "
            f"two blocks are needed for a standard error; use max_evals >= {2 * rows + 1}"
        )
    if not grow or most < n_background:
        return BlockPlan(most, rows, most // n_background)
    grown = (budget // n_background) // unit * unit
    rows = max(rows, grown if max_rows is None else min(max_rows, grown))
    return BlockPlan(n_background, rows, 1)


def baseline_schedule(n_background: int, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Background rows for each block: whole random passes, the last one possibly partial."""
    passes = -(-n_blocks // n_background)
    order = np.concatenate([rng.permutation(n_background) for _ in range(passes)])
    return order[:n_blocks].astype(np.intp)


# -- exact enumeration ---------------------------------------------------------------------


def all_coalitions(n_units: int) -> np.ndarray:
    """Every coalition except the empty and the full one, shape ``(2**d - 2, d)``."""
    codes = np.arange(1, 2**n_units - 1, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n_units)) & 1).astype(bool)


def coalitions_of_size(n_units: int, size: int) -> np.ndarray:
    """Every coalition of ``size`` units, shape ``(comb(d, size), d)``."""
    index = np.array(list(combinations(range(n_units), size)), dtype=np.intp)
    out = np.zeros((len(index), n_units), dtype=bool)
    out[np.arange(len(index))[:, None], index] = True
    return out


def shapley_map(n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """``G, h`` of the exact Shapley value over :func:`all_coalitions`."""
    masks = all_coalitions(n_units)
    sizes = masks.sum(axis=1)
    d = n_units
    # φ_i = Σ_{S∌i} s!(d−s−1)!/d! [v(S∪i) − v(S)]: a coalition T with i ∈ T enters with the
    # weight of T∖i, one without i with minus the weight of T.
    weight = np.array([factorial(s) * factorial(d - s - 1) / factorial(d) for s in range(d)])
    with_i = weight[np.clip(sizes - 1, 0, d - 1)]
    without_i = -weight[np.clip(sizes, 0, d - 1)]
    G = np.where(masks.T, with_i[None, :], without_i[None, :])
    h = np.full(d, weight[d - 1])
    return G, h


def shapley_pairs(n_units: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference form of the Shapley value over coalition codes ``0 .. 2**d − 1``."""
    d = n_units
    codes = np.arange(2**d, dtype=np.int64)
    sizes = np.array([bin(c).count("1") for c in range(2**d)])
    weight = np.array([factorial(s) * factorial(d - s - 1) / factorial(d) for s in range(d)])
    plus, minus, w = [], [], []
    for i in range(d):
        without = codes[(codes >> i) & 1 == 0]
        plus.append(without | (1 << i))
        minus.append(without)
        w.append(weight[sizes[without]])
    return np.array(plus)[None], np.array(minus)[None], np.array(w)[None]


def exact_design(n_units: int, n_background: int) -> BlockDesign:
    G, h = shapley_map(n_units) if n_units > 1 else (np.zeros((1, 0)), np.ones(1))
    masks = all_coalitions(n_units) if n_units > 1 else np.zeros((0, 1), dtype=bool)
    return BlockDesign(
        masks=masks[None],
        G=G[None],
        h=h[None],
        baselines=np.arange(n_background, dtype=np.intp),
        exact_blocks=True,
        cycles=1,
        n_background=n_background,
        pairs=shapley_pairs(n_units),
    )


# -- KernelSHAP blocks ---------------------------------------------------------------------


#: Distinct base designs solved for KernelSHAP; blocks beyond them relabel one.
_BASE_DESIGNS = 64
#: Entries (base designs x rows x units) a KernelSHAP design holds at most, beyond 8 base
#: designs: its solves cost base designs x rows x d², so without a cap a wide design cost more
#: than its model rows (d = 60 at 64 passes: 9.45 s against PermutationSHAP's 1.59 s). Relabelled
#: blocks stay distinct samples, so fewer base designs cost no measurable accuracy.
_DESIGN_ENTRIES = 2**22


def kernel_size_mass(n_units: int) -> np.ndarray:
    """Shapley-kernel probability mass of each coalition size 0..d (0 at both ends)."""
    d = n_units
    mass = np.zeros(d + 1)
    s = np.arange(1, d)
    mass[1:d] = (d - 1) / (s * (d - s))
    return mass / mass.sum()


def random_coalitions(n_units: int, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random coalitions of the given sizes, shape ``(*sizes.shape, d)``."""
    keys = rng.random((*sizes.shape, n_units))
    ranks = np.argsort(np.argsort(keys, axis=-1), axis=-1)
    return ranks < sizes[..., None]


def systematic_sizes(
    sizes: np.ndarray, p: np.ndarray, n_blocks: int, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Coalition sizes by systematic sampling: each size gets its share of draws up to one.

    Stratifying the sizes keeps every block's design close to the kernel's, so no block is a
    badly conditioned regression by the luck of its size draws.
    """
    u = (rng.random((n_blocks, 1)) + np.arange(n_draws)) / n_draws
    drawn = sizes[np.minimum(np.searchsorted(np.cumsum(p), u), len(sizes) - 1)]
    return rng.permuted(drawn, axis=1)


def kernel_design(
    n_units: int,
    rows: int,
    baselines: np.ndarray,
    cycles: int,
    n_background: int,
    rng: np.random.Generator,
    n_base: int = _BASE_DESIGNS,
    relabel: bool = True,
    capped: bool = True,
) -> BlockDesign:
    """Blocks of ``rows`` paired coalitions weighted by the Shapley kernel.

    Sizes whose every coalition fits in the block's share of the kernel mass are enumerated
    (the heaviest, smallest and largest, first); the rest is sampled in complementary pairs.
    ``n_base`` base designs are solved; block ``k`` uses base ``k mod n_base``, its units
    relabelled at random unless ``relabel`` is false; ``capped`` (the default since the
    estimators' revision 2) limits a wide design to :data:`_DESIGN_ENTRIES` entries.
    """
    d = n_units
    if rows >= 2**d - 2:
        G, h = shapley_map(d)
        return BlockDesign(
            all_coalitions(d)[None],
            G[None],
            h[None],
            baselines,
            True,
            cycles,
            n_background,
            pairs=shapley_pairs(d),
        )
    mass = kernel_size_mass(d)
    left, left_mass = rows, 1.0
    fixed: list[np.ndarray] = []
    fixed_w: list[np.ndarray] = []
    first_sampled = 1
    for s in range(1, d // 2 + 1):
        pair = [s] if s == d - s else [s, d - s]
        n_coal = sum(comb(d, t) for t in pair)
        pair_mass = mass[pair].sum()
        if left_mass <= 0 or left * pair_mass / left_mass < n_coal or n_coal > left:
            break
        for t in pair:
            chosen = coalitions_of_size(d, t)
            fixed.append(chosen)
            fixed_w.append(np.full(len(chosen), mass[t] / comb(d, t)))
        left -= n_coal
        left_mass -= pair_mass
        first_sampled = s + 1
    n_blocks = len(baselines)
    n_base = min(n_blocks, n_base)
    if capped:
        n_base = min(n_base, max(8, _DESIGN_ENTRIES // max(rows * d, 1)))
    n_pairs = left // 2
    parts, weights = [], []
    if fixed:
        enumerated = np.concatenate(fixed)
        parts.append(np.broadcast_to(enumerated, (n_base, *enumerated.shape)))
        weights.append(np.broadcast_to(np.concatenate(fixed_w), (n_base, len(enumerated))))
    if n_pairs:
        sizes = np.arange(first_sampled, d - first_sampled + 1)
        p = mass[sizes] / mass[sizes].sum()
        drawn = systematic_sizes(sizes, p, n_base, n_pairs, rng)
        S = random_coalitions(d, drawn, rng)
        parts.append(np.concatenate([S, ~S], axis=1))
        weights.append(np.full((n_base, 2 * n_pairs), left_mass / (2 * n_pairs)))
    masks = np.concatenate(parts, axis=1)
    w = np.concatenate(weights, axis=1)
    G, h = constrained_wls_map(masks, w)
    first = rows - 2 * n_pairs
    pair_rows = np.stack([first + np.arange(n_pairs), first + n_pairs + np.arange(n_pairs)], 1)
    # The pair's block of the weighted hat matrix is Z_p G_p (G already carries the weights).
    Zp = masks[:, pair_rows].astype(np.float64)  # (K, P, 2, d)
    Gp = np.moveaxis(G[:, :, pair_rows], 1, -2)  # (K, P, d, 2)
    hat = Zp @ Gp
    inverse = np.linalg.pinv(np.eye(2) - hat)
    sandwich = PairSandwich(
        masks=masks.astype(np.float64),
        G_first=np.ascontiguousarray(G[:, :, pair_rows[:, 0]]),
        G_second=np.ascontiguousarray(G[:, :, pair_rows[:, 1]]),
        inverse=inverse,
        rows=pair_rows,
    )
    layout = Relabeling(
        base=np.arange(n_blocks, dtype=np.intp) % n_base,
        units=np.argsort(rng.random((n_blocks, d)), axis=1) if relabel else None,
    )
    design = BlockDesign(
        masks, G, h, baselines, False, cycles, n_background, sandwich=sandwich, layout=layout
    )
    return replace(design, weights=w, sampled_from=first)


# -- permutation blocks --------------------------------------------------------------------


def permutation_design(
    n_units: int,
    pairs_per_block: int,
    baselines: np.ndarray,
    cycles: int,
    n_background: int,
    rng: np.random.Generator,
) -> BlockDesign:
    """Blocks of antithetic permutation pairs: a random order and its reverse.

    Each order contributes the marginal contribution of every unit along its chain of
    prefixes; an order and its reverse together are exact for games with at most pairwise
    interactions, and the mean over orders is unbiased for any game.
    """
    d, r, K = n_units, pairs_per_block, len(baselines)
    if d == 1:
        return BlockDesign(
            np.zeros((1, 0, 1), bool),
            np.zeros((1, 1, 0)),
            np.ones((1, 1)),
            baselines,
            True,
            cycles,
            n_background,
        )
    orders = np.argsort(rng.random((K, r, d)), axis=-1)
    chains = np.stack([orders, orders[..., ::-1]], axis=2).reshape(K, 2 * r, d)
    n_chains = 2 * r
    m = n_chains * (d - 1)
    # Row (c, t) of a block is the chain-c prefix of length t + 1, t = 0..d-2.
    position = np.argsort(chains, axis=-1)  # position[k, c, unit] = place of unit in chain c
    prefix = position[:, :, None, :] <= np.arange(d - 1)[None, None, :, None]
    masks = prefix.reshape(K, m, d)
    scale = 1.0 / n_chains
    kk = np.arange(K)[:, None, None]
    cc = np.arange(n_chains)[None, :, None]
    # The same estimate as differences: in chain c the unit entering at step t gains
    # v[prefix t + 1] − v[prefix t], indexed into [∅, rows..., full].
    plus = np.empty((K, d, n_chains), dtype=np.intp)
    minus = np.empty((K, d, n_chains), dtype=np.intp)
    steps = np.arange(d)
    after = np.where(steps < d - 1, 1 + cc * (d - 1) + steps, m + 1)  # (1, C, d)
    before = np.where(steps > 0, cc * (d - 1) + steps, 0)
    plus[kk, chains, cc] = np.broadcast_to(after, chains.shape)
    minus[kk, chains, cc] = np.broadcast_to(before, chains.shape)
    weight = np.full((1, 1, n_chains), scale)
    # Only the difference form is used: a dense map (blocks x units x rows) would cost
    # max_evals x d x 8 bytes (640 MB at d = 100) for two non-zeros per column.
    return BlockDesign(
        masks,
        np.zeros((1, d, 0)),
        np.zeros((1, d)),
        baselines,
        d <= 2,
        cycles,
        n_background,
        pairs=(plus, minus, weight),
    )
