"""onnxruntime sessions: how one is built, and the ones shared by unpickled models."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["new_session", "shared_session", "shared_session_count"]


def new_session(data: bytes, intra_op_num_threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


# Sessions of unpickled models, one per (sha256, threads) in this process. A Dask worker
# receives the model's bytes once per ``explain_batch`` call; the session (the expensive part:
# graph parsing and optimisation, tens of MB for a large ensemble) is built once per process
# and shared, which is safe because ``InferenceSession.run`` is thread-safe.
_SESSIONS: OrderedDict[tuple[str, int], Any] = OrderedDict()
_SESSIONS_LOCK = threading.Lock()
_SESSIONS_KEPT = 4  # a long-lived worker may serve several models; keep the last few


def shared_session(data: bytes, sha256: str, intra_op_num_threads: int) -> Any:
    key = (sha256, intra_op_num_threads)
    with _SESSIONS_LOCK:
        hit = _SESSIONS.get(key)
        if hit is None:
            hit = new_session(data, intra_op_num_threads)
            _SESSIONS[key] = hit
            while len(_SESSIONS) > _SESSIONS_KEPT:
                _SESSIONS.popitem(last=False)
        _SESSIONS.move_to_end(key)
        return hit


def shared_session_count(sha256: str | None = None) -> int:
    """Sessions of unpickled ONNX models held by this process, of one model or of all.

    For tests and diagnostics: on a Dask worker, ``client.run(shared_session_count, sha)``
    shows that a worker built one session for a model however many tasks used it.
    """
    with _SESSIONS_LOCK:
        return sum(1 for key in _SESSIONS if sha256 is None or key[0] == sha256)
