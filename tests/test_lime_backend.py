"""The lime backend reproduces lime's numbers, seeded per call, without lime's side effects."""

from __future__ import annotations

import numpy as np
import pytest

import surrogate_xai as sx
from surrogate_xai.datasets import make_additive
from surrogate_xai.explainers.lime_backend import LIME
from surrogate_xai.testing import check_explainer


@pytest.fixture
def additive():
    problem = make_additive(n_samples=120, n_features=5, random_state=1)
    model = sx.FunctionModel(problem.predict, problem.feature_names, input_type="array")
    return problem, model


def test_matches_lime_bit_for_bit(additive):
    from lime.lime_tabular import LimeTabularExplainer

    problem, model = additive
    B, rows = problem.X.iloc[20:], problem.X.iloc[:3]
    exp = LIME(n_samples=600, random_state=3).fit(model, B).explain(rows)
    for i in range(3):
        # What a lime user writes for row i: a fresh explainer with the seed.
        ref = LimeTabularExplainer(
            B.to_numpy(), mode="regression", feature_names=problem.feature_names, random_state=3
        ).explain_instance(rows.iloc[i].to_numpy(), problem.predict, num_samples=600)
        weights = dict(ref.as_map()[1])
        expected = [weights.get(j, 0.0) for j in range(5)]
        assert np.array_equal(exp.values[i, :, 0], expected)
        assert exp.base_values[i, 0] == ref.intercept[1]
        assert exp.diagnostics.extra["r2"][i][0] == ref.score
        np.testing.assert_allclose(
            exp.diagnostics.extra["local_prediction"][i][0], ref.local_pred[0]
        )


def test_each_row_is_seeded_on_its_own(additive):
    problem, model = additive
    explainer = LIME(n_samples=400, random_state=9).fit(model, problem.X.iloc[20:])
    rows = problem.X.iloc[:4]
    whole = explainer.explain(rows)
    again = explainer.explain(rows)
    assert np.array_equal(whole.values, again.values)  # lime alone: a different answer
    single = explainer.explain(rows.iloc[[2]])
    assert np.array_equal(single.values[0], whole.values[2])
    reverse = explainer.explain(rows.iloc[::-1])
    assert np.array_equal(reverse.values, whole.values[::-1])


def test_global_rng_untouched(additive):
    problem, model = additive
    state = np.random.get_state()[1].copy()  # noqa: NPY002 - checking that nobody used it
    LIME(n_samples=300, random_state=1).fit(model, problem.X).explain(problem.X.iloc[:2])
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_conformance_on_the_credit_onnx_model(credit_model):
    # lime's linear model does not reproduce the model at the row (that miss is its
    # efficiency gap, reported); additivity therefore holds only up to it (a probability).
    _, path, X = credit_model
    model = sx.ONNXModel(path, output="probability")
    exp = check_explainer(
        lambda: LIME(n_samples=500, random_state=4), model, X.iloc[100:300], X.iloc[:2], atol=1.0
    )
    assert exp.values.shape == (2, 20, 2)
    assert np.all(np.count_nonzero(exp.values[:, :, 1], axis=1) <= 10)
    assert np.all(np.isnan(exp.stderr))
    local = np.array(exp.diagnostics.extra["local_prediction"])
    np.testing.assert_allclose(exp.values.sum(axis=1) + exp.base_values, local, atol=1e-12)


def test_refuses_groups_and_weighted_backgrounds(additive):
    problem, model = additive
    with pytest.raises(sx.ConfigurationError, match="feature_groups"):
        LIME().fit(model, problem.X, feature_groups={"g": ["x0", "x1"]})
    weighted = sx.Background(problem.X.iloc[:10], np.arange(1.0, 11.0))
    with pytest.raises(sx.ConfigurationError, match="weights"):
        LIME().fit(model, weighted)
    with pytest.raises(sx.ConfigurationError, match="discretizer"):
        LIME(discretizer="tertile").fit(model, problem.X)
