"""Real HTTP prediction servers on 127.0.0.1 for the HTTPModel tests.

A :class:`ModelServer` serves a known function from a ``ThreadingHTTPServer`` in a background
thread and counts what it receives (requests, rows, body sizes, arrival times, requests in
flight). How it reads rows and writes predictions is its *codec*: plain JSON by default, or
one of the wire formats written here from their public descriptions (SageMaker CSV / JSON
Lines, Vertex AI, BentoML, a custom template), independently of the client's code. Variants
fail a seeded share of requests (503 or a dropped connection), answer slowly or drip their
answer a byte at a time, redirect, check an ``Authorization`` header, or answer with a broken
shape or a fixed body.
"""

from __future__ import annotations

import csv
import io
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd


def score(X: pd.DataFrame) -> np.ndarray:
    """The served model: linear terms plus two interactions, elementwise (no BLAS, no libm),
    so every row's value is the same whatever batch it is computed in."""
    cols = [X[c].to_numpy(dtype=np.float64) for c in X.columns]
    weights = [0.5, -1.25, 2.0, 0.75, -0.3, 1.1, 0.9, -0.6]
    out = np.full(len(X), 0.1)
    for w, c in zip(weights, cols, strict=False):
        out = out + w * c
    out = out + cols[0] * cols[1]
    if len(cols) > 3:
        out = out - 0.5 * cols[2] * cols[3] * cols[0]
    return out


class BadRequest(Exception):
    """The codec cannot read the request: answered 400 with this message."""


# -- codecs: how a server reads rows and writes predictions --------------------------------------
class JSONCodec:
    """``{"instances": rows}`` → ``{"predictions": [...]}`` with movable keys."""

    def __init__(
        self,
        request_key: str = "instances",
        response_key: str = "predictions",
        instance_format: str = "list",
    ) -> None:
        self.request_path = request_key.split(".") if request_key else []
        self.response_path = response_key.split(".") if response_key else []
        self.instance_format = instance_format

    def rows(self, body: bytes, headers: Any, names: list[str]) -> tuple[pd.DataFrame, Any]:
        try:
            instances = json.loads(body)
            for key in self.request_path:
                instances = instances[key]
        except (ValueError, KeyError, TypeError):
            instances = None
        if not isinstance(instances, list):
            raise BadRequest(f"expected a list at {'.'.join(self.request_path)!r}")
        if self.instance_format == "object":
            return pd.DataFrame.from_records(instances, columns=names), None
        return pd.DataFrame(instances, columns=names), None

    def answer(self, preds: np.ndarray, context: Any) -> tuple[bytes, str]:
        doc: Any = preds.tolist()
        for key in reversed(self.response_path):
            doc = {key: doc}
        return json.dumps(doc).encode(), "application/json"


class OpenInferenceCodec:
    """Open Inference Protocol V2: one ``[n, d]`` FP64 (or INT64) input tensor, flat
    row-major data; answers two output tensors, ``predict`` ``[n, 1]`` and ``label`` ``[n]``
    (INT64), as a classifier server does."""

    def rows(self, body: bytes, headers: Any, names: list[str]) -> tuple[pd.DataFrame, Any]:
        doc = json.loads(body)
        (tensor,) = doc["inputs"]
        if tensor["datatype"] not in ("FP64", "INT64") or tensor["shape"][1:] != [len(names)]:
            raise BadRequest(f"bad input tensor {tensor['datatype']} {tensor['shape']}")
        data = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        return pd.DataFrame(data, columns=names), None

    def answer(self, preds: np.ndarray, context: Any) -> tuple[bytes, str]:
        p = preds.reshape(-1)
        doc = {
            "model_name": "score",
            "outputs": [
                {"name": "predict", "shape": [len(p), 1], "datatype": "FP64", "data": p.tolist()},
                {
                    "name": "label",
                    "shape": [len(p)],
                    "datatype": "INT64",
                    "data": [int(v > 0) for v in p],
                },
            ],
        }
        return json.dumps(doc).encode(), "application/json"


class MLflowCodec:
    """MLflow's ``dataframe_split`` request → ``{"predictions": [...]}``."""

    def rows(self, body: bytes, headers: Any, names: list[str]) -> tuple[pd.DataFrame, Any]:
        split = json.loads(body)["dataframe_split"]
        return pd.DataFrame(split["data"], columns=split["columns"])[names], None

    def answer(self, preds: np.ndarray, context: Any) -> tuple[bytes, str]:
        return json.dumps({"predictions": preds.tolist()}).encode(), "application/json"


class SageMakerCodec:
    """A SageMaker container: ``text/csv`` rows without a header, or JSON Lines records
    ``{"features": [...]}``; answers CSV lines, JSON Lines ``{"score", "label"}``, or one JSON
    document ``{"predictions": [{"score", "label"}, ...]}`` as the ``Accept`` header asks."""

    def rows(self, body: bytes, headers: Any, names: list[str]) -> tuple[pd.DataFrame, Any]:
        kind = headers.get("Content-Type", "")
        text = body.decode()
        if kind == "text/csv":
            values = [[float(v) for v in line] for line in csv.reader(io.StringIO(text)) if line]
        elif kind == "application/jsonlines":
            values = [json.loads(line)["features"] for line in text.splitlines() if line.strip()]
        else:
            raise BadRequest(f"unsupported content type {kind!r}")
        return pd.DataFrame(values, columns=names), headers.get("Accept", "text/csv")

    def answer(self, preds: np.ndarray, accept: Any) -> tuple[bytes, str]:
        p = preds.reshape(len(preds), -1)[:, -1]
        if accept == "application/jsonlines":
            lines = [json.dumps({"score": float(v), "label": int(v > 0)}) for v in p]
            return ("\n".join(lines) + "\n").encode(), "application/jsonlines"
        if accept == "application/json":
            doc = {"predictions": [{"score": float(v), "label": int(v > 0)} for v in p]}
            return json.dumps(doc).encode(), "application/json"
        rows = preds.reshape(len(preds), -1)
        text = "".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows)
        return text.encode(), "text/csv"


class VertexCodec:
    """Vertex AI: ``{"instances": [...], "parameters": {...}}`` → an object per row, as
    AutoML classification answers: ``{"scores": [...], "classes": [...]}``."""

    def rows(self, body: bytes, headers: Any, names: list[str]) -> tuple[pd.DataFrame, Any]:
        doc = json.loads(body)
        if doc.get("parameters") != {"confidenceThreshold": 0.5}:
            raise BadRequest(f"unexpected parameters {doc.get('parameters')!r}")
        return pd.DataFrame.from_records(doc["instances"], columns=names), None

    def answer(self, preds: np.ndarray, context: Any) -> tuple[bytes, str]:
        p = preds.reshape(len(preds), -1)[:, -1]
        rows = [{"scores": [float(-v), float(v)], "classes": ["low", "high"]} for v in p]
        doc = {"predictions": rows, "deployedModelId": "1234", "model": "credit"}
        return json.dumps(doc).encode(), "application/json"


class BentoMLCodec:
    """A BentoML API ``def predict(self, input_data: np.ndarray, scale: float)``: the named
    arguments as JSON, the return value as the answer."""

    def rows(self, body: bytes, headers: Any, names: list[str]) -> tuple[pd.DataFrame, Any]:
        doc = json.loads(body)
        if set(doc) != {"input_data", "scale"}:
            raise BadRequest(f"predict() got arguments {sorted(doc)}")
        return pd.DataFrame(doc["input_data"], columns=names), doc["scale"]

    def answer(self, preds: np.ndarray, scale: Any) -> tuple[bytes, str]:
        return json.dumps((preds * scale).tolist()).encode(), "application/json"


class TemplateCodec:
    """A house format: ``{"model": "credit", "payload": {"rows": [{col: v}]}, "version": 3}``
    → ``{"result": {"scores": [[p], ...]}, "model": ...}``."""

    def rows(self, body: bytes, headers: Any, names: list[str]) -> tuple[pd.DataFrame, Any]:
        doc = json.loads(body)
        if doc.get("model") != "credit" or doc.get("version") != 3:
            raise BadRequest("unknown model or version")
        return pd.DataFrame.from_records(doc["payload"]["rows"], columns=names), None

    def answer(self, preds: np.ndarray, context: Any) -> tuple[bytes, str]:
        doc = {"result": {"scores": [[float(v)] for v in preds.reshape(-1)]}, "model": "credit"}
        return json.dumps(doc).encode(), "application/json"


# -- the server --------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: ModelServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) closes its socket; writing to it fails. Expected.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(
        self, status: int, payload: Any, kind: str = "application/json", headers: Any = ()
    ) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        app = self.server.app
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if app.drip:
            for i in range(len(data)):  # a byte at a time: each read is quick, the whole is not
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                if app.stop.wait(app.drip):
                    return
        else:
            self.wfile.write(data)

    def do_POST(self) -> None:
        app = self.server.app
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        frame: pd.DataFrame | None = None
        context: Any = None
        problem: str | None = None
        try:
            frame, context = app.codec.rows(body, self.headers, app.feature_names)
        except (BadRequest, ValueError, KeyError, TypeError) as exc:
            problem = str(exc)
        with app.lock:
            app.requests += 1
            app.bodies.append(body)
            app.content_types.append(self.headers.get("Content-Type"))
            app.body_sizes.append(len(body))
            app.arrivals.append(time.monotonic())
            n_rows = 0 if frame is None else len(frame)
            app.rows += n_rows
            app.rows_per_request.append(n_rows)
            app.auth_seen.append(self.headers.get("Authorization"))
            app.api_keys_seen.append(self.headers.get("X-Api-Key"))
            app.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
            app.inflight += 1
            app.max_inflight = max(app.max_inflight, app.inflight)
            draw = app.rng.random()
        try:
            self._answer(app, frame, context, problem, draw)
        finally:
            with app.lock:
                app.inflight -= 1

    def _answer(
        self,
        app: ModelServer,
        frame: pd.DataFrame | None,
        context: Any,
        problem: str | None,
        draw: float,
    ) -> None:
        if app.redirect_to is not None:
            self._reply(307, {"moved": True}, headers=[("Location", app.redirect_to)])
            return
        if app.token is not None:
            got = self.headers.get("Authorization")
            if got != f"Bearer {app.token}":
                # Echo what came in, as careless servers do: the client must redact it.
                self._reply(401, {"error": f"bad credentials {got!r}"})
                return
        if draw < app.fail_rate * 2 / 3:
            self._reply(503, {"error": "overloaded, try again"})
            return
        if draw < app.fail_rate:
            self.close_connection = True  # drop the connection without an answer
            return
        if app.delay:
            app.stop.wait(app.delay)
        if app.raw_answer is not None:
            self._reply(app.raw_status, app.raw_answer)
            return
        if frame is None:
            self._reply(400, {"error": problem})
            return
        preds = np.asarray(app.fn(frame), dtype=np.float64)
        if app.short:
            preds = preds[:-1]
        data, kind = app.codec.answer(preds, context)
        self._reply(200, data, kind)


class ModelServer:
    """A prediction endpoint at ``url`` serving ``fn`` (a DataFrame of rows -> scores).

    ``codec`` reads the rows and writes the answer (default: JSON with ``request_key``,
    ``response_key`` and ``instance_format``). ``raw_answer`` replaces every answer with these
    bytes and ``raw_status``; ``drip`` sends each answer a byte every ``drip`` seconds;
    ``redirect_to`` answers every request with a 307 to that URL.
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        fn: Callable[[pd.DataFrame], Any] = score,
        *,
        codec: Any = None,
        fail_rate: float = 0.0,
        delay: float = 0.0,
        drip: float = 0.0,
        seed: int = 0,
        token: str | None = None,
        instance_format: str = "list",
        request_key: str = "instances",
        response_key: str = "predictions",
        short: bool = False,
        raw_answer: bytes | None = None,
        raw_status: int = 200,
        redirect_to: str | None = None,
    ) -> None:
        self.feature_names = list(feature_names)
        self.fn = fn
        self.codec = codec or JSONCodec(request_key, response_key, instance_format)
        self.fail_rate = fail_rate
        self.delay = delay
        self.drip = drip
        self.rng = random.Random(seed)
        self.token = token
        self.short = short
        self.raw_answer = raw_answer
        self.raw_status = raw_status
        self.redirect_to = redirect_to
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.requests = 0
        self.rows = 0
        self.bodies: list[bytes] = []
        self.content_types: list[str | None] = []
        self.body_sizes: list[int] = []
        self.rows_per_request: list[int] = []
        self.auth_seen: list[str | None] = []
        self.api_keys_seen: list[str | None] = []
        self.headers_seen: list[dict[str, str]] = []
        self.arrivals: list[float] = []
        self.inflight = 0
        self.max_inflight = 0
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.app = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/predict"

    def start(self) -> ModelServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()  # wake slow handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def started(**defaults: Any) -> Iterator[Callable[..., ModelServer]]:
    """For a fixture: yields ``start(**kwargs)``, which starts a :class:`ModelServer` with
    ``defaults`` filled in; every server started is closed when the fixture ends."""
    servers: list[ModelServer] = []

    def start(**kwargs: Any) -> ModelServer:
        server = ModelServer(**{**defaults, **kwargs}).start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()
