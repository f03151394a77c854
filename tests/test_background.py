"""Background summaries are explicit, real rows, and hashed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.datasets import load_german_credit


def test_full_background_keeps_every_row():
    X, _ = load_german_credit()
    bg = sx.Background(X)
    assert len(bg) == 1000
    assert bg.weights.sum() == pytest.approx(1.0)
    assert bg.describe()["kind"] == "full"


def test_hash_depends_on_content_only():
    X, _ = load_german_credit()
    a = sx.Background(X.iloc[:50])
    b = sx.Background(X.iloc[:50].set_axis(range(100, 150)))  # another index
    c = sx.Background(X.iloc[1:51])
    assert a.hash == b.hash
    assert a.hash != c.hash
    assert sx.Background(X.iloc[:50], np.arange(1, 51)).hash != a.hash


def test_sample_is_seeded_and_recorded():
    X, _ = load_german_credit()
    one = sx.Background.sample(X, 100, random_state=3)
    two = sx.Background.sample(X, 100, random_state=3)
    assert one.hash == two.hash
    assert one.describe()["source_rows"] == 1000
    assert one.describe()["seed"] == 3


def test_kmeans_keeps_real_rows_and_cluster_weights():
    X, _ = load_german_credit()
    bg = sx.Background.kmeans(X, 20, random_state=0)
    assert len(bg) == 20
    assert not bg.uniform
    # Every summary row is a real applicant, so categories are real categories.
    merged = bg.data.merge(X.drop_duplicates(), how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
    assert bg.weights.sum() == pytest.approx(1.0)


def test_weighted_background_changes_the_base_value(linear_problem):
    problem, _, model = linear_problem
    B = problem.X.iloc[20:30]
    w = np.r_[np.ones(9), 91.0]
    exp = sx.ExactSHAP().fit(model, sx.Background(B, w)).explain(problem.X.iloc[:1])
    expected = (w / w.sum()) @ problem.predict(B.to_numpy())
    assert exp.base_values[0, 0] == pytest.approx(expected)
    with pytest.raises(sx.ConfigurationError, match="weights"):
        sx.Background(B, -w)


@pytest.mark.parametrize("n", [48, 100, 333])
def test_deriving_columns_keeps_the_weights_bit_for_bit(n):
    # Renormalising already normalised weights moves their last bit for many sizes; a
    # replay derives the background twice (hash check, then fit) and must see one object.
    frame = pd.DataFrame(np.arange(3.0 * n).reshape(n, 3), columns=["a", "b", "c"])
    bg = sx.Background(frame, weights=np.linspace(1.0, 2.0, n))
    assert bg.with_columns(["a", "b", "c"]) is bg
    twice = bg.with_columns(["c", "a", "b"]).with_columns(["c", "a", "b"])
    assert twice.weights is bg.weights
    assert twice.with_columns(["a", "b", "c"]).hash == bg.hash
