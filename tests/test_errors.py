"""Bad input gets a specific error naming the column, row or parameter."""

from __future__ import annotations

import numpy as np
import pytest

import surrogate_xai as sx
from surrogate_xai import exceptions as ex

pytestmark = pytest.mark.reliability  # part of the reliability suite (tests/reliability.py)


@pytest.fixture
def fitted(linear_problem):
    problem, _, model = linear_problem
    return sx.PermutationSHAP(max_evals=300, random_state=0).fit(
        model, problem.X.iloc[20:]
    ), problem


def test_missing_column(fitted):
    explainer, problem = fitted
    with pytest.raises(ex.MissingColumnError, match=r"missing column\(s\) 'x2'"):
        explainer.explain(problem.X.drop(columns="x2"))


def test_nan_and_inf_name_column_and_row(fitted):
    explainer, problem = fitted
    X = problem.X.iloc[:4].copy()
    X.iloc[2, 1] = np.nan
    with pytest.raises(ex.NonFiniteInputError, match=r"column 'x1' of X has nan at row 2"):
        explainer.explain(X)
    X.iloc[2, 1] = np.inf
    with pytest.raises(ex.NonFiniteInputError, match=r"column 'x1' of X has inf at row 2"):
        explainer.explain(X)


def test_text_in_a_numeric_column(fitted):
    explainer, problem = fitted
    X = problem.X.iloc[:3].astype(object)
    X.iloc[1, 3] = "twelve"
    with pytest.raises(
        ex.InvalidValueError, match=r"column 'x3' of X is numeric but row 1 holds 'twelve'"
    ):
        explainer.explain(X)


def test_unknown_and_missing_category(credit_model):
    _, path, X = credit_model
    explainer = sx.KernelSHAP(max_evals=2_000, random_state=0)
    explainer.fit(sx.ONNXModel(path), X.iloc[100:130])
    rows = X.iloc[:3].copy()
    rows.loc[rows.index[1], "purpose"] = "spaceship"
    with pytest.raises(
        ex.UnknownCategoryError,
        match=r"column 'purpose' of X has unknown category 'spaceship' at row 1",
    ):
        explainer.explain(rows)
    rows.loc[rows.index[1], "purpose"] = None
    with pytest.raises(ex.NonFiniteInputError, match=r"categorical column 'purpose' .* row 1"):
        explainer.explain(rows)


def test_background_errors_say_background(linear_problem):
    problem, _, model = linear_problem
    B = problem.X.iloc[20:].copy()
    B.iloc[5, 0] = np.nan
    with pytest.raises(
        ex.NonFiniteInputError, match="column 'x0' of the background has nan at row 5"
    ):
        sx.ExactSHAP().fit(model, B)


def test_missing_values_pass_when_the_model_takes_them(linear_problem):
    problem, _, _ = linear_problem

    def tolerant(A):
        return np.nan_to_num(np.asarray(A, dtype=float)).sum(axis=1)

    model = sx.FunctionModel(
        tolerant, problem.feature_names, input_type="array", allow_missing=True
    )
    X = problem.X.iloc[:2].copy()
    X.iloc[0, 0] = np.nan
    exp = sx.ExactSHAP().fit(model, problem.X.iloc[20:30]).explain(X)
    assert np.isfinite(exp.values).all()


def test_model_that_raises_names_the_row(linear_problem):
    problem, _, _ = linear_problem

    def fragile(A):
        A = np.asarray(A)
        if (A[:, 0] == 1.0).any():  # a value the background never holds
            raise ValueError("negative only")
        return A.sum(axis=1)

    model = sx.FunctionModel(fragile, problem.feature_names, input_type="array")
    explainer = sx.ExactSHAP().fit(model, problem.X.iloc[20:40])
    X = problem.X.iloc[:5].copy()
    X.iloc[:, 0] = -1.0
    X.iloc[3, 0] = 1.0
    with pytest.raises(
        ex.ModelEvaluationError,
        match=r"while explaining row 3: the model raised ValueError while predicting: negative only",
    ):
        explainer.explain(X)


def test_model_returning_nan_or_wrong_shape(linear_problem):
    problem, _, _ = linear_problem
    nan_model = sx.FunctionModel(
        lambda A: np.where(np.asarray(A)[:, 1] > 2.0, np.nan, 1.0),
        problem.feature_names,
        input_type="array",
    )
    X = problem.X.copy()
    X.iloc[7, 1] = 3.0
    with pytest.raises(
        ex.NonFiniteOutputError, match="returned nan for output 'output' at input row 7"
    ):
        sx.ExactSHAP().fit(nan_model, X)
    wide = sx.FunctionModel(
        lambda A: np.zeros((len(A), 2)), problem.feature_names, input_type="array"
    )
    with pytest.raises(
        ex.OutputShapeError, match=r"returned shape \(40, 2\) for 40 rows; expected \(40, 1\)"
    ):
        sx.ExactSHAP().fit(wide, problem.X.iloc[20:])


def test_parameter_errors(linear_problem):
    problem, _, model = linear_problem
    B = problem.X.iloc[20:]
    with pytest.raises(ex.ConfigurationError, match="max_evals=10 is too small"):
        sx.KernelSHAP(max_evals=10, random_state=0).fit(model, B).explain(problem.X.iloc[:1])
    with pytest.raises(ex.ConfigurationError, match="tol must be a positive number"):
        sx.KernelSHAP(tol=-1).fit(model, B)
    with pytest.raises(ex.ConfigurationError, match="random_state must be"):
        sx.PermutationSHAP(random_state="seven").fit(model, B)
    with pytest.raises(ex.ConfigurationError, match="max_evals must be an integer"):
        sx.PermutationSHAP(max_evals=2.5).fit(model, B)
    with pytest.raises(ex.ConfigurationError, match="has no parameter 'max_eval'"):
        sx.PermutationSHAP().set_params(max_eval=3)
    with pytest.raises(ex.ConfigurationError, match="Model protocol"):
        sx.ExactSHAP().fit(lambda A: A, B)


def test_feature_group_errors(linear_problem):
    problem, _, model = linear_problem
    B = problem.X.iloc[20:]
    with pytest.raises(ex.ConfigurationError, match="group 'g' names unknown column 'zz'"):
        sx.ExactSHAP().fit(model, B, feature_groups={"g": ["x0", "zz"]})
    with pytest.raises(
        ex.ConfigurationError, match="column 'x0' is in both group 'a' and group 'b'"
    ):
        sx.ExactSHAP().fit(model, B, feature_groups={"a": ["x0"], "b": ["x0", "x1"]})


def test_unfitted_and_empty(linear_problem):
    problem, _, model = linear_problem
    with pytest.raises(ex.NotFittedError, match="call fit"):
        sx.KernelSHAP().explain(problem.X)
    explainer = sx.ExactSHAP().fit(model, problem.X)
    with pytest.raises(ex.InputError, match="X has no rows"):
        explainer.explain(problem.X.iloc[:0])
    with pytest.raises(ex.InputError, match="the background has no rows"):
        sx.ExactSHAP().fit(model, problem.X.iloc[:0])


def test_every_error_is_one_of_ours():
    for name in dir(ex):
        obj = getattr(ex, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, ex.SurrogateXAIError), name
    assert issubclass(ex.InputError, ValueError)
