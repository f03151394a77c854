"""The one boundary between explainers and models: ``predict(X) -> (n_samples, n_outputs)``.

Everything the explainers know about a model is in :class:`Model`: the names of its input
columns and outputs, what kind each column is, an identity for provenance, and a counter of
rows evaluated so that budgets can be checked. :class:`BaseModel` implements the parts every
model shares (input checks, chunking under a memory cap, output checks, counting);
:class:`FunctionModel` wraps any Python callable. ``ONNXModel`` lives in ``onnx_model``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from .exceptions import (
    ConfigurationError,
    InputError,
    MissingColumnError,
    ModelEvaluationError,
    NonFiniteOutputError,
    OutputShapeError,
    ResourceLimitError,
)

if TYPE_CHECKING:
    from .parity import ParityReport

FeatureKind = Literal["numeric", "categorical"]

#: Default cap on the memory one model call may use for its input rows.
DEFAULT_MEMORY_LIMIT = 256 * 1024**2


@runtime_checkable
class Model(Protocol):
    """What an explainer needs from a model.

    ``predict`` takes a DataFrame with (at least) the columns ``feature_names`` or a 2-D array
    whose columns are in that order, and returns a float64 array of shape
    ``(n_samples, n_outputs)``.

    Besides, a model declares what callers may rely on (:class:`BaseModel` gives the
    defaults): ``input_dtype``, the type rows can be built in without changing what the
    model sees; ``input_limits()``, the finite range of each numeric column it can take; and
    ``parity_report``, the evidence that an export equals its original, if there is any.
    """

    @property
    def feature_names(self) -> list[str]: ...

    @property
    def output_names(self) -> list[str]: ...

    @property
    def identity(self) -> str: ...

    @property
    def n_evaluations(self) -> int: ...

    @property
    def feature_kinds(self) -> dict[str, FeatureKind] | None: ...

    @property
    def known_categories(self) -> dict[str, list[str]]: ...

    @property
    def allow_missing(self) -> bool: ...

    @property
    def input_dtype(self) -> np.dtype: ...

    def input_limits(self) -> dict[str, tuple[float, float]]: ...

    @property
    def parity_report(self) -> ParityReport | None: ...

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


class BaseModel:
    """Shared machinery: input checks, chunked evaluation, output checks and counting.

    Subclasses set ``_feature_names`` and ``_output_names`` and implement ``_predict_chunk``.
    """

    _feature_names: list[str]
    #: None until inferred from the first prediction (FunctionModel without output_names).
    _output_names: list[str] | None
    _identity: str
    _feature_kinds: dict[str, FeatureKind] | None = None
    _known_categories: dict[str, list[str]]
    _allow_missing: bool = False
    _memory_limit: int = DEFAULT_MEMORY_LIMIT
    _parity_report: ParityReport | None = None
    #: ``(rows, outputs)`` of the first call when the outputs were inferred from it.
    _outputs_inferred: tuple[int, int] | None = None

    def __init__(self) -> None:
        self._count = 0
        self._count_lock = threading.Lock()
        self._known_categories = {}

    # -- pickling (shipping a model to Dask workers) -----------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # A lock cannot be pickled; the copy gets its own (a counter is per object anyway).
        state = self.__dict__.copy()
        state.pop("_count_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._count_lock = threading.Lock()

    # -- the protocol ------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return list(self._feature_names)

    @property
    def output_names(self) -> list[str]:
        if self._output_names is None:
            # Not inferred yet (no prediction so far): the one-output default. Raising here
            # would make the protocol check (``isinstance(model, Model)``) itself fail.
            return ["output"]
        return list(self._output_names)

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def n_evaluations(self) -> int:
        """Rows predicted so far by this model object (all calls, all threads)."""
        return self._count

    @property
    def feature_kinds(self) -> dict[str, FeatureKind] | None:
        return None if self._feature_kinds is None else dict(self._feature_kinds)

    @property
    def known_categories(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._known_categories.items()}

    @property
    def allow_missing(self) -> bool:
        return self._allow_missing

    # -- declared capabilities (defaults; models that know better override them) ------------
    @property
    def input_dtype(self) -> np.dtype:
        """The type rows can be built in without changing what the model sees."""
        return np.dtype(np.float64)

    def input_limits(self) -> dict[str, tuple[float, float]]:
        """The finite range of each numeric column the model can take; unlisted: any."""
        return {}

    @property
    def parity_report(self) -> ParityReport | None:
        """Evidence that an exported model equals its original, if there is any."""
        return self._parity_report

    @property
    def parity(self) -> dict[str, Any] | None:
        """:attr:`parity_report` in its JSON form, as provenance records it."""
        report = self._parity_report
        return None if report is None else report.to_dict()

    def describe(self) -> dict[str, Any]:
        """JSON-ready description of the model for provenance."""
        out = {
            "identity": self.identity,
            "kind": type(self).__name__,
            "feature_names": self.feature_names,
            "output_names": self.output_names,
        }
        if self._outputs_inferred is not None:
            rows, k = self._outputs_inferred
            out["outputs_inferred"] = (
                f"{k} output(s), from the shape of the first prediction ({rows} rows, counted "
                "in the model's evaluations)"
            )
        return out

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predict rows of ``X``; returns float64 of shape ``(n_samples, n_outputs)``."""
        data = self._conform(X)
        n = len(data)
        if n == 0:
            return np.empty((0, len(self.output_names)), dtype=np.float64)
        chunk = self._chunk_rows()
        parts = []
        for start in range(0, n, chunk):
            part = (
                data.iloc[start : start + chunk]
                if isinstance(data, pd.DataFrame)
                else data[start : start + chunk]
            )
            parts.append(self._checked_chunk(part, start))
        with self._count_lock:
            self._count += n
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    # -- helpers -----------------------------------------------------------------------------
    def _declare_columns(
        self,
        feature_names: list[str],
        output_names: Sequence[str] | None,
        categories: Mapping[str, Sequence[str]] | None,
        allow_missing: bool,
        memory_limit: int,
        *,
        infer_outputs: bool = False,
    ) -> None:
        """Columns, outputs and value rules declared by the user (for models without a graph
        to read them from): columns with declared categories are categorical. Without
        ``output_names``, the outputs are ``["output"]``, or with ``infer_outputs`` whatever
        the first prediction returns (see :meth:`_infer_outputs`)."""
        self._feature_names = list(feature_names)
        if output_names is None and infer_outputs:
            self._output_names = None
        else:
            self._output_names = [str(c) for c in (output_names or ["output"])]
        self._known_categories = {
            str(k): [str(v) for v in vs] for k, vs in (categories or {}).items()
        }
        unknown = [c for c in self._known_categories if c not in self._feature_names]
        if unknown:
            raise ConfigurationError(f"categories given for unknown column(s) {unknown}")
        self._feature_kinds = (
            {
                c: ("categorical" if c in self._known_categories else "numeric")
                for c in self._feature_names
            }
            if self._known_categories
            else None
        )
        self._allow_missing = allow_missing
        self._memory_limit = memory_limit

    def _chunk_rows(self) -> int:
        # 8 bytes per value is an upper bound of what a chunk costs on the way in; the model's
        # own intermediates are the caller's to budget through ``memory_limit``.
        per_row = 8 * max(1, len(self._feature_names))
        return max(1, self._memory_limit // per_row)

    def _conform(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self._feature_names if c not in X.columns]
            if missing:
                raise MissingColumnError(missing, [str(c) for c in X.columns])
            if list(X.columns) == self._feature_names:
                return X
            return X.loc[:, self._feature_names]
        arr = np.asarray(X)
        if arr.ndim == 1 and len(self._feature_names) == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != len(self._feature_names):
            raise InputError(
                f"expected a 2-D array with {len(self._feature_names)} columns "
                f"({', '.join(self._feature_names[:5])}{', ...' if len(self._feature_names) > 5 else ''}), "
                f"got shape {arr.shape}"
            )
        return arr

    def _checked_chunk(self, part: pd.DataFrame | np.ndarray, offset: int) -> np.ndarray:
        try:
            out = self._predict_chunk(part)
        except (InputError, ModelEvaluationError, OutputShapeError, ResourceLimitError):
            raise
        except Exception as exc:
            raise ModelEvaluationError(
                f"the model raised {type(exc).__name__} while predicting: {exc}"
            ) from exc
        out = np.asarray(out, dtype=np.float64)
        if self._output_names is None:
            self._infer_outputs(out)
        if out.ndim == 1:
            out = out.reshape(-1, 1)
        k = len(self.output_names)
        if out.ndim != 2 or out.shape != (len(part), k):
            raise OutputShapeError(
                f"the model returned shape {out.shape} for {len(part)} rows; "
                f"expected ({len(part)}, {k})"
            )
        bad = ~np.isfinite(out)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise NonFiniteOutputError(
                f"the model returned {out[row, col]} for output {self.output_names[col]!r} "
                f"at input row {offset + int(row)}"
            )
        return out

    def _infer_outputs(self, out: np.ndarray) -> None:
        """Outputs named from the shape of the first prediction: ``(n,)`` or ``(n, 1)`` is
        ``["output"]``, ``(n, k)`` is ``output[0] .. output[k-1]``. The rows of that call are
        the probe: they are real predictions, counted like any other."""
        if out.ndim not in (1, 2):
            raise OutputShapeError(
                f"the model returned shape {out.shape}; expected (n_samples,) or "
                "(n_samples, n_outputs)"
            )
        k = 1 if out.ndim == 1 else out.shape[1]
        with self._count_lock:
            if self._output_names is None:
                self._output_names = ["output"] if k == 1 else [f"output[{j}]" for j in range(k)]
                self._outputs_inferred = (len(out), k)

    def _predict_chunk(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        raise NotImplementedError


class FunctionModel(BaseModel):
    """Any Python callable as a model.

    Parameters
    ----------
    fn : callable
        Takes a DataFrame (``input_type="frame"``) or a 2-D array (``input_type="array"``)
        of shape ``(n_samples, n_features)`` and returns scores of shape ``(n_samples,)`` or
        ``(n_samples, n_outputs)``.
    feature_names : sequence of str
        The input columns, in the order an array input uses.
    output_names : sequence of str, optional
        Names of the outputs. Without them the outputs are inferred from the first
        prediction's shape (``output`` for one, ``output[0], output[1], ...`` for several),
        and ``describe()`` says so; that first call is the probe, so it costs no extra rows
        (an explainer's ``fit`` makes it when it predicts the background). Before it,
        ``output_names`` is ``["output"]``.
    identity : str, optional
        A stable identifier for provenance (e.g. a model registry version). A callable has no
        byte content to hash, so the default names the function, which is *not* content-based.
    input_type : {"frame", "array"}
        What ``fn`` receives.
    categories : mapping of str to sequence of str, optional
        Categories the model knows for its categorical columns; values outside them are
        rejected before the model is called.
    allow_missing : bool
        Whether the model accepts NaN in numeric columns.
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        feature_names: Sequence[str],
        output_names: Sequence[str] | None = None,
        *,
        identity: str | None = None,
        input_type: Literal["frame", "array"] = "frame",
        categories: Mapping[str, Sequence[str]] | None = None,
        allow_missing: bool = False,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        super().__init__()
        if not callable(fn):
            raise ConfigurationError(f"fn must be callable, got {type(fn).__name__}")
        if input_type not in ("frame", "array"):
            raise ConfigurationError(f"input_type must be 'frame' or 'array', got {input_type!r}")
        names = [str(c) for c in feature_names]
        if len(set(names)) != len(names):
            raise ConfigurationError("feature_names contains duplicates")
        self.fn = fn
        self.input_type = input_type
        self._identity = identity or (
            f"function:{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        )
        self._declare_columns(
            names, output_names, categories, allow_missing, memory_limit, infer_outputs=True
        )

    def _predict_chunk(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if self.input_type == "frame":
            arg: Any = (
                X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=self._feature_names)
            )
        else:
            arg = X.to_numpy() if isinstance(X, pd.DataFrame) else X
        return np.asarray(self.fn(arg))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "input_type": self.input_type}
