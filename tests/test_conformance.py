"""Every estimator passes the shared conformance suite, on a function and on real ONNX."""

from __future__ import annotations

import pytest

import surrogate_xai as sx
from surrogate_xai.testing import check_explainer

FACTORIES = {
    "exact": lambda: sx.ExactSHAP(),
    "kernel": lambda: sx.KernelSHAP(max_evals=2_000, random_state=3),
    "kernel-tol": lambda: sx.KernelSHAP(max_evals=4_000, tol=0.05, random_state=3, batch_rows=500),
    "permutation": lambda: sx.PermutationSHAP(max_evals=2_000, random_state=3),
    "odd-kernel": lambda: sx.OddKernelSHAP(max_evals=6_000, interaction_factor=1, random_state=3),
    "shap-kernel": lambda: sx.ShapKernel(nsamples=40, random_state=3),
}


@pytest.mark.parametrize("name", FACTORIES)
def test_function_model(name, linear_problem):
    problem, _, model = linear_problem
    check_explainer(FACTORIES[name], model, problem.X.iloc[20:], problem.X.iloc[:4])


@pytest.mark.parametrize("name", ["exact", "kernel", "permutation", "odd-kernel"])
def test_onnx_credit_model_with_text_columns(name, credit_model):
    _, path, X = credit_model
    model = sx.ONNXModel(path, output="probability")
    # 20 columns: exact enumeration needs them grouped (5 groups of 4).
    cols = list(X.columns)
    groups = {f"g{i}": cols[i::5] for i in range(5)} if name == "exact" else None
    exp = check_explainer(
        FACTORIES[name], model, X.iloc[100:140], X.iloc[:3], feature_groups=groups
    )
    assert exp.output_names == ["probabilities[bad]", "probabilities[good]"]


def test_checks_can_fail(linear_problem):
    problem, _, model = linear_problem

    class Mutating(sx.PermutationSHAP):
        def explain(self, X):
            self.max_evals += 1  # what lime does with class_names
            return super().explain(X)

    with pytest.raises(AssertionError, match="changed the explainer's parameters"):
        check_explainer(
            lambda: Mutating(max_evals=500, random_state=1), model, problem.X, problem.X.iloc[:2]
        )
