"""HTTPModel against a real MLServer (Open Inference Protocol V2) with its sklearn runtime."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from surrogate_xai.adapters.http import HTTPModel, HTTPStatusError
from tests import model_servers
from tests.served_model import FEATURES, ScoreModel, probabilities
from tests.server_checks import BUDGET, FAST_RETRY, OUTPUTS, check_explains_like_local, rows
from tests.system_tools import skip_unless_available

pytestmark = skip_unless_available(model_servers.missing_reason("mlserver"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with model_servers.mlserver(tmp_path_factory.mktemp("mlserver")) as running:
        yield running


@pytest.fixture
def client():
    with httpx.Client(trust_env=False) as c:
        yield c


def infer_url(server, model: str = model_servers.MODEL_NAME) -> str:
    return f"{server.base}/v2/models/{model}/infer"


def test_binds_to_loopback_only(server):
    assert model_servers.listening_hosts(server.port) == {"127.0.0.1"}


def test_v2_explains_like_the_local_model_within_budget_through_5xx(server, client, caplog):
    model = HTTPModel(
        infer_url(server),
        FEATURES,
        OUTPUTS,
        protocol="oip-v2",
        output="predict_proba",
        client=client,
        batch_rows=500,
        max_requests=BUDGET,
        max_retries=5,
        **FAST_RETRY,
    )
    check_explains_like_local(model, server, caplog)


def test_requested_output_and_one_tensor_per_column(server, client):
    X = rows(7, seed=5)
    predict = HTTPModel(
        infer_url(server),
        FEATURES,
        protocol="oip-v2",
        output="predict",
        protocol_options={"request_output": True},
        client=client,
    )
    np.testing.assert_array_equal(predict.predict(X)[:, 0], ScoreModel().predict(X.to_numpy()))
    # MLServer decodes one tensor per column into a DataFrame when asked to ("pd").
    columns = HTTPModel(
        infer_url(server),
        FEATURES,
        OUTPUTS,
        protocol="oip-v2",
        protocol_options={"layout": "columns", "parameters": {"content_type": "pd"}},
        client=client,
    )
    np.testing.assert_array_equal(columns.predict(X), probabilities(X.to_numpy()))


def test_4xx_shows_the_servers_reason(server, client):
    model = HTTPModel(infer_url(server, "scroe"), FEATURES, protocol="oip-v2", client=client)
    with pytest.raises(HTTPStatusError, match=r"HTTP 404 .*Model scroe .*not found") as info:
        model.predict(rows(2, seed=3))
    assert info.value.status == 404
    unknown = HTTPModel(
        infer_url(server),
        FEATURES,
        protocol="oip-v2",
        output="decision_function",
        protocol_options={"request_output": True},
        client=client,
    )
    with pytest.raises(
        HTTPStatusError, match=r"HTTP 400 .*only supports 'predict', 'predict_proba'"
    ):
        unknown.predict(rows(2, seed=3))
