"""Evaluating a design for one explained row: build rows, skip known ones, predict, combine.

Each explained row is evaluated on its own, in rounds whose content depends only on that row
and the design. So a row's model calls, and hence its result, are the same whatever else is in
the batch, in whatever order: the determinism contract holds even for models whose outputs
depend on batch composition (e.g. matrix kernels that pick a different path per batch size).

Rows whose value is already known are never sent to the model: a coalition that only switches
features where the explained row equals the background row reproduces ``f(b)`` (computed once at
fit) or ``f(x)``; identical rows within a round are evaluated once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._design import BlockDesign, PairSandwich
from ._estimate import combine_blocks

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Problem:
    """What stays fixed while the rows of one ``explain`` call are explained."""

    predict: Predict  # encoded rows (n, n_features) -> outputs (n, n_outputs)
    background: np.ndarray  # encoded, (n_background, n_features)
    f_background: np.ndarray  # (n_background, n_outputs)
    weights: np.ndarray  # (n_background,)
    base_value: np.ndarray  # (n_outputs,)
    unit_index: np.ndarray  # (n_features,) unit of each column
    n_units: int

    @property
    def identity_units(self) -> bool:
        """Every column is its own unit, in order (no groups)."""
        return self.n_units == len(self.unit_index)


@dataclass(frozen=True)
class RowResult:
    values: np.ndarray  # (n_units, n_outputs)
    stderr: np.ndarray
    f_x: np.ndarray  # (n_outputs,)
    evaluations: int
    blocks_used: int
    converged: bool
    #: (n_units,) units exact by construction: the row equals every background row there and
    #: the design takes differences, so the value is exactly 0 with standard error 0.
    exact_units: np.ndarray | None = None


def _differing_units(x: np.ndarray, problem: Problem) -> np.ndarray:
    """(n_background, n_units): units where x and each background row differ.

    NaN never equals NaN, so a missing value counts as different: no shortcut, never wrong.
    """
    diff_cols = x[None, :] != problem.background
    out = np.zeros((len(problem.background), problem.n_units), dtype=bool)
    for j, unit in enumerate(problem.unit_index):
        out[:, unit] |= diff_cols[:, j]
    return out


def _unique_rows(eff: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of one representative per distinct (background row, effective coalition)."""
    n_units = eff.shape[1]
    bits = np.packbits(eff, axis=-1, bitorder="little")
    if n_units + int(base.max(initial=0)).bit_length() <= 63:
        # One int64 per row sorts several times faster than a byte-string key.
        padded = np.zeros((len(eff), 8), dtype=np.uint8)
        padded[:, : bits.shape[1]] = bits
        key = padded.view("<u8").ravel().astype(np.int64) | (base.astype(np.int64) << n_units)
    else:
        raw = np.concatenate([base.astype("<i4").view(np.uint8).reshape(-1, 4), bits], axis=1)
        key = np.ascontiguousarray(raw).view(np.dtype((np.void, raw.shape[1]))).ravel()
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def _block_variance(phi: np.ndarray, y: np.ndarray, sandwich: PairSandwich) -> np.ndarray:
    """Each regression block's sampling variance, shape (blocks, units, outputs).

    HC3-style sandwich with the sampled coalition pairs as units: a pair's residuals, scaled by
    ``(I − H_pp)^-1``, mapped through the pair's columns of ``G``. Enumerated coalitions are
    fixed by the design and add no variance.
    """
    resid = y - sandwich.masks @ phi  # (blocks, rows, outputs)
    e1, e2 = resid[:, sandwich.rows[:, 0]], resid[:, sandwich.rows[:, 1]]
    inv = sandwich.inverse
    # (I − H_pp)^-1 applied to each pair's two residuals, written out for 2 × 2.
    s1 = inv[:, :, 0, 0, None] * e1 + inv[:, :, 0, 1, None] * e2
    s2 = inv[:, :, 1, 0, None] * e1 + inv[:, :, 1, 1, None] * e2
    out = np.empty(phi.shape)
    for o in range(phi.shape[2]):
        influence = sandwich.G_first * s1[:, None, :, o] + sandwich.G_second * s2[:, None, :, o]
        out[:, :, o] = np.einsum("rgp,rgp->rg", influence, influence)
    return out


def _round_rows(
    x: np.ndarray,
    problem: Problem,
    differs: np.ndarray,
    masks: np.ndarray,
    base: np.ndarray,
    lead: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows a round must send to the model, after ``lead`` empty rows for the caller.

    Returns ``rows, is_base, is_x, todo, inverse``: the round's row ``i`` is known to equal
    ``f(b)`` where ``is_base``, ``f(x)`` where ``is_x``, and is sent row ``inverse[j]`` for
    ``i = todo[j]``.
    """
    n_r, m, n_units = masks.shape
    n, width = n_r * m, len(x)
    d_b = differs[base]
    partial = ~d_b.all(axis=1)  # blocks whose background row agrees with x somewhere
    is_base = np.zeros(n, dtype=bool)
    is_x = np.zeros(n, dtype=bool)
    if not partial.any():
        # x differs from these background rows in every unit (the usual case for continuous
        # data): no row can be known or shared, so skip looking for them, and build the rows
        # block by block without copying each background row m times.
        cols = masks if problem.identity_units else masks[:, :, problem.unit_index]
        rows = np.empty((lead + n, width), dtype=x.dtype)
        block_rows = rows[lead:].reshape(n_r, m, width)
        block_rows[...] = problem.background[base][:, None, :]
        np.copyto(block_rows, x, where=cols)
        todo = np.arange(n)
        return rows, is_base, is_x, todo, todo
    row_base = np.repeat(base, m)
    direct = np.flatnonzero(np.repeat(~partial, m))
    shared = np.flatnonzero(np.repeat(partial, m))
    # Only switching units where x and b differ changes the row: none gives b, all gives x,
    # and coalitions that agree there give the same row (found with one sort).
    eff = (masks[partial] & d_b[partial][:, None, :]).reshape(-1, n_units)
    count = np.add.reduce(eff, axis=1, dtype=np.int32)
    is_base[shared] = count == 0
    is_x[shared] = count == np.repeat(d_b[partial].sum(axis=1), m)
    keep = ~(is_base[shared] | is_x[shared])
    candidates = shared[keep]
    first, shared_inverse = _unique_rows(eff[keep], row_base[candidates])
    todo = np.concatenate([direct, candidates])
    inverse = np.concatenate([np.arange(len(direct)), len(direct) + shared_inverse])
    send = np.concatenate([direct, candidates[first]])
    units = np.concatenate([masks.reshape(n, n_units)[direct], eff[keep][first]])
    cols = units if problem.identity_units else units[:, problem.unit_index]
    rows = np.empty((lead + len(send), width), dtype=x.dtype)
    rows[lead:] = problem.background[row_base[send]]
    np.copyto(rows[lead:], x, where=cols)
    return rows, is_base, is_x, todo, inverse


def _evaluate_round(
    x: np.ndarray,
    problem: Problem,
    differs: np.ndarray,
    masks: np.ndarray,
    base: np.ndarray,
    f_x: np.ndarray | None,
    max_rows: int | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Model outputs of a round's rows, shape ``(blocks, m, n_outputs)``, plus ``f(x)``.

    At most ``max_rows`` perturbed rows are built and sent at once: a round larger than that
    (one block with more coalitions than the cap) is evaluated in slices of its coalitions.
    ``f(x)`` is evaluated with the first call when it is not known yet.
    """
    n_r, m = masks.shape[0], masks.shape[1]
    step = m if max_rows is None or n_r * m <= max_rows else max(1, max_rows // n_r)
    parts: list[np.ndarray] = []
    evaluations = 0
    for start in range(0, m, step):
        sub = masks[:, start : start + step]
        k = sub.shape[1]
        lead = 1 if f_x is None else 0
        rows, is_base, is_x, todo, inverse = _round_rows(x, problem, differs, sub, base, lead)
        if lead:
            rows[0] = x
        out = problem.predict(rows)
        evaluations += len(rows)
        if f_x is None:
            f_x, out = out[0], out[1:]
        y = np.empty((n_r * k, len(f_x)))
        y[is_base] = problem.f_background[np.repeat(base, k)[is_base]]
        y[is_x] = f_x
        y[todo] = out[inverse]
        parts.append(y.reshape(n_r, k, len(f_x)))
    if f_x is None:  # a block always has at least one coalition
        raise RuntimeError("empty round")
    return (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)), f_x, evaluations


def explain_row(
    x: np.ndarray,
    problem: Problem,
    design: BlockDesign,
    blocks_per_round: int,
    tol: float | None,
    max_rows: int | None = None,
) -> RowResult:
    """Shapley estimate for one encoded row ``x`` of shape ``(n_features,)``.

    ``max_rows`` caps the perturbed rows built and sent to the model at once (the row ``x``
    itself rides along in the first call); ``None`` sends each round whole.
    """
    differs = _differing_units(x, problem)
    # With differences (permutations, enumeration) a unit where x equals every background row
    # is exactly zero in every block; a regression only estimates it near zero.
    fixed: np.ndarray = np.zeros(problem.n_units, dtype=bool)
    if design.pairs is not None and design.honest_errors:
        fixed = np.logical_not(differs.any(axis=0))
    f_x: np.ndarray | None = None
    evaluations = 0
    phis: list[np.ndarray] = []
    variances: list[np.ndarray] = []
    outputs: list[np.ndarray] = []  # kept only for a design's refit
    deltas: list[np.ndarray] = []
    values = stderr = np.empty(0)
    n_blocks = design.n_blocks
    done = 0
    while done < n_blocks:
        sl = slice(done, min(done + blocks_per_round, n_blocks))
        masks, G, h = design.block(sl)
        base = design.baselines[sl]
        n_r = masks.shape[0]
        # The first round also evaluates x itself, in the same call, as row 0.
        y, f_x, n_sent = _evaluate_round(x, problem, differs, masks, base, f_x, max_rows)
        evaluations += n_sent
        n_out = len(f_x)
        f_b = problem.f_background[base]
        y = y - f_b[:, None, :]
        if design.refit is not None:
            outputs.append(y)
            deltas.append(f_x - f_b)
        if design.pairs is None:
            phi = G @ y + h[:, :, None] * (f_x - f_b)[:, None, :]
        else:
            plus, minus, weight = (a[sl] if a.shape[0] > 1 else a for a in design.pairs)
            full = np.concatenate([np.zeros((n_r, 1, n_out)), y, (f_x - f_b)[:, None, :]], axis=1)
            r = np.arange(n_r)[:, None, None]
            diff = full[r, plus] - full[r, minus]  # (blocks, units, terms, outputs)
            phi = (diff * weight[..., None]).sum(axis=2)
        phis.append(phi)
        if design.sandwich is not None:
            variances.append(_block_variance(phi, y, design.sandwich_block(sl)))
        done = sl.stop
        if tol is not None or done >= n_blocks:
            used = design.baselines[:done]
            values, stderr = combine_blocks(
                np.concatenate(phis),
                problem.f_background[used],
                used,
                problem.weights,
                problem.base_value,
                design.exact_blocks,
                np.concatenate(variances) if variances else None,
                fixed,
                design.honest_errors,
            )
            if tol is not None and done >= 2 and float(stderr.max(initial=0.0)) < tol:
                break
    if f_x is None:  # a design always has at least two blocks
        raise RuntimeError("empty design")
    if design.refit is not None and done == n_blocks:
        values, stderr = design.refit(
            np.concatenate(outputs), np.concatenate(deltas), problem.weights[design.baselines]
        )
    converged = bool(stderr.max(initial=0.0) == 0.0) or (
        tol is not None and float(stderr.max(initial=0.0)) < tol
    )
    return RowResult(values, stderr, f_x, evaluations, done, converged, fixed)
