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
from collections.abc import Sequence
from typing import Literal

import numpy as np

from .exceptions import ConfigurationError

__all__ = [
    "image_feature_names",
    "image_patches",
    "patch_grid",
    "sequence_feature_names",
    "time_steps",
]

ImageLayout = Literal["chw", "hwc"]

_PATCH = re.compile(r"^patch(\d+)_(\d+)$")


def _geometry(shape: Sequence[int], layout: ImageLayout) -> tuple[int, int, int, bool]:
    """``(channels, height, width, has_channel_axis)`` of an image shape."""
    if layout not in ("chw", "hwc"):
        raise ConfigurationError(f"layout must be 'chw' or 'hwc', got {layout!r}")
    dims = tuple(shape)
    if len(dims) not in (2, 3) or not all(
        isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 1 for d in dims
    ):
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
    if len(size) != 2 or not all(
        isinstance(p, int | np.integer) and not isinstance(p, bool) and p >= 1 for p in size
    ):
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
    if isinstance(features, int | np.integer) and not isinstance(features, bool):
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
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ConfigurationError(f"n_steps must be a positive integer, got {n_steps!r}")
    return int(n_steps)


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
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ConfigurationError(f"window must be a positive integer, got {window!r}")
    labels = _feature_labels(features)
    groups: dict[str, list[str]] = {}
    for start in range(0, steps, int(window)):
        stop = min(start + int(window), steps)
        name = f"t{start}" if stop - start == 1 else f"t{start}-{stop - 1}"
        groups[name] = [f"t{s}_{f}" for s in range(start, stop) for f in labels]
    return groups
