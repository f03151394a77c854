"""PDP, ICE and ALE: exact shapes for additive models, and ALE vs PDP under correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.datasets import make_additive
from surrogate_xai.global_ import accumulated_local_effects, partial_dependence


def counting(fn, names, **kwargs):
    calls: list[int] = []

    def f(A):
        calls.append(len(A))
        return fn(A)

    return sx.FunctionModel(f, names, **kwargs), calls


@pytest.fixture
def additive():
    problem = make_additive(n_samples=300, n_features=5, random_state=4)
    model, calls = counting(problem.predict, problem.feature_names, input_type="array")
    return problem, model, calls


@pytest.mark.parametrize("j", [0, 1, 2, 4])
def test_pdp_of_additive_model_is_its_shape_function(additive, j):
    problem, model, calls = additive
    result = partial_dependence(model, problem.X, f"x{j}", ice=True)
    truth = problem.terms[j](result.grid)
    shape = result.values[:, 0] - truth
    np.testing.assert_allclose(shape, shape[0], atol=1e-12)  # equal up to a constant
    assert calls == [300 * 20]  # one model call for the whole grid
    assert result.ice.shape == (300, 20, 1)
    np.testing.assert_allclose(result.ice.mean(axis=0), result.values)


@pytest.mark.parametrize("j", [0, 1, 2])
def test_ale_of_additive_model_is_its_shape_function(additive, j):
    problem, model, calls = additive
    result = accumulated_local_effects(model, problem.X, f"x{j}", n_bins=10)
    truth = problem.terms[j](result.grid)
    shape = result.values[:, 0] - truth
    np.testing.assert_allclose(shape, shape[0], atol=1e-12)
    assert calls == [2 * 300]
    assert result.counts.sum() == 300


def test_ale_stays_on_the_data_where_pdp_extrapolates():
    # x1 and x2 move together; the model adds 10 (x1 - x2)^2, which is ~0 on the data. PD sets
    # x1 to each grid value for every row, pairing small x1 with large x2: it shows the
    # off-data term as a U shape. ALE moves rows only within their bin: it shows the effect
    # along the data, a straight line of slope 1 (the documented direction, docs/surrogates.md).
    rng = np.random.default_rng(0)
    x1 = rng.uniform(-1, 1, 1_000)
    X = pd.DataFrame({"x1": x1, "x2": x1 + 0.05 * rng.normal(size=1_000)})
    model = sx.FunctionModel(
        lambda A: A[:, 0] + 10 * (A[:, 0] - A[:, 1]) ** 2, ["x1", "x2"], input_type="array"
    )
    ale = accumulated_local_effects(model, X, "x1", n_bins=20)
    pdp = partial_dependence(model, X, "x1", grid_resolution=20, percentiles=(0.0, 1.0))
    ale_slope = np.polyfit(ale.grid, ale.values[:, 0], 1)[0]
    ale_curve = np.polyfit(ale.grid, ale.values[:, 0], 2)[0]
    pdp_curve = np.polyfit(pdp.grid, pdp.values[:, 0], 2)[0]
    assert ale_slope == pytest.approx(1.0, abs=0.1)
    assert abs(ale_curve) < 0.5
    assert pdp_curve > 8  # 10 x1^2 from pairing every x1 with every x2


def test_categorical_features_use_real_categories(credit_model):
    _, path, X = credit_model
    onnx = sx.ONNXModel(path, output="probability")
    rows = X.iloc[:200]
    pdp = partial_dependence(onnx, rows, "purpose")
    assert pdp.kind == "categorical"
    assert set(pdp.grid) == set(rows["purpose"].unique())
    assert pdp.values.shape == (len(pdp.grid), 2)
    np.testing.assert_allclose(pdp.values.sum(axis=1), 1, atol=1e-5)  # probabilities
    ale = accumulated_local_effects(onnx, rows, "purpose")
    assert set(ale.grid) == set(rows["purpose"].unique())
    assert ale.counts.sum() == 200
    weighted = (ale.counts[:, None] * ale.values).sum(axis=0) / 200
    np.testing.assert_allclose(weighted, 0, atol=1e-12)  # centred over the data


def test_bad_arguments_are_named(additive):
    problem, model, _ = additive
    with pytest.raises(sx.ConfigurationError, match="'nope'"):
        partial_dependence(model, problem.X, "nope")
    with pytest.raises(sx.ConfigurationError, match="grid_resolution"):
        partial_dependence(model, problem.X, "x0", grid_resolution=1)
    with pytest.raises(sx.ConfigurationError, match="n_bins"):
        accumulated_local_effects(model, problem.X, "x0", n_bins=0)
