"""HTTPModel against real HTTP servers on 127.0.0.1: flaky, slow, strict, authenticated."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai import exceptions as ex
from surrogate_xai.adapters.http import (
    BudgetExceeded,
    HTTPModel,
    HTTPStatusError,
    HTTPTransportError,
    ResponseFormatError,
)
from tests.http_servers import ModelServer, score, started

NAMES = [f"x{j}" for j in range(6)]
TOKEN = "s3cret-T0ken-9f8e7d"
FAST_RETRY = {"backoff": 0.005, "max_backoff": 0.05, "random_state": 0}


@pytest.fixture
def serve() -> Iterator[Callable[..., ModelServer]]:
    yield from started(feature_names=NAMES)


@pytest.fixture
def client(serve) -> Iterator[httpx.Client]:
    # Requested after ``serve``, so it is closed before the servers stop.
    with httpx.Client(trust_env=False) as c:
        yield c


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame(rng.normal(size=(40, len(NAMES))), columns=NAMES)


def distinct_rows(n: int, start: float = 0.0) -> np.ndarray:
    return np.arange(start, start + n * len(NAMES)).reshape(n, len(NAMES)) / 7.0


# -- the acceptance criteria ------------------------------------------------------------------
def test_flaky_server_explains_identically_within_budget(serve, client, data):
    server = serve(fail_rate=0.3, seed=1)
    budget = 400
    model = HTTPModel(
        server.url,
        NAMES,
        client=client,
        batch_rows=64,
        max_retries=12,
        max_requests=budget,
        **FAST_RETRY,
    )
    background, X = data.iloc[8:28], data.iloc[:4]
    local = sx.KernelSHAP(max_evals=400, random_state=7).fit(
        sx.FunctionModel(score, NAMES), background
    )
    remote = sx.KernelSHAP(max_evals=400, random_state=7, n_jobs=2).fit(model, background)
    want, got = local.explain(X), remote.explain(X)

    assert np.array_equal(got.values, want.values)
    assert np.array_equal(got.stderr, want.stderr)
    assert np.array_equal(got.base_values, want.base_values)
    # The server's own counters agree with the model's, and stay within the budget.
    assert server.requests == model.n_requests <= budget
    assert server.rows == model.n_rows_sent
    assert model.n_retries > 0  # the flaky server did fail, and the retries absorbed it
    assert model.n_requests == len(server.rows_per_request)


def test_budget_refused_before_sending(serve, client):
    server = serve()
    model = HTTPModel(server.url, NAMES, client=client, batch_rows=10, max_requests=3)
    with pytest.raises(BudgetExceeded, match=r"needs 5 request\(s\) but 3 of max_requests=3"):
        model.predict(distinct_rows(50))
    assert server.requests == 0
    model.predict(distinct_rows(20))
    assert server.requests == 2
    with pytest.raises(ex.BudgetExceededError, match="nothing was sent"):
        model.predict(distinct_rows(20, start=1000))
    assert server.requests == 2
    model.predict(distinct_rows(10, start=2000))  # exactly what is left
    assert server.requests == model.n_requests == 3

    by_rows = HTTPModel(server.url, NAMES, client=client, max_rows=25)
    by_rows.predict(distinct_rows(20))
    with pytest.raises(BudgetExceeded, match=r"send 10 row\(s\) but 5 of max_rows=25"):
        by_rows.predict(distinct_rows(10, start=3000))
    assert server.rows == 20 + 10 + 20


def test_budget_is_never_exceeded_mid_explanation(serve, client, data):
    server = serve(fail_rate=0.3, seed=4)
    model = HTTPModel(
        server.url,
        NAMES,
        client=client,
        batch_rows=32,
        max_retries=12,
        max_requests=25,
        **FAST_RETRY,
    )
    explainer = sx.KernelSHAP(max_evals=400, random_state=0).fit(model, data.iloc[8:28])
    with pytest.raises(BudgetExceeded):
        explainer.explain(data.iloc[:6])
    assert server.requests == model.n_requests <= 25
    before = server.requests
    with pytest.raises(BudgetExceeded):
        explainer.explain(data.iloc[6:8])
    assert server.requests == before


def test_a_retry_over_budget_is_refused_not_sent(serve, client):
    server = serve(fail_rate=1.0)  # 503 or a dropped connection, every time
    model = HTTPModel(
        server.url, NAMES, client=client, max_retries=10, max_requests=3, **FAST_RETRY
    )
    with pytest.raises(
        BudgetExceeded,
        match=r"retrying a failed request \((HTTP 503|connection failed).*\) would exceed "
        r"max_requests=3; it was not sent",
    ):
        model.predict(distinct_rows(2))
    assert server.requests == model.n_requests == 3


def test_4xx_is_not_retried(serve, client):
    server = serve()
    model = HTTPModel(server.url, NAMES, client=client, request_key="rows", **FAST_RETRY)
    with pytest.raises(
        HTTPStatusError, match=r"HTTP 400 \(Bad Request\): expected a list at 'instances'"
    ) as info:
        model.predict(distinct_rows(3))
    assert info.value.status == 400
    assert server.requests == 1
    assert model.n_retries == 0
    assert isinstance(info.value, ex.ModelError)


def test_auth_header_never_logged_stored_or_raised(serve, client, data, caplog):
    caplog.set_level(logging.DEBUG)  # everything: ours, httpx, httpcore
    server = serve(token=TOKEN, fail_rate=0.3, seed=2)
    model = HTTPModel(
        server.url,
        NAMES,
        client=client,
        headers={"Authorization": f"Bearer {TOKEN}"},
        max_retries=12,
        **FAST_RETRY,
    )
    exp = (
        sx.KernelSHAP(max_evals=200, random_state=1)
        .fit(model, data.iloc[8:20])
        .explain(data.iloc[:2])
    )
    assert server.auth_seen
    assert set(server.auth_seen) == {f"Bearer {TOKEN}"}
    assert model.n_retries > 0  # retry warnings were logged too
    assert "HTTP Request: POST" in caplog.text  # httpx's own log was captured
    for text in (caplog.text, exp.to_json(), repr(model), str(model.describe())):
        assert TOKEN not in text
    assert "Authorization" not in exp.to_json()

    # The server echoes a wrong token back in its 401; the error must not repeat it.
    wrong = "Bearer wr0ng-but-still-secret-42"
    assert (
        "wr0ng-but-still-secret-42"
        in client.post(server.url, json={"instances": []}, headers={"Authorization": wrong}).text
    )
    bad = HTTPModel(server.url, NAMES, client=client, headers={"Authorization": wrong})
    with pytest.raises(HTTPStatusError, match="HTTP 401") as info:
        sx.ExactSHAP().fit(bad, data.iloc[8:12])
    assert "wr0ng-but-still-secret-42" not in str(info.value)
    assert info.value.__cause__ is None or "wr0ng" not in str(info.value.__cause__)
    assert "wr0ng-but-still-secret-42" not in caplog.text


def test_url_credentials_and_query_are_kept_out_of_provenance(serve, client, data):
    server = serve()
    host = server.url.removeprefix("http://")
    model = HTTPModel(
        f"http://alice:pa55word-xyz@{host}?api_key=k3y-abcdef&v=2", NAMES, client=client
    )
    model.predict(distinct_rows(2))
    assert server.auth_seen == ["Basic YWxpY2U6cGE1NXdvcmQteHl6"]  # alice:pa55word-xyz
    described = str(model.describe()) + model.identity + repr(model)
    for secret in ("pa55word-xyz", "k3y-abcdef", "YWxpY2U6cGE1NXdvcmQteHl6"):
        assert secret not in described
    assert model.describe()["url"] == f"{server.url}?api_key=***&v=***"
    assert model.identity == f"http:{server.url}"


def test_transport_errors_are_wrapped_and_redacted():
    # httpx's exceptions carry the request (headers included); ours carry neither.
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(
            f"refused; sent {request.headers['Authorization']}", request=request
        )

    with httpx.Client(transport=httpx.MockTransport(handler)) as mock:
        model = HTTPModel(
            "https://models.example/predict",
            NAMES,
            client=mock,
            headers={"Authorization": f"Bearer {TOKEN}"},
            max_retries=2,
            **FAST_RETRY,
        )
        with pytest.raises(HTTPTransportError, match=r"failed 3 attempt\(s\)") as info:
            model.predict(distinct_rows(1))
    assert TOKEN not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert (model.n_requests, model.n_retries) == (3, 2)


# -- timeouts, connections, batching, concurrency, rate ---------------------------------------
def test_slow_server_times_out_retries_then_fails_clearly(serve, client):
    server = serve(delay=5.0)
    model = HTTPModel(server.url, NAMES, client=client, timeout=0.1, max_retries=2, **FAST_RETRY)
    start = time.monotonic()
    with pytest.raises(
        HTTPTransportError,
        match=r"failed 3 attempt\(s\) .*timed out \((ReadTimeout|no complete answer within)",
    ):
        model.predict(distinct_rows(2))
    assert time.monotonic() - start < 3.0  # never waited for the 5 s answer
    assert (model.n_requests, model.n_retries) == (3, 2)
    deadline = time.monotonic() + 2
    while server.requests < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.requests == 3


def test_connection_refused_is_retried_then_reported(client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = HTTPModel(
        f"http://127.0.0.1:{port}/p", NAMES, client=client, max_retries=2, **FAST_RETRY
    )
    with pytest.raises(HTTPTransportError, match=r"connection failed \(ConnectError"):
        model.predict(distinct_rows(1))
    assert model.n_requests == 3


def test_batches_respect_rows_and_bytes(serve, client):
    server = serve()
    X = distinct_rows(50)
    model = HTTPModel(server.url, NAMES, client=client, batch_rows=7)
    np.testing.assert_array_equal(model.predict(X)[:, 0], score(pd.DataFrame(X, columns=NAMES)))
    assert sorted(server.rows_per_request) == [1] + [7] * 7  # arrival order varies

    sized = HTTPModel(server.url, NAMES, client=client, batch_bytes=600, cache_size=0)
    np.testing.assert_array_equal(sized.predict(X), model.predict(X))
    new_sizes = server.body_sizes[8:]
    assert len(new_sizes) == sized.n_requests > 1
    assert max(new_sizes) <= 600

    tiny = HTTPModel(server.url, NAMES, client=client, batch_bytes=40)
    with pytest.raises(ex.InputError, match="more than batch_bytes=40"):
        tiny.predict(X)
    assert tiny.n_requests == 0


def test_concurrency_is_bounded_and_order_kept(serve, client):
    server = serve(delay=0.15)
    X = distinct_rows(24)
    model = HTTPModel(server.url, NAMES, client=client, batch_rows=3, max_concurrency=3)
    got = model.predict(X)
    np.testing.assert_array_equal(got[:, 0], score(pd.DataFrame(X, columns=NAMES)))
    assert server.requests == 8
    assert 2 <= server.max_inflight <= 3


def test_rate_limit_spaces_requests(serve, client):
    server = serve()
    rate, n = 20.0, 6
    model = HTTPModel(
        server.url, NAMES, client=client, batch_rows=1, max_concurrency=3, rate_limit=rate
    )
    start = time.monotonic()
    model.predict(distinct_rows(n))
    elapsed = time.monotonic() - start
    assert server.requests == n
    assert elapsed >= (n - 1) / rate * 0.8
    assert server.arrivals[-1] - server.arrivals[0] >= (n - 1) / rate * 0.8


# -- cache, mapping, encoding, answers --------------------------------------------------------
def test_identical_rows_are_sent_once_and_cache_is_bounded(serve, client):
    server = serve()
    X = distinct_rows(5)
    model = HTTPModel(server.url, NAMES, client=client, max_rows=5, cache_size=5)
    doubled = np.vstack([X, X[::-1]])
    got = model.predict(doubled)
    np.testing.assert_array_equal(got[:5], got[5:][::-1])
    assert (server.rows, model.n_cache_hits) == (5, 5)
    model.predict(X)  # all cached: no request, nothing counted against max_rows=5
    assert (server.requests, model.n_evaluations) == (1, 15)

    small = HTTPModel(server.url, NAMES, client=client, cache_size=3)
    small.predict(X)
    small.predict(X[:1])  # evicted (least recently used): sent again
    small.predict(X[4:])  # still cached
    assert server.rows == 5 + 5 + 1


def test_request_and_response_mapping_objects_and_outputs(serve, client):
    def two_outputs(frame: pd.DataFrame) -> np.ndarray:
        bonus = frame["color"].map({"red": 1.0, "blue": -2.0}).to_numpy(dtype=float)
        s = score(frame[NAMES[:3]]) + bonus
        return np.column_stack([s, s * s])

    names = [*NAMES[:3], "color"]
    server = serve(
        feature_names=names,
        fn=two_outputs,
        instance_format="object",
        request_key="data.rows",
        response_key="result.scores",
    )
    model = HTTPModel(
        server.url,
        names,
        ["score", "square"],
        client=client,
        instance_format="object",
        request_key="data.rows",
        response_key="result.scores",
        categories={"color": ["red", "blue"]},
    )
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(12, 3)), columns=NAMES[:3])
    frame["color"] = np.where(rng.random(12) > 0.5, "red", "blue")
    np.testing.assert_array_equal(model.predict(frame), two_outputs(frame))
    local = sx.FunctionModel(
        two_outputs, names, ["score", "square"], categories={"color": ["red", "blue"]}
    )
    want = sx.ExactSHAP().fit(local, frame.iloc[4:]).explain(frame.iloc[:2])
    got = sx.ExactSHAP().fit(model, frame.iloc[4:]).explain(frame.iloc[:2])
    assert np.array_equal(got.values, want.values)
    assert got.provenance.model["format"] == "http"
    assert got.provenance.model["response_key"] == "result.scores"


def test_rows_go_out_as_plain_json(serve, client):
    server = serve(fn=lambda frame: np.zeros(len(frame)))
    model = HTTPModel(server.url, NAMES, client=client, allow_missing=True)
    X = pd.DataFrame(
        {
            "x0": [0.1, 1 / 3],
            "x1": np.array([2, 3], dtype=np.int32),
            "x2": [np.nan, 1e-300],
            "x3": [True, False],
            "x4": [123456789.125, -0.0],
            "x5": np.array([0.1, 1.5], dtype=np.float32),
        }
    )
    model.predict(X)
    assert server.bodies == [
        b'{"instances":[[0.1,2,null,true,123456789.125,0.10000000149011612],'
        b"[0.3333333333333333,3,1e-300,false,-0.0,1.5]]}"
    ]
    with pytest.raises(ex.InputError, match="column 'x2' has inf at row 0"):
        model.predict(np.where(np.arange(6) == 2, np.inf, 1.0).reshape(1, 6))
    assert server.requests == 1


def test_malformed_answers_are_errors_not_retried(serve, client):
    for kwargs, message in [
        ({"short": True}, r"returned 3 prediction\(s\) for 4 row\(s\)"),
        ({"raw_answer": b"<html>oops</html>"}, "answered non-JSON: '<html>oops</html>'"),
        ({"response_key": "preds"}, r"no 'predictions' at the top level .*found \['preds'\]"),
    ]:
        server = serve(**kwargs)
        model = HTTPModel(server.url, NAMES, client=client, **FAST_RETRY)
        with pytest.raises(ResponseFormatError, match=message):
            model.predict(distinct_rows(4))
        assert server.requests == 1


def test_owned_client_and_context_manager(serve):
    server = serve()
    with HTTPModel(server.url, NAMES) as model:
        model.predict(distinct_rows(2))
    assert model._client is None
    assert server.requests == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://host/x"}, "absolute http"),
        ({"url": "not a url"}, "absolute http"),
        ({"batch_rows": 0}, "batch_rows must be an integer >= 1"),
        ({"max_requests": 2.5}, "max_requests must be an integer"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"rate_limit": -1}, "rate_limit must be a positive number"),
        ({"instance_format": "csv"}, "instance_format must be"),
        ({"response_key": "a..b"}, "empty component"),
        ({"client": object()}, "must be an httpx.Client"),
        ({"headers": {"X-Key": 3}}, "string values"),
        ({"categories": {"nope": ["a"]}}, "unknown column"),
    ],
)
def test_configuration_errors(kwargs, message):
    kwargs = {"url": "http://127.0.0.1:9/p", "feature_names": NAMES, **kwargs}
    with pytest.raises(ex.ConfigurationError, match=message):
        HTTPModel(**kwargs)


def test_the_documented_example_runs(capsys):
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "adapters.md").read_text()
    section = doc.split("## Explaining a model behind an HTTP endpoint", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/adapters.md", "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    assert "requests," in out
    assert "my-token" not in out
