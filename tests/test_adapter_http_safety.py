"""HTTPModel's promises about credentials, deadlines, answers and error messages, each
against a real server on 127.0.0.1 that breaks it the way servers do (issue 10 item 10,
issue 12 item 2)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from surrogate_xai.adapters.http import (
    HTTPModel,
    HTTPStatusError,
    HTTPTransportError,
    ResponseFormatError,
)
from tests.http_servers import ModelServer, started

pytestmark = pytest.mark.reliability  # part of the reliability suite (tests/reliability.py)

NAMES = [f"x{j}" for j in range(6)]
SECRET = "k3y-Zq81-secret"
FAST_RETRY = {"backoff": 0.005, "max_backoff": 0.05, "random_state": 0}


@pytest.fixture
def serve() -> Iterator[Callable[..., ModelServer]]:
    yield from started(feature_names=NAMES)


def rows(n: int = 3) -> np.ndarray:
    return (np.arange(n * len(NAMES)).reshape(n, len(NAMES)) + 0.123456789) / 3.0


# -- credentials ------------------------------------------------------------------------------
def test_redirect_is_refused_even_by_a_client_that_follows_them(serve):
    elsewhere = serve()
    server = serve(redirect_to=elsewhere.url)
    with httpx.Client(trust_env=False, follow_redirects=True) as client:
        model = HTTPModel(server.url, NAMES, client=client, headers={"X-Api-Key": SECRET})
        with pytest.raises(HTTPStatusError, match=r"HTTP 307 .*redirects are not followed") as info:
            model.predict(rows())
    assert info.value.status == 307
    assert server.api_keys_seen == [SECRET]
    assert elsewhere.requests == 0  # neither the key nor the rows went there
    assert SECRET not in str(info.value)


def test_httpx_log_line_carries_no_query_secret(serve, caplog):
    caplog.set_level(logging.INFO)
    server = serve()
    with httpx.Client(trust_env=False) as client:
        model = HTTPModel(f"{server.url}?apikey={SECRET}&v=2", NAMES, client=client)
        model.predict(rows())
    assert "HTTP Request: POST" in caplog.text  # httpx's own line is there ...
    assert SECRET not in caplog.text  # ... without the key
    assert "apikey=***" in caplog.text


# -- a total deadline -------------------------------------------------------------------------
def test_a_dripping_answer_hits_the_total_deadline(serve):
    # 0.8 s per byte: no single read ever waits 2 s, so only a deadline on the whole attempt
    # stops it (the full answer would take ~20 s).
    server = serve(drip=0.8)
    with httpx.Client(trust_env=False) as client:
        model = HTTPModel(server.url, NAMES, client=client, timeout=2.0, max_retries=0)
        start = time.monotonic()
        with pytest.raises(HTTPTransportError, match=r"no complete answer within timeout=2.0 s"):
            model.predict(rows(1))
        elapsed = time.monotonic() - start
    assert 1.9 < elapsed < 3.5
    assert model.n_requests == 1


# -- answers that are not numbers -------------------------------------------------------------
@pytest.mark.parametrize(
    ("predictions", "message"),
    [
        (["0.25", "0.75"], r"row 0 output 'output' is str \(\"0.25\"\), not a number"),
        ([True, False], r"row 0 output 'output' is bool \(true\), not a number"),
        ([0.5, None], r"row 1 output 'output' is null"),
        ([[0.5, "high"], [0.1, "low"]], r"row 0 output 'label' is str"),
    ],
)
def test_text_and_boolean_predictions_are_refused(serve, predictions, message):
    width = 2 if isinstance(predictions[0], list) else 1
    server = serve(raw_answer=json.dumps({"predictions": predictions}).encode())
    outputs = ["score", "label"][:width] if width == 2 else None
    with httpx.Client(trust_env=False) as client:
        model = HTTPModel(server.url, NAMES, outputs, client=client)
        with pytest.raises(ResponseFormatError, match=message):
            model.predict(rows(2))
    assert server.requests == 1  # a wrong answer is not retried


# -- error messages that help, without the applicants' rows -----------------------------------
def mlflow_like_message(frame: pd.DataFrame) -> str:
    """What MLflow 3.17's scoring server answers for a missing column: the rows (as pandas
    prints them) twice, the schema, and the cause at the very end."""
    shown = repr(frame)
    schema = ", ".join(f"'{c}': double (required)" for c in [*frame.columns, "x6"])
    return (
        f"Failed to predict data '{shown}'. \nError: Failed to enforce schema of data "
        f"'{shown}' with schema '[{schema}]'. Error: Model is missing inputs ['x6']."
    )


def test_a_long_4xx_keeps_its_start_and_its_cause_and_drops_the_rows(serve):
    X = rows(4)
    text = mlflow_like_message(pd.DataFrame(X, columns=NAMES))
    assert len(text) > 800
    body = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": text}).encode()
    server = serve(raw_answer=body, raw_status=400)
    with httpx.Client(trust_env=False) as client:
        model = HTTPModel(server.url, NAMES, client=client)
        with pytest.raises(HTTPStatusError, match="HTTP 400") as info:
            model.predict(X)
    message = str(info.value)
    assert "Failed to predict data" in message  # the start
    assert "Model is missing inputs ['x6']" in message  # the cause, at the end
    assert "INVALID_PARAMETER_VALUE" in message
    # No value of the rows, neither as sent nor as pandas rounded it.
    for value in X.ravel():
        assert repr(float(value)) not in message
        assert f"{value:.6f}" not in message
        assert f"{value:.4f}" not in message
    assert len(message) < 600


def test_5xx_messages_in_logs_and_errors_hold_no_rows(serve, caplog):
    caplog.set_level(logging.DEBUG)
    X = rows(3)
    echo = f"model crashed on input {X.tolist()}"
    server = serve(raw_answer=json.dumps({"error": echo}).encode(), raw_status=500)
    with httpx.Client(trust_env=False) as client:
        model = HTTPModel(server.url, NAMES, client=client, max_retries=2, **FAST_RETRY)
        with pytest.raises(
            HTTPStatusError, match=r"failed 3 attempt\(s\).*HTTP 500: model crashed"
        ):
            model.predict(X)
    assert server.requests == 3  # retried
    shown = caplog.text + str(model.describe())
    for value in X.ravel():
        assert repr(float(value)) not in shown
    assert "model crashed on input" in caplog.text


def test_a_category_echoed_by_a_4xx_is_removed(serve):
    names = ["amount", "purpose"]
    server = serve(
        feature_names=names,
        raw_answer=json.dumps({"detail": "unknown purpose 'vacation-home' in row 0"}).encode(),
        raw_status=422,
    )
    X = pd.DataFrame({"amount": [1200.5], "purpose": ["vacation-home"]})
    with httpx.Client(trust_env=False) as client:
        model = HTTPModel(
            server.url, names, client=client, categories={"purpose": ["vacation-home", "car"]}
        )
        with pytest.raises(HTTPStatusError, match=r"HTTP 422 .*unknown purpose '…' in row 0"):
            model.predict(X)


def test_a_validation_detail_is_shown_without_its_input_echo(serve):
    detail = [
        {
            "type": "float_parsing",
            "loc": ["body", "inputs", 0, "data", 3],
            "msg": "Input should be a valid number",
            "input": "secret-applicant-text",
        }
    ]
    server = serve(raw_answer=json.dumps({"detail": detail}).encode(), raw_status=422)
    with httpx.Client(trust_env=False) as client:
        model = HTTPModel(server.url, NAMES, client=client)
        with pytest.raises(
            HTTPStatusError, match=r"body.inputs.0.data.3: Input should be a valid number"
        ) as info:
            model.predict(rows(1))
    assert "secret-applicant-text" not in str(info.value)
