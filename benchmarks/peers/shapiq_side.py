"""The shapiq side of benchmarks/shapley_peers.py, run in the peers' own venv (Python 3.12).

shapiq >= 1.5 needs Python 3.12 and the project's venv is 3.11, so this script runs in
``.venv-peers`` (``make bench-peers`` builds it from ``benchmarks/peers/requirements.txt``) and
talks to the benchmark over stdin/stdout, one JSON object per line. The two sides share only
files the benchmark writes (the ONNX bytes, the background and the rows as ``.npy``) and the
results this script sends back; no code of the project is imported here.

Requests::

    {"op": "load", "onnx": PATH, "background": PATH}   -> {"ok": true, "d": d, "methods": [...]}
    {"op": "run", "method": NAME, "budget": B, "x": PATH, "row": i, "seed": s}
        -> {"values": [...], "wall_s": t, "model_s": t, "model_rows": n}
    {"op": "quit"}

The game is the interventional one of the benchmark: ``v(S) = mean_b f(x_S, b_S̄)`` over every
background row, through one onnxruntime session with one intra-op thread (the options of
``surrogate_xai.ONNXModel``). A budget is shapiq's: coalitions, each costing ``n_bg`` model rows.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import warnings
from typing import Any

import numpy as np
import onnxruntime as ort

#: Rows per session.run: large batches, as our side sends, within a few hundred MB.
CHUNK = 65_536


class Game:
    """The interventional game of one explained row, counting model rows and seconds."""

    def __init__(self, session: Any, background: np.ndarray, x: np.ndarray) -> None:
        self.session = session
        self.input = session.get_inputs()[0].name
        self.output = session.get_outputs()[0].name
        self.background = background.astype(np.float32)
        self.x = x.astype(np.float32)
        self.rows = 0
        self.seconds = 0.0

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.atleast_2d(np.asarray(coalitions, dtype=bool))
        n_bg, d = self.background.shape
        out = np.empty(len(coalitions))
        per = max(1, CHUNK // n_bg)
        for start in range(0, len(coalitions), per):
            masks = coalitions[start : start + per]
            rows = np.where(masks[:, None, :], self.x[None, None, :], self.background[None])
            flat = np.ascontiguousarray(rows.reshape(-1, d))
            began = time.perf_counter()
            y = self.session.run([self.output], {self.input: flat})[0]
            self.seconds += time.perf_counter() - began
            self.rows += len(flat)
            out[start : start + len(masks)] = (
                np.asarray(y, dtype=np.float64).reshape(-1, n_bg).mean(1)
            )
        return out


METHODS = (
    "LeverageSHAP",
    "KernelSHAP (paired)",
    "OddSHAP",
    "ProxySHAP",
    "RegressionMSR",
    "PermutationSamplingSV",
)


def approximator(name: str, n: int, seed: int) -> Any:
    """shapiq 1.8's estimators of Shapley values, configured as their documentation advises."""
    from shapiq import approximator as ap

    if name == "LeverageSHAP":
        return ap.LeverageSHAP(n, pairing_trick=True, random_state=seed)
    if name == "KernelSHAP (paired)":
        return ap.KernelSHAP(n, pairing_trick=True, random_state=seed)
    if name == "OddSHAP":
        return ap.OddSHAP(n, random_state=seed)
    if name == "ProxySHAP":
        return ap.ProxySHAP(n, max_order=1, index="SV", random_state=seed)
    if name == "RegressionMSR":
        return ap.RegressionMSR(n, index="SV", random_state=seed)
    if name == "PermutationSamplingSV":
        return ap.PermutationSamplingSV(n, random_state=seed)
    raise ValueError(f"unknown method {name!r}")


def session(onnx_path: str) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    with open(onnx_path, "rb") as fh:
        return ort.InferenceSession(
            fh.read(), sess_options=options, providers=["CPUExecutionProvider"]
        )


def main() -> int:
    warnings.filterwarnings("ignore")
    sess: Any = None
    background = np.empty((0, 0))
    rows: dict[str, np.ndarray] = {}
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        if op == "quit":
            break
        if op == "load":
            sess = session(req["onnx"])
            background = np.load(req["background"])
            rows = {}
            d = int(background.shape[1])
            # One untimed call per method: imports, JIT and caches are not what is measured.
            for name in METHODS:
                with contextlib.suppress(Exception):
                    approximator(name, d, 0).approximate(
                        20 * d, Game(sess, background[:2], background[0])
                    )
            reply: dict[str, Any] = {"ok": True, "d": d, "methods": list(METHODS)}
        elif op == "run":
            if req["x"] not in rows:
                rows[req["x"]] = np.load(req["x"])
            x = rows[req["x"]][req["row"]]
            game = Game(sess, background, x)
            began = time.perf_counter()
            try:
                est = approximator(req["method"], len(x), req["seed"])
                values = est.approximate(req["budget"], game)
                phi = np.array([values[(j,)] for j in range(len(x))], dtype=np.float64)
                reply = {"values": phi.tolist()}
            except Exception as exc:  # a peer refusing a budget is a result, not a crash
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            reply.update(
                wall_s=time.perf_counter() - began, model_s=game.seconds, model_rows=game.rows
            )
        else:
            reply = {"error": f"unknown op {op!r}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
