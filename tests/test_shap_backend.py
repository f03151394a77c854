"""ShapKernel reproduces shap.KernelExplainer's numbers exactly."""

from __future__ import annotations

import numpy as np

import surrogate_xai as sx


def test_matches_shap_kernel_explainer_bit_for_bit(linear_problem):
    import shap

    problem, _, _ = linear_problem
    rng = np.random.default_rng(4)
    W = rng.normal(size=(5, 3))

    def f(A):
        return np.tanh(np.asarray(A) @ W)

    model = sx.FunctionModel(f, problem.feature_names, ["a", "b", "c"], input_type="array")
    X, B = problem.X.iloc[:3], problem.X.iloc[20:40]
    ours = sx.ShapKernel(nsamples=20, random_state=12).fit(model, B).explain(X)

    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(12)  # noqa: NPY002 - shap's own way of being seeded
    # C order, as ShapKernel hands shap its data: BLAS may round a matrix product of an
    # F-ordered array differently, which would move the last bit.
    theirs = shap.KernelExplainer(f, np.ascontiguousarray(B.to_numpy())).shap_values(
        np.ascontiguousarray(X.to_numpy()), nsamples=20, l1_reg=False, silent=True
    )
    np.random.set_state(state)  # noqa: NPY002
    assert np.array_equal(ours.values, np.asarray(theirs))
    assert np.isnan(ours.stderr).all()
    again = sx.Explanation.from_json(ours.to_json())
    assert np.isnan(again.stderr).all()


def test_exhaustive_shap_kernel_equals_exact(linear_problem):
    problem, _, _ = linear_problem

    def f(A):
        A = np.asarray(A)
        return A[:, 0] * A[:, 1] + np.sin(A[:, 2] * A[:, 3]) - A[:, 4]

    model = sx.FunctionModel(f, problem.feature_names, input_type="array")
    X, B = problem.X.iloc[:3], problem.X.iloc[20:40]
    ours = sx.ShapKernel(nsamples=2**5, random_state=0).fit(model, B).explain(X)
    exact = sx.ExactSHAP().fit(model, B).explain(X)
    np.testing.assert_allclose(ours.values, exact.values, atol=1e-8)
    np.testing.assert_array_equal(ours.base_values, exact.base_values)


def test_global_rng_is_restored(linear_problem):
    problem, _, model = linear_problem
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    sx.ShapKernel(nsamples=10, random_state=1).fit(model, problem.X.iloc[20:]).explain(
        problem.X.iloc[:1]
    )
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002
