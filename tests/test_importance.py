"""Permutation importance (with and without labels) and global summaries of attributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import surrogate_xai as sx
from surrogate_xai.datasets import make_additive
from surrogate_xai.explainers.local import LocalSurrogate
from surrogate_xai.global_ import mean_abs_importance, permutation_importance


@pytest.fixture(scope="module")
def regression():
    from sklearn.ensemble import RandomForestRegressor

    problem = make_additive(n_samples=400, n_features=6, random_state=2)
    rng = np.random.default_rng(0)
    y = problem.predict(problem.X.to_numpy()) + 0.3 * rng.normal(size=400)
    native = RandomForestRegressor(n_estimators=30, max_depth=6, random_state=0).fit(problem.X, y)
    model = sx.FunctionModel(native.predict, problem.feature_names)
    return native, model, problem.X, y


def test_agrees_with_sklearn(regression):
    from sklearn.inspection import permutation_importance as sk_importance

    native, model, X, y = regression
    ours = permutation_importance(model, X, y, scoring="r2", n_repeats=20, random_state=0)
    theirs = sk_importance(native, X, y, scoring="r2", n_repeats=20, random_state=0)
    values, se = ours.values[0, :, 0], ours.stderr[0, :, 0]
    assert ours.output_names == ["r2"]
    assert ours.base_values[0, 0] == pytest.approx(native.score(X, y))
    assert spearmanr(values, theirs.importances_mean).statistic >= 0.95
    their_se = theirs.importances_std / np.sqrt(20)
    assert np.all(np.abs(values - theirs.importances_mean) <= 2 * np.hypot(se, their_se) + 1e-12)


def test_without_labels_measures_output_change(regression):
    _, model, X, _ = regression
    exp = permutation_importance(model, X, n_repeats=5, random_state=1)
    assert exp.output_names == model.output_names
    assert exp.values[0, -1, 0] < 0.05 * exp.values[0, :, 0].max()  # the dummy feature
    assert np.all(exp.values >= 0)
    assert exp.diagnostics.extra["kind"] == "output_change"
    again = permutation_importance(model, X, n_repeats=5, random_state=1)
    assert np.array_equal(exp.values, again.values)
    back = sx.Explanation.from_json(exp.to_json())
    assert np.array_equal(back.values, exp.values)


def test_groups_are_permuted_together():
    # f = x0 - x1 on rows where x0 == x1: permuting the pair with one permutation keeps every
    # row's difference (importance 0); permuting either alone does not.
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    X = pd.DataFrame({"x0": a, "x1": a, "x2": rng.normal(size=200)})
    model = sx.FunctionModel(lambda A: A[:, 0] - A[:, 1], list(X.columns), input_type="array")
    grouped = permutation_importance(
        model, X, n_repeats=4, random_state=0, feature_groups={"pair": ["x0", "x1"]}
    )
    assert grouped.feature_names == ["pair", "x2"]
    np.testing.assert_allclose(grouped.values[0, :, 0], 0, atol=1e-12)
    alone = permutation_importance(model, X, n_repeats=4, random_state=0)
    assert np.all(alone.values[0, :2, 0] > 0.5)


def test_accuracy_on_the_credit_model_with_text_labels(credit_model):
    _, path, X = credit_model
    from surrogate_xai.datasets import load_german_credit

    _, y = load_german_credit()
    model = sx.ONNXModel(path, output="probability")
    rows, labels = X.iloc[:300], y.iloc[:300]
    exp = permutation_importance(model, rows, labels, n_repeats=3, random_state=0)
    assert exp.output_names == ["accuracy"]
    assert 0.5 < exp.base_values[0, 0] <= 1
    top = exp.feature_names[int(np.argmax(exp.values[0, :, 0]))]
    assert top in X.columns
    with pytest.raises(sx.ConfigurationError, match="scoring"):
        permutation_importance(model, rows, labels, scoring="f1")


def test_mean_abs_summary_with_bootstrap_interval(linear_problem):
    problem, _, model = linear_problem
    exp = LocalSurrogate(n_samples=400, random_state=0).fit(model, problem.X).explain(problem.X)
    summary = mean_abs_importance(exp, n_bootstrap=500, random_state=3)
    np.testing.assert_allclose(summary.mean_abs, np.abs(exp.values).mean(axis=0))
    assert np.all(summary.lower <= summary.mean_abs)
    assert np.all(summary.mean_abs <= summary.upper)
    assert np.all(summary.stderr > 0)
    frame = summary.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 5
    assert frame["mean_abs"].is_monotonic_decreasing
    same = mean_abs_importance(exp, n_bootstrap=500, random_state=3)
    assert np.array_equal(same.lower, summary.lower)
