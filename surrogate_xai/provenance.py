"""Facts recorded with every result: content hashes, package versions, time."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
from importlib import metadata

import numpy as np
import pandas as pd

_PACKAGES = ("surrogate-xai", "numpy", "pandas", "scikit-learn", "onnxruntime", "shap", "lime")


def package_versions() -> dict[str, str]:
    """Versions of the packages that can change a result, plus the Python version."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def frame_digest(frame: pd.DataFrame, weights: np.ndarray | None = None) -> str:
    """sha256 of a frame's content: column names, kinds and values, in order.

    Numbers are hashed as little-endian float64, text as UTF-8 with its length, so the digest
    does not depend on pandas' internal dtypes or on the row index.
    """
    h = hashlib.sha256()
    h.update(f"rows={len(frame)};cols={len(frame.columns)}".encode())
    for col in frame.columns:
        series = frame[col]
        h.update(b"\x00col:" + str(col).encode())
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            h.update(b"num")
            h.update(series.to_numpy(dtype="<f8", na_value=np.nan).tobytes())
        else:
            h.update(b"txt")
            for value in series.astype(str).tolist():
                raw = value.encode()
                h.update(len(raw).to_bytes(8, "little") + raw)
    if weights is not None:
        h.update(b"\x00weights")
        h.update(np.asarray(weights, dtype="<f8").tobytes())
    return h.hexdigest()
