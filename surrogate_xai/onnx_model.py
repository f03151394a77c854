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


class _Unfit(InvalidValueError):
    """A value the model's input type cannot take, located within the rows converted.

    Internal: :meth:`located` turns it into the :class:`InvalidValueError` users see, with
    the row counted from the start of the caller's rows (a chunk may start later).
    """

    def __init__(self, column: str, row: int, value: Any, problem: str, want: np.dtype) -> None:
        super().__init__(f"column {column!r}, row {row}: {problem}")
        self.column = column
        self.row = row
        self.value = value.item() if isinstance(value, np.generic) else value
        self.problem = problem
        self.want = want

    def located(self, offset: int, what: str) -> InvalidValueError:
        name, row, value, kind = self.column, self.row + offset, self.value, self.want.name
        if self.problem == "integer":
            message = (
                f"column {name!r} is an integer input of the model but row {row} of {what} "
                f"holds {value!r}"
            )
        elif self.problem == "number":
            message = (
                f"column {name!r} of {what} holds {value!r} at row {row}, which is not a "
                f"number (the model's input is {kind})"
            )
        else:
            info = np.finfo(self.want) if self.want.kind == "f" else np.iinfo(self.want)
            message = (
                f"column {name!r} of {what} holds {value!r} at row {row}, outside the finite "
                f"range of the model's {kind} input ({float(info.min):.7g} to "
                f"{float(info.max):.7g})"
            )
        return InvalidValueError(message)


def _first(mask: np.ndarray) -> tuple[int, ...] | None:
    """The position of the first true entry (row-major), or None."""
    if not mask.any():
        return None
    return tuple(int(k) for k in np.argwhere(mask)[0])


def _cast(values: np.ndarray, want: np.dtype) -> tuple[np.ndarray, tuple[tuple[int, ...], str]]:
    """Numeric ``values`` (1-D or 2-D) in the input type ``want``, exactly as numpy casts them,
    or where the first value is that the cast would change into another number (an empty
    position when all survive).

    Over-large floats become inf in float32; integers never go through float64 (2**63 - 1
    would come out as -2**63) and floats reach an integer input only when they are whole and
    in range. NaN and inf pass into float inputs: the tabular checks name them as such.
    """
    have = values.dtype
    if have == want:
        return values, ((), "")
    if want.kind == "f":
        with np.errstate(over="ignore"):
            out = values.astype(want, order="C")
        if have.kind == "f" and have.itemsize > want.itemsize:
            inf = np.isinf(out)
            if inf.any():
                where = _first(inf & np.isfinite(values))
                if where is not None:
                    return out, (where, "range")
        return out, ((), "")
    info = np.iinfo(want)
    if have.kind == "b" or np.can_cast(have, want):
        return values.astype(want, order="C"), ((), "")
    if have.kind in "iu":
        where = _first((values < info.min) | (values > info.max))
        problem = "range"
    else:  # floats: whole numbers in [min, max + 1), both ends exact in float64
        with np.errstate(invalid="ignore"):
            broken = ~np.isfinite(values) | (values != np.trunc(values))
            outside = (values < float(info.min)) | (values >= -float(info.min))
        where = _first(broken | outside)
        problem = "integer" if where is not None and broken[where] else "range"
    if where is not None:
        return values, (where, problem)
    return values.astype(want, order="C"), ((), "")


def _cast_objects(
    col: np.ndarray, want: np.dtype
) -> tuple[np.ndarray, tuple[tuple[int, ...], str]]:
    """Like :func:`_cast` for a 1-D object column (numbers, numeric strings, None, NaN)."""
    if want.kind == "f":
        try:
            with np.errstate(over="ignore"):
                out = np.asarray(col, dtype=want)
        except (TypeError, ValueError, OverflowError):
            pass  # pd.NA, text or an integer too large for a float: sorted out below
        else:
            inf = np.flatnonzero(np.isinf(out))
            if len(inf):
                finite = np.isfinite(np.asarray(col[inf], dtype=np.float64))
                if finite.any():
                    return out, ((int(inf[finite][0]),), "range")
            return out, ((), "")
    numbers = pd.to_numeric(pd.Series(col, copy=False), errors="coerce")
    where = _first(numbers.isna().to_numpy() & ~pd.isna(col))
    if where is not None:
        value = col[where[0]]
        real = isinstance(value, int | float) and not isinstance(value, bool)
        return col, (where, "range" if real else "number")
    values = numbers.to_numpy()
    if values.dtype.kind not in "biuf":  # e.g. integers beyond uint64, kept as objects
        values = np.asarray(values, dtype=np.float64)
    return _cast(values, want)


def _cast_any(col: np.ndarray, want: np.dtype) -> tuple[np.ndarray, tuple[tuple[int, ...], str]]:
    if col.dtype.kind in "biuf":
        return _cast(col, want)
    return _cast_objects(col if col.dtype == object else col.astype(object), want)


def _numbers_of(series: pd.Series) -> np.ndarray:
    """A column's values as a numpy array: numeric extension types (Int64, Float64,
    boolean) as their numpy type, or float64 with NaN where missing; anything else
    (``str``, categorical, object) as objects."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        return series.to_numpy()
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if isinstance(numpy_dtype, np.dtype) and numpy_dtype.kind in "biuf":
        if not series.hasnans:
            return series.to_numpy(dtype=numpy_dtype)
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return series.to_numpy(dtype=object)


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
            # Positions of the numeric inputs by element type: the columns of a numeric
            # array that go to inputs of one type are converted (and checked) in one go.
            groups: dict[np.dtype, list[int]] = {}
            for j, dt in enumerate(self._column_dtypes.values()):
                if dt is not object:
                    groups.setdefault(np.dtype(dt), []).append(j)
            self._numeric_groups = list(groups.items())

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
                    f"the graph has no margin / raw-score output; outputs: {names} (the "
                    "margin of a tree ensemble: sx.TreeMarginModel(ONNXModel(path)))"
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
        score a row the record does not hold; casting 1e20 or 2.5 to int64 gives another
        number, and so does 2**63 - 1 cast through float64. ``predict`` makes the same check
        while it converts the rows for the graph; this is for checking without predicting.

        Raises
        ------
        InvalidValueError
            For the first value outside :meth:`input_limits`, a fraction or a text in an
            integer input, or a text that is not a number in a numeric input (NaN and inf
            are left to the tabular checks, which name them as such).
        """
        try:
            if isinstance(X, pd.DataFrame):
                for name in self._feature_names:
                    want = np.dtype(self._dtype_of(name))
                    if name in X.columns and want.kind != "O":
                        self._numeric_column(name, _numbers_of(X[name]), want)
            else:
                self._feed(super()._conform(X))
        except _Unfit as bad:
            raise bad.located(0, what) from None

    def _dtype_of(self, name: str) -> Any:
        return self._input_dtype if self._tensor_mode else self._column_dtypes[name]

    def _checked_chunk(self, part: pd.DataFrame | np.ndarray, offset: int) -> np.ndarray:
        # Values are checked as the chunk is converted for the graph (one conversion, no
        # second pass over the rows), and the row named is counted from the start of X.
        try:
            return super()._checked_chunk(part, offset)
        except _Unfit as bad:
            raise bad.located(offset, "X") from None

    def _run_raw(self, feed: dict[str, np.ndarray]) -> Any:
        return self._session.run([self._output], feed)[0]

    @staticmethod
    def _numeric_column(name: str, values: np.ndarray, want: np.dtype) -> np.ndarray:
        out, (where, problem) = _cast_any(values, want)
        if where:
            raise _Unfit(name, where[0], values[where[0]], problem, want)
        return out

    def _tensor(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        want = np.dtype(self._input_dtype)
        if isinstance(X, pd.DataFrame):
            types = set(X.dtypes)
            if len(types) != 1 or not all(
                isinstance(dt, np.dtype) and dt.kind in "biuf" for dt in types
            ):
                # Column by column, each from its own type: one array of mixed columns would
                # put int64 through float64, and extension or object columns need converting.
                out = np.empty((len(X), X.shape[1]), dtype=want)
                for j, name in enumerate(self._feature_names):
                    out[:, j] = self._numeric_column(name, _numbers_of(X[name]), want)
                return out
            a = X.to_numpy()  # one numeric type: no copy when the columns are one block
        else:
            a = np.asarray(X)
        if a.dtype.kind not in "biuf":
            out = np.empty(a.shape, dtype=want)
            for j, name in enumerate(self._feature_names):
                out[:, j] = self._numeric_column(name, a[:, j], want)
            return out
        out, (where, problem) = _cast(a, want)
        if where:
            row, j = where
            raise _Unfit(self._feature_names[j], row, a[row, j], problem, want)
        return np.ascontiguousarray(out)

    def _feed(self, X: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        """The graph's inputs for rows ``X``, each in its input's type.

        Raises ``_Unfit`` for a value the conversion would change (see :func:`_cast`).
        """
        if self._tensor_mode:
            return {self._input_name: self._tensor(X)}
        names = self._feature_names
        feed: dict[str, np.ndarray] = {}
        frame = X if isinstance(X, pd.DataFrame) else None
        array = np.asarray(X) if frame is None else None
        if array is not None and array.dtype.kind in "biuf":
            # A numeric array: its columns as rows of one (inputs, rows) block per type,
            # so each input's values are contiguous and checked in one call.
            for want, idx in self._numeric_groups:
                block = array.T if len(idx) == array.shape[1] else array.T[idx]
                out, (where, problem) = _cast(block, want)
                if where:
                    i, row = where
                    raise _Unfit(names[idx[i]], row, array[row, idx[i]], problem, want)
                for i, j in enumerate(idx):
                    feed[names[j]] = out[i]
        for j, (name, dt) in enumerate(self._column_dtypes.items()):
            if name in feed:
                continue
            want = np.dtype(dt)
            if frame is not None:
                col = frame[name].to_numpy() if want.kind == "O" else _numbers_of(frame[name])
            else:
                assert array is not None
                col = array[:, j]
            if want.kind == "O":
                feed[name] = col.astype(str).astype(object) if col.dtype != object else col
            else:
                feed[name] = self._numeric_column(name, col, want)
        return {name: np.ascontiguousarray(feed[name]).reshape(-1, 1) for name in names}

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
