"""ONNX models through onnxruntime, as they come from any converter.

The graph's inputs become named flat columns (:mod:`~surrogate_xai.onnx_graph`): one float
tensor ``(batch, n_features)`` ("tensor mode"), one input per raw column with float, int64 or
string elements ("column mode", skl2onnx over a DataFrame), several multi-column inputs, or a
sequence ``(batch, T, F)`` / image ``(batch, C, H, W)`` input, flattened in C order and
reshaped for the graph on every call. Classifier graphs usually carry a label output plus
probabilities, either as a tensor or as a ZipMap (a list of ``{class: probability}`` dicts);
``output=`` chooses which output is explained, and the model records why it chose the one
it did. Files written by our exporters describe themselves (:mod:`~surrogate_xai.onnx_metadata`).

A model file is executable input. Declared shapes are checked against ``memory_limit``
before anything runs and before each call; an output larger than declared is refused; a call
can be bounded in time with ``timeout=``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .exceptions import (
    ConfigurationError,
    ModelEvaluationError,
    ModelLoadError,
    OutputShapeError,
    ResourceLimitError,
    SerializationError,
)
from .model import DEFAULT_MEMORY_LIMIT, BaseModel, FeatureKind
from .onnx_cast import UnfitValue, numbers_of
from .onnx_feed import InputFeed
from .onnx_graph import (
    OutputChoice,
    OutputSpec,
    choose_output,
    graph_facts,
    read_inputs,
    static_sizes,
)
from .onnx_metadata import ExportMetadata, embed_metadata, read_metadata
from .onnx_session import new_session, shared_session, shared_session_count  # noqa: F401 - re-exported
from .parity import ParityReport

logger = logging.getLogger(__name__)

NamesSource = Literal["given", "metadata", "graph"]
# Bytes per value in the budget: rows are built and outputs returned as (at most) float64.
_BYTES = 8


def _load_bytes(source: str | os.PathLike[str] | bytes) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray):
        return bytes(source), "<bytes>"
    path = Path(source)
    if not path.is_file():
        raise ModelLoadError(f"no ONNX file at {str(path)!r}")
    return path.read_bytes(), str(path)


def _declared_widths(proto: Any) -> dict[str, int]:
    """Values per row of each graph output whose declared axes after the first are fixed."""
    widths = {}
    for out in proto.graph.output:
        dims = out.type.tensor_type.shape.dim if out.type.HasField("tensor_type") else []
        rest = list(dims)[1:]
        if rest and all(d.HasField("dim_value") for d in rest):
            widths[out.name] = math.prod(d.dim_value for d in rest)
    return widths


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1024**2:.3g} MB"


class ONNXModel(BaseModel):
    """An ONNX graph evaluated with onnxruntime.

    Parameters
    ----------
    source : path or bytes
        The ``.onnx`` file or its bytes. ``identity`` is the sha256 of these bytes.
    output : str or int, optional
        Which output to explain: ``"probability"`` (class probabilities, tensor or ZipMap),
        ``"margin"`` (an output whose name says it is a raw score), an output's exact name,
        or its index. By default the output the file's metadata names, else probabilities
        (an output named so, a ZipMap, or a float output as wide as the classifier's
        classes), else the only float output; integer labels are skipped. Which one was
        chosen and why is in :attr:`output_reason` and the provenance.
    feature_names : sequence of str, optional
        Names of the flat columns, all inputs' values in order (default: the names the
        file's metadata records, else ``x0, x1, ...`` for one tensor, the input names for
        one input per column, ``t{step}_f{j}`` for a ``(batch, T, F)`` input and
        ``c{k}_p{row}_{col}`` for a ``(batch, C, H, W)`` one).
    intra_op_num_threads : int
        onnxruntime threads per call. One is fastest for many mid-size batches on small
        machines; two pools fighting over two cores are slower than one. It is part of the
        model's identity for reproducibility: with several threads some kernels (tree
        ensembles) add partial sums in a different order, which moves float32 outputs in
        the last bits. Parallelise over rows with the explainers' ``n_jobs`` instead.
    memory_limit : int
        Bytes of input rows and outputs per onnxruntime call (8 bytes a value); larger calls
        are evaluated in chunks. A graph that needs more for a single row (or for its frozen
        batch) is refused at load, and a call whose output comes back larger is refused.
    allow_missing : bool, optional
        Whether NaN may be passed in numeric columns (e.g. the graph imputes). Default: as the
        file's metadata records, else False.
    timeout : float, optional
        Seconds one onnxruntime call may run before it is stopped (``ResourceLimitError``).
        A crafted graph can loop or expand for a long time; this bounds it.
    parity : ParityReport, optional
        Evidence that the graph equals the model it was exported from, measured by the
        caller (the adapters' ``to_onnx``); default the report in the file's metadata.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        output: str | int | None = None,
        *,
        feature_names: list[str] | None = None,
        intra_op_num_threads: int = 1,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        allow_missing: bool | None = None,
        timeout: float | None = None,
        parity: ParityReport | None = None,
    ) -> None:
        super().__init__()
        data, self.source = _load_bytes(source)
        self._bytes = data
        self._identity = hashlib.sha256(data).hexdigest()
        self.output = output
        self.intra_op_num_threads = intra_op_num_threads
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            )
        self.timeout = None if timeout is None else float(timeout)
        self._memory_limit = memory_limit

        try:
            import onnx

            proto = onnx.load_from_string(data)
            self._session = new_session(data, intra_op_num_threads)
            categories, class_labels = graph_facts(proto)
        except Exception as exc:
            raise ModelLoadError(
                f"{self.source} is not a usable ONNX model: {str(exc).splitlines()[0][:300]}"
            ) from exc
        meta = read_metadata({p.key: p.value for p in proto.metadata_props})
        self._metadata = meta
        self._allow_missing = bool(
            allow_missing if allow_missing is not None else meta.allow_missing
        )
        self._parity_report, self._parity_source = self._parity_evidence(parity, meta)

        self._setup_inputs(feature_names, categories, meta)
        self._setup_output(output, class_labels, meta, _declared_widths(proto))
        self._check_static_sizes(proto)

    @staticmethod
    def _parity_evidence(
        given: ParityReport | None, meta: ExportMetadata
    ) -> tuple[ParityReport | None, str | None]:
        if given is not None:
            if not isinstance(given, ParityReport):
                raise ConfigurationError(
                    f"parity must be a ParityReport, got {type(given).__name__}"
                )
            return given, "measured at export"
        if meta.parity is None:
            return None, None
        try:
            return ParityReport.from_dict(meta.parity), "the file's metadata (not re-measured)"
        except SerializationError as exc:
            raise ModelLoadError(f"metadata 'surrogate_xai.parity': {exc}") from None

    # -- pickling ----------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # The session is not picklable: ship the bytes, and rebuild it (once per process) on
        # the other side from those bytes, which are the model's identity.
        state = super().__getstate__()
        state.pop("_session", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._session = shared_session(self._bytes, self._identity, self.intra_op_num_threads)

    # -- construction ------------------------------------------------------------------------
    def _setup_inputs(
        self,
        feature_names: list[str] | None,
        categories: dict[tuple[str, int], list[str]],
        meta: ExportMetadata,
    ) -> None:
        nodes = self._session.get_inputs()
        slots, self._batch = read_inputs(nodes, feature_names, meta.feature_names)
        self._slots = slots
        self._inputs = InputFeed(slots)
        self._names_source: NamesSource = (
            "given" if feature_names is not None else "metadata" if meta.feature_names else "graph"
        )
        self._feature_names = self._inputs.names
        self._tensor_mode = self._inputs.tensor_mode
        self._column_dtypes = self._inputs.dtypes
        kinds: dict[str, FeatureKind] = {
            c: ("categorical" if dt is object else "numeric")
            for c, dt in self._column_dtypes.items()
        }
        self._feature_kinds = kinds
        known = {
            slot.columns[j]: cats
            for slot in slots
            for (name, j), cats in categories.items()
            if name == slot.name and j < slot.width
        }
        for col, cats in meta.categories.items():
            if col not in kinds:
                raise ModelLoadError(
                    f"the file's metadata gives categories for {col!r}, which is not a column "
                    "of the graph"
                )
            known[col] = cats
        self._known_categories = {
            k: sorted(set(v)) for k, v in known.items() if kinds.get(k) == "categorical"
        }

    def _setup_output(
        self,
        output: str | int | None,
        class_labels: dict[str, list[str]],
        meta: ExportMetadata,
        declared: dict[str, int],
    ) -> OutputChoice:
        outs = [OutputSpec.of(i, o) for i, o in enumerate(self._session.get_outputs())]
        labels = next(iter(class_labels.values()), None)
        choice = choose_output(
            outs, output, n_classes=len(labels) if labels else None, recorded=meta.output
        )
        spec = choice.spec
        self._output = spec.name
        self._output_spec = spec
        self._output_reason = choice.reason
        self._zipmap = spec.zipmap
        logger.info("explaining output %r of %s: %s", spec.name, self.source, choice.reason)
        # As written in the file: onnxruntime drops a declared axis that contradicts its own
        # inference (with a warning only), but the file's declaration is what is checked.
        width = declared.get(spec.name, spec.width)
        self._declared_width = width
        if width is not None:
            self._check_row_fits(width, f"output {spec.name!r} declares {width} values per row")
        if meta.output_names is not None and meta.output == spec.name:
            if width is not None and width != len(meta.output_names):
                raise ModelLoadError(
                    f"the file's metadata names {len(meta.output_names)} columns of output "
                    f"{spec.name!r}, which declares {width}"
                )
            self._output_names = list(meta.output_names)
        elif self._zipmap or (labels and width == len(labels)):
            if labels is None:
                # ZipMap without a readable classifier node: learn the keys on first use.
                probe = self._probe()
                labels = [str(k) for k in probe[0]]
            self._output_names = [f"{spec.name}[{label}]" for label in labels]
        elif width is not None:
            self._output_names = (
                [spec.name] if width == 1 else [f"{spec.name}[{j}]" for j in range(width)]
            )
        else:
            probe = np.asarray(self._probe())
            k = 1 if probe.ndim == 1 else math.prod(probe.shape[1:])
            if k == 0:
                raise ModelLoadError(f"output {spec.name!r} holds no values for an example row")
            self._output_names = [spec.name] if k == 1 else [f"{spec.name}[{j}]" for j in range(k)]
        return choice

    def _check_row_fits(self, values_per_row: int, what: str) -> None:
        """Refuse a graph whose smallest possible call cannot fit under ``memory_limit``."""
        rows = self._batch or 1
        need = rows * _BYTES * (len(self._feature_names) + values_per_row)
        if need > self._memory_limit:
            batch = f" (its frozen batch of {rows} rows)" if self._batch else ""
            raise ResourceLimitError(
                f"{what}: one call{batch} needs {_mb(need)}, more than memory_limit "
                f"({_mb(self._memory_limit)}); raise memory_limit= if the model is trusted"
            )

    def _check_static_sizes(self, proto: Any) -> None:
        # Shape inference sees constant Expand / Tile / ConstantOfShape bombs before they run.
        for name, values in static_sizes(proto)[:1]:
            if values * 4 > self._memory_limit:  # at least 4 bytes an element (float32)
                raise ResourceLimitError(
                    f"the graph's tensor {name!r} holds at least {values} values "
                    f"({_mb(values * 4)}) for one call, more than memory_limit "
                    f"({_mb(self._memory_limit)}); raise memory_limit= if the model is trusted"
                )

    def _example_feed(self) -> dict[str, np.ndarray]:
        rows = self._batch or 1
        feed = {}
        for slot in self._slots:
            if slot.text:
                cats = [self._known_categories.get(c, [""])[0] for c in slot.columns]
                flat = np.array([cats] * rows, dtype=object)
            else:
                flat = np.zeros((rows, slot.width), dtype=slot.dtype)
            feed[slot.name] = flat.reshape((rows, *slot.inner))
        return feed

    def _probe(self) -> Any:
        try:
            return self._run_raw(self._example_feed())
        except ResourceLimitError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"{self.source}: the graph fails on an example row, so its output "
                f"{self._output!r} cannot be read ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300]})"
            ) from exc

    # -- evaluation --------------------------------------------------------------------------
    def input_limits(self) -> dict[str, tuple[float, float]]:
        """The finite range each numeric input column can hold in the graph's element type.

        float32 columns hold at most about ±3.4e38, int32/int64 columns their integer range;
        float64 columns are not listed (any finite float64 fits).
        """
        limits: dict[str, tuple[float, float]] = {}
        for name, dt in self._column_dtypes.items():
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
                    want = np.dtype(self._column_dtypes[name])
                    if name in X.columns and want.kind != "O":
                        self._inputs.numeric_column(name, numbers_of(X[name]), want)
            else:
                self._inputs.feed(super()._conform(X))
        except UnfitValue as bad:
            raise bad.located(0, what) from None

    def _chunk_rows(self) -> int:
        # Outputs count too: a declared output of many values per row shrinks the chunks. A
        # frozen batch axis takes whole batches only.
        per_row = _BYTES * max(1, len(self._feature_names) + len(self.output_names))
        rows = max(1, self._memory_limit // per_row)
        if self._batch:
            rows = max(self._batch, rows - rows % self._batch)
        return rows

    def _checked_chunk(self, part: pd.DataFrame | np.ndarray, offset: int) -> np.ndarray:
        # Values are checked as the chunk is converted for the graph (one conversion, no
        # second pass over the rows), and the row named is counted from the start of X.
        try:
            return super()._checked_chunk(part, offset)
        except UnfitValue as bad:
            raise bad.located(offset, "X") from None

    def _run_raw(self, feed: dict[str, np.ndarray]) -> Any:
        if self.timeout is None:
            return self._session.run([self._output], feed)[0]
        import onnxruntime as ort

        options = ort.RunOptions()
        options.log_severity_level = 4  # the stop is reported as our error, not a log line
        # onnxruntime checks the flag between kernels (also inside Loop / Scan bodies).
        timer = threading.Timer(self.timeout, setattr, (options, "terminate", True))
        timer.daemon = True
        timer.start()
        try:
            return self._session.run([self._output], feed, options)[0]
        except Exception as exc:
            if options.terminate:
                raise ResourceLimitError(
                    f"output {self._output!r} took longer than timeout={self.timeout:g} s; "
                    "onnxruntime stopped the call"
                ) from exc
            raise
        finally:
            timer.cancel()

    def _outputs_of(self, raw: Any, rows: int) -> np.ndarray:
        """The raw output of one call as float64 ``(rows, k)``, checked against what the
        graph declares and against ``memory_limit``."""
        if self._zipmap:
            keys = list(raw[0].keys()) if raw else []
            return np.array([[row[k] for k in keys] for row in raw], dtype=np.float64)
        out = np.asarray(raw)
        spec = self._output_spec
        if out.dtype.kind not in "biuf":
            raise ModelEvaluationError(
                f"output {spec.name!r} holds {out.dtype.name} values, not numbers; choose a "
                "numeric output with output="
            )
        declared = self._declared_width
        if declared is not None and out.size != rows * declared:
            dims = ", ".join("N" if d is None else str(d) for d in spec.shape)
            raise OutputShapeError(
                f"output {spec.name!r} returned shape {out.shape} for {rows} rows; the graph "
                f"declares [{dims}]"
            )
        if out.size * _BYTES > self._memory_limit:
            raise ResourceLimitError(
                f"output {spec.name!r} returned {out.size} values ({_mb(out.size * _BYTES)}) "
                f"for {rows} rows, more than memory_limit ({_mb(self._memory_limit)})"
            )
        out = np.asarray(out, dtype=np.float64)
        return out.reshape(len(out), -1) if out.ndim else out.reshape(1, -1)

    def _predict_chunk(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        feed = self._inputs.feed(X)
        n = len(X)
        batch = self._batch
        if batch is None:
            return self._outputs_of(self._run_raw(feed), n)
        # A frozen batch axis: calls of exactly `batch` rows, the last one padded with copies
        # of its last row (their outputs are dropped; rows are independent).
        parts = []
        for start in range(0, n, batch):
            piece = {k: v[start : start + batch] for k, v in feed.items()}
            short = batch - min(batch, n - start)
            if short:
                piece = {
                    k: np.concatenate([v, np.repeat(v[-1:], short, axis=0)])
                    for k, v in piece.items()
                }
            parts.append(self._outputs_of(self._run_raw(piece), batch)[: batch - short])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    # -- what the model declares -------------------------------------------------------------
    @property
    def input_dtype(self) -> np.dtype:
        """The type rows can be built in without changing what the graph sees."""
        if self._tensor_mode:
            return np.dtype(self._slots[0].dtype)
        return np.dtype(np.float64)

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each graph input's shape after the batch axis, e.g. ``{"input": (1, 8, 8)}``: pass
        it to :func:`~surrogate_xai.groups.image_patches` or ``time_steps`` to group columns."""
        return {slot.name: slot.inner for slot in self._slots}

    @property
    def batch_size(self) -> int | None:
        """The batch size the graph freezes, or None for a free batch axis."""
        return self._batch

    @property
    def output_reason(self) -> str:
        """Why :attr:`output_names` come from the output they come from."""
        return self._output_reason

    @property
    def feature_names_source(self) -> NamesSource:
        """Where the column names come from: given, the file's metadata, or the graph."""
        return self._names_source

    @property
    def model_bytes(self) -> bytes:
        """The ONNX bytes this model was built from (e.g. to ship to workers once)."""
        return self._bytes

    def with_export_metadata(
        self, parity: ParityReport | None = None, *, converter: str | None = None
    ) -> ONNXModel:
        """This model as a self-describing file: the same graph with its columns, categories,
        output, output names, missing-value rule and ``parity`` in ``metadata_props``.

        A saved ``model_bytes`` then reloads with ``ONNXModel(path)`` alone and knows the
        user's columns. The identity changes (the bytes do); the computation does not.
        """
        meta = ExportMetadata(
            feature_names=self.feature_names,
            categories=self.known_categories,
            output=self._output,
            output_names=self.output_names,
            parity=None if parity is None else parity.to_dict(),
            converter=converter,
            allow_missing=self.allow_missing,
        )
        return ONNXModel(
            embed_metadata(self._bytes, meta),
            intra_op_num_threads=self.intra_op_num_threads,
            memory_limit=self._memory_limit,
            timeout=self.timeout,
            parity=parity,
        )

    def describe(self) -> dict[str, Any]:
        out = {
            **super().describe(),
            "format": "onnx",
            "sha256": self.identity,
            "output": self._output,
            "output_reason": self._output_reason,
            "input_mode": "tensor" if self._tensor_mode else "columns",
            "intra_op_num_threads": self.intra_op_num_threads,
            "parity": self.parity,
        }
        if any(slot.inner and len(slot.inner) > 1 for slot in self._slots):
            out["input_shapes"] = {k: list(v) for k, v in self.input_shapes.items()}
        if self._batch:
            out["batch_size"] = self._batch
        if self._metadata.converter:
            out["converter"] = self._metadata.converter
        if self._parity_source:
            out["parity_source"] = self._parity_source
        return out
