"""Every plot writes a real PNG and SVG file without a display or pyplot's global state."""

from __future__ import annotations

import numpy as np
import pytest

import surrogate_xai as sx
from surrogate_xai import plots
from surrogate_xai.datasets import make_additive
from surrogate_xai.explainers.local import LocalSurrogate
from surrogate_xai.global_ import (
    GlobalSurrogate,
    accumulated_local_effects,
    mean_abs_importance,
    partial_dependence,
    permutation_importance,
)


@pytest.fixture(scope="module")
def results():
    problem = make_additive(n_samples=200, n_features=5, random_state=0)
    model = sx.FunctionModel(problem.predict, problem.feature_names, input_type="array")
    local = (
        LocalSurrogate(n_samples=400, random_state=0)
        .fit(model, problem.X)
        .explain(problem.X.iloc[:20])
    )
    surrogate = GlobalSurrogate(on_low_fidelity="flag", random_state=0).fit(model, problem.X)
    return {
        "bar_local": lambda p: plots.bar(local, path=p),
        "bar_summary": lambda p: plots.bar(mean_abs_importance(local, random_state=0), path=p),
        "bar_permutation": lambda p: plots.bar(
            permutation_importance(model, problem.X, random_state=0), path=p
        ),
        "beeswarm": lambda p: plots.beeswarm(local, path=p),
        "waterfall": lambda p: plots.waterfall(local, 3, max_display=3, path=p),
        "effects": lambda p: plots.effects(
            partial_dependence(model, problem.X, "x0", ice=True),
            accumulated_local_effects(model, problem.X, "x0"),
            path=p,
        ),
        "tree": lambda p: plots.surrogate_tree(surrogate, path=p),
    }


@pytest.mark.parametrize("suffix", [".png", ".svg"])
@pytest.mark.parametrize(
    "name",
    ["bar_local", "bar_summary", "bar_permutation", "beeswarm", "waterfall", "effects", "tree"],
)
def test_plot_files(results, name, suffix, tmp_path):
    path = tmp_path / f"{name}{suffix}"
    figure = results[name](path)
    data = path.read_bytes()
    assert len(data) > 1_000
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2_000]
    assert figure.get_axes()


def test_waterfall_shows_the_surrogate_gap(results, tmp_path):
    problem = make_additive(n_samples=200, n_features=5, random_state=0)
    model = sx.FunctionModel(problem.predict, problem.feature_names, input_type="array")
    exp = (
        LocalSurrogate(n_samples=400, random_state=0)
        .fit(model, problem.X)
        .explain(problem.X.iloc[:1])
    )
    figure = plots.waterfall(exp, 0)
    labels = [t.get_text() for t in figure.get_axes()[0].get_yticklabels()]
    assert labels[-1].startswith("not explained")
    gap = abs(exp.diagnostics.extra["prediction_gap"][0][0])
    assert gap > 1e-6


def test_categorical_effects_and_axes_reuse(credit_model, tmp_path):
    from matplotlib.figure import Figure

    _, path, X = credit_model
    model = sx.ONNXModel(path, output="probability")
    figure = Figure()
    ax = figure.add_subplot()
    out = plots.effects(
        partial_dependence(model, X.iloc[:100], "purpose"),
        accumulated_local_effects(model, X.iloc[:100], "purpose"),
        output="probabilities[good]",
        ax=ax,
    )
    assert out is figure
    assert len(ax.get_xticklabels()) == X.iloc[:100]["purpose"].nunique()
    with pytest.raises(sx.ConfigurationError, match="output"):
        plots.bar(permutation_importance(model, X.iloc[:50], random_state=0), output="nope")
    np.testing.assert_array_equal(len(ax.lines), 2)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_image_heatmap_and_time_steps_write_files(suffix, tmp_path):
    from tests.deep_cases import image_explanation, sequence_explanation

    image, sequence = image_explanation(), sequence_explanation()
    for name, draw in {
        "heatmap": lambda p: plots.image_heatmap(image, 1, path=p),
        "steps_row": lambda p: plots.time_steps(sequence, row=0, path=p),
        "steps_mean": lambda p: plots.time_steps(sequence, path=p),
    }.items():
        path = tmp_path / f"{name}{suffix}"
        figure = draw(path)
        data = path.read_bytes()
        assert len(data) > 1_000
        assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2_000]
        assert len(figure.get_axes()) == (2 if name == "heatmap" else 1)  # heatmap: colour bar


def test_time_step_values_are_the_steps_contributions():
    from tests.deep_cases import sequence_explanation

    exp = sequence_explanation()
    labels, values, half = plots.time_step_values(exp, row=2)
    assert labels == ["t0", "t1", "t2", "t3", "t4"]
    np.testing.assert_allclose(values, exp.values[2, :, 0])
    np.testing.assert_array_equal(half, 0.0)  # exact: no standard error
    _, mean_abs, _ = plots.time_step_values(exp)
    assert set(np.flatnonzero(mean_abs > 1e-9)) == {1, 3}  # only the steps the model reads


def test_image_plots_refuse_tabular_explanations(results):
    problem = make_additive(n_samples=40, n_features=3, random_state=0)
    model = sx.FunctionModel(problem.predict, problem.feature_names, input_type="array")
    exp = sx.ExactSHAP().fit(model, problem.X).explain(problem.X.iloc[:2])
    with pytest.raises(sx.ConfigurationError, match="image columns"):
        plots.image_heatmap(exp)
    with pytest.raises(sx.ConfigurationError, match="time steps need"):
        plots.time_steps(exp)


def test_beeswarm_has_a_feature_value_colour_bar():
    problem = make_additive(n_samples=60, n_features=4, random_state=1)
    model = sx.FunctionModel(problem.predict, problem.feature_names, input_type="array")
    exp = sx.ExactSHAP().fit(model, problem.X.iloc[:20]).explain(problem.X.iloc[:30])
    figure = plots.beeswarm(exp, display_names={"x0": "first feature"})
    main, bar = figure.get_axes()  # the swarm and, as in shap, its colour bar
    assert "feature value" in bar.get_ylabel()
    assert [t.get_text() for t in bar.get_yticklabels()] == ["low", "high"]
    assert "first feature" in [t.get_text() for t in main.get_yticklabels()]


def test_waterfall_labels_every_bar_and_draws_its_interval(credit_model):
    from matplotlib.collections import LineCollection

    _, path, X = credit_model
    model = sx.ONNXModel(path)
    exp = sx.KernelSHAP(max_evals=800, random_state=0).fit(model, X.iloc[:30]).explain(X.iloc[:1])
    figure = plots.waterfall(exp, 0, output="probabilities[good]", max_display=5)
    axes = figure.get_axes()[0]
    values = exp.values[0, :, 1]
    top = values[np.argsort(-np.abs(values), kind="stable")[:5]]
    labels = [t.get_text() for t in axes.texts]
    assert [f"{v:+.3g}" for v in top] == labels[:5]
    assert len(labels) == 6  # five features and "15 other features"
    # Whiskers: the error bars of the sampled values (± 1.96 standard errors).
    assert any(isinstance(c, LineCollection) for c in axes.collections)
    assert "1.96 standard errors" in axes.get_xlabel()
