"""The acceptance check every real model server passes (issue 12), written once.

Five rows explained with KernelSHAP through the server's wire format must be bit-identical to
the same model (``served_model.probabilities``, the very function the server calls) explained
in-process through ``FunctionModel`` with the same seed. The background holds the marker row,
and the model is told to fail on it twice: the server answers 5xx twice, the client retries,
and the explanation is still identical. The model's own log of calls must match what the
client counted, within the budget.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.adapters.http import HTTPModel
from tests.model_servers import RunningServer
from tests.served_model import FAIL_MARKER, FEATURES, probabilities

OUTPUTS = ["p_good", "p_bad"]
BUDGET = 40
FAST_RETRY = {"backoff": 0.01, "max_backoff": 0.1, "random_state": 0}


def rows(n: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame(
        np.random.default_rng(seed).normal(size=(n, len(FEATURES))), columns=FEATURES
    )


def background() -> pd.DataFrame:
    frame = rows(10, seed=1)
    frame.loc[3, "x0"] = FAIL_MARKER  # the row the model fails on while told to
    return frame


def local_model() -> sx.FunctionModel:
    return sx.FunctionModel(probabilities, FEATURES, OUTPUTS, input_type="array")


def check_explains_like_local(
    model: HTTPModel, server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The acceptance check; ``model`` must have ``max_requests=BUDGET``, ``max_retries=5`` and
    fresh counters."""
    caplog.set_level(logging.WARNING, logger="surrogate_xai.adapters.http")
    server.reset()
    server.fail_next(2)
    X = rows(5, seed=2)
    want = sx.KernelSHAP(max_evals=256, random_state=11).fit(local_model(), background()).explain(X)
    got = sx.KernelSHAP(max_evals=256, random_state=11).fit(model, background()).explain(X)

    assert np.array_equal(got.values, want.values)
    assert np.array_equal(got.stderr, want.stderr)
    assert np.array_equal(got.base_values, want.base_values)
    assert np.array_equal(got.diagnostics.predictions, want.diagnostics.predictions)
    # The model failed twice, the server answered 5xx twice and the client retried. A server
    # may also close a kept-alive connection after a 500 (uvicorn does when the app raised),
    # and an attempt sent on it is reset before it reaches the model: retried too.
    retried = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    status = [m for m in retried if " failed: HTTP 5" in m]
    reset = [m for m in retried if " failed: connection failed (ReadError" in m]
    assert len(status) == 2, retried
    assert len(status) + len(reset) == len(retried) == model.n_retries, retried
    # Every other attempt reached the model, as the client counted, within the budget.
    calls = server.calls()
    assert len(calls) == model.n_requests - len(reset)
    assert model.n_requests <= BUDGET
    if reset:
        assert sum(calls) < model.n_rows_sent
    else:
        assert sum(calls) == model.n_rows_sent
    # The rows sent never appear in what was logged (MLflow's 503 echoes them).
    assert str(FAIL_MARKER) not in caplog.text
    for value in background().to_numpy().ravel():
        assert repr(float(value)) not in caplog.text
