"""Every wire format of HTTPModel against a server on 127.0.0.1 that speaks it, and each
format's own rules (bodies as the protocol writes them, answers read strictly, options
checked by name).

The servers here implement the formats from their public descriptions (tests/http_servers.py);
the real MLServer, KServe and MLflow servers are in tests/test_servers_*.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai import exceptions as ex
from surrogate_xai.adapters import wire
from surrogate_xai.adapters.http import PROTOCOLS, HTTPModel, ResponseFormatError
from tests.http_servers import (
    BentoMLCodec,
    JSONCodec,
    MLflowCodec,
    ModelServer,
    OpenInferenceCodec,
    SageMakerCodec,
    TemplateCodec,
    VertexCodec,
    score,
    started,
)

NAMES = [f"x{j}" for j in range(6)]
FAST_RETRY = {"backoff": 0.002, "max_backoff": 0.02, "random_state": 0}


@dataclass
class Case:
    codec: Callable[[], Any]
    options: dict[str, Any] = field(default_factory=dict)
    scale: float = 1.0  # what the server multiplies its scores by (BentoML's extra argument)
    content_type: str = "application/json"


CASES = {
    "json-object": Case(lambda: JSONCodec(instance_format="object"), {"instance_format": "object"}),
    "kserve-v1": Case(JSONCodec, {"protocol": "kserve-v1"}),
    "oip-v2": Case(OpenInferenceCodec, {"protocol": "oip-v2", "output": "predict"}),
    "mlflow": Case(MLflowCodec, {"protocol": "mlflow"}),
    "sagemaker-csv": Case(SageMakerCodec, {"protocol": "sagemaker"}, content_type="text/csv"),
    "sagemaker-jsonlines": Case(
        SageMakerCodec,
        {
            "protocol": "sagemaker",
            "output": "score",
            "protocol_options": {
                "content_type": "application/jsonlines",
                "accept": "application/jsonlines",
            },
        },
        content_type="application/jsonlines",
    ),
    "sagemaker-json": Case(
        SageMakerCodec,
        {
            "protocol": "sagemaker",
            "output": "predictions[*].score",
            "protocol_options": {"accept": "application/json"},
        },
        content_type="text/csv",
    ),
    "vertex": Case(
        VertexCodec,
        {
            "protocol": "vertex",
            "instance_format": "object",
            "output": "scores[1]",
            "protocol_options": {"parameters": {"confidenceThreshold": 0.5}},
        },
    ),
    "bentoml": Case(
        BentoMLCodec,
        {
            "protocol": "bentoml",
            "protocol_options": {"argument": "input_data", "parameters": {"scale": 2.0}},
        },
        scale=2.0,
    ),
    "template": Case(
        TemplateCodec,
        {
            "protocol": "template",
            "protocol_options": {
                "template": {"model": "credit", "payload": {"rows": "$records"}, "version": 3},
                "response": "result.scores",
            },
        },
    ),
}


@pytest.fixture
def serve() -> Iterator[Callable[..., ModelServer]]:
    yield from started(feature_names=NAMES)


@pytest.fixture
def client(serve) -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as c:
        yield c


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(9)
    return pd.DataFrame(rng.normal(size=(24, len(NAMES))), columns=NAMES)


def test_every_protocol_has_a_case_here():
    assert {c.split("-")[0] for c in CASES} | {"kserve", "oip"} >= {
        p.split("-")[0] for p in PROTOCOLS
    }


@pytest.mark.parametrize("name", list(CASES))
def test_each_format_explains_bit_identically_through_retries_batches_budget_cache(
    name, serve, client, data
):
    case = CASES[name]
    server = serve(codec=case.codec(), fail_rate=0.25, seed=3)
    rate, budget = 500.0, 300
    model = HTTPModel(
        server.url,
        NAMES,
        client=client,
        batch_rows=40,
        max_retries=15,
        max_requests=budget,
        rate_limit=rate,
        **case.options,
        **FAST_RETRY,
    )
    background, X = data.iloc[8:18], data.iloc[:3]
    local = sx.FunctionModel(lambda f: score(f) * case.scale, NAMES)
    want = sx.KernelSHAP(max_evals=200, random_state=7).fit(local, background).explain(X)
    explainer = sx.KernelSHAP(max_evals=200, random_state=7, n_jobs=2).fit(model, background)
    got = explainer.explain(X)

    assert np.array_equal(got.values, want.values)
    assert np.array_equal(got.stderr, want.stderr)
    assert np.array_equal(got.base_values, want.base_values)
    # The server's own counts agree with the model's and stay within the budget and the
    # batch size; the flaky server did fail and the retries absorbed it; requests were spaced.
    assert server.requests == model.n_requests <= budget
    assert server.rows == model.n_rows_sent
    assert max(server.rows_per_request) <= 40
    assert model.n_retries > 0
    assert set(server.content_types) == {case.content_type}
    span = server.arrivals[-1] - server.arrivals[0]
    assert span >= (server.requests - 1) / rate * 0.8
    # Asked again, every row is answered from the cache: nothing is sent.
    before = server.requests
    again = explainer.explain(X)
    assert server.requests == before
    assert np.array_equal(again.values, want.values)
    assert model.describe()["protocol"] == model.protocol


# -- bodies as each protocol writes them ------------------------------------------------------
def body_of(options: dict[str, Any], X: Any, names: list[str] = NAMES[:2]) -> bytes:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(500, json={"error": "body only"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as mock:
        model = HTTPModel("http://m.test/p", names, client=mock, max_retries=0, **options)
        with pytest.raises(ex.RemoteModelError):
            model.predict(X)
    return seen[0]


def test_request_bodies():
    X = pd.DataFrame({"x0": [0.1, 2.0], "x1": [3, -4]})
    assert body_of({"protocol": "kserve-v1"}, X) == b'{"instances":[[0.1,3],[2.0,-4]]}'
    assert body_of({"protocol": "oip-v2"}, X) == (
        b'{"inputs":[{"name":"input-0","shape":[2,2],"datatype":"FP64","data":[0.1,3,2.0,-4]}]}'
    )
    ints = pd.DataFrame({"x0": [1, 2], "x1": [3, 4]})
    oip = {"protocol": "oip-v2", "output": "proba", "protocol_options": {"request_output": True}}
    assert json.loads(body_of(oip, ints)) == {
        "inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "INT64", "data": [1, 3, 2, 4]}],
        "outputs": [{"name": "proba"}],
    }
    columns = {
        "protocol": "oip-v2",
        "protocol_options": {"layout": "columns", "parameters": {"content_type": "pd"}},
    }
    mixed = pd.DataFrame({"x0": [0.5, 1.5], "x1": ["a", "b"]})
    assert json.loads(body_of(columns, mixed)) == {
        "inputs": [
            {"name": "x0", "shape": [2, 1], "datatype": "FP64", "data": [0.5, 1.5]},
            {"name": "x1", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]},
        ],
        "parameters": {"content_type": "pd"},
    }
    assert body_of({"protocol": "mlflow"}, X) == (
        b'{"dataframe_split":{"columns":["x0","x1"],"data":[[0.1,3],[2.0,-4]]}}'
    )
    for fmt, want in [
        ("dataframe_records", {"dataframe_records": [{"x0": 0.1, "x1": 3}, {"x0": 2.0, "x1": -4}]}),
        ("instances", {"instances": [{"x0": 0.1, "x1": 3}, {"x0": 2.0, "x1": -4}]}),
        ("inputs", {"inputs": {"x0": [0.1, 2.0], "x1": [3, -4]}}),
    ]:
        opts = {"protocol": "mlflow", "protocol_options": {"format": fmt, "params": {"k": 1}}}
        assert json.loads(body_of(opts, X)) == {**want, "params": {"k": 1}}
    csv_opts = {"protocol": "mlflow", "protocol_options": {"format": "csv"}}
    assert body_of(csv_opts, X) == b"x0,x1\n0.1,3\n2.0,-4\n"
    assert body_of({"protocol": "sagemaker"}, X) == b"0.1,3\n2.0,-4\n"
    jsonl = {"protocol": "sagemaker", "protocol_options": {"content_type": "application/jsonlines"}}
    assert body_of(jsonl, X) == b'{"features":[0.1,3]}\n{"features":[2.0,-4]}\n'
    vertex = {"protocol": "vertex", "protocol_options": {"parameters": {"t": 0.5}}}
    assert json.loads(body_of(vertex, X)) == {
        "instances": [[0.1, 3], [2.0, -4]],
        "parameters": {"t": 0.5},
    }
    tpl = {
        "protocol": "template",
        "protocol_options": {
            "template": '{"a": [1, {"rows": "$rows"}], "b": null}',
            "response": "r",
        },
    }
    assert body_of(tpl, X) == b'{"a":[1,{"rows":[[0.1,3],[2.0,-4]]}],"b":null}'


def test_a_mixed_tensor_is_refused_before_sending():
    mixed = pd.DataFrame({"x0": [0.5], "x1": ["a"]})
    with pytest.raises(ex.InputError, match=r"mixes float, str values.*layout='columns'"):
        body_of({"protocol": "oip-v2"}, mixed)


# -- answers read strictly --------------------------------------------------------------------
def decode(
    fmt: wire.WireFormat, doc: Any, n: int, outputs: list[str], kind: str = "application/json"
):
    content = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return fmt.decode(wire.Answer(content, kind), n, outputs)


def tensor(name: str, shape: list[int], data: list[Any], datatype: str = "FP64") -> dict:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_oip_outputs_are_chosen_reshaped_and_checked():
    two = {
        "outputs": [
            tensor("label", [2], [0, 1], "INT64"),
            tensor("proba", [2, 2], [0.9, 0.1, 0.2, 0.8]),
        ]
    }
    by_name = wire.OpenInferenceV2(output="proba")
    np.testing.assert_array_equal(decode(by_name, two, 2, ["a", "b"]), [[0.9, 0.1], [0.2, 0.8]])
    nested = {"outputs": [tensor("p", [2, 2], [[0.9, 0.1], [0.2, 0.8]])]}
    np.testing.assert_array_equal(
        decode(wire.OpenInferenceV2(), nested, 2, ["a", "b"]), [[0.9, 0.1], [0.2, 0.8]]
    )
    np.testing.assert_array_equal(
        decode(wire.OpenInferenceV2(output=-1), two, 2, ["a", "b"])[1], [0.2, 0.8]
    )
    for fmt, doc, outputs, message in [
        (
            wire.OpenInferenceV2(),
            two,
            ["a", "b"],
            r"2 output tensors \['label', 'proba'\]; choose one with output=",
        ),
        (
            wire.OpenInferenceV2(output="p"),
            two,
            ["a"],
            r"no output tensor 'p'; it has \['label', 'proba'\]",
        ),
        (wire.OpenInferenceV2(output=5), two, ["a"], "no index 5"),
        (by_name, two, ["a"], r"2 value\(s\) per row, expected 1 .*give output_names="),
        (
            by_name,
            {"outputs": [tensor("proba", [3, 2], [0.1] * 6)]},
            ["a", "b"],
            r"3 row\(s\) for 2",
        ),
        (
            by_name,
            {"outputs": [tensor("proba", [2, 2], [0.1] * 3)]},
            ["a", "b"],
            r"shape \[2, 2\] but 3 value",
        ),
        (
            by_name,
            {"outputs": [tensor("proba", [2], ["0.5", "0.1"], "BYTES")]},
            ["a"],
            "datatype 'BYTES'",
        ),
        (
            by_name,
            {"outputs": [tensor("proba", [2], [True, False], "BOOL")]},
            ["a"],
            "datatype 'BOOL'",
        ),
        (
            by_name,
            {"outputs": [tensor("proba", [2], [0.5, "x"])]},
            ["a"],
            "holds str .* at position 1",
        ),
        (by_name, {"error": "x"}, ["a"], r"no 'outputs' tensors \(V2\); found \['error'\]"),
    ]:
        with pytest.raises(ResponseFormatError, match=message):
            decode(fmt, doc, 2, outputs)


def test_predictions_by_object_key_index_and_expression():
    mlflow = wire.MLflow()
    frame_answer = {"predictions": [{"a": 0.1, "b": 0.9}, {"a": 0.7, "b": 0.3}]}
    np.testing.assert_array_equal(
        decode(mlflow, frame_answer, 2, ["a", "b"]), [[0.1, 0.9], [0.7, 0.3]]
    )
    with pytest.raises(ResponseFormatError, match=r"object without 'p'; its keys are \['a', 'b'\]"):
        decode(mlflow, frame_answer, 2, ["p"])
    np.testing.assert_array_equal(
        decode(wire.MLflow(output="b"), frame_answer, 2, ["p"])[:, 0], [0.9, 0.3]
    )
    np.testing.assert_array_equal(
        decode(wire.KServeV1(output=1), {"predictions": [[1, 2], [3, 4]]}, 2, ["p"])[:, 0], [2, 4]
    )
    with pytest.raises(ResponseFormatError, match="has no element 3"):
        decode(wire.KServeV1(output=3), {"predictions": [[1, 2], [3, 4]]}, 2, ["p"])
    with pytest.raises(
        ResponseFormatError, match="output='score' finds nothing in the prediction for row 1"
    ):
        decode(wire.Vertex(output="score"), {"predictions": [{"score": 1}, {"s": 2}]}, 2, ["p"])
    tpl = wire.Template(template={"rows": "$rows"}, response="out[*][1]")
    np.testing.assert_array_equal(
        decode(tpl, {"out": [[0, 0.25], [0, 0.5]]}, 2, ["p"])[:, 0], [0.25, 0.5]
    )
    with pytest.raises(ResponseFormatError, match="response='out\\[\\*\\]\\[1\\]' finds nothing"):
        decode(tpl, {"other": 1}, 2, ["p"])


def test_sagemaker_answers():
    csv_fmt = wire.SageMaker(output=1)
    np.testing.assert_array_equal(
        decode(csv_fmt, b"0.1,0.9\n0.4,0.6\n", 2, ["p"], "text/csv")[:, 0], [0.9, 0.6]
    )
    one_line = wire.SageMaker()
    np.testing.assert_array_equal(
        decode(one_line, b"0.1,0.9,0.4\n", 3, ["p"], "text/csv")[:, 0], [0.1, 0.9, 0.4]
    )
    with pytest.raises(ResponseFormatError, match=r"row 1 output 'p' is \"yes\", not a number"):
        decode(one_line, b"0.5\nyes\n", 2, ["p"], "text/csv")
    with pytest.raises(ResponseFormatError, match=r"returned 1 CSV line\(s\) for 2 row\(s\)"):
        decode(wire.SageMaker(output=0), b"0.5\n", 2, ["p"], "text/csv")
    lines = wire.SageMaker(accept="application/jsonlines", output="probabilities[1]")
    answer = b'{"probabilities": [0.2, 0.8]}\n{"probabilities": [0.6, 0.4]}\n'
    np.testing.assert_array_equal(decode(lines, answer, 2, ["p"])[:, 0], [0.8, 0.4])
    with pytest.raises(ResponseFormatError, match="line 1 of the JSON Lines answer is not JSON"):
        decode(lines, b'{"probabilities": [0.2, 0.8]}\nnope\n', 2, ["p"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocol": "grpc"}, "protocol must be one of json, kserve-v1, oip-v2, mlflow"),
        (
            {"protocol": "mlflow", "protocol_options": {"fromat": "csv"}},
            "protocol 'mlflow' has no option 'fromat'; its options are format, ",
        ),
        (
            {"protocol": "mlflow", "protocol_options": {"format": "parquet"}},
            "format must be one of",
        ),
        (
            {"protocol": "mlflow", "request_key": "rows"},
            "protocol 'mlflow' has no option 'request_key'",
        ),
        (
            {"protocol": "oip-v2", "protocol_options": {"datatype": "FP128"}},
            "datatype must be one of",
        ),
        (
            {"protocol": "oip-v2", "protocol_options": {"request_output": True}},
            "request_output=True needs output=",
        ),
        ({"protocol": "bentoml"}, "protocol 'bentoml' needs argument="),
        (
            {"protocol": "template", "protocol_options": {"template": {"a": 1}, "response": "x"}},
            r"exactly one '\$rows' or '\$records' value, found 0",
        ),
        (
            {"protocol": "template", "protocol_options": {"template": {"a": "$rows"}}},
            "needs response=",
        ),
        (
            {
                "protocol": "template",
                "protocol_options": {"template": {"a": "$rows"}, "response": "a[?"},
            },
            "is not a JMESPath expression",
        ),
        (
            {"protocol": "sagemaker", "output": "score"},
            "with accept='text/csv', output must be a column index",
        ),
        (
            {"protocol": "sagemaker", "protocol_options": {"content_type": "text/plain"}},
            "content_type must be one of",
        ),
        (
            {"protocol": "vertex", "protocol_options": {"parameters": {"t": float("nan")}}},
            "cannot be sent as JSON",
        ),
        (
            {"protocol": wire.OpenInferenceV2(output="a"), "output": "b"},
            "output='b' conflicts with the protocol's own output='a'",
        ),
        (
            {"protocol": wire.MLflow(), "instance_format": "list"},
            "instance_format applies to a protocol given by name",
        ),
        ({"protocol_options": ["format"]}, "protocol_options must be a mapping"),
        ({"auth": "Bearer x"}, "auth must be an httpx.Auth"),
    ],
)
def test_configuration_errors_name_the_option(kwargs, message):
    with pytest.raises(ex.ConfigurationError, match=message):
        HTTPModel("http://127.0.0.1:9/p", NAMES, **kwargs)


def test_an_auth_hook_signs_every_attempt(serve, client):
    class Signed(httpx.Auth):
        def __init__(self) -> None:
            self.calls = 0

        def auth_flow(self, request: httpx.Request):
            self.calls += 1
            request.headers["Authorization"] = f"Bearer signed-{self.calls}"
            yield request

    server = serve(fail_rate=0.5, seed=2)
    auth = Signed()
    model = HTTPModel(
        server.url,
        NAMES,
        client=client,
        auth=auth,
        batch_rows=1,
        max_concurrency=1,
        max_retries=10,
        **FAST_RETRY,
    )
    model.predict(np.arange(6 * len(NAMES), dtype=float).reshape(6, -1))
    assert model.n_retries > 0
    assert auth.calls == server.requests == model.n_requests > 1
    assert server.auth_seen == [f"Bearer signed-{i}" for i in range(1, auth.calls + 1)]
    assert model.describe()["request_hook"] == "Signed"


def test_sigv4_signs_every_attempt_through_botocore(serve, client, caplog):
    from botocore.auth import SigV4Auth as Signer
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from surrogate_xai.adapters.wire.aws import SigV4Auth

    caplog.set_level(logging.DEBUG)
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    credentials = Credentials("AKIDEXAMPLE", secret)
    server = serve(codec=SageMakerCodec(), fail_rate=0.5, seed=2)
    model = HTTPModel(
        server.url,
        NAMES,
        protocol="sagemaker",
        client=client,
        auth=SigV4Auth("eu-west-1", credentials=credentials),
        batch_rows=1,
        max_concurrency=1,
        max_retries=10,
        **FAST_RETRY,
    )
    model.predict(np.arange(4 * len(NAMES), dtype=float).reshape(4, -1))
    assert model.n_retries > 0
    # The server checks each signature the way AWS does: botocore recomputes it from the
    # headers the request says it signed.
    for headers, body in zip(server.headers_seen, server.bodies, strict=True):
        authorization = headers["authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
        request = AWSRequest(
            method="POST", url=server.url, data=body, headers={h: headers[h] for h in signed}
        )
        request.context["timestamp"] = headers["x-amz-date"]
        signer = Signer(credentials, "sagemaker", "eu-west-1")
        canonical = signer.canonical_request(request)
        want = signer.signature(signer.string_to_sign(request, canonical), request)
        assert authorization.endswith(f"Signature={want}")
    assert secret not in caplog.text + str(model.describe())
    assert model.describe()["request_hook"] == "SigV4Auth"
