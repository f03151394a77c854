"""HTTPModel against MLflow's real scoring server (``mlflow models serve``), every encoding."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from surrogate_xai.adapters.http import HTTPModel, HTTPStatusError
from tests import model_servers
from tests.served_model import FEATURES, probabilities
from tests.server_checks import BUDGET, FAST_RETRY, OUTPUTS, check_explains_like_local, rows
from tests.system_tools import skip_unless_available

pytestmark = skip_unless_available(model_servers.missing_reason("mlflow"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with model_servers.mlflow(tmp_path_factory.mktemp("mlflow")) as running:
        yield running


@pytest.fixture
def client():
    with httpx.Client(trust_env=False) as c:
        yield c


def url(server) -> str:
    return f"{server.base}/invocations"


def test_binds_to_loopback_only(server):
    assert model_servers.listening_hosts(server.port) == {"127.0.0.1"}


def test_explains_like_the_local_model_within_budget_through_5xx(server, client, caplog):
    model = HTTPModel(
        url(server),
        FEATURES,
        OUTPUTS,
        protocol="mlflow",
        client=client,
        batch_rows=500,
        max_requests=BUDGET,
        max_retries=5,
        **FAST_RETRY,
    )
    check_explains_like_local(model, server, caplog)


@pytest.mark.parametrize(
    "options",
    [
        {"format": "dataframe_records"},
        {"format": "instances"},
        {"format": "inputs"},
        {"format": "csv"},
        {"format": "dataframe_split", "params": {}},
    ],
)
def test_every_encoding_gives_the_models_numbers(server, client, options):
    X = rows(6, seed=7)
    model = HTTPModel(
        url(server), FEATURES, OUTPUTS, protocol="mlflow", protocol_options=options, client=client
    )
    np.testing.assert_array_equal(model.predict(X), probabilities(X.to_numpy()))


def test_a_400_shows_the_cause_at_its_end_without_the_rows(server, client):
    # MLflow answers a missing column with ~830 characters: the rows (as pandas prints them)
    # first, twice, and the cause at the very end.
    X = rows(4, seed=8)
    model = HTTPModel(url(server), FEATURES[:5], protocol="mlflow", client=client)
    with pytest.raises(HTTPStatusError, match=r"HTTP 400 ") as info:
        model.predict(X[FEATURES[:5]])
    message = str(info.value)
    assert "Model is missing inputs ['x5']" in message
    assert message.startswith(
        "the endpoint answered HTTP 400 (Bad Request): INVALID_PARAMETER_VALUE: Failed to predict data"
    )
    for value in X[FEATURES[:5]].to_numpy().ravel():
        assert f"{value:.6f}"[:-1] not in message  # neither as sent nor as pandas rounds it
        assert repr(float(value)) not in message
    assert len(message) < 600
