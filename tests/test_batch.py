"""explain_batch: partitions in process and on a real Dask LocalCluster equal one explain call."""

from __future__ import annotations

import functools
import pickle
import re
import time

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.batch import dask_client, explain_batch
from surrogate_xai.exceptions import (
    ConfigurationError,
    ModelEvaluationError,
    NotFittedError,
    UnknownCategoryError,
)
from surrogate_xai.onnx_model import shared_session_count

D = 6
NAMES = [f"x{j}" for j in range(D)]


@pytest.fixture(scope="module")
def client():
    """One LocalCluster (2 worker processes, 1 thread each) for the whole module."""
    with dask_client("local:2") as c:
        yield c


def nonlinear_model(limit: int | None = None, sentinel: float | None = None) -> sx.FunctionModel:
    """A FunctionModel over a closure (so cloudpickle ships it by value to the workers).

    ``limit``: fail when called with more rows than that (a memory-cap probe that works on a
    worker too). ``sentinel``: fail on any row whose ``x0`` equals it (an error in a worker).
    """

    def f(a: np.ndarray) -> np.ndarray:
        if limit is not None and len(a) > limit:
            raise RuntimeError(f"called with {len(a)} rows, over the cap of {limit}")
        if sentinel is not None and np.any(a[:, 0] == sentinel):
            raise RuntimeError("sentinel value reached the model")
        return np.column_stack(
            [a @ np.arange(1.0, D + 1) + np.sin(a[:, 0]) * a[:, 1], a[:, 2] ** 2]
        )

    return sx.FunctionModel(f, NAMES, ["score", "square"], input_type="array")


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(rng.normal(size=(70, D)), columns=NAMES)


def assert_identical(a: sx.Explanation, b: sx.Explanation) -> None:
    """Bit-identical in every field; provenance equal except its timestamp."""
    for name in ("values", "stderr", "base_values"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    da, db = a.diagnostics, b.diagnostics
    for name in ("model_evaluations", "converged", "efficiency_gap", "predictions", "blocks"):
        assert np.array_equal(getattr(da, name), getattr(db, name)), name
    assert da.background_evaluations == db.background_evaluations
    assert da.exact == db.exact
    assert da.extra == db.extra
    pd.testing.assert_frame_equal(a.data, b.data, check_exact=True)
    assert a.feature_names == b.feature_names
    assert a.output_names == b.output_names
    pa, pb = a.provenance.to_dict(), b.provenance.to_dict()
    pa.pop("created_at")
    pb.pop("created_at")
    assert pa == pb
    # The JSON form (what the audit store and the CLI write) agrees too, timestamp aside.
    ja, jb = a.to_dict(), b.to_dict()
    ja["provenance"].pop("created_at")
    jb["provenance"].pop("created_at")
    assert ja == jb


# -- in process (client=None) --------------------------------------------------------------------
EXPLAINERS = {
    "permutation": lambda: sx.PermutationSHAP(max_evals=600, random_state=3),
    "kernel": lambda: sx.KernelSHAP(max_evals=800, random_state=4),
    "kernel-tol": lambda: sx.KernelSHAP(max_evals=2_000, tol=0.05, random_state=4, batch_rows=300),
    "exact": lambda: sx.ExactSHAP(),
    # d = 6, 12 background rows: 62 coalitions, so the refit needs factor 1 (26 pairs).
    "odd-kernel": lambda: sx.OddKernelSHAP(
        max_evals=12 * 56 + 1, interaction_factor=1, random_state=4
    ),
    "local-surrogate": lambda: sx.LocalSurrogate(n_samples=300, random_state=5),
    "lime": lambda: sx.LIME(n_samples=200, random_state=6),
}


@pytest.mark.parametrize("name", list(EXPLAINERS))
@pytest.mark.parametrize("partition_rows", [1, 4, 1_000])
def test_in_process_partitions_equal_one_call(name, partition_rows, data):
    X = data.iloc[:9] if name == "lime" else data.iloc[:23]
    explainer = EXPLAINERS[name]().fit(nonlinear_model(), data.iloc[40:52])
    assert_identical(
        explain_batch(explainer, X, partition_rows=partition_rows), explainer.explain(X)
    )


def test_rows_come_back_in_input_order(data):
    explainer = sx.PermutationSHAP(max_evals=400, random_state=1).fit(
        nonlinear_model(), data.iloc[40:50]
    )
    X = data.iloc[:13]
    batch = explain_batch(explainer, X, partition_rows=5)
    for i in (0, 4, 5, 12):
        alone = explainer.explain(X.iloc[[i]])
        assert np.array_equal(batch.values[i], alone.values[0])
    shuffled = X.iloc[::-1]
    assert np.array_equal(
        explain_batch(explainer, shuffled, partition_rows=5).values, batch.values[::-1]
    )


def test_progress_counts_every_row_once_in_process(data):
    explainer = sx.PermutationSHAP(max_evals=400, random_state=1).fit(
        nonlinear_model(), data.iloc[40:50]
    )
    X = data.iloc[:13]
    seen: list[int] = []
    batch = explain_batch(explainer, X, partition_rows=5, progress=seen.append)
    assert seen == [5, 5, 3]
    assert_identical(batch, explainer.explain(X))


def test_one_seed_for_the_whole_batch(data):
    model, bg, X = nonlinear_model(), data.iloc[40:50], data.iloc[:11]
    drawn = explain_batch(sx.KernelSHAP(max_evals=500).fit(model, bg), X, partition_rows=3)
    seed = drawn.provenance.seed
    assert seed is not None
    assert drawn.provenance.parameters["random_state"] is None  # the caller's parameter
    replayed = sx.KernelSHAP(max_evals=500, random_state=seed).fit(model, bg).explain(X)
    assert np.array_equal(drawn.values, replayed.values)
    # A Generator is advanced once per call, as by explain.
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    a = explain_batch(
        sx.KernelSHAP(max_evals=500, random_state=g1).fit(model, bg), X, partition_rows=4
    )
    b = sx.KernelSHAP(max_evals=500, random_state=g2).fit(model, bg).explain(X)
    assert_identical(a, b)
    assert g1.integers(1 << 30) == g2.integers(1 << 30)


def test_refusals(data):
    model, bg = nonlinear_model(), data.iloc[40:50]
    with pytest.raises(ConfigurationError, match="ShapKernel"):
        explain_batch(sx.ShapKernel(nsamples=50, random_state=0).fit(model, bg), data.iloc[:3])
    with pytest.raises(NotFittedError):
        explain_batch(sx.KernelSHAP(), data.iloc[:3])
    fitted = sx.KernelSHAP(max_evals=300, random_state=0).fit(model, bg)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigurationError, match="partition_rows"):
            explain_batch(fitted, data.iloc[:3], partition_rows=bad)
    with pytest.raises(ConfigurationError, match="explainers"):
        explain_batch(object(), data.iloc[:3])  # type: ignore[arg-type]


def test_input_error_names_the_row_in_the_batch():
    model = sx.FunctionModel(
        lambda f: (f["c"] == "a").to_numpy(float) + f["v"].to_numpy(),
        ["c", "v"],
        categories={"c": ["a", "b"]},
    )
    X = pd.DataFrame({"c": ["a", "b"] * 6, "v": np.arange(12.0)})
    X.loc[9, "c"] = "zzz"
    explainer = sx.KernelSHAP(max_evals=100, random_state=0).fit(model, X.drop(index=9))
    with pytest.raises(UnknownCategoryError) as one_call:
        explainer.explain(X)
    with pytest.raises(UnknownCategoryError) as batched:
        explain_batch(explainer, X, partition_rows=4)
    assert str(batched.value) == str(one_call.value)
    assert "row 9" in str(batched.value)


# -- the memory cap ------------------------------------------------------------------------------
def test_batch_rows_caps_the_rows_sent_at_once(data):
    bg, X = data.iloc[40:44], data.iloc[:5]
    # ExactSHAP at d=6 has 62 coalitions per block: a cap of 20 splits every block.
    capped = sx.ExactSHAP(batch_rows=20).fit(nonlinear_model(limit=21), bg)
    free = sx.ExactSHAP().fit(nonlinear_model(), bg)
    assert np.array_equal(capped.explain(X).values, free.explain(X).values)
    with pytest.raises(ModelEvaluationError, match="over the cap"):
        sx.ExactSHAP(batch_rows=64).fit(nonlinear_model(limit=21), bg).explain(X)
    # The sampled designs too, whatever the cap's relation to a block's size.
    for cap in (7, 33, 100):
        kernel = sx.KernelSHAP(max_evals=500, random_state=2, batch_rows=cap)
        kernel.fit(nonlinear_model(limit=cap + 1), bg)
        reference = sx.KernelSHAP(max_evals=500, random_state=2).fit(nonlinear_model(), bg)
        assert np.array_equal(kernel.explain(X).values, reference.explain(X).values)


# -- on the cluster ------------------------------------------------------------------------------
def test_cluster_equals_one_call_onnx(client, gbm_regressor):
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path)
    for explainer in (
        sx.PermutationSHAP(max_evals=800, random_state=11),
        sx.KernelSHAP(max_evals=800, random_state=12),
        sx.OddKernelSHAP(max_evals=30 * 140 + 1, interaction_factor=1, random_state=13),
    ):
        explainer.fit(model, X.iloc[200:230])
        batch = explain_batch(explainer, X.iloc[:40], client=client, partition_rows=7)
        assert_identical(batch, explainer.explain(X.iloc[:40]))
    # A second call reuses each worker's session: one per worker for this model.
    counts = client.run(shared_session_count, model.identity)
    assert sorted(counts.values()) == [1, 1]


def test_cluster_equals_one_call_function_model(client, data):
    explainer = sx.LocalSurrogate(n_samples=300, random_state=8).fit(
        nonlinear_model(), data.iloc[40:60]
    )
    X = data.iloc[:30]
    assert_identical(
        explain_batch(explainer, X, client=client, partition_rows=4), explainer.explain(X)
    )
    explainer = sx.PermutationSHAP(max_evals=500, random_state=8).fit(
        nonlinear_model(), data.iloc[40:60]
    )
    seen: list[int] = []
    one = explain_batch(explainer, X, client=client, partition_rows=1, progress=seen.append)
    assert seen == [1] * len(X)  # one call per partition, as each finishes
    many = explain_batch(explainer, X, client=client, partition_rows=64)
    assert_identical(one, many)
    assert_identical(one, explainer.explain(X))


def test_cluster_equals_one_call_columns_onnx(client, credit_model):
    """String categories and one ONNX input per column (a skl2onnx pipeline)."""
    _, path, X = credit_model
    explainer = sx.PermutationSHAP(max_evals=300, random_state=13).fit(
        sx.ONNXModel(path), X.iloc[500:510]
    )
    rows = X.iloc[:10]
    assert_identical(
        explain_batch(explainer, rows, client=client, partition_rows=3), explainer.explain(rows)
    )


def test_worker_error_names_the_row_in_the_batch(client, data):
    X = data.iloc[:20].copy()
    X.iloc[11, 0] = 99.0
    explainer = sx.PermutationSHAP(max_evals=300, random_state=0).fit(
        nonlinear_model(sentinel=99.0), data.iloc[40:50]
    )
    with pytest.raises(ModelEvaluationError) as one_call:
        explainer.explain(X)
    with pytest.raises(ModelEvaluationError) as remote:
        explain_batch(explainer, X, client=client, partition_rows=4)
    with pytest.raises(ModelEvaluationError) as local:
        explain_batch(explainer, X, partition_rows=4)
    assert "row 11:" in str(one_call.value)
    assert str(remote.value) == str(local.value) == str(one_call.value)
    # The cluster is still usable after a failed batch.
    clean = data.iloc[:6]
    assert_identical(explain_batch(explainer, clean, client=client), explainer.explain(clean))


def test_memory_cap_holds_on_workers(client, data):
    bg, X = data.iloc[40:44], data.iloc[:8]
    capped = sx.ExactSHAP(batch_rows=20).fit(nonlinear_model(limit=21), bg)
    assert_identical(explain_batch(capped, X, client=client, partition_rows=3), capped.explain(X))
    over = sx.ExactSHAP(batch_rows=64).fit(nonlinear_model(limit=21), bg)
    with pytest.raises(ModelEvaluationError, match="over the cap"):
        explain_batch(over, X, client=client, partition_rows=3)


def test_audit_records_written_by_the_client(client, gbm_regressor, tmp_path):
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path)
    background = sx.Background(X.iloc[200:220])
    explainer = sx.KernelSHAP(max_evals=600, random_state=21).fit(model, background)
    batch = explain_batch(explainer, X.iloc[:9], client=client, partition_rows=2)
    store = sx.AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        ids = store.record(batch, decision_ids=[f"app-{i}" for i in range(9)])
        assert [store.get(r)["decision_id"] for r in ids] == [f"app-{i}" for i in range(9)]
        assert store.verify().ok
        for record_id in (ids[0], ids[5], ids[8]):
            assert store.replay(record_id, model, background).identical
    finally:
        store.close()


# -- models travel -----------------------------------------------------------------------------
def test_models_pickle_and_keep_working(gbm_regressor):
    _, path, X = gbm_regressor
    model = sx.ONNXModel(path)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.identity == model.identity
    assert np.array_equal(copy.predict(X.iloc[:50]), model.predict(X.iloc[:50]))
    again = pickle.loads(pickle.dumps(model))
    assert again._session is copy._session  # one session per process and model
    assert shared_session_count(model.identity) == 1
    fn_model = sx.FunctionModel(functools.partial(np.sum, axis=1), ["a", "b"], input_type="array")
    assert pickle.loads(pickle.dumps(fn_model)).predict(np.ones((2, 2))).tolist() == [[2.0], [2.0]]


# -- dask_client ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec", ["local:0", "local", "local:two", "http://host:8786", "tcp://host", ""]
)
def test_bad_spec_is_named(spec):
    with (
        pytest.raises(ConfigurationError, match=repr(spec).replace("\\", "\\\\")),
        dask_client(spec),
    ):
        pass  # pragma: no cover


def test_unreachable_scheduler_is_a_configuration_error():
    started = time.monotonic()
    with (
        pytest.raises(ConfigurationError, match=re.escape("tcp://127.0.0.1:9")),
        dask_client("tcp://127.0.0.1:9"),
    ):
        pass  # pragma: no cover
    assert time.monotonic() - started < 30
