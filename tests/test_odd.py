"""OddKernelSHAP: exact where it claims, unbiased, calibrated, KernelSHAP below its refit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.datasets import make_additive, make_unanimity
from tests.oracles import brute_force_shapley

D = 8
# 8 background rows, 160 rows = 80 pairs per block: at 2 pairs per regressor the refit
# affords 32 of the 56 triples (the default of 8 needs 128 pairs, more than d = 8 has).
REFIT = {"interaction_factor": 2, "max_evals": 8 * 160 + 1}


def order_four_model(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(20, D)), columns=[f"x{j}" for j in range(D)])
    w = rng.normal(size=D)

    def f(A):
        A = np.asarray(A)
        return (
            A @ w
            + A[:, 0] * A[:, 1]
            + 0.7 * A[:, 2] * A[:, 3] * A[:, 4]
            - 0.5 * A[:, 1] * A[:, 5] * A[:, 6] * A[:, 7]
            + np.sin(A[:, 0]) * A[:, 7]
        )

    return X, f


def test_exact_for_games_with_interactions_up_to_order_four():
    X, f = order_four_model()
    model = sx.FunctionModel(f, list(X.columns), input_type="array")
    B = X.iloc[12:]
    exp = sx.OddKernelSHAP(**REFIT, random_state=1).fit(model, B).explain(X.iloc[:3])
    for i in range(3):
        oracle = brute_force_shapley(f, X.iloc[i].to_numpy(), B.to_numpy())
        np.testing.assert_allclose(exp.values[i], oracle, rtol=0, atol=1e-9)
    assert exp.stderr.max() < 1e-9  # every sampled pair fitted exactly
    # KernelSHAP on the same budget is not exact there (3- and 4-way terms are noise to it).
    kernel = sx.KernelSHAP(max_evals=REFIT["max_evals"], random_state=1).fit(model, B)
    assert np.abs(kernel.explain(X.iloc[:3]).values - exp.values).max() > 1e-4


def test_exact_on_additive_games():
    problem = make_additive(n_samples=30, n_features=D, random_state=3)
    model = sx.FunctionModel(problem.predict, problem.feature_names, input_type="array")
    X, B = problem.X.iloc[:4], problem.X.iloc[22:]
    exp = sx.OddKernelSHAP(**REFIT, random_state=2).fit(model, B).explain(X)
    np.testing.assert_allclose(exp.values[:, :, 0], problem.shapley_values(X, B), atol=1e-9)


def test_is_kernelshap_bit_for_bit_below_its_refit():
    X, f = order_four_model(1)
    model = sx.FunctionModel(f, list(X.columns), input_type="array")
    for budget in (200, 8 * 60 + 1):  # below one pass; one pass with too few pairs
        odd = sx.OddKernelSHAP(max_evals=budget, random_state=4).fit(model, X)
        kernel = sx.KernelSHAP(max_evals=budget, random_state=4).fit(model, X)
        a, b = odd.explain(X.iloc[:2]), kernel.explain(X.iloc[:2])
        assert np.array_equal(a.values, b.values)
        assert np.array_equal(a.stderr, b.stderr)


def soum_model(n_players: int = 20):
    # Terms of every order up to 20: far outside what the refit can fit exactly.
    problem = make_unanimity(n_players, 30, n_samples=1, random_state=0)
    model = sx.FunctionModel(problem.predict, problem.feature_names, input_type="array")
    return problem, model, problem.shapley_values(problem.X, problem.background)[0]


#: One background row, 6,000 rows: 3,000 pairs, the refit runs with 355 triples.
SOUM_EVALS = 6_001


def soum_runs(seeds, max_evals=SOUM_EVALS):
    problem, model, truth = soum_model()
    out = [
        sx.OddKernelSHAP(max_evals=max_evals, random_state=seed)
        .fit(model, problem.background)
        .explain(problem.X)
        for seed in seeds
    ]
    return (
        truth,
        np.array([e.values[0, :, 0] for e in out]),
        np.array([e.stderr[0, :, 0] for e in out]),
    )


def bias_in_standard_errors(max_evals: int, seeds: range) -> float:
    truth, values, _ = soum_runs(seeds, max_evals)
    se = values.std(axis=0, ddof=1) / np.sqrt(len(values))
    return float((np.abs(values.mean(axis=0) - truth) / np.maximum(se, 1e-12)).max())


def test_unbiased_on_a_sum_of_unanimity_game():
    assert bias_in_standard_errors(SOUM_EVALS, range(40)) < 3


@pytest.mark.xfail(
    strict=True,
    reason="known: the selected regression is consistent, not unbiased; with 2,000 pairs on "
    "this 20-player game the mean over 30 seeds is 6.4 standard errors off (docs/method.md)",
)
def test_unbiased_on_a_sum_of_unanimity_game_at_a_lower_budget():
    assert bias_in_standard_errors(4_001, range(30)) < 3


def test_stderr_covers_the_exact_values():
    truth, values, stderr = soum_runs(range(16))
    covered = np.abs(values - truth) <= 1.96 * stderr
    assert covered.size >= 300
    assert covered.mean() >= 0.93, f"coverage {covered.mean():.3f}"
    assert np.all(stderr > 0)


def test_stderr_covers_the_exact_values_of_an_interacting_model():
    from tests.test_calibration import interacting_model

    X, model = interacting_model()
    rows = X.iloc[:40]
    exact = sx.ExactSHAP().fit(model, X).explain(rows).values
    exp = sx.OddKernelSHAP(max_evals=20_000, random_state=1).fit(model, X).explain(rows)
    assert exp.provenance.design["rows_per_block"] * 30 > 2 * 10 * 8 * 30  # the refit ran
    covered = np.abs(exp.values - exact) <= 1.96 * exp.stderr + 1e-9
    assert covered.size >= 300
    assert covered.mean() >= 0.93, f"coverage {covered.mean():.3f}"


def test_conformance_with_the_refit_running():
    from surrogate_xai.testing import check_explainer

    X, f = order_four_model(2)
    model = sx.FunctionModel(f, list(X.columns), input_type="array")
    exp = check_explainer(
        lambda: sx.OddKernelSHAP(**REFIT, random_state=3), model, X.iloc[12:], X.iloc[:3]
    )
    assert not exp.diagnostics.exact
    assert exp.provenance.method == "oddkernelshap"
