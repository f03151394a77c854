"""The model every real model server in the tests serves, and the local side calls.

The same module is imported inside each server's own virtualenv (MLServer, KServe, MLflow run
Python 3.12 with their own numpy) and in the project's venv. Its arithmetic is elementwise
IEEE float64 (``+ - * /`` and ``abs``, no BLAS, no libm function such as ``exp``), so a row's
score is the same bits whatever numpy build computes it and whatever batch the row comes in.
Floats cross the wire as JSON numbers, which every server here writes in shortest round-trip
form. So an explanation through a server can be compared bit for bit with the same model
called in-process through ``FunctionModel``: any difference is the wire format's fault.

Two switches for failure tests, read from environment variables of the server process:

- ``SXAI_CALL_LOG``: a file; every ``predict`` call appends the number of rows it received
  (the server-side count of requests and rows that reached the model).
- ``SXAI_FAIL_FILE``: a file holding an integer N. A call whose first column contains
  :data:`FAIL_MARKER` decrements N and raises :class:`TransientFailure` while N > 0, so a test
  can make a real server answer 5xx exactly N times and then recover.
"""

from __future__ import annotations

import os

import numpy as np

#: The first column's value that asks for a transient failure (see SXAI_FAIL_FILE).
FAIL_MARKER = -999.0
#: Number of input columns.
N_FEATURES = 6
FEATURES = [f"x{j}" for j in range(N_FEATURES)]
WEIGHTS = (0.5, -1.25, 2.0, 0.75, -0.3, 1.1)


class TransientFailure(RuntimeError):
    """Raised on the marker row while the fail file's counter is positive."""


def margin(X: np.ndarray) -> np.ndarray:
    """Linear terms plus two interactions, column by column: shape (n_samples,)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise ValueError(f"expected rows of {N_FEATURES} features, got shape {X.shape}")
    cols = [X[:, j] for j in range(N_FEATURES)]
    out = np.full(len(X), 0.1)
    for w, c in zip(WEIGHTS, cols, strict=True):
        out = out + w * c
    return out + cols[0] * cols[1] - 0.5 * cols[2] * cols[3] * cols[0]


def probabilities(X: np.ndarray) -> np.ndarray:
    """Two-class probabilities from the margin through a rational squash: (n_samples, 2)."""
    z = margin(X)
    p = 0.5 + 0.5 * z / (1.0 + np.abs(z))
    return np.column_stack([1.0 - p, p])


def _log_and_maybe_fail(X: np.ndarray) -> None:
    log = os.environ.get("SXAI_CALL_LOG")
    if log:
        with open(log, "a", encoding="ascii") as fh:
            fh.write(f"{len(X)}\n")
    fail = os.environ.get("SXAI_FAIL_FILE")
    if fail and len(X) and np.any(np.asarray(X, dtype=np.float64)[:, 0] == FAIL_MARKER):
        try:
            with open(fail, encoding="ascii") as fh:
                left = int(fh.read().strip() or 0)
        except FileNotFoundError:
            left = 0
        if left > 0:
            with open(fail, "w", encoding="ascii") as fh:
                fh.write(str(left - 1))
            raise TransientFailure(f"transient failure on the marker row ({left - 1} left)")


class ScoreModel:
    """A scikit-learn-like classifier object (``predict``, ``predict_proba``) that MLServer's
    sklearn runtime can load with joblib; its state is plain Python, so the pickle loads in
    any numpy version."""

    classes_ = (0, 1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        _log_and_maybe_fail(X)
        return probabilities(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X)[:, 1]


def read_call_log(path: str | os.PathLike[str]) -> list[int]:
    """Rows per call recorded in an ``SXAI_CALL_LOG`` file (empty if none)."""
    try:
        with open(path, encoding="ascii") as fh:
            return [int(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []
