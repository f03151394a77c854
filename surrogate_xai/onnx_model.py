"""ONNX models through onnxruntime.

A graph either takes one float tensor of shape ``(batch, n_features)`` ("tensor mode") or one
input per raw column of shape ``(batch, 1)`` with float, int64 or string element types
("column mode", what skl2onnx produces for a ColumnTransformer over a DataFrame). Classifier
graphs usually carry a label output plus probabilities, either as a tensor or as a ZipMap
(a list of ``{class: probability}`` dicts); ``output=`` chooses which output is explained.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import ConfigurationError, InvalidValueError, ModelLoadError
from .model import DEFAULT_MEMORY_LIMIT, BaseModel, FeatureKind

_NUMERIC_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
_STRING_TYPE = "tensor(string)"
# Output names that converters use for un-squashed scores.
_MARGIN_HINTS = ("margin", "raw", "logit", "score")


def _load_bytes(source: str | os.PathLike[str] | bytes) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray):
        return bytes(source), "<bytes>"
    path = Path(source)
    if not path.is_file():
        raise ModelLoadError(f"no ONNX file at {str(path)!r}")
    return path.read_bytes(), str(path)


def _graph_facts(data: bytes) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Categories of OneHotEncoder nodes fed directly by a graph input, and class labels."""
    import onnx

    proto = onnx.load_from_string(data)
    inputs = {i.name for i in proto.graph.input}
    categories: dict[str, list[str]] = {}
    labels: dict[str, list[str]] = {}
    for node in proto.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "OneHotEncoder" and node.input and node.input[0] in inputs:
            if "cats_strings" in attrs:
                cats = [s.decode() for s in attrs["cats_strings"].strings]
            elif "cats_int64s" in attrs:
                cats = [str(v) for v in attrs["cats_int64s"].ints]
            else:
                continue
            categories.setdefault(node.input[0], []).extend(cats)
        for key in ("classlabels_strings", "classlabels_int64s"):
            if key in attrs and node.op_type.endswith("Classifier"):
                attr = attrs[key]
                values = (
                    [s.decode() for s in attr.strings]
                    if attr.strings
                    else [str(v) for v in attr.ints]
                )
                labels[node.op_type] = values
    return categories, labels


def _new_session(data: bytes, intra_op_num_threads: int) -> Any:
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


def _shared_session(data: bytes, sha256: str, intra_op_num_threads: int) -> Any:
    key = (sha256, intra_op_num_threads)
    with _SESSIONS_LOCK:
        hit = _SESSIONS.get(key)
        if hit is None:
            hit = _new_session(data, intra_op_num_threads)
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


def _fits(have: Any, want: Any) -> bool:
    """Whether every value of dtype ``have`` is representable in ``want`` (no range check)."""
    have = np.dtype(have)
    return have.kind in "biuf" and np.can_cast(have, np.dtype(want), casting="safe")


class ONNXModel(BaseModel):
    """An ONNX graph evaluated with onnxruntime.

    Parameters
    ----------
    source : path or bytes
        The ``.onnx`` file or its bytes. ``identity`` is the sha256 of these bytes.
    output : str, optional
        Which output to explain: ``"probability"`` (class probabilities, tensor or ZipMap),
        ``"margin"`` (an output whose name says it is a raw score), or an output's exact name.
        By default the probabilities of a classifier, else the only non-label output.
    feature_names : sequence of str, optional
        Column names for a single-tensor graph (default ``x0, x1, ...``). Ignored in column
        mode, where the graph's input names are the columns.
    intra_op_num_threads : int
        onnxruntime threads per call. One is fastest for many mid-size batches on small
        machines; two pools fighting over two cores are slower than one. It is part of the
        model's identity for reproducibility: with several threads some kernels (tree
        ensembles) add partial sums in a different order, which moves float32 outputs in
        the last bits. Parallelise over rows with the explainers' ``n_jobs`` instead.
    memory_limit : int
        Bytes of input rows per onnxruntime call; larger inputs are evaluated in chunks.
    allow_missing : bool
        Whether NaN may be passed in numeric columns (e.g. the graph imputes).
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        output: str | None = None,
        *,
        feature_names: list[str] | None = None,
        intra_op_num_threads: int = 1,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        allow_missing: bool = False,
    ) -> None:
        super().__init__()
        data, self.source = _load_bytes(source)
        self._bytes = data
        self._identity = hashlib.sha256(data).hexdigest()
        self.output = output
        self.intra_op_num_threads = intra_op_num_threads
        #: Evidence that the graph equals the model it was exported from (set by the
        #: adapters' ``to_onnx``); recorded in every explanation's provenance.
        self.parity: dict[str, Any] | None = None
        #: The same evidence as a ``ParityReport`` object.
        self.parity_report: Any = None
        self._memory_limit = memory_limit
        self._allow_missing = allow_missing

        try:
            self._session = _new_session(data, intra_op_num_threads)
            categories, class_labels = _graph_facts(data)
        except Exception as exc:
            raise ModelLoadError(
                f"{self.source} is not a usable ONNX model: {str(exc).splitlines()[0][:300]}"
            ) from exc

        self._setup_inputs(feature_names, categories)
        self._setup_output(output, class_labels)

    # -- pickling ----------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # The session is not picklable: ship the bytes, and rebuild it (once per process) on
        # the other side from those bytes, which are the model's identity.
        state = super().__getstate__()
        state.pop("_session", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._session = _shared_session(self._bytes, self._identity, self.intra_op_num_threads)

    # -- construction ------------------------------------------------------------------------
    def _setup_inputs(
        self, feature_names: list[str] | None, categories: dict[str, list[str]]
    ) -> None:
        inputs = self._session.get_inputs()
        for node in inputs:
            if node.type not in _NUMERIC_TYPES and node.type != _STRING_TYPE:
                raise ModelLoadError(f"input {node.name!r} has unsupported type {node.type}")
        width = inputs[0].shape[1] if len(inputs[0].shape) == 2 else None
        self._tensor_mode = len(inputs) == 1 and not (isinstance(width, int) and width == 1)
        if self._tensor_mode:
            node = inputs[0]
            if node.type == _STRING_TYPE:
                raise ModelLoadError("a single string tensor input is not supported")
            if not isinstance(width, int):
                if feature_names is None:
                    raise ConfigurationError(
                        f"input {node.name!r} has no fixed width; pass feature_names="
                    )
                width = len(feature_names)
            names = feature_names or [f"x{i}" for i in range(width)]
            if len(names) != width:
                raise ConfigurationError(
                    f"feature_names has {len(names)} names but input {node.name!r} has "
                    f"{width} columns"
                )
            self._feature_names = [str(n) for n in names]
            self._input_name = node.name
            self._input_dtype = _NUMERIC_TYPES[node.type]
            self._feature_kinds = dict.fromkeys(self._feature_names, "numeric")
            self._column_dtypes: dict[str, Any] = {}
        else:
            self._feature_names = [node.name for node in inputs]
            self._column_dtypes = {
                node.name: (object if node.type == _STRING_TYPE else _NUMERIC_TYPES[node.type])
                for node in inputs
            }
            kinds: dict[str, FeatureKind] = {
                name: ("categorical" if dt is object else "numeric")
                for name, dt in self._column_dtypes.items()
            }
            self._feature_kinds = kinds
            self._known_categories = {
                k: sorted(set(v)) for k, v in categories.items() if kinds.get(k) == "categorical"
            }

    def _setup_output(self, output: str | None, class_labels: dict[str, list[str]]) -> None:
        outs = self._session.get_outputs()
        names = [o.name for o in outs]
        by_name = {o.name: o for o in outs}
        prob = [o.name for o in outs if "prob" in o.name.lower()]
        scores = [o.name for o in outs if "label" not in o.name.lower()]
        if output is None:
            chosen = prob[0] if prob else (scores[0] if len(scores) == 1 else None)
            if chosen is None:
                raise ConfigurationError(f"choose an output with output=: one of {names}")
        elif output == "probability":
            if not prob:
                raise ConfigurationError(f"the graph has no probability output; outputs: {names}")
            chosen = prob[0]
        elif output == "margin":
            hits = [n for n in names if any(h in n.lower() for h in _MARGIN_HINTS)]
            if not hits:
                raise ConfigurationError(
                    f"the graph has no margin / raw-score output; outputs: {names}"
                )
            chosen = hits[0]
        elif output in by_name:
            chosen = output
        else:
            raise ConfigurationError(f"unknown output {output!r}; outputs: {names}")
        self._output = chosen
        node = by_name[chosen]
        self._zipmap = node.type.startswith("seq(map")
        labels = next(iter(class_labels.values()), None)
        width: Any = node.shape[1] if len(node.shape) == 2 else 1
        if self._zipmap or (labels and width == len(labels)):
            if labels is None:
                # ZipMap without a readable classifier node: learn the keys on first use.
                probe = self._run_raw(self._example_feed())
                labels = [str(k) for k in probe[0]]
            self._output_names = [f"{chosen}[{label}]" for label in labels]
        elif isinstance(width, int):
            self._output_names = (
                [chosen] if width == 1 else [f"{chosen}[{j}]" for j in range(width)]
            )
        else:
            probe = np.asarray(self._run_raw(self._example_feed()))
            k = 1 if probe.ndim == 1 else probe.shape[1]
            self._output_names = [chosen] if k == 1 else [f"{chosen}[{j}]" for j in range(k)]

    def _example_feed(self) -> dict[str, np.ndarray]:
        if self._tensor_mode:
            return {self._input_name: np.zeros((1, len(self._feature_names)), self._input_dtype)}
        feed = {}
        for name, dt in self._column_dtypes.items():
            if dt is object:
                cats = self._known_categories.get(name) or [""]
                feed[name] = np.array([[cats[0]]], dtype=object)
            else:
                feed[name] = np.zeros((1, 1), dtype=dt)
        return feed

    # -- evaluation --------------------------------------------------------------------------
    def input_limits(self) -> dict[str, tuple[float, float]]:
        """The finite range each numeric input column can hold in the graph's element type.

        float32 columns hold at most about ±3.4e38, int32/int64 columns their integer range;
        float64 columns are not listed (any finite float64 fits).
        """
        dtypes = (
            dict.fromkeys(self._feature_names, self._input_dtype)
            if self._tensor_mode
            else self._column_dtypes
        )
        limits: dict[str, tuple[float, float]] = {}
        for name, dt in dtypes.items():
            if dt is object or dt is np.float64:
                continue
            info = np.finfo(dt) if np.issubdtype(dt, np.floating) else np.iinfo(dt)
            limits[name] = (float(info.min), float(info.max))
        return limits

    def check_input_range(self, X: pd.DataFrame | np.ndarray, what: str = "X") -> None:
        """Refuse values the graph's input type cannot hold, naming the column and row.

        Casting 1e308 to float32 gives inf (with only a RuntimeWarning), so the model would
        score a row the record does not hold; casting 1e20 to int64 gives garbage.

        Raises
        ------
        InvalidValueError
            For the first value outside :meth:`input_limits` (NaN and inf are left to the
            tabular checks, which name them as such).
        """
        limits = self.input_limits()
        if not limits:
            return
        if not isinstance(X, pd.DataFrame):
            a = np.asarray(X)
            if _fits(a.dtype, self._dtype_of(self._feature_names[0])):
                return  # e.g. the explainers' rows, built in the input's own type
            low, high = next(iter(limits.values()))  # one tensor: one type
            self._refuse_out_of_range(a, list(self._feature_names), low, high, what)
            return
        for name, (low, high) in limits.items():
            if name in X.columns and not _fits(X[name].dtype, self._dtype_of(name)):
                self._refuse_out_of_range(X[[name]].to_numpy(), [name], low, high, what)

    def _dtype_of(self, name: str) -> Any:
        return self._input_dtype if self._tensor_mode else self._column_dtypes[name]

    def _refuse_out_of_range(
        self, a: np.ndarray, names: list[str], low: float, high: float, what: str
    ) -> None:
        if a.dtype == object:
            a = pd.DataFrame(a).apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        values = np.asarray(a, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out = np.isfinite(values) & ((values < low) | (values > high))
        if out.any():
            row, j = (int(k) for k in np.argwhere(out)[0])
            name = names[j]
            kind = self._dtype_of(name)
            raise InvalidValueError(
                f"column {name!r} of {what} holds {float(values[row, j])!r} at row {row}, "
                f"outside the finite range of the model's {np.dtype(kind).name} input "
                f"({low:.7g} to {high:.7g})"
            )

    def _conform(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        data = super()._conform(X)
        # Checked before any cast: numpy would turn an out-of-range value into inf (float32)
        # or an arbitrary integer with a bare RuntimeWarning, and the model would score a row
        # that is not the one given.
        self.check_input_range(data)
        return data

    def _run_raw(self, feed: dict[str, np.ndarray]) -> Any:
        return self._session.run([self._output], feed)[0]

    def _feed(self, X: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        if self._tensor_mode:
            arr = (
                X.to_numpy(dtype=self._input_dtype)
                if isinstance(X, pd.DataFrame)
                else (np.asarray(X, dtype=self._input_dtype))
            )
            return {self._input_name: np.ascontiguousarray(arr)}
        feed = {}
        for j, (name, dt) in enumerate(self._column_dtypes.items()):
            col = X[name].to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)[:, j]
            if dt is object:
                values = col.astype(str).astype(object) if col.dtype != object else col
            elif np.issubdtype(dt, np.integer):
                as_float = np.asarray(col, dtype=np.float64)
                if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
                    bad = int(
                        np.flatnonzero(~np.isfinite(as_float) | (as_float != np.round(as_float)))[0]
                    )
                    raise InvalidValueError(
                        f"column {name!r} is an integer input of the model but row {bad} "
                        f"holds {col[bad]!r}"
                    )
                values = as_float.astype(dt)
            else:
                values = np.asarray(col, dtype=dt)
            feed[name] = values.reshape(-1, 1)
        return feed

    def _predict_chunk(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        raw = self._run_raw(self._feed(X))
        if self._zipmap:
            keys = list(raw[0].keys()) if raw else []
            return np.array([[row[k] for k in keys] for row in raw], dtype=np.float64)
        out = np.asarray(raw, dtype=np.float64)
        return out.reshape(len(out), -1)

    @property
    def input_dtype(self) -> np.dtype:
        """The type rows can be built in without changing what the graph sees."""
        if self._tensor_mode:
            return np.dtype(self._input_dtype)
        return np.dtype(np.float64)

    @property
    def model_bytes(self) -> bytes:
        """The ONNX bytes this model was built from (e.g. to ship to workers once)."""
        return self._bytes

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "format": "onnx",
            "sha256": self.identity,
            "output": self._output,
            "input_mode": "tensor" if self._tensor_mode else "columns",
            "intra_op_num_threads": self.intra_op_num_threads,
            "parity": self.parity,
        }
