"""Real HTTP prediction servers on 127.0.0.1 for the HTTPModel tests.

A :class:`ModelServer` serves a known function over JSON from a ``ThreadingHTTPServer`` in a
background thread and counts what it receives (requests, rows, body sizes, arrival times,
requests in flight). Variants fail a seeded share of requests (503 or a dropped connection),
answer slowly, check an ``Authorization`` header, or answer with a broken shape.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Sequence
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

    def _reply(self, status: int, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        app = self.server.app
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            doc = json.loads(body)
            instances = doc
            for key in app.request_path:
                instances = instances[key]
        except (ValueError, KeyError, TypeError):
            instances = None
        with app.lock:
            app.requests += 1
            app.bodies.append(body)
            app.body_sizes.append(len(body))
            app.arrivals.append(time.monotonic())
            n_rows = len(instances) if isinstance(instances, list) else 0
            app.rows += n_rows
            app.rows_per_request.append(n_rows)
            app.auth_seen.append(self.headers.get("Authorization"))
            app.inflight += 1
            app.max_inflight = max(app.max_inflight, app.inflight)
            draw = app.rng.random()
        try:
            self._answer(app, instances, draw)
        finally:
            with app.lock:
                app.inflight -= 1

    def _answer(self, app: ModelServer, instances: Any, draw: float) -> None:
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
        if not isinstance(instances, list):
            self._reply(400, {"error": f"expected a list at {'.'.join(app.request_path)!r}"})
            return
        if app.raw_answer is not None:
            self._reply(200, app.raw_answer)
            return
        if app.instance_format == "object":
            frame = pd.DataFrame.from_records(instances, columns=app.feature_names)
        else:
            frame = pd.DataFrame(instances, columns=app.feature_names)
        preds = np.asarray(app.fn(frame), dtype=np.float64)
        values = preds.tolist()
        if app.short:
            values = values[:-1]
        answer: Any = values
        for key in reversed(app.response_path):
            answer = {key: answer}
        self._reply(200, answer)


class ModelServer:
    """A prediction endpoint at ``url`` serving ``fn`` (a DataFrame of rows -> scores)."""

    def __init__(
        self,
        feature_names: Sequence[str],
        fn: Callable[[pd.DataFrame], Any] = score,
        *,
        fail_rate: float = 0.0,
        delay: float = 0.0,
        seed: int = 0,
        token: str | None = None,
        instance_format: str = "list",
        request_key: str = "instances",
        response_key: str = "predictions",
        short: bool = False,
        raw_answer: bytes | None = None,
    ) -> None:
        self.feature_names = list(feature_names)
        self.fn = fn
        self.fail_rate = fail_rate
        self.delay = delay
        self.rng = random.Random(seed)
        self.token = token
        self.instance_format = instance_format
        self.request_path = request_key.split(".") if request_key else []
        self.response_path = response_key.split(".") if response_key else []
        self.short = short
        self.raw_answer = raw_answer
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.requests = 0
        self.rows = 0
        self.bodies: list[bytes] = []
        self.body_sizes: list[int] = []
        self.rows_per_request: list[int] = []
        self.auth_seen: list[str | None] = []
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
