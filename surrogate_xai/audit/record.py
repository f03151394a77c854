"""The per-decision audit record: what it holds, its canonical JSON and its hash.

A record is a JSON object (layout in ``docs/audit-record.schema.json``) that holds one explained
row completely: from it the one-row :class:`~surrogate_xai.Explanation` can be rebuilt
(:func:`explanation_from_record`), and from that the explainer can be re-run.

Canonical JSON is ``json.dumps(..., sort_keys=True, separators=(",", ":"),
ensure_ascii=True, allow_nan=False)``: floats are written as their shortest ``repr``, which
reads back to the same bits, so parsing a stored record and serialising it again gives the same
bytes. Non-finite numbers are written as ``null``. A record's hash is
``sha256(prev_hash + canonical_json(record without "hash"))``, chaining every record to the one
before it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import AuditError
from ..explanation import Diagnostics, Explanation, Provenance, data_from_json, data_to_json
from ..provenance import frame_digest
from ..reasons import DecisionReasons, reasons_mismatch

FORMAT = "surrogate-xai/audit-record"
VERSION = 1
#: ``prev_hash`` of the first record of a store.
GENESIS_HASH = "0" * 64

# Key names that must never appear in what a record says about a model or a background.
_SECRET_KEY = re.compile(r"auth|passw|secret|token|api[-_]?key|header|cookie|credential", re.I)
_URL_USERINFO = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@]+@", re.I)


def canonical_json(obj: Any) -> str:
    """The one serialisation that is hashed (ASCII, sorted keys, no whitespace)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def record_hash(record: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical JSON of the record without its "hash" field)``."""
    body = {k: v for k, v in record.items() if k != "hash"}
    payload = str(record["prev_hash"]) + canonical_json(body)
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def plain(obj: Any) -> Any:
    """A JSON-ready copy: numpy scalars and arrays as Python values, non-finite floats as None."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return plain(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    raise AuditError(f"cannot record a value of type {type(obj).__name__}: {obj!r}")


def _check_no_credentials(where: str, obj: Any, path: str = "") -> None:
    """Refuse to record anything that looks like a secret in model or background metadata."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if _SECRET_KEY.search(str(key)):
                raise AuditError(
                    f"refusing to record {where}.{path}{key}: the key looks like a credential"
                )
            _check_no_credentials(where, value, f"{path}{key}.")
    elif isinstance(obj, list):
        for value in obj:
            _check_no_credentials(where, value, path)
    elif isinstance(obj, str) and _URL_USERINFO.search(obj):
        raise AuditError(f"refusing to record {where}.{path.rstrip('.')}: a URL with user info")


def _input_columns(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A one-row frame as ``[{name, kind, value}]`` in column order (kinds as in explanations).

    Integers are kept as JSON integers (exact at any size), floats as their repr, NaN as null.
    """
    out = []
    for col, c in zip(frame.columns, data_to_json(frame), strict=True):
        value = c["values"][0]
        if c["kind"] == "integer" and value is not None:
            value = int(frame[col].iloc[0])
        out.append({"name": c["name"], "kind": c["kind"], "value": value})
    return out


def _slice_extra(extra: Mapping[str, Any], row: int, n: int) -> dict[str, Any]:
    """The row's part of ``diagnostics.extra``: per-row lists (length n) keep only ``[row]``."""
    out = {}
    for key, value in extra.items():
        if isinstance(value, list | np.ndarray) and n > 1 and len(value) == n:
            out[key] = plain([value[row]])
        else:
            out[key] = plain(value)
    return out


def _warnings(explanation: Explanation, row: int, reasons: DecisionReasons | None) -> list[str]:
    d, p = explanation.diagnostics, explanation.provenance
    out = []
    if not d.exact:
        out.append("sampled rather than exact: values are estimates with standard errors")
    tol = p.parameters.get("tol")
    if tol is not None and not bool(d.converged[row]):
        out.append(f"not converged: some standard error is above tol={tol} (budget ran out)")
    if np.isnan(explanation.stderr[row]).any():
        out.append(f"standard errors are unavailable for method {p.method!r}")
    gap = float(np.max(d.efficiency_gap[row])) if d.efficiency_gap.size else 0.0
    scale = max(1.0, float(np.max(np.abs(d.predictions[row]))))
    if gap > 1e-8 * scale:
        out.append(f"efficiency gap {gap:.3g}: values do not add up to prediction - base value")
    parity = p.model.get("parity")
    if isinstance(parity, Mapping) and parity.get("passed") is False:
        out.append("the ONNX model failed its parity check against the original model")
    if reasons is not None:
        out.extend(reasons.flags)
    return out


def build_record(
    explanation: Explanation,
    row: int,
    *,
    decision_id: str | None,
    reasons: DecisionReasons | None = None,
    outcome: Mapping[str, Any] | None = None,
    batch: Mapping[str, Any],
    record_id: str,
    recorded_at: str,
) -> dict[str, Any]:
    """The record of row ``row`` without its chain fields (``sequence``, ``prev_hash``, ``hash``).

    Raises
    ------
    AuditError
        If ``reasons`` belong to another row or explanation, or the model description holds
        something that looks like a credential.
    """
    n = len(explanation)
    p, d = explanation.provenance, explanation.diagnostics
    problem = None if reasons is None else reasons_mismatch(reasons, explanation, row)
    if problem is not None:
        raise AuditError(f"{problem} (decision {decision_id!r})")
    model = plain(p.model)
    _check_no_credentials("model", model)
    background = plain(p.background)
    _check_no_credentials("background", background)
    frame = explanation.data.iloc[[row]].reset_index(drop=True)
    columns = _input_columns(frame)
    return {
        "format": FORMAT,
        "version": VERSION,
        "record_id": record_id,
        "decision_id": decision_id,
        "recorded_at": recorded_at,
        "batch": dict(batch),
        "model": model,
        "input": {"columns": columns, "sha256": frame_digest(frame)},
        "prediction": {
            "output_names": list(explanation.output_names),
            "values": plain(d.predictions[row]),
        },
        "outcome": None if outcome is None else plain(outcome),
        "method": {
            "name": p.method,
            "parameters": plain(p.parameters),
            "seed": None if p.seed is None else str(p.seed),
            "feature_groups": plain(p.feature_groups),
            "design": plain(p.design),
            "explained_at": p.created_at,
        },
        "background": background,
        "attributions": {
            "feature_names": list(explanation.feature_names),
            "output_names": list(explanation.output_names),
            "values": plain(explanation.values[row]),
            "stderr": plain(explanation.stderr[row]),  # NaN (no standard error) as null
            "base_values": plain(explanation.base_values[row]),
        },
        "diagnostics": {
            "model_evaluations": int(d.model_evaluations[row]),
            "background_evaluations": int(d.background_evaluations),
            "converged": bool(d.converged[row]),
            "efficiency_gap": plain(d.efficiency_gap[row]),
            "blocks": int(d.blocks[row]),
            "exact": bool(d.exact),
            "extra": _slice_extra(d.extra, row, n),
        },
        "reasons": None if reasons is None else plain(reasons.to_dict()),
        "versions": plain(p.versions),
        "warnings": _warnings(explanation, row, reasons),
    }


def seal(record: Mapping[str, Any], sequence: int, prev_hash: str) -> dict[str, Any]:
    """The record with its chain fields set and its hash computed."""
    out = {**record, "sequence": int(sequence), "prev_hash": prev_hash}
    out["hash"] = record_hash(out)
    return out


def float_array(values: Any) -> np.ndarray:
    """Nested JSON lists of numbers (null for NaN) as a float64 array."""
    return np.array(
        [[np.nan if v is None else v for v in r] for r in values]
        if values and isinstance(values[0], list)
        else [np.nan if v is None else v for v in values],
        dtype=np.float64,
    )


def input_frame(record: Mapping[str, Any]) -> pd.DataFrame:
    """The explained row as received, with its column kinds (a one-row DataFrame)."""
    cols = record["input"]["columns"]
    return data_from_json(
        [{"name": c["name"], "kind": c["kind"], "values": [c["value"]]} for c in cols]
    )


def explanation_from_record(record: Mapping[str, Any]) -> Explanation:
    """The one-row :class:`~surrogate_xai.Explanation` a record holds."""
    a, dg, m = record["attributions"], record["diagnostics"], record["method"]
    values = float_array(a["values"])[None]
    k = len(a["output_names"])
    extra = dict(dg["extra"])
    diagnostics = Diagnostics(
        model_evaluations=np.array([dg["model_evaluations"]], dtype=np.int64),
        background_evaluations=int(dg["background_evaluations"]),
        converged=np.array([dg["converged"]], dtype=bool),
        efficiency_gap=float_array(dg["efficiency_gap"]).reshape(1, k),
        predictions=float_array(record["prediction"]["values"]).reshape(1, k),
        blocks=np.array([dg["blocks"]], dtype=np.int64),
        exact=bool(dg["exact"]),
        extra=extra,
    )
    provenance = Provenance(
        method=m["name"],
        parameters=dict(m["parameters"]),
        seed=None if m["seed"] is None else int(m["seed"]),
        model=dict(record["model"]),
        background=dict(record["background"]),
        feature_groups={u: list(c) for u, c in m["feature_groups"].items()},
        design=dict(m["design"]),
        versions=dict(record["versions"]),
        created_at=m["explained_at"],
    )
    return Explanation(
        values=values,
        base_values=float_array(a["base_values"]).reshape(1, k),
        stderr=float_array(a["stderr"]).reshape(values.shape),
        data=input_frame(record),
        feature_names=list(a["feature_names"]),
        output_names=list(a["output_names"]),
        diagnostics=diagnostics,
        provenance=provenance,
    )


def check_record(record: Mapping[str, Any]) -> str | None:
    """Why the record does not match its own hash, or None if it does."""
    for key in ("prev_hash", "hash", "record_id", "sequence"):
        if key not in record:
            return f"the field {key!r} is missing"
    try:
        expected = record_hash(record)
    except (TypeError, ValueError) as exc:
        return f"the record cannot be serialised canonically: {exc}"
    if expected != record["hash"]:
        return "its content does not match its hash (the record was changed after it was written)"
    return None


def model_key(record: Mapping[str, Any]) -> str:
    """The model identity a record names: the sha256 of the ONNX bytes, or the given identity."""
    model = record["model"]
    return str(model.get("sha256") or model.get("identity"))


def decision_list(values: Sequence[Any] | None, n: int, what: str) -> list[Any]:
    """``values`` checked to hold one entry per explained row (or ``[None] * n``)."""
    if values is None:
        return [None] * n
    if isinstance(values, str | bytes | Mapping):
        raise AuditError(f"{what} must be a sequence with one entry per explained row")
    out = list(values)
    if len(out) != n:
        raise AuditError(f"{what} has {len(out)} entries for {n} explained rows")
    return out
