"""Plots as free functions of results: bar, beeswarm, waterfall, effect lines, surrogate tree,
an image heatmap of patch attributions and attributions per time step.

Every function returns a ``matplotlib.figure.Figure`` made with matplotlib's object API and an
Agg canvas of its own, never through pyplot's registry of open figures: nothing depends on a
display or a GUI backend, no figure is left open, and it works headless (servers, CI, report
generation) and in notebooks alike. (scikit-learn's ``plot_tree``, used for surrogate trees,
imports pyplot but draws on the axes it is given.) Pass ``ax=`` to draw into an existing axes, or
``path=`` to write the figure (the format follows the suffix: ``.png``, ``.svg``, ``.pdf``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .exceptions import ConfigurationError
from .explanation import Explanation
from .global_.effects import AccumulatedLocalEffects, PartialDependence
from .global_.importance import ImportanceSummary, mean_abs_importance
from .reasons import output_index

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .global_.surrogate import GlobalSurrogate

_POSITIVE, _NEGATIVE = "#d6604d", "#4393c3"


def _axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        figure = ax.get_figure()
        if figure is None:
            raise ConfigurationError("ax must belong to a figure")
        return figure, ax  # type: ignore[return-value]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)  # a canvas of its own: saving never touches pyplot's state
    return figure, figure.add_subplot()


def _finish(figure: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        figure.savefig(path)
    return figure


def _output(names: list[str], output: int | str | None) -> int:
    # The one rule (None: the last output), as for reasons, reports and decisions.
    return output_index(names, output)


def _names(names: list[str], display_names: Mapping[str, str] | None) -> list[str]:
    return [(display_names or {}).get(n, n) for n in names]


def bar(
    result: Explanation | ImportanceSummary,
    *,
    output: int | str | None = None,
    max_display: int = 10,
    display_names: Mapping[str, str] | None = None,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Horizontal bars of global importance, largest on top, with intervals where known.

    An :class:`ImportanceSummary` is drawn with its bootstrap interval; a one-row
    Explanation (e.g. permutation importance) with ``±1.96 stderr``; a many-row Explanation
    is summarised first with :func:`~surrogate_xai.global_.mean_abs_importance`.
    """
    if isinstance(result, Explanation) and len(result) > 1:
        result = mean_abs_importance(result, random_state=0)
    if isinstance(result, ImportanceSummary):
        o = _output(result.output_names, output)
        heights = result.mean_abs[:, o]
        low, high = heights - result.lower[:, o], result.upper[:, o] - heights
        label = f"mean |value| ({result.confidence:.0%} bootstrap interval)"
        names = result.feature_names
    else:
        o = _output(result.output_names, output)
        heights = result.values[0, :, o]
        se = np.nan_to_num(result.stderr[0, :, o])
        low = high = 1.96 * se
        label = f"importance ({result.output_names[o]}) ± 1.96 s.e."
        names = result.feature_names
    order = np.argsort(-np.abs(heights), kind="stable")[:max_display][::-1]
    figure, axes = _axes(ax, (6.0, 0.4 * len(order) + 1.2))
    axes.barh(
        np.arange(len(order)),
        heights[order],
        xerr=np.vstack([low[order], high[order]]),
        color=[_POSITIVE if h >= 0 else _NEGATIVE for h in heights[order]],
        capsize=3,
    )
    shown = _names(list(names), display_names)
    axes.set_yticks(np.arange(len(order)), [shown[j] for j in order])
    axes.set_xlabel(label)
    axes.axvline(0, color="grey", linewidth=0.8)
    return _finish(figure, path)


def beeswarm(
    explanation: Explanation,
    *,
    output: int | str | None = None,
    max_display: int = 10,
    display_names: Mapping[str, str] | None = None,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Every row's value per feature, features by mean |value|, coloured by the feature's value.

    Numeric features are coloured by the rank of the row's value (low blue, high red), with a
    colour bar "feature value" from low to high as in shap's beeswarm; categorical features
    and groups are grey.
    """
    o = _output(explanation.output_names, output)
    values = explanation.values[:, :, o]
    order = np.argsort(-np.abs(values).mean(axis=0), kind="stable")[:max_display][::-1]
    figure, axes = _axes(ax, (7.5, 0.45 * len(order) + 1.4))
    rng = np.random.default_rng(0)  # jitter only: a fixed seed keeps the figure reproducible
    cmap = _colormap()
    for pos, j in enumerate(order):
        name = explanation.feature_names[j]
        column = explanation.data[name] if name in explanation.data.columns else None
        colours: Any = "grey"
        if column is not None and pd.api.types.is_numeric_dtype(column.dtype):
            ranks = column.rank(pct=True).to_numpy()
            colours = cmap(ranks)
        jitter = rng.uniform(-0.3, 0.3, size=len(values))
        axes.scatter(values[:, j], pos + jitter, c=colours, s=10, alpha=0.8, linewidths=0)
    shown = _names(list(explanation.feature_names), display_names)
    axes.set_yticks(np.arange(len(order)), [shown[j] for j in order])
    axes.axvline(0, color="grey", linewidth=0.8)
    axes.set_xlabel(f"attribution to {explanation.output_names[o]}")
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    scale = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
    bar = figure.colorbar(scale, ax=axes, ticks=[0.0, 1.0], aspect=40, pad=0.02)
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label("feature value (rank; grey: categorical)")
    bar.outline.set_visible(False)
    return _finish(figure, path)


def _colormap() -> Any:
    from matplotlib import colormaps

    return colormaps["coolwarm"]


def waterfall(
    explanation: Explanation,
    row: int = 0,
    *,
    output: int | str | None = None,
    max_display: int = 10,
    z: float = 1.96,
    display_names: Mapping[str, str] | None = None,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """One decision: from the base value, feature by feature, to the prediction.

    Each bar is labelled with its contribution and carries a ``± z`` standard-error whisker
    at its end (95 % by default; none where the values are exact), as shap users read a
    waterfall with its numbers. Features beyond ``max_display`` are pooled into one bar.
    When the values do not add up to the prediction (a surrogate's miss at the row), the gap
    is drawn as its own bar, so the figure never hides it.
    """
    o = _output(explanation.output_names, output)
    if not 0 <= row < len(explanation):
        raise ConfigurationError(f"row {row} is out of range for {len(explanation)} rows")
    values = explanation.values[row, :, o]
    stderr = np.nan_to_num(explanation.stderr[row, :, o], nan=0.0)
    base = float(explanation.base_values[row, o])
    prediction = float(explanation.diagnostics.predictions[row, o])
    order = np.argsort(-np.abs(values), kind="stable")
    shown, rest = order[:max_display], order[max_display:]
    labels = [_describe(explanation, row, j, display_names) for j in shown]
    steps = list(values[shown])
    errors = list(z * stderr[shown])
    if len(rest):
        labels.append(f"{len(rest)} other features")
        steps.append(float(values[rest].sum()))
        errors.append(z * float(np.sqrt(np.sum(stderr[rest] ** 2))))
    gap = prediction - base - float(values.sum())
    if abs(gap) > 1e-9 * max(1.0, abs(prediction)):
        labels.append("not explained (surrogate gap)")
        steps.append(gap)
        errors.append(0.0)
    figure, axes = _axes(ax, (7.5, 0.45 * len(steps) + 1.6))
    start = base + np.concatenate([[0.0], np.cumsum(steps)[:-1]])
    ypos = np.arange(len(steps))[::-1]
    stop = start + np.asarray(steps)
    err = np.asarray(errors)
    axes.barh(
        ypos,
        steps,
        left=start,
        xerr=err if err.any() else None,
        error_kw={"ecolor": "#1d2433", "capsize": 3, "elinewidth": 1},
        color=[_POSITIVE if s >= 0 else _NEGATIVE for s in steps],
    )
    low = float(np.min(np.concatenate([start, stop - err, [base, prediction]])))
    high = float(np.max(np.concatenate([start, stop + err, [base, prediction]])))
    span = max(high - low, 1e-12)
    # Each value to the right of its bar (and whisker), where no tick label can be.
    for y, s, a, b, e in zip(ypos, steps, start, stop, err, strict=True):
        axes.text(max(a, b) + e + 0.015 * span, y, f"{s:+.3g}", va="center", fontsize=8)
    axes.set_yticks(ypos, [_wrapped(label) for label in labels])
    axes.set_xlim(low - 0.04 * span, high + 0.16 * span)
    axes.axvline(base, color="grey", linestyle=":", linewidth=1)
    axes.axvline(prediction, color="black", linewidth=1)
    axes.set_xlabel(
        f"{explanation.output_names[o]}: base {base:.4g} -> prediction {prediction:.4g}"
        + (f"\nwhiskers: ± {z:g} standard errors" if err.any() else "")
    )
    return _finish(figure, path)


def _wrapped(label: str, width: int = 36) -> str:
    """A tick label on up to three lines, broken between words."""
    import textwrap

    lines = textwrap.wrap(label, width) or [label]
    return "\n".join(lines[:2] + (["…"] if len(lines) > 3 else lines[2:3]))


def _describe(
    explanation: Explanation, row: int, j: int, display_names: Mapping[str, str] | None = None
) -> str:
    name = explanation.feature_names[j]
    shown = (display_names or {}).get(name, name)
    if name in explanation.data.columns:
        value = explanation.data[name].iloc[row]
        text = f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)
        return f"{shown} = {text}"
    return shown


def effects(
    *results: PartialDependence | AccumulatedLocalEffects,
    output: int | str | None = None,
    max_ice: int = 100,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Partial dependence (with ICE curves if computed) and ALE of one feature, overlaid.

    Numeric features are drawn as lines over the feature's values, categorical ones as
    markers per category. PD and ALE differ by a constant even when they agree in shape; they
    are drawn as returned (ALE centred, PD on the model's scale).
    """
    if not results:
        raise ConfigurationError("pass at least one PartialDependence or AccumulatedLocalEffects")
    figure, axes = _axes(ax, (6.0, 4.0))
    for result in results:
        o = _output(result.output_names, output)
        categorical = result.kind == "categorical"
        x: Any = np.arange(len(result.grid)) if categorical else result.grid
        if isinstance(result, PartialDependence) and result.ice is not None:
            for curve in result.ice[:max_ice, :, o]:
                axes.plot(x, curve, color="grey", alpha=0.2, linewidth=0.6)
        name = "PD" if isinstance(result, PartialDependence) else "ALE"
        style = "o-" if categorical else "-"
        axes.plot(x, result.values[:, o], style, linewidth=2, label=f"{name} ({result.feature})")
        if categorical:
            axes.set_xticks(x, [str(v) for v in result.grid], rotation=45, ha="right")
    axes.set_xlabel(results[0].feature)
    axes.set_ylabel(results[0].output_names[_output(results[0].output_names, output)])
    axes.legend()
    return _finish(figure, path)


def surrogate_tree(
    surrogate: GlobalSurrogate,
    *,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """The fitted tree of a :class:`~surrogate_xai.global_.GlobalSurrogate`, with its fidelity."""
    from sklearn.tree import plot_tree

    if getattr(surrogate, "kind", None) != "tree" or not hasattr(surrogate, "estimator_"):
        raise ConfigurationError("surrogate_tree needs a fitted GlobalSurrogate(kind='tree')")
    tree = surrogate.estimator_
    depth = tree.get_depth()
    figure, axes = _axes(ax, (max(6.0, 2.4 * 2**depth), 1.8 * depth + 2.0))
    classes = getattr(tree, "classes_", None)
    plot_tree(
        tree,
        feature_names=surrogate._encoded_names(),
        class_names=None if classes is None else [str(c) for c in classes],
        filled=True,
        impurity=False,
        rounded=True,
        fontsize=8,
        ax=axes,
    )
    fidelity = surrogate.fidelity_
    axes.set_title(
        f"held-out {fidelity.metric} {fidelity.value:.3g} on {fidelity.n_test} rows"
        + (" (below min_fidelity)" if surrogate.low_fidelity_ else "")
    )
    return _finish(figure, path)


def _members(explanation: Explanation) -> dict[str, list[str]]:
    return {u: list(c) for u, c in explanation.provenance.feature_groups.items()}


def image_heatmap(
    explanation: Explanation,
    row: int = 0,
    *,
    output: int | str | None = None,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """One image's attributions laid over it: patches (or pixels) in a diverging colour
    scale centred on 0, the image underneath in grey, and a colour bar.

    The image and its geometry come from the columns' names
    (:func:`~surrogate_xai.groups.image_feature_names`, as an image input of an
    ``ONNXModel`` is named), the patches from the explanation's feature groups
    (:func:`~surrogate_xai.groups.image_patches`).
    """
    from .groups import image_of, pixel_attributions

    o = _output(explanation.output_names, output)
    if not 0 <= row < len(explanation):
        raise ConfigurationError(f"row {row} is out of range for {len(explanation)} rows")
    grid = pixel_attributions(
        explanation.values[row, :, o], explanation.feature_names, _members(explanation)
    )
    if grid is None:
        raise ConfigurationError(
            "image_heatmap needs image columns named like groups.image_feature_names "
            "(p{row}_{col} or c{channel}_p{row}_{col})"
        )
    image = image_of(explanation.data.iloc[row].to_dict(), grid.shape)
    figure, axes = _axes(ax, (5.2, 4.4))
    if np.isfinite(image).any():
        axes.imshow(image, cmap="gray_r", interpolation="nearest")
    limit = max(float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.0, 1e-12)
    shown = axes.imshow(
        grid, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.65, interpolation="nearest"
    )
    figure.colorbar(shown, ax=axes, label=f"attribution to {explanation.output_names[o]}")
    prediction = float(explanation.diagnostics.predictions[row, o])
    axes.set_title(f"row {row}: {explanation.output_names[o]} = {prediction:.4g}")
    axes.set_xticks([])
    axes.set_yticks([])
    return _finish(figure, path)


def time_step_values(
    explanation: Explanation, *, output: int | str | None = None, row: int | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per time step (or window): labels, values and 1.96-s.e. half-widths, in time order
    (see :func:`~surrogate_xai.groups.step_contributions`)."""
    from .groups import step_contributions

    o = _output(explanation.output_names, output)
    if row is not None and not 0 <= row < len(explanation):
        raise ConfigurationError(f"row {row} is out of range for {len(explanation)} rows")
    found = step_contributions(
        explanation.values[:, :, o],
        explanation.stderr[:, :, o],
        explanation.feature_names,
        _members(explanation),
        row=row,
    )
    if found is None:
        raise ConfigurationError(
            "time steps need units named like groups.time_steps (t{step}) or columns named "
            "like groups.sequence_feature_names (t{step}_{feature})"
        )
    return found


def time_steps(
    explanation: Explanation,
    *,
    row: int | None = None,
    output: int | str | None = None,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Attribution per time step of a sequence model, in time order, with 95 % intervals:
    one row's signed contributions (``row=``), or the mean |contribution| over all rows."""
    labels, heights, half = time_step_values(explanation, output=output, row=row)
    o = _output(explanation.output_names, output)
    figure, axes = _axes(ax, (max(5.0, 0.45 * len(labels) + 1.5), 3.4))
    axes.bar(
        np.arange(len(labels)),
        heights,
        yerr=half,
        color=[_POSITIVE if h >= 0 else _NEGATIVE for h in heights],
        capsize=3,
    )
    axes.set_xticks(np.arange(len(labels)), labels, rotation=45 if len(labels) > 12 else 0)
    axes.axhline(0, color="grey", linewidth=0.8)
    what = "contribution" if row is not None else "mean |contribution|"
    axes.set_ylabel(f"{what} to {explanation.output_names[o]} (95% CI)")
    axes.set_xlabel("time step")
    if row is not None:
        axes.set_title(f"row {row}")
    return _finish(figure, path)
