"""Feature groups for images and sequences: one attribution per patch or per time step.

A deep model explained through :class:`~surrogate_xai.ONNXModel` sees each input as one flat
row of ``n_features`` floats (an image or a sequence flattened in C order). The builders here
name those flat columns and group them, so an explainer attributes to patches or time steps
instead of single pixels::

    names = sx.groups.image_feature_names((8, 8))        # "p0_0", "p0_1", ... "p7_7"
    groups = sx.groups.image_patches((8, 8), 2)          # "patch0_0": ["p0_0", "p0_1", ...]
    model = to_onnx(cnn, images, feature_names=names)
    exp = sx.KernelSHAP(random_state=0).fit(model, background, feature_groups=groups).explain(X)
    grid = sx.groups.patch_grid(exp.values[0, :, k], exp.feature_names, (8, 8), 2)  # (4, 4)

Names are the contract: the builders of one kind always agree with each other, whatever
order the columns are in. Nothing here depends on a deep-learning framework.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from .exceptions import ConfigurationError
from .validation import check_int, is_int

__all__ = [
    "image_feature_names",
    "image_of",
    "image_patches",
    "patch_grid",
    "pixel_attributions",
    "sequence_feature_names",
    "step_contributions",
    "step_units",
    "time_steps",
]

ImageLayout = Literal["chw", "hwc"]

_PATCH = re.compile(r"^patch(\d+)_(\d+)$")


def _geometry(shape: Sequence[int], layout: ImageLayout) -> tuple[int, int, int, bool]:
    """``(channels, height, width, has_channel_axis)`` of an image shape."""
    if layout not in ("chw", "hwc"):
        raise ConfigurationError(f"layout must be 'chw' or 'hwc', got {layout!r}")
    dims = tuple(shape)
    if len(dims) not in (2, 3) or not all(is_int(d) and d >= 1 for d in dims):
        raise ConfigurationError(
            f"an image shape is (height, width), or 3-D with a channel axis, of positive "
            f"integers; got {shape!r}"
        )
    d = [int(x) for x in dims]
    if len(d) == 2:
        return 1, d[0], d[1], False
    if layout == "chw":
        return d[0], d[1], d[2], True
    return d[2], d[0], d[1], True


def _pixel(ch: int | None, row: int, col: int) -> str:
    return f"p{row}_{col}" if ch is None else f"c{ch}_p{row}_{col}"


def image_feature_names(shape: Sequence[int], *, layout: ImageLayout = "chw") -> list[str]:
    """Names of the flat columns of an image, in the order a C-order flatten produces.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` for one channel, or ``(channels, height, width)`` (``layout="chw"``,
        PyTorch's order) or ``(height, width, channels)`` (``layout="hwc"``).
    layout : {"chw", "hwc"}
        Where the channel axis of a 3-D shape is; ignored for a 2-D shape.

    Returns
    -------
    list of str, of length ``H * W`` (``"p{row}_{col}"``) or ``C * H * W``
    (``"c{channel}_p{row}_{col}"``).
    """
    n_ch, h, w, has_channels = _geometry(shape, layout)
    if not has_channels:
        return [_pixel(None, r, c) for r in range(h) for c in range(w)]
    if layout == "chw":
        return [_pixel(k, r, c) for k in range(n_ch) for r in range(h) for c in range(w)]
    return [_pixel(k, r, c) for r in range(h) for c in range(w) for k in range(n_ch)]


def _patch_size(patch: int | Sequence[int]) -> tuple[int, int]:
    size = (patch, patch) if isinstance(patch, int | np.integer) else tuple(patch)
    if len(size) != 2 or not all(is_int(p) and p >= 1 for p in size):
        raise ConfigurationError(
            f"patch must be a positive integer or (height, width); got {patch!r}"
        )
    return int(size[0]), int(size[1])


def image_patches(
    shape: Sequence[int], patch: int | Sequence[int], *, layout: ImageLayout = "chw"
) -> dict[str, list[str]]:
    """Square (or rectangular) patches of an image as feature groups.

    Parameters
    ----------
    shape : tuple of int
        The image shape, as for :func:`image_feature_names`.
    patch : int or (int, int)
        Patch height and width in pixels. Where they do not divide the image, the last row or
        column of patches is smaller.
    layout : {"chw", "hwc"}
        Channel position of a 3-D shape. A patch holds every channel of its pixels.

    Returns
    -------
    dict
        ``"patch{i}_{j}"`` (``i``-th patch row, ``j``-th patch column) to the names of its
        columns, patches in row-major order; usable as ``feature_groups=``.
    """
    n_ch, h, w, has_channels = _geometry(shape, layout)
    ph, pw = _patch_size(patch)
    groups: dict[str, list[str]] = {}
    for i in range(math.ceil(h / ph)):
        for j in range(math.ceil(w / pw)):
            members = [
                _pixel(k if has_channels else None, r, c)
                for k in range(n_ch)
                for r in range(i * ph, min((i + 1) * ph, h))
                for c in range(j * pw, min((j + 1) * pw, w))
            ]
            groups[f"patch{i}_{j}"] = members
    return groups


def patch_grid(
    values: np.ndarray | Sequence[float],
    feature_names: Sequence[str],
    shape: Sequence[int],
    patch: int | Sequence[int],
    *,
    layout: ImageLayout = "chw",
) -> np.ndarray:
    """Per-patch values laid out as the grid of patches, e.g. for a heatmap.

    Parameters
    ----------
    values : array of shape (n_units,)
        One value per attribution unit, e.g. ``explanation.values[i, :, k]``.
    feature_names : sequence of str
        The units' names, ``explanation.feature_names``; units are placed by name, so their
        order does not matter. Units that are not patches are ignored.
    shape, patch, layout
        As given to :func:`image_patches`.

    Returns
    -------
    array of shape (n_patch_rows, n_patch_cols)
        NaN where a patch has no value.
    """
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 1 or len(vals) != len(feature_names):
        raise ConfigurationError(
            f"values must be 1-D with one entry per name ({len(feature_names)}), "
            f"got shape {vals.shape}"
        )
    _, h, w, _ = _geometry(shape, layout)
    ph, pw = _patch_size(patch)
    grid = np.full((math.ceil(h / ph), math.ceil(w / pw)), np.nan)
    for name, v in zip(feature_names, vals, strict=True):
        m = _PATCH.match(str(name))
        if m is None:
            continue
        i, j = int(m.group(1)), int(m.group(2))
        if i >= grid.shape[0] or j >= grid.shape[1]:
            raise ConfigurationError(f"patch {name!r} lies outside a {grid.shape} grid of patches")
        grid[i, j] = v
    return grid


def _feature_labels(features: int | Sequence[str]) -> list[str]:
    if is_int(features):
        if features < 1:
            raise ConfigurationError(f"features must be >= 1, got {features}")
        return [f"f{j}" for j in range(int(features))]
    if isinstance(features, str) or not isinstance(features, Sequence):
        raise ConfigurationError(
            f"features must be a count or a sequence of names, got {features!r}"
        )
    labels = [str(f) for f in features]
    if not labels or len(set(labels)) != len(labels):
        raise ConfigurationError(f"feature names must be distinct and non-empty: {labels}")
    return labels


def _n_steps(n_steps: int) -> int:
    return check_int("n_steps", n_steps)


def sequence_feature_names(n_steps: int, features: int | Sequence[str]) -> list[str]:
    """Names of the flat columns of a sequence of shape ``(n_steps, n_features)``.

    Parameters
    ----------
    n_steps : int
        Time steps ``T``.
    features : int or sequence of str
        Features per step: a count ``F`` (named ``f0, f1, ...``) or their names.

    Returns
    -------
    list of str of length ``T * F``: ``"t{step}_{feature}"``, step-major (a C-order flatten
    of a ``(T, F)`` array, i.e. of a batch-first RNN input).
    """
    labels = _feature_labels(features)
    return [f"t{s}_{f}" for s in range(_n_steps(n_steps)) for f in labels]


def time_steps(
    n_steps: int, features: int | Sequence[str], *, window: int = 1
) -> dict[str, list[str]]:
    """Time steps (or windows of consecutive steps) of a sequence as feature groups.

    Parameters
    ----------
    n_steps : int
        Time steps ``T``.
    features : int or sequence of str
        Features per step, as for :func:`sequence_feature_names`.
    window : int
        Steps per group; the last window is shorter when ``window`` does not divide ``T``.

    Returns
    -------
    dict
        ``"t{step}"`` (``window=1``) or ``"t{first}-{last}"`` to the names of the group's
        columns, in time order; usable as ``feature_groups=``.
    """
    steps = _n_steps(n_steps)
    check_int("window", window)
    labels = _feature_labels(features)
    groups: dict[str, list[str]] = {}
    for start in range(0, steps, int(window)):
        stop = min(start + int(window), steps)
        name = f"t{start}" if stop - start == 1 else f"t{start}-{stop - 1}"
        groups[name] = [f"t{s}_{f}" for s in range(start, stop) for f in labels]
    return groups


# -- reading names back: where a unit sits in an image or a sequence -------------------------
_PIXEL = re.compile(r"(?:^|\.)(?:c(\d+)_)?p(\d+)_(\d+)$")
_STEP = re.compile(r"(?:^|\.)t(\d+)_")


def _pixel_of(name: str) -> tuple[int, int, int] | None:
    """``(channel, row, col)`` of a column named by :func:`image_feature_names`."""
    m = _PIXEL.search(name)
    if m is None:
        return None
    return int(m.group(1) or 0), int(m.group(2)), int(m.group(3))


def pixel_attributions(
    values: np.ndarray | Sequence[float],
    units: Sequence[str],
    members: Mapping[str, Sequence[str]],
) -> np.ndarray | None:
    """Attributions laid over the image, one value per pixel position.

    Parameters
    ----------
    values : array of shape (n_units,)
        One row's values for one output, e.g. ``explanation.values[i, :, k]``.
    units : sequence of str
        The units' names (``explanation.feature_names``): pixels, or patches of them.
    members : mapping of str to sequence of str
        Each unit's columns (``explanation.provenance.feature_groups``; a unit absent from it
        is its own column).

    Returns
    -------
    array of shape (height, width), or None when no unit holds image pixels
        A pixel's value is the sum of the values of the units covering it (a patch's value
        over all its pixels; channels attributed separately are added up). NaN where no unit
        covers a pixel.
    """
    vals = np.asarray(values, dtype=np.float64)
    cover: dict[tuple[int, int], set[int]] = {}
    for j, unit in enumerate(units):
        for column in members.get(unit, [unit]):
            where = _pixel_of(str(column))
            if where is not None:
                cover.setdefault(where[1:], set()).add(j)
    if not cover:
        return None
    height = 1 + max(r for r, _ in cover)
    width = 1 + max(c for _, c in cover)
    grid = np.full((height, width), np.nan)
    for (r, c), owners in cover.items():
        grid[r, c] = float(sum(vals[j] for j in owners))
    return grid


def image_of(row: Mapping[Any, object], shape: tuple[int, int]) -> np.ndarray:
    """A row's pixel values as an image of ``shape`` (the mean over channels), NaN where the
    row holds no pixel."""
    total, count = np.zeros(shape), np.zeros(shape)
    for column, value in row.items():
        where = _pixel_of(str(column))
        if where is None or where[1] >= shape[0] or where[2] >= shape[1]:
            continue
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        total[where[1:]] += number
        count[where[1:]] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def step_units(
    units: Sequence[str], members: Mapping[str, Sequence[str]]
) -> list[tuple[str, list[int]]] | None:
    """The units of a sequence in time order: ``(label, unit positions)`` per time step or
    window, or None when the units are not steps of a sequence.

    A unit named by :func:`time_steps` (``"t3"``, ``"t2-4"``) is its own label; single
    columns ``"t3_f0"``, ``"t3_f1"`` are pooled under ``"t3"``.
    """
    first: dict[str, int] = {}
    pooled: dict[str, list[int]] = {}
    for j, unit in enumerate(units):
        steps = []
        for column in members.get(unit, [unit]):
            m = _STEP.search(str(column))
            if m is None:
                return None
            steps.append(int(m.group(1)))
        label = unit if len(members.get(unit, [unit])) > 1 else f"t{steps[0]}"
        pooled.setdefault(label, []).append(j)
        first[label] = min(first.get(label, steps[0]), min(steps))
    if not pooled:
        return None
    return [(label, pooled[label]) for label in sorted(pooled, key=lambda s: (first[s], s))]


def step_contributions(
    values: np.ndarray,
    stderr: np.ndarray,
    units: Sequence[str],
    members: Mapping[str, Sequence[str]],
    *,
    row: int | None = None,
    z: float = 1.96,
) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """Attributions per time step (or window), in time order, with ``z``-s.e. half-widths.

    Parameters
    ----------
    values, stderr : arrays of shape (n_samples, n_units)
        One output's values and standard errors, e.g. ``explanation.values[:, :, k]``.
    units, members
        As for :func:`pixel_attributions`.
    row : int, optional
        One row's signed contributions (the units of one step added up, their standard
        errors combined as if independent); without it, the mean |contribution| over the rows
        with the standard error of that mean.

    Returns
    -------
    ``(labels, heights, half_widths)``, or None when the units are not steps of a sequence.
    """
    steps = step_units(units, members)
    if steps is None:
        return None
    labels = [label for label, _ in steps]
    per_step = np.stack([values[:, idx].sum(axis=1) for _, idx in steps], axis=1)
    if row is not None:
        se = np.array([math.sqrt(float(np.nansum(stderr[row, idx] ** 2))) for _, idx in steps])
        return labels, per_step[row], z * se
    magnitude = np.abs(per_step)
    if len(magnitude) > 1:
        spread = magnitude.std(axis=0, ddof=1) / math.sqrt(len(magnitude))
    else:
        spread = np.zeros(len(labels))
    return labels, magnitude.mean(axis=0), z * spread
