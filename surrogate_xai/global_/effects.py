"""Feature effects: partial dependence, ICE curves and accumulated local effects (ALE).

Every function makes one model call per feature: all rows of all grid points (or bin edges)
are built in the raw feature space, so categorical columns only ever take real categories, and
evaluated together.

Which to read: partial dependence sets the feature to each grid value for *every* row, so
with correlated inputs it averages the model over combinations the data never contains (a
short loan with a huge amount) and shows the model's extrapolation there. ALE moves each row
only within its own small interval of the feature (or to the neighbouring category), so it
stays where the data is and measures the effect along it. For a model that is additive in the
feature, both equal the shape function up to a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..model import Model
from ..tabular import Codebook, TabularSchema, as_frame


@dataclass(frozen=True)
class PartialDependence:
    """Partial dependence (and optionally ICE curves) of the model on one feature.

    Attributes
    ----------
    feature : str
    kind : {"numeric", "categorical"}
    grid : array of shape (n_grid,)
        Feature values (numbers or categories).
    values : array of shape (n_grid, n_outputs)
        Mean model output with the feature set to each grid value.
    ice : array of shape (n_samples, n_grid, n_outputs) or None
        Each row's curve (individual conditional expectation).
    output_names : list of str
    """

    feature: str
    kind: str
    grid: np.ndarray
    values: np.ndarray
    ice: np.ndarray | None
    output_names: list[str]


@dataclass(frozen=True)
class AccumulatedLocalEffects:
    """Accumulated local effects of one feature, centred to mean zero over the data.

    Attributes
    ----------
    feature : str
    kind : {"numeric", "categorical"}
    grid : array of shape (n_grid,)
        Bin edges (numeric) or categories in the order the effects accumulate along.
    values : array of shape (n_grid, n_outputs)
        Centred ALE at each grid point.
    counts : int array of shape (n_grid,)
        Rows in the bin ending at each edge (the first edge: 0), or in each category.
    output_names : list of str
    """

    feature: str
    kind: str
    grid: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    output_names: list[str]


def _setup(
    model: Model, X: pd.DataFrame | np.ndarray, feature: str
) -> tuple[pd.DataFrame, Codebook, np.ndarray, int, str]:
    frame = as_frame(X, model.feature_names)
    schema = TabularSchema.infer(model, frame)
    frame = schema.check(frame, "X")
    if feature not in schema.columns:
        raise ConfigurationError(
            f"feature {feature!r} is not a model column: {list(schema.columns)}"
        )
    j = schema.columns.index(feature)
    codebook = Codebook(schema, [frame])
    return frame, codebook, codebook.encode(frame), j, schema.kinds[j]


def _predict(model: Model, codebook: Codebook, rows: np.ndarray) -> np.ndarray:
    return model.predict(codebook.decode(rows))


def partial_dependence(
    model: Model,
    X: pd.DataFrame | np.ndarray,
    feature: str,
    *,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.05, 0.95),
    grid: np.ndarray | list[object] | None = None,
    ice: bool = False,
) -> PartialDependence:
    """Partial dependence of ``model`` on ``feature`` over the rows ``X``.

    Parameters
    ----------
    model : Model
    X : DataFrame or array of shape (n_samples, n_features)
        The rows to average over.
    feature : str
    grid_resolution : int
        Grid points for a numeric feature: evenly spaced between ``percentiles`` of ``X``, or
        its distinct values when there are fewer.
    percentiles : (float, float)
    grid : sequence, optional
        The grid itself (values of a numeric feature, categories of a categorical one).
    ice : bool
        Also return every row's curve.

    Returns
    -------
    PartialDependence
    """
    frame, codebook, enc, j, kind = _setup(model, X, feature)
    if grid is not None:
        points = np.asarray(grid, dtype=object if kind == "categorical" else np.float64)
    elif kind == "categorical":
        points = np.asarray(sorted(frame[feature].astype(str).unique()), dtype=object)
    else:
        if not 0 <= percentiles[0] < percentiles[1] <= 1:
            raise ConfigurationError(f"percentiles must be increasing in [0, 1], got {percentiles}")
        if grid_resolution < 2:
            raise ConfigurationError(f"grid_resolution must be >= 2, got {grid_resolution}")
        column = enc[:, j]
        distinct = np.unique(column)
        if len(distinct) <= grid_resolution:
            points = distinct
        else:
            low, high = np.quantile(column, percentiles)
            points = np.linspace(low, high, grid_resolution)
    if kind == "categorical":
        known = codebook.categories[feature]
        unknown = [v for v in points if str(v) not in set(known)]
        if unknown:
            raise ConfigurationError(f"grid holds categories not seen in {feature!r}: {unknown}")
        coded = np.searchsorted(known, np.asarray([str(v) for v in points], dtype=object))
    else:
        coded = points.astype(np.float64)
    rows = np.repeat(enc[None, :, :], len(points), axis=0)
    rows[:, :, j] = coded[:, None]
    out = _predict(model, codebook, rows.reshape(-1, enc.shape[1]))
    curves = out.reshape(len(points), len(enc), -1).transpose(1, 0, 2)
    return PartialDependence(
        feature,
        kind,
        points,
        curves.mean(axis=0),
        curves if ice else None,
        list(model.output_names),
    )


def _category_order(frame: pd.DataFrame, feature: str, categories: np.ndarray) -> np.ndarray:
    """Categories ordered by how similar the other features' distributions are in them.

    Apley and Zhu's recipe: a distance between two categories sums, over the other features,
    the Kolmogorov-Smirnov distance (numeric) or total-variation distance (categorical) of
    their distributions; categories are ordered by the first coordinate of a classical
    multidimensional scaling of those distances.
    """
    values = frame[feature].astype(str).to_numpy()
    groups = [frame[values == c] for c in categories]
    m = len(categories)
    dist = np.zeros((m, m))
    for col in frame.columns:
        if col == feature:
            continue
        s = frame[col]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if numeric:
            grid = np.unique(s.to_numpy(dtype=np.float64))
            cdfs = [
                np.searchsorted(np.sort(g[col].to_numpy(dtype=np.float64)), grid, side="right")
                / max(len(g), 1)
                for g in groups
            ]
            for a in range(m):
                for b in range(a + 1, m):
                    dist[a, b] += np.abs(cdfs[a] - cdfs[b]).max()
        else:
            shares = [g[col].astype(str).value_counts(normalize=True) for g in groups]
            for a in range(m):
                for b in range(a + 1, m):
                    diff = shares[a].sub(shares[b], fill_value=0.0)
                    dist[a, b] += 0.5 * np.abs(diff).sum()
    dist = dist + dist.T
    centre = np.eye(m) - 1.0 / m
    inner = -0.5 * centre @ (dist**2) @ centre
    _, vecs = np.linalg.eigh(inner)
    coord = vecs[:, -1] * np.sign(vecs[np.argmax(np.abs(vecs[:, -1])), -1])
    return np.asarray(categories)[np.argsort(coord, kind="stable")]


def accumulated_local_effects(
    model: Model, X: pd.DataFrame | np.ndarray, feature: str, *, n_bins: int = 20
) -> AccumulatedLocalEffects:
    """Accumulated local effects of ``feature`` over the rows ``X``.

    Parameters
    ----------
    model : Model
    X : DataFrame or array of shape (n_samples, n_features)
    feature : str
    n_bins : int
        Numeric features: bins between quantiles of ``X`` (fewer when values repeat).

    Returns
    -------
    AccumulatedLocalEffects
        Centred so that the mean effect over the rows of ``X`` is zero.
    """
    frame, codebook, enc, j, kind = _setup(model, X, feature)
    if n_bins < 1:
        raise ConfigurationError(f"n_bins must be >= 1, got {n_bins}")
    if kind == "categorical":
        return _categorical_ale(model, frame, codebook, enc, j, feature)
    column = enc[:, j]
    edges = np.unique(np.quantile(column, np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        raise ConfigurationError(f"feature {feature!r} takes a single value in X")
    # Bin k holds edges[k] < x <= edges[k+1]; the minimum joins the first bin.
    bins = np.clip(np.searchsorted(edges, column, side="left") - 1, 0, len(edges) - 2)
    lower, upper = enc.copy(), enc.copy()
    lower[:, j], upper[:, j] = edges[bins], edges[bins + 1]
    out = _predict(model, codebook, np.vstack([lower, upper]))
    diff = out[len(enc) :] - out[: len(enc)]
    counts = np.bincount(bins, minlength=len(edges) - 1)
    k = out.shape[1]
    local = np.zeros((len(edges) - 1, k))
    np.add.at(local, bins, diff)
    local /= np.maximum(counts, 1)[:, None]
    ale = np.vstack([np.zeros((1, k)), np.cumsum(local, axis=0)])
    # Centre with each bin represented by the mean of its two edges, weighted by its rows.
    mids = 0.5 * (ale[:-1] + ale[1:])
    ale -= (counts[:, None] * mids).sum(axis=0) / counts.sum()
    return AccumulatedLocalEffects(
        feature, kind, edges, ale, np.concatenate([[0], counts]), list(model.output_names)
    )


def _categorical_ale(
    model: Model,
    frame: pd.DataFrame,
    codebook: Codebook,
    enc: np.ndarray,
    j: int,
    feature: str,
) -> AccumulatedLocalEffects:
    present = np.asarray(sorted(frame[feature].astype(str).unique()), dtype=object)
    order = _category_order(frame, feature, present)
    codes = np.searchsorted(codebook.categories[feature], order)
    position = {int(c): i for i, c in enumerate(codes)}
    pos = np.array([position[int(c)] for c in enc[:, j]])
    counts = np.bincount(pos, minlength=len(order))
    # Each row moves to its neighbouring categories: up (forward difference) and down.
    up, down = np.flatnonzero(pos < len(order) - 1), np.flatnonzero(pos > 0)
    moved_up, moved_down = enc[up].copy(), enc[down].copy()
    moved_up[:, j] = codes[pos[up] + 1]
    moved_down[:, j] = codes[pos[down] - 1]
    out = _predict(model, codebook, np.vstack([enc, moved_up, moved_down]))
    n, k = len(enc), out.shape[1]
    base, f_up, f_down = out[:n], out[n : n + len(up)], out[n + len(up) :]
    step = np.zeros((len(order) - 1, k))
    np.add.at(step, pos[up], f_up - base[up])
    np.add.at(step, pos[down] - 1, base[down] - f_down)
    pair_rows = counts[:-1] + counts[1:]
    step /= np.maximum(pair_rows, 1)[:, None]
    ale = np.vstack([np.zeros((1, k)), np.cumsum(step, axis=0)])
    ale -= (counts[:, None] * ale).sum(axis=0) / counts.sum()
    return AccumulatedLocalEffects(
        feature, "categorical", order, ale, counts, list(model.output_names)
    )
