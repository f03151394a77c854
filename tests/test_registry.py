"""The estimator registry is the one list: every surface offers what it lists, and a new
estimator needs its module and one registry line — nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

import surrogate_xai as sx
from surrogate_xai.audit import AuditStore
from surrogate_xai.exceptions import ConfigurationError
from surrogate_xai.explainers import registry
from surrogate_xai.testing import check_explainer
from tests.cli_runner import make_work, sxai_here

BUDGETS = {"max_evals": 2_000, "n_samples": 400}


@pytest.mark.parametrize("name", registry.names())
def test_every_registered_estimator_passes_the_conformance_suite(name, linear_problem):
    problem, _, model = linear_problem
    spec = registry.get(name)
    check_explainer(
        lambda: spec.build(seed=3, **BUDGETS),
        model,
        problem.X.iloc[20:],
        problem.X.iloc[:4],
        efficient=spec.efficient,
    )


def test_tags_say_what_each_surface_offers():
    from surrogate_xai.cli._config import ExplainSettings
    from surrogate_xai.service.settings import ServiceSettings

    assert set(registry.names(service_safe=True)) <= set(registry.names(row_independent=True))
    for name in registry.names():
        spec = registry.get(name)
        assert spec.load().method == name
        if spec.row_independent:
            assert ExplainSettings(method=name).method == name
        else:
            with pytest.raises(ValueError, match="is not offered here"):
                ExplainSettings(method=name)
        if not spec.service_safe:
            with pytest.raises(ConfigurationError, match="is not offered here"):
                ServiceSettings(model=Path("m"), background=Path("b"), method=name, auth=False)
    assert registry.get("local").name == "local-surrogate"
    with pytest.raises(ConfigurationError, match="'nope' is not a method; methods: kernelshap"):
        registry.get("nope")
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register(registry.get("exact"))


# -- a new estimator: its class and one registry line ----------------------------------------
class CentredExact(sx.ExactSHAP):
    """A test-only estimator: exact enumeration under its own method name."""

    method = "test-centred-exact"


@pytest.fixture
def one_more():
    spec = registry.register(  # the one line a new estimator adds
        registry.Estimator(
            "test-centred-exact",
            "tests.test_registry:CentredExact",
            "exact enumeration, for the registry test",
            budget=None,
            seeded=False,
            exact=True,
            service_safe=True,
        )
    )
    yield spec
    registry.unregister(spec.name)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_work(tmp_path_factory)


def test_a_registered_estimator_reaches_every_surface(
    one_more, work, tmp_path, capsys, linear_problem
):
    # The conformance suite.
    problem, _, model = linear_problem
    check_explainer(lambda: one_more.build(), model, problem.X.iloc[20:], problem.X.iloc[:3])
    # Batches: in partitions, identical to one call.
    fitted = one_more.build().fit(model, problem.X.iloc[20:])
    whole = fitted.explain(problem.X.iloc[:5])
    parts = sx.explain_batch(fitted, problem.X.iloc[:5], partition_rows=2)
    assert (parts.values == whole.values).all()
    # The command line, with a record in a store; then replay from that record.
    store = tmp_path / "audit.db"
    proc = sxai_here(
        "explain", work / "model.onnx", "--data", work / "rows.csv", "--id-column", "app",
        "--background", work / "ref.csv", "--method", one_more.name, "--store", store,
        cwd=tmp_path, capsys=capsys,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with AuditStore(f"sqlite:///{store}", create=False) as audit:
        record = next(audit.records())
        assert record["method"]["name"] == one_more.name
    replayed = sxai_here(
        "replay", record["record_id"], "--store", store, "--model", work / "model.onnx",
        "--background", work / "ref.csv", cwd=tmp_path, capsys=capsys,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    assert f"({one_more.name})" in replayed.stdout
    # The service's settings accept it as a method.
    from surrogate_xai.service.settings import ServiceSettings

    settings = ServiceSettings(
        model=work / "model.onnx", background=work / "ref.csv", method=one_more.name, auth=False
    )
    assert settings.method == one_more.name
