"""compare(): several models, one protocol."""

from __future__ import annotations

import numpy as np
import pytest

import surrogate_xai as sx
from surrogate_xai.compare import compare


def test_identical_models_agree_perfectly_and_different_ones_do_not(linear_problem):
    problem, beta, model = linear_problem
    twin = sx.FunctionModel(problem.predict, problem.feature_names, input_type="frame")
    flipped = sx.FunctionModel(
        lambda A: np.asarray(A) @ beta[::-1], problem.feature_names, input_type="array"
    )
    X, B = problem.X.iloc[:6], problem.X.iloc[20:]
    result = compare(
        {"a": model, "b": twin, "c": flipped},
        X,
        B,
        sx.KernelSHAP(max_evals=2_000, random_state=4),
    )
    # Same function behind two interfaces (array vs DataFrame input, which only changes the
    # memory order BLAS sees), same design: the same attributions to rounding.
    np.testing.assert_allclose(
        result.explanations["a"].values, result.explanations["b"].values, rtol=0, atol=1e-12
    )
    ab = result.agreement.query("model_a == 'a' and model_b == 'b'").iloc[0]
    assert ab.spearman_mean == 1.0
    assert ab.top5_overlap_mean == 1.0
    assert result.differences.query("model_a == 'a' and model_b == 'b'").max_abs_diff.max() < 1e-12
    ac = result.agreement.query("model_a == 'a' and model_b == 'c'").iloc[0]
    assert ac.spearman_mean < 0.9
    # The linear answer is exact per model: the difference table shows the coefficient gap.
    delta = X.to_numpy() - B.to_numpy().mean(axis=0)
    expected = np.abs((beta - beta[::-1]) * delta).mean(axis=0)
    got = result.differences.query("model_a == 'a' and model_b == 'c'").mean_abs_diff.to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert set(result.attributions.model) == {"a", "b", "c"}


def test_compare_refuses_what_would_not_be_comparable(linear_problem, credit_model):
    problem, _, model = linear_problem
    _, path, _ = credit_model
    with pytest.raises(sx.ConfigurationError, match="same inputs"):
        compare({"a": model, "b": sx.ONNXModel(path)}, problem.X, problem.X)
    with pytest.raises(sx.ConfigurationError, match="fixed random_state"):
        compare({"a": model, "b": model}, problem.X, problem.X, sx.KernelSHAP())
    with pytest.raises(sx.ConfigurationError, match="has no output 'p'"):
        compare({"a": model, "b": model}, problem.X.iloc[:2], problem.X, output="p")
