"""Shipped and generated data."""

from __future__ import annotations

import numpy as np

from surrogate_xai.datasets import load_german_credit, make_additive, make_linear


def test_german_credit():
    X, y = load_german_credit()
    assert X.shape == (1000, 20)
    assert set(y) == {"good", "bad"}
    assert (y == "bad").sum() == 300
    assert X["purpose"].dtype == object
    assert "... < 0 DM" in set(X["status_of_existing_checking_account"])


def test_generators_give_exact_values_for_their_models():
    problem, beta = make_linear(n_samples=30, n_features=4, random_state=1)
    X = problem.X.to_numpy()
    np.testing.assert_allclose(problem.shapley_values(X[:3], X), beta * (X[:3] - X.mean(0)))
    add = make_additive(n_samples=30, n_features=5, random_state=1)
    phi = add.shapley_values(add.X.iloc[:4], add.X)
    preds = add.predict(add.X.to_numpy())
    np.testing.assert_allclose(phi.sum(1), preds[:4] - preds.mean(), atol=1e-12)
