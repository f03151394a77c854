"""HTTPModel against KServe's real Python model server: V1 (``:predict``) and V2 (``/infer``)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from surrogate_xai.adapters.http import HTTPModel, HTTPStatusError
from tests import model_servers
from tests.served_model import FEATURES, probabilities
from tests.server_checks import BUDGET, FAST_RETRY, OUTPUTS, check_explains_like_local, rows
from tests.system_tools import skip_unless_available

pytestmark = skip_unless_available(model_servers.missing_reason("kserve"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with model_servers.kserve(tmp_path_factory.mktemp("kserve")) as running:
        yield running


@pytest.fixture
def client():
    with httpx.Client(trust_env=False) as c:
        yield c


def v1_url(server) -> str:
    return f"{server.base}/v1/models/{model_servers.MODEL_NAME}:predict"


def test_binds_to_loopback_only(server):
    # KServe 0.21 binds 0.0.0.0 by default; tests/servers/kserve_app.py moves it to 127.0.0.1.
    assert model_servers.listening_hosts(server.port) == {"127.0.0.1"}


@pytest.mark.parametrize("protocol", ["json", "kserve-v1"])
def test_v1_explains_like_the_local_model_within_budget_through_5xx(
    server, client, caplog, protocol
):
    # The default format is KServe V1 as it comes: "json" must keep working unchanged.
    model = HTTPModel(
        v1_url(server),
        FEATURES,
        OUTPUTS,
        protocol=protocol,
        client=client,
        batch_rows=500,
        max_requests=BUDGET,
        max_retries=5,
        **FAST_RETRY,
    )
    check_explains_like_local(model, server, caplog)


def test_v2_explains_like_the_local_model_within_budget_through_5xx(server, client, caplog):
    model = HTTPModel(
        f"{server.base}/v2/models/{model_servers.MODEL_NAME}/infer",
        FEATURES,
        OUTPUTS,
        protocol="oip-v2",
        client=client,
        batch_rows=500,
        max_requests=BUDGET,
        max_retries=5,
        **FAST_RETRY,
    )
    check_explains_like_local(model, server, caplog)


def test_4xx_shows_the_servers_reason(server, client):
    server.reset()
    X = rows(3, seed=4)
    model = HTTPModel(v1_url(server), FEATURES[:5], client=client, **FAST_RETRY)
    with pytest.raises(
        HTTPStatusError, match=r"HTTP 400 .*expected rows of 6 features, got shape \[3, 5\]"
    ) as info:
        model.predict(X[FEATURES[:5]])
    assert info.value.status == 400
    assert (model.n_requests, model.n_retries, server.calls()) == (1, 0, [])
    right = HTTPModel(v1_url(server), FEATURES, OUTPUTS, protocol="kserve-v1", client=client)
    np.testing.assert_array_equal(right.predict(X), probabilities(X.to_numpy()))
