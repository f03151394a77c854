"""The one result type every explainer returns, and its versioned JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import SerializationError

FORMAT = "surrogate-xai/explanation"
VERSION = 1


def _frozen(a: Any, dtype: Any = np.float64) -> np.ndarray:
    arr = np.array(a, dtype=dtype)  # a private copy, so freezing it cannot affect the caller
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Diagnostics:
    """How the numbers were obtained, per explained row.

    Attributes
    ----------
    model_evaluations : int array of shape (n_samples,)
        Model rows evaluated for each explained row (known rows that were skipped excluded).
    background_evaluations : int
        Rows evaluated once at fit time to predict the background.
    converged : bool array of shape (n_samples,)
        True when the values are exact or every standard error fell below ``tol``; False for
        sampled values without a tolerance, or when the budget ran out first.
    efficiency_gap : array of shape (n_samples, n_outputs)
        ``|Σ values − (prediction − base value)|``.
    predictions : array of shape (n_samples, n_outputs)
        The model's output for each explained row.
    blocks : int array of shape (n_samples,)
        Sampling blocks used (background row × coalition set).
    exact : bool
        Whether the values are the exact game values (no sampling).
    extra : dict
        Method-specific figures (e.g. a surrogate's R²).
    """

    model_evaluations: np.ndarray
    background_evaluations: int
    converged: np.ndarray
    efficiency_gap: np.ndarray
    predictions: np.ndarray
    blocks: np.ndarray
    exact: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_evaluations", _frozen(self.model_evaluations, np.int64))
        object.__setattr__(self, "converged", _frozen(self.converged, bool))
        object.__setattr__(self, "efficiency_gap", _frozen(self.efficiency_gap))
        object.__setattr__(self, "predictions", _frozen(self.predictions))
        object.__setattr__(self, "blocks", _frozen(self.blocks, np.int64))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_evaluations": self.model_evaluations.tolist(),
            "background_evaluations": self.background_evaluations,
            "converged": self.converged.tolist(),
            "efficiency_gap": self.efficiency_gap.tolist(),
            "predictions": self.predictions.tolist(),
            "blocks": self.blocks.tolist(),
            "exact": self.exact,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Diagnostics:
        return cls(
            model_evaluations=np.asarray(d["model_evaluations"], dtype=np.int64),
            background_evaluations=int(d["background_evaluations"]),
            converged=np.asarray(d["converged"], dtype=bool),
            efficiency_gap=np.asarray(d["efficiency_gap"], dtype=np.float64),
            predictions=np.asarray(d["predictions"], dtype=np.float64),
            blocks=np.asarray(d["blocks"], dtype=np.int64),
            exact=bool(d["exact"]),
            extra=dict(d.get("extra", {})),
        )


@dataclass(frozen=True, eq=False)
class Provenance:
    """Everything needed to reproduce the numbers.

    ``parameters`` holds every parameter of the method including defaults; ``seed`` the integer
    seed actually used (drawn and recorded when the user gave none).
    """

    method: str
    parameters: dict[str, Any]
    seed: int | None
    model: dict[str, Any]
    background: dict[str, Any]
    feature_groups: dict[str, list[str]]
    design: dict[str, Any]
    versions: dict[str, str]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "parameters": self.parameters,
            # Seeds can exceed 2**53; keep them exact in JSON.
            "seed": None if self.seed is None else str(self.seed),
            "model": self.model,
            "background": self.background,
            "feature_groups": self.feature_groups,
            "design": self.design,
            "versions": self.versions,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        return cls(
            method=d["method"],
            parameters=dict(d["parameters"]),
            seed=None if d["seed"] is None else int(d["seed"]),
            model=dict(d["model"]),
            background=dict(d["background"]),
            feature_groups={k: list(v) for k, v in d["feature_groups"].items()},
            design=dict(d["design"]),
            versions=dict(d["versions"]),
            created_at=d["created_at"],
        )


def data_to_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns: list[dict[str, Any]] = []
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            values = [None if np.isnan(v) else v for v in s.to_numpy(dtype=np.float64).tolist()]
            integer = pd.api.types.is_integer_dtype(s)
            columns.append(
                {"name": str(col), "kind": "integer" if integer else "number", "values": values}
            )
        else:
            columns.append({"name": str(col), "kind": "string", "values": s.astype(str).tolist()})
    return columns


def data_from_json(columns: list[dict[str, Any]]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for c in columns:
        if c["kind"] == "string":
            data[c["name"]] = pd.Series(c["values"], dtype=object)
        else:
            arr = np.array([np.nan if v is None else v for v in c["values"]], dtype=np.float64)
            if c["kind"] == "integer" and not np.isnan(arr).any():
                data[c["name"]] = arr.astype(np.int64)
            else:
                data[c["name"]] = arr
    return pd.DataFrame(data)


@dataclass(frozen=True, eq=False)
class Explanation:
    """Attributions for ``n_samples`` rows over ``n_features`` units and ``n_outputs`` outputs.

    Attributes
    ----------
    values : array of shape (n_samples, n_features, n_outputs)
        Attribution of each feature (or feature group) to each output.
    base_values : array of shape (n_samples, n_outputs)
        The reference value: values of a row sum to ``prediction − base_values``.
    stderr : array of shape (n_samples, n_features, n_outputs)
        Standard error of each value (0 where it is exact).
    data : DataFrame of shape (n_samples, n_input_columns)
        The explained rows as received, in the model's columns.
    feature_names : list of str
        Attribution units: column names, or group names where features were grouped.
    output_names : list of str
    diagnostics : Diagnostics
    provenance : Provenance
    """

    values: np.ndarray
    base_values: np.ndarray
    stderr: np.ndarray
    data: pd.DataFrame
    feature_names: list[str]
    output_names: list[str]
    diagnostics: Diagnostics
    provenance: Provenance

    def __post_init__(self) -> None:
        values = _frozen(self.values)
        if values.ndim != 3:
            raise ValueError(f"values must have 3 dimensions, got shape {values.shape}")
        n, d, k = values.shape
        base = _frozen(self.base_values)
        stderr = _frozen(self.stderr)
        if base.shape != (n, k) or stderr.shape != values.shape:
            raise ValueError(
                f"inconsistent shapes: values {values.shape}, base_values {base.shape}, "
                f"stderr {stderr.shape}"
            )
        if len(self.feature_names) != d or len(self.output_names) != k or len(self.data) != n:
            raise ValueError("feature_names, output_names or data do not match values' shape")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "base_values", base)
        object.__setattr__(self, "stderr", stderr)
        object.__setattr__(self, "data", self.data.reset_index(drop=True).copy())
        object.__setattr__(self, "feature_names", list(self.feature_names))
        object.__setattr__(self, "output_names", list(self.output_names))

    @property
    def shape(self) -> tuple[int, int, int]:
        n, d, k = self.values.shape
        return n, d, k

    def __len__(self) -> int:
        return self.values.shape[0]

    # -- views -------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (row, feature, output) with value and standard error."""
        n, d, k = self.values.shape
        return pd.DataFrame(
            {
                "row": np.repeat(np.arange(n), d * k),
                "feature": np.tile(np.repeat(np.asarray(self.feature_names, dtype=object), k), n),
                "output": np.tile(np.asarray(self.output_names, dtype=object), n * d),
                "value": self.values.ravel(),
                "stderr": self.stderr.ravel(),
                "base_value": np.repeat(self.base_values, d, axis=0).ravel(),
            }
        )

    def to_shap(self, output: int | str | None = None) -> Any:
        """A ``shap.Explanation`` so shap's plots work on it.

        With a single output (or ``output=`` given) values are ``(n_samples, n_features)``.
        """
        import shap

        k = len(self.output_names)
        if output is None and k == 1:
            output = 0
        if isinstance(output, str):
            output = self.output_names.index(output)
        groups = self.provenance.feature_groups
        numeric = np.full((len(self), len(self.feature_names)), np.nan)
        display = np.empty((len(self), len(self.feature_names)), dtype=object)
        for j, name in enumerate(self.feature_names):
            cols = groups.get(name, [name])
            if len(cols) == 1 and cols[0] in self.data.columns:
                s = self.data[cols[0]]
                display[:, j] = s.astype(str).to_numpy()
                if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                    numeric[:, j] = s.to_numpy(dtype=np.float64)
        if output is None:
            return shap.Explanation(
                values=np.array(self.values),
                base_values=np.array(self.base_values),
                data=numeric,
                display_data=display,
                feature_names=list(self.feature_names),
                output_names=list(self.output_names),
            )
        return shap.Explanation(
            values=np.array(self.values[:, :, output]),
            base_values=np.array(self.base_values[:, output]),
            data=numeric,
            display_data=display,
            feature_names=list(self.feature_names),
        )

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "feature_names": self.feature_names,
            "output_names": self.output_names,
            "values": self.values.tolist(),
            "base_values": self.base_values.tolist(),
            # NaN (no standard error available, e.g. the shap backend) is written as null.
            "stderr": np.where(np.isnan(self.stderr), np.asarray(None), self.stderr).tolist(),
            "data": data_to_json(self.data),
            "diagnostics": self.diagnostics.to_dict(),
            "provenance": self.provenance.to_dict(),
        }

    def to_json(self, **kwargs: Any) -> str:
        """JSON text; floats are written so that they read back bit-identically."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Explanation:
        if d.get("format") != FORMAT:
            raise SerializationError(
                f"not a surrogate-xai explanation (format={d.get('format')!r})"
            )
        if d.get("version") != VERSION:
            raise SerializationError(
                f"explanation format version {d.get('version')!r} is not supported "
                f"(this release reads version {VERSION})"
            )
        try:
            n_out = len(d["output_names"])
            n_feat = len(d["feature_names"])
            values = np.asarray(d["values"], dtype=np.float64).reshape(-1, n_feat, n_out)
            return cls(
                values=values,
                base_values=np.asarray(d["base_values"], dtype=np.float64).reshape(-1, n_out),
                stderr=np.asarray(d["stderr"], dtype=np.float64).reshape(values.shape),
                data=data_from_json(d["data"]),
                feature_names=list(d["feature_names"]),
                output_names=list(d["output_names"]),
                diagnostics=Diagnostics.from_dict(d["diagnostics"]),
                provenance=Provenance.from_dict(d["provenance"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError(f"malformed explanation: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SerializationError(f"not valid JSON: {exc}") from exc
        return cls.from_dict(d)
