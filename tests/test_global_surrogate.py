"""GlobalSurrogate: a real sklearn estimator whose fidelity is measured on rows it never saw."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import surrogate_xai as sx
from surrogate_xai.global_ import GlobalSurrogate, LowFidelityError


@pytest.fixture
def tree_model():
    """A model that is itself a depth-2 tree: x0 at 0.3, then x1 at -0.5 or x2 at 0.8."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(-2, 2, size=(2_000, 4)), columns=[f"x{j}" for j in range(4)])

    def f(A: np.ndarray) -> np.ndarray:
        A = np.asarray(A)
        left = np.where(A[:, 1] <= -0.5, 1.0, 3.0)
        right = np.where(A[:, 2] <= 0.8, 6.0, 10.0)
        return np.where(A[:, 0] <= 0.3, left, right)

    return sx.FunctionModel(f, list(X.columns), input_type="array"), X


def test_depth_two_tree_is_recovered_with_its_splits(tree_model):
    model, X = tree_model
    surrogate = GlobalSurrogate(max_depth=2, random_state=0).fit(model, X)
    assert surrogate.fidelity_.value == 1.0
    assert surrogate.fidelity_.n_test == 500
    splits = {
        (m.group(1), float(m.group(2)))
        for rule in surrogate.rules_
        for m in re.finditer(r"(x\d) (?:<=|>) (-?[\d.]+)", rule)
    }
    found = dict(splits)
    assert set(found) == {"x0", "x1", "x2"}
    for name, truth in {"x0": 0.3, "x1": -0.5, "x2": 0.8}.items():
        assert abs(found[name] - truth) < 0.02
    assert len(surrogate.rules_) == 4
    assert all(rule.startswith("IF ") and " THEN " in rule for rule in surrogate.rules_)


def test_fidelity_is_held_out_and_drops_with_depth(gbm_regressor):
    native, _, small = gbm_regressor
    # A surrogate can be fitted on as many rows as the auditor can send to the model.
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(3_000, 8)), columns=small.columns)
    model = sx.FunctionModel(native.predict, list(X.columns), input_type="frame")
    values = []
    for depth in (1, 3, 6):
        s = GlobalSurrogate(max_depth=depth, on_low_fidelity="flag", random_state=1).fit(model, X)
        values.append(s.fidelity_.value)
        assert set(s.train_indices_).isdisjoint(s.test_indices_)
        held = X.iloc[s.test_indices_]
        expected = r2_score(native.predict(held), s.predict(held))
        assert s.fidelity_.value == pytest.approx(expected, abs=1e-12)
        if depth == 6:  # a deep tree looks better on the rows it was fitted to than it is
            fitted = X.iloc[s.train_indices_]
            assert r2_score(native.predict(fitted), s.predict(fitted)) > s.fidelity_.value + 0.1
        leaves = s.fidelity_.by_leaf
        assert leaves["n_test"].sum() == len(s.test_indices_)
    assert values[0] < values[1] < values[2]


def test_low_fidelity_is_refused_or_flagged(gbm_regressor, caplog):
    native, _, X = gbm_regressor
    model = sx.FunctionModel(native.predict, list(X.columns), input_type="frame")
    with pytest.raises(LowFidelityError, match=r"below min_fidelity=0\.95") as info:
        GlobalSurrogate(max_depth=2, min_fidelity=0.95, random_state=0).fit(model, X)
    assert info.value.fidelity.value < 0.95
    with caplog.at_level(logging.WARNING, logger="surrogate_xai"):
        flagged = GlobalSurrogate(
            max_depth=2, min_fidelity=0.95, on_low_fidelity="flag", random_state=0
        ).fit(model, X)
    assert flagged.low_fidelity_
    assert "below min_fidelity" in caplog.text


def test_classes_of_the_credit_model_with_segments(credit_model):
    _, path, X = credit_model
    model = sx.ONNXModel(path, output="probability")
    s = GlobalSurrogate(
        task="classification",
        max_depth=3,
        segment_by="purpose",
        on_low_fidelity="flag",
        random_state=0,
    ).fit(model, X)
    assert set(s.classes_) <= {"bad", "good"}
    scores = s.fidelity_.scores
    assert 0.5 < scores["accuracy"] <= 1
    assert scores["auc"] is not None
    segments = s.fidelity_.by_segment
    assert set(segments["purpose"]) <= set(X["purpose"].unique())
    assert segments["n_test"].sum() == s.fidelity_.n_test
    # Rules speak in the data's own categories, not one-hot column names.
    text = " ".join(s.rules_)
    assert "==" in text or "!=" in text
    assert "class 'good'" in text or "class 'bad'" in text
    proba = s.predict_proba(X.iloc[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1)


def test_linear_surrogate_with_few_features(credit_model):
    _, path, X = credit_model
    model = sx.ONNXModel(path, output="probability")
    s = GlobalSurrogate(
        kind="linear",
        max_features=4,
        output="probabilities[good]",
        on_low_fidelity="flag",
        random_state=0,
    ).fit(model, X)
    assert len(s.used_columns_) == 4
    assert s.rules_[0].startswith("probabilities[good] = ")
    assert -1 < s.fidelity_.value <= 1
    with pytest.raises(AttributeError):
        s.predict_proba  # noqa: B018 - only classification surrogates have it


def test_bad_parameters_are_named(tree_model):
    model, X = tree_model
    for params, match in [
        ({"kind": "forest"}, "kind"),
        ({"max_depth": 0}, "max_depth"),
        ({"test_size": 1.5}, "test_size"),
        ({"on_low_fidelity": "ignore"}, "on_low_fidelity"),
        ({"segment_by": "nope"}, "segment_by"),
    ]:
        with pytest.raises(sx.ConfigurationError, match=match):
            GlobalSurrogate(**params).fit(model, X)


@parametrize_with_checks(
    [
        GlobalSurrogate(on_low_fidelity="flag"),
        GlobalSurrogate(kind="linear", on_low_fidelity="flag"),
        GlobalSurrogate(task="classification", on_low_fidelity="flag"),
    ]
)
def test_sklearn_estimator_checks(estimator, check, caplog):
    # Random data in the checks gives low fidelity; flagging logs it instead of refusing.
    with caplog.at_level(logging.ERROR, logger="surrogate_xai"):
        check(estimator)
