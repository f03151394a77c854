"""LocalSurrogate: exact on linear models, honest about fidelity, stable and deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.explainers.local import LocalSurrogate
from surrogate_xai.testing import check_explainer


def _extra(exp: sx.Explanation, key: str) -> np.ndarray:
    return np.array(exp.diagnostics.extra[key], dtype=np.float64)


def test_linear_model_is_recovered_exactly(linear_problem):
    problem, beta, model = linear_problem
    background, rows = problem.X.iloc[10:], problem.X.iloc[:6]
    exp = LocalSurrogate(random_state=0).fit(model, background).explain(rows)
    mu = background.to_numpy().mean(axis=0)
    expected = beta * (rows.to_numpy() - mu)
    np.testing.assert_allclose(exp.values[:, :, 0], expected, atol=1e-6, rtol=0)
    assert np.all(_extra(exp, "r2") > 1 - 1e-9)
    assert np.all(_extra(exp, "r2_holdout") > 1 - 1e-9)
    np.testing.assert_allclose(_extra(exp, "prediction_gap"), 0, atol=1e-9)
    # The reference is the background mean, and the linear model's value there is E f(b).
    np.testing.assert_allclose(exp.base_values[:, 0], problem.predict(mu[None])[0], atol=1e-9)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LocalSurrogate(n_samples=800, random_state=3),
        lambda: LocalSurrogate(n_samples=800, sampling="masking", random_state=3),
    ],
    ids=["gaussian", "masking"],
)
def test_conformance_where_values_are_efficient(make, linear_problem):
    # Gaussian sampling is exact for a linear model; the masking fit is constrained to
    # efficiency for any model.
    problem, _, model = linear_problem
    check_explainer(make, model, problem.X.iloc[20:], problem.X.iloc[:4], atol=1e-9)


def test_conformance_on_the_credit_onnx_model(credit_model):
    # A linear surrogate cannot reproduce a boosted model exactly at the row: its miss there
    # is reported, not hidden, so additivity holds only up to that miss (a probability, <= 1).
    _, path, X = credit_model
    model = sx.ONNXModel(path, output="probability")
    exp = check_explainer(
        lambda: LocalSurrogate(n_samples=1_000, random_state=5),
        model,
        X.iloc[100:200],
        X.iloc[:3],
        atol=1.0,
    )
    np.testing.assert_allclose(
        exp.diagnostics.efficiency_gap, np.abs(_extra(exp, "prediction_gap")), atol=1e-12
    )
    r2 = _extra(exp, "r2_holdout")
    assert np.all((r2 > -1) & (r2 <= 1))


def test_batching_and_row_order_do_not_change_values(gbm_regressor):
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path)
    explainer = LocalSurrogate(n_samples=600, random_state=42).fit(model, X.iloc[100:200])
    rows = X.iloc[:9]
    whole = explainer.explain(rows)
    singles = np.concatenate([explainer.explain(rows.iloc[[i]]).values for i in range(9)])
    assert np.array_equal(whole.values, singles)
    small = LocalSurrogate(n_samples=600, random_state=42, batch_rows=601)
    assert np.array_equal(small.fit(model, X.iloc[100:200]).explain(rows).stderr, whole.stderr)
    order = np.random.default_rng(0).permutation(9)
    assert np.array_equal(explainer.explain(rows.iloc[order]).values, whole.values[order])


def test_batch_sensitive_model_is_still_deterministic():
    rng = np.random.default_rng(3)
    W, v = rng.normal(size=(6, 16)), rng.normal(size=16)
    X = rng.normal(size=(40, 6))
    model = sx.FunctionModel(
        lambda A: np.tanh(np.asarray(A) @ W) @ v, [f"x{j}" for j in range(6)], input_type="array"
    )
    explainer = LocalSurrogate(n_samples=500, random_state=5).fit(model, X[10:])
    whole = explainer.explain(X[:5]).values
    singles = np.concatenate([explainer.explain(X[i : i + 1]).values for i in range(5)])
    assert np.array_equal(whole, singles)


def test_one_model_call_per_chunk_of_rows(linear_problem):
    problem, _, _ = linear_problem
    calls: list[int] = []

    def f(A: np.ndarray) -> np.ndarray:
        calls.append(len(A))
        return problem.predict(A)

    model = sx.FunctionModel(f, problem.feature_names, input_type="array")
    explainer = LocalSurrogate(n_samples=500, random_state=1, batch_rows=5_000)
    explainer.fit(model, problem.X.iloc[10:])
    calls.clear()
    exp = explainer.explain(problem.X.iloc[:20])
    assert calls == [9 * 501, 9 * 501, 2 * 501]  # nine neighbourhoods per call, then the rest
    assert np.all(exp.diagnostics.model_evaluations == 501)


def test_seeds_agree_within_their_standard_errors(gbm_regressor):
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path)
    runs = [
        LocalSurrogate(random_state=s).fit(model, X.iloc[100:250]).explain(X.iloc[:10])
        for s in (1, 2)
    ]
    diff = runs[0].values - runs[1].values
    se = np.sqrt(runs[0].stderr ** 2 + runs[1].stderr ** 2)
    assert np.mean(np.abs(diff) <= 3 * se) >= 0.95
    top = [[set(np.argsort(-np.abs(v[:, 0]))[:3]) for v in r.values] for r in runs]
    jaccard = np.mean([len(a & b) / len(a | b) for a, b in zip(*top, strict=True)])
    assert jaccard >= 0.9
    # 5,000 samples pin the values down well relative to their size.
    assert float(np.median(runs[0].stderr)) < 0.1 * float(np.abs(runs[0].values).mean())


def test_categorical_columns_only_see_real_categories(credit_model):
    _, path, X = credit_model
    onnx = sx.ONNXModel(path, output="probability")
    seen: dict[str, set[str]] = {}
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]

    def f(frame: pd.DataFrame) -> np.ndarray:
        for c in text:
            seen.setdefault(c, set()).update(frame[c].unique().tolist())
        return onnx.predict(frame)

    model = sx.FunctionModel(
        f,
        list(X.columns),
        onnx.output_names,
        categories={c: sorted(X[c].unique()) for c in text},
    )
    LocalSurrogate(n_samples=300, random_state=0).fit(model, X.iloc[100:200]).explain(X.iloc[:2])
    for c in text:
        assert seen[c] <= set(X[c].unique())
        assert len(seen[c]) > 1


@pytest.mark.parametrize("surrogate", ["ridge", "lasso", "tree"])
def test_max_features_and_surrogate_kinds(surrogate, gbm_regressor):
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path)
    exp = (
        LocalSurrogate(n_samples=1_000, surrogate=surrogate, max_features=3, random_state=0)
        .fit(model, X.iloc[100:200])
        .explain(X.iloc[:4])
    )
    assert np.all(np.count_nonzero(exp.values[:, :, 0], axis=1) <= 3)
    assert np.all(np.isnan(exp.stderr))  # no valid standard error after selection
    gap = exp.values.sum(axis=1) + exp.base_values - exp.diagnostics.predictions
    np.testing.assert_allclose(gap, _extra(exp, "prediction_gap"), atol=1e-9)


def test_groups_add_up_their_columns(gbm_regressor):
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path)
    B, rows = X.iloc[100:200], X.iloc[:3]
    plain = LocalSurrogate(n_samples=800, random_state=4).fit(model, B).explain(rows)
    grouped = (
        LocalSurrogate(n_samples=800, random_state=4)
        .fit(model, B, feature_groups={"pair": ["x0", "x1"]})
        .explain(rows)
    )
    assert grouped.feature_names[0] == "pair"
    np.testing.assert_allclose(
        grouped.values[:, 0], plain.values[:, 0] + plain.values[:, 1], atol=1e-12
    )


def test_masking_mode_is_kernelshap_least_squares_under_the_lime_design(linear_problem):
    problem, beta, model = linear_problem
    B = problem.X.iloc[:1]  # one background row: the masking game of a linear model is exact
    rows = problem.X.iloc[10:13]
    exp = (
        LocalSurrogate(n_samples=400, sampling="masking", random_state=2)
        .fit(model, B)
        .explain(rows)
    )
    np.testing.assert_allclose(
        exp.values[:, :, 0], beta * (rows.to_numpy() - B.to_numpy()), atol=1e-9
    )


def test_global_rng_untouched_and_seed_none_replays(linear_problem):
    problem, _, model = linear_problem
    state = np.random.get_state()[1].copy()  # noqa: NPY002 - checking that nobody used it
    first = (
        LocalSurrogate(n_samples=300).fit(model, problem.X.iloc[10:]).explain(problem.X.iloc[:2])
    )
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    again = LocalSurrogate(n_samples=300, random_state=first.provenance.seed)
    replay = again.fit(model, problem.X.iloc[10:]).explain(problem.X.iloc[:2])
    assert np.array_equal(first.values, replay.values)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_samples": 4}, "n_samples"),
        ({"surrogate": "forest"}, "surrogate"),
        ({"sampling": "uniform"}, "sampling"),
        ({"kernel_width": -1.0}, "kernel_width"),
        ({"holdout": 0.9}, "holdout"),
        ({"surrogate": "lasso"}, "alpha > 0 or max_features"),
        ({"sampling": "masking", "alpha": 1.0}, "alpha must be 0"),
        ({"n_samples": 12}, "too small"),
    ],
)
def test_bad_parameters_are_named(params, match, linear_problem):
    problem, _, model = linear_problem
    with pytest.raises(sx.ConfigurationError, match=match):
        LocalSurrogate(**params).fit(model, problem.X)


def test_missing_value_cannot_be_perturbed(linear_problem):
    problem, _, _ = linear_problem
    model = sx.FunctionModel(
        lambda A: np.nan_to_num(np.asarray(A)).sum(axis=1),
        problem.feature_names,
        input_type="array",
        allow_missing=True,
    )
    rows = problem.X.iloc[:2].copy()
    rows.iloc[1, 2] = np.nan
    explainer = LocalSurrogate(n_samples=300, random_state=0).fit(model, problem.X.iloc[10:])
    with pytest.raises(sx.InputError, match=r"'x2'.*sampling='masking'"):
        explainer.explain(rows)
