"""ExactSHAP against brute force and the analytic answer for linear models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.datasets import make_additive
from tests.oracles import brute_force_shapley


def test_linear_model_matches_analytic_answer(linear_problem):
    problem, beta, model = linear_problem
    X, B = problem.X.iloc[:10], problem.X.iloc[10:]
    exp = sx.ExactSHAP().fit(model, B).explain(X)
    expected = beta * (X.to_numpy() - B.to_numpy().mean(axis=0))
    np.testing.assert_allclose(exp.values[:, :, 0], expected, rtol=0, atol=1e-9)
    assert np.all(exp.stderr == 0)
    assert exp.diagnostics.exact
    assert exp.diagnostics.converged.all()


def test_weighted_background_matches_analytic_answer(linear_problem):
    problem, beta, model = linear_problem
    X, B = problem.X.iloc[:5], problem.X.iloc[10:30]
    w = np.linspace(1, 3, len(B))
    exp = sx.ExactSHAP().fit(model, sx.Background(B, w)).explain(X)
    expected = beta * (X.to_numpy() - (w / w.sum()) @ B.to_numpy())
    np.testing.assert_allclose(exp.values[:, :, 0], expected, rtol=0, atol=1e-9)


def test_nonlinear_model_matches_brute_force():
    rng = np.random.default_rng(5)
    d = 6
    X = pd.DataFrame(rng.normal(size=(25, d)), columns=[f"f{j}" for j in range(d)])

    def f(A):
        A = np.asarray(A)
        return np.column_stack(
            [A[:, 0] * A[:, 1] * A[:, 2] + np.sin(A[:, 3] * A[:, 4]), np.maximum(A.sum(1), 0)]
        )

    model = sx.FunctionModel(f, list(X.columns), ["a", "b"], input_type="array")
    exp = sx.ExactSHAP().fit(model, X.iloc[5:]).explain(X.iloc[:5])
    for i in range(5):
        oracle = brute_force_shapley(f, X.iloc[i].to_numpy(), X.iloc[5:].to_numpy())
        np.testing.assert_allclose(exp.values[i], oracle, rtol=0, atol=1e-9)


def test_additive_model_matches_closed_form():
    problem = make_additive(n_samples=80, n_features=7, random_state=2)
    model = sx.FunctionModel(problem.predict, problem.feature_names, input_type="array")
    X, B = problem.X.iloc[:6], problem.X.iloc[6:]
    exp = sx.ExactSHAP().fit(model, B).explain(X)
    np.testing.assert_allclose(exp.values[:, :, 0], problem.shapley_values(X, B), atol=1e-9)
    assert np.all(exp.values[:, -1, 0] == 0)  # the dummy feature


def test_groups_match_brute_force_over_groups():
    rng = np.random.default_rng(9)
    X = pd.DataFrame(rng.normal(size=(30, 5)), columns=list("abcde"))

    def f(A):
        A = np.asarray(A)
        return A[:, 0] * A[:, 1] + A[:, 2] ** 2 - A[:, 3] * A[:, 4]

    model = sx.FunctionModel(f, list(X.columns), input_type="array")
    groups = {"ab": ["a", "b"], "de": ["d", "e"]}
    exp = sx.ExactSHAP().fit(model, X.iloc[10:], feature_groups=groups).explain(X.iloc[:3])
    assert exp.feature_names == ["ab", "c", "de"]
    for i in range(3):
        oracle = brute_force_shapley(
            f, X.iloc[i].to_numpy(), X.iloc[10:].to_numpy(), units=[[0, 1], [2], [3, 4]]
        )
        np.testing.assert_allclose(exp.values[i], oracle, rtol=0, atol=1e-9)


def test_refuses_too_many_features():
    X = pd.DataFrame(np.zeros((3, 13)), columns=[f"c{j}" for j in range(13)])
    model = sx.FunctionModel(lambda A: np.asarray(A).sum(1), list(X.columns), input_type="array")
    with pytest.raises(sx.TooManyFeaturesError, match="d=13 exceeds max_features=12"):
        sx.ExactSHAP().fit(model, X)
    sx.ExactSHAP(max_features=13).fit(model, X)  # raising the limit is allowed
