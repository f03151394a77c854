"""Re-running an explanation from its audit record, and comparing bit for bit.

The record holds the method, every parameter, the seed, the feature groups and the input row;
the caller supplies the model and the background, which must be the recorded ones (their hashes
are checked). The explainer is rebuilt with ``random_state`` set to the recorded seed, fitted,
and asked to explain the recorded row.

For the engine's own methods a row's values do not depend on the other rows explained with it,
so one record replays alone. ``ShapKernel`` (the shap backend) draws from one random stream for
a whole call, so its rows are replayed together with the rest of their recorded batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..background import Background
from ..exceptions import AuditError, ConfigurationError, ReplayRefusedError
from ..explainers import registry
from ..explainers.base import BaseExplainer
from ..model import Model
from .record import float_array, input_frame, model_key


def row_independent(method: str) -> bool:
    """Whether a record of ``method`` can be replayed without the rest of its batch (the
    estimator registry's tag; an unknown method is refused when it is replayed)."""
    try:
        return registry.get(method).row_independent
    except ConfigurationError:
        return True


@dataclass(frozen=True)
class ReplayResult:
    """The outcome of replaying one record.

    Attributes
    ----------
    record_id : str
    identical : bool
        True when values, standard errors, base values and the prediction are bit-identical.
    max_abs_diff : float
        Largest absolute difference over those fields (0.0 when identical; ``inf`` when the
        shapes or the positions of missing standard errors differ).
    differences : dict of str to float
        The largest absolute difference of each field that is not bit-identical.
    method : str
    notes : tuple of str
        Differences in the model description that do not block a replay (e.g. onnxruntime's
        thread count, which can move float32 outputs in the last bits).
    """

    record_id: str
    identical: bool
    max_abs_diff: float
    differences: dict[str, float] = field(default_factory=dict)
    method: str = ""
    notes: tuple[str, ...] = ()


def _explainer_class(method: str) -> type[BaseExplainer]:
    try:
        return registry.get(method).load()
    except ConfigurationError as exc:
        raise AuditError(f"cannot replay method {method!r}: {exc}") from exc


def _field_diff(recorded: np.ndarray, replayed: np.ndarray) -> float | None:
    """None when bit-identical (NaN matching NaN), else the largest absolute difference."""
    a = np.asarray(recorded, dtype=np.float64)
    b = np.asarray(replayed, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return float("inf")
    x, y = a[~nan_a], b[~nan_b]
    if np.array_equal(x.view(np.int64), y.view(np.int64)):
        return None
    return float(np.max(np.abs(x - y)))


def _check_inputs(
    record: Mapping[str, Any], model: Model, background: Background | pd.DataFrame | np.ndarray
) -> tuple[Background, list[str]]:
    rid = record["record_id"]
    if not isinstance(model, Model):
        raise ConfigurationError(
            f"model must implement the Model protocol, got {type(model).__name__}"
        )
    recorded = model_key(record)
    if model.identity != recorded:
        raise ReplayRefusedError(
            f"record {rid!r} was explained with model {recorded!r}; the model given is "
            f"{model.identity!r}"
        )
    if list(model.output_names) != list(record["attributions"]["output_names"]):
        raise ReplayRefusedError(
            f"record {rid!r} explains outputs {record['attributions']['output_names']}; the "
            f"model given has {model.output_names} (choose the same output=)"
        )
    bg = background if isinstance(background, Background) else Background(background)
    bg = bg.with_columns(model.feature_names)
    if bg.hash != record["background"].get("hash"):
        raise ReplayRefusedError(
            f"record {rid!r} was explained against background "
            f"{record['background'].get('hash')!r} (size {record['background'].get('size')}); "
            f"the background given hashes to {bg.hash!r} (size {len(bg)})"
        )
    described = model.describe()
    notes = [
        f"model {key}: recorded {record['model'].get(key)!r}, now {described.get(key)!r}"
        for key in sorted(set(described) | set(record["model"]))
        if key != "parity" and described.get(key) != record["model"].get(key)
    ]
    return bg, notes


def replay_record(
    record: Mapping[str, Any],
    model: Model,
    background: Background | pd.DataFrame | np.ndarray,
    *,
    batch: Sequence[Mapping[str, Any]] | None = None,
) -> ReplayResult:
    """Re-run the explanation a record holds and compare it with the record.

    Parameters
    ----------
    record : dict
        A verified record (see :meth:`AuditStore.get`).
    model, background
        The recorded model and background (checked by hash).
    batch : sequence of dict, optional
        The records of the record's batch, for methods whose rows depend on each other.

    Raises
    ------
    ReplayRefusedError
        If the model's identity, its outputs or the background's hash differ from the record.
    AuditError
        If the method is unknown here, a recorded parameter no longer exists, or the batch a
        batch-dependent record needs is incomplete.
    """
    rid = record["record_id"]
    method = record["method"]
    bg, notes = _check_inputs(record, model, background)
    cls = _explainer_class(method["name"])
    params = dict(method["parameters"])
    # A parameter the method gained later is absent from older records: they replay with
    # the value that reproduces the behaviour they were written with (the registry's).
    for name, value in registry.get(method["name"]).legacy_params.items():
        params.setdefault(name, value)
    unknown = sorted(set(params) - set(cls.param_names()))
    if unknown:
        raise AuditError(
            f"record {rid!r} has parameter(s) {unknown} that {cls.__name__} no longer takes"
        )
    if "random_state" in params and method["seed"] is not None:
        params["random_state"] = int(method["seed"])
    groups = {u: list(cols) for u, cols in method["feature_groups"].items() if list(cols) != [u]}
    explainer = cls(**params).fit(model, bg, groups or None)
    if list(explainer.feature_names_) != list(record["attributions"]["feature_names"]):
        raise ReplayRefusedError(
            f"record {rid!r} has features {record['attributions']['feature_names']}; the model "
            f"and groups give {explainer.feature_names_}"
        )
    position = 0
    if row_independent(method["name"]):
        X = input_frame(record)
    else:
        size = int(record["batch"]["size"])
        rows = sorted(batch or [], key=lambda r: int(r["batch"]["position"]))
        if [int(r["batch"]["position"]) for r in rows] != list(range(size)):
            raise AuditError(
                f"record {rid!r} ({method['name']}) can only be replayed with its whole batch "
                f"of {size} records, and {len(rows)} were found"
            )
        X = pd.concat([input_frame(r) for r in rows], ignore_index=True)
        position = int(record["batch"]["position"])
    replayed = explainer.explain(X)

    a = record["attributions"]
    fields = {
        "values": (a["values"], replayed.values[position]),
        "stderr": (a["stderr"], replayed.stderr[position]),
        "base_values": (a["base_values"], replayed.base_values[position]),
        "prediction": (
            record["prediction"]["values"],
            replayed.diagnostics.predictions[position],
        ),
    }
    differences = {}
    for name, (recorded, now) in fields.items():
        diff = _field_diff(float_array(recorded), now)
        if diff is not None:
            differences[name] = diff
    return ReplayResult(
        record_id=rid,
        identical=not differences,
        max_abs_diff=max(differences.values(), default=0.0),
        differences=differences,
        method=method["name"],
        notes=tuple(notes),
    )
