"""Is an exported model the model it was exported from? Evidence before explanation.

:func:`check_parity` scores the same rows with the original model and with the export and
reports how far apart they are, output by output, and how many decisions changed. Two
different things can go wrong and they are measured separately:

* **numeric drift** -- the graph computes in float32, so outputs move by ~1e-7 (a tree sum),
  or by a whole tree's vote when a float32 feature lands on the other side of a split (a
  StandardScaler in front of a forest: up to ~0.03 in probability, no decision changed);
* **a different model** -- a converter that silently mistranslates (HistGradientBoosting with
  native categorical features under skl2onnx 1.20): large gaps *and* flipped decisions.

What "close" means depends on the output kind, so the tolerances default per kind (see
:data:`DEFAULT_TOLERANCES`): probabilities are compared absolutely, raw scores and
regression outputs relative to the output's own scale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .exceptions import (
    ConfigurationError,
    InputError,
    NonFiniteOutputError,
    ParityError,
    SerializationError,
)

if TYPE_CHECKING:  # the models read parity reports; this module only checks them
    from .model import Model
    from .onnx_model import ONNXModel

OutputKind = Literal["probability", "margin", "regression"]

#: ``(atol, rtol)`` per output kind. An output passes when its largest difference is at most
#: ``atol + rtol * scale``, ``scale`` being the largest magnitude of the native output over
#: the rows checked: float32 round-off in a sum grows with the size of the terms, not with
#: one row's value, so a per-element relative test would fail rows that happen to be near 0.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "probability": (1e-4, 0.0),
    "margin": (1e-6, 1e-5),
    "regression": (1e-6, 1e-5),
}
#: Decision threshold for a single output, per kind (``None``: regression has no decision).
DEFAULT_THRESHOLDS: dict[str, float | None] = {
    "probability": 0.5,
    "margin": 0.0,
    "regression": None,
}

#: Ties: native outputs within a few float32 ulps (relative to the output's scale) of the
#: decision boundary.
_TIE_RTOL = 1e-6


@dataclass(frozen=True)
class OutputParity:
    """Differences in one output column."""

    name: str
    max_abs_diff: float
    #: ``max_abs_diff`` divided by ``scale``.
    max_rel_diff: float
    #: Largest magnitude of the native output over the rows checked.
    scale: float
    #: ``atol + rtol * scale``: the largest difference this output may show.
    tolerance: float
    rows_beyond_tolerance: int


@dataclass(frozen=True)
class ParityReport:
    """How far an exported model's outputs are from the original's on the same rows.

    ``decision_flips`` counts rows whose decision differs: the arg-max over several outputs,
    ``output > threshold`` for a single one. A row whose native outputs sit within float32
    round-off of the decision boundary (a tie, e.g. 15 of 30 trees) can flip by round-off
    alone; such rows are counted in ``tied_flips`` instead. ``passed`` requires every output
    within its tolerance *and* at most ``max_flips`` decision flips. ``max_rel_diff`` is the
    largest difference relative to its output's scale (largest native magnitude), so it stays
    meaningful for outputs near zero. ``outputs`` has the same numbers per output column.
    """

    rows_checked: int
    output_kind: str
    max_abs_diff: float
    max_rel_diff: float
    decision_flips: int
    atol: float
    rtol: float
    max_flips: int
    threshold: float | None
    passed: bool
    tied_flips: int = 0
    rows_beyond_tolerance: int = 0
    #: The cell furthest beyond its output's tolerance: its row (0-based position in the
    #: rows checked), output name and absolute difference.
    worst_row: int | None = None
    worst_output: str | None = None
    worst_abs_diff: float = 0.0
    outputs: tuple[OutputParity, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain ``int``/``float``/``str``/``None``, lists and dicts."""
        out = asdict(self)
        out["outputs"] = [dict(o) for o in out["outputs"]]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParityReport:
        """The inverse of :meth:`to_dict`.

        Every field's type is checked (an evidence file is a user's file): counts are
        integers, differences and tolerances finite numbers, ``passed`` a boolean, names
        text. A wrong one raises :class:`SerializationError` naming the field, here, rather
        than a ``TypeError`` when a report is rendered after all the explaining.
        """
        try:
            fields = dict(d)
            outputs = fields.get("outputs", ())
            if not isinstance(outputs, list | tuple):
                raise SerializationError(
                    f"not a parity report: field 'outputs' must be a list, got "
                    f"{type(outputs).__name__}"
                )
            checked = []
            for i, o in enumerate(outputs):
                if not isinstance(o, dict):
                    raise SerializationError(
                        f"not a parity report: outputs[{i}] must be an object, got "
                        f"{type(o).__name__}"
                    )
                checked.append(OutputParity(**_typed(o, _OUTPUT_FIELDS, f"outputs[{i}].")))
            fields["outputs"] = tuple(checked)
            fields = _typed(fields, _REPORT_FIELDS, "")
            worst = fields.get("worst_output")
            if worst is not None and worst not in {o.name for o in checked}:
                # summary() looks its tolerance up among the outputs.
                raise SerializationError(
                    f"not a parity report: field 'worst_output' {str(worst)[:60]!r} is not "
                    "one of its outputs"
                )
            return cls(**fields)
        except (TypeError, AttributeError) as exc:
            raise SerializationError(f"not a parity report: {exc}") from exc

    def summary(self) -> str:
        """One line: the gap, where it is, and how many decisions flipped."""
        tolerance = {o.name: o.tolerance for o in self.outputs}
        where = (
            f"|diff| {self.worst_abs_diff:.3g} in output {self.worst_output!r} at row "
            f"{self.worst_row} (tolerance {tolerance[self.worst_output]:.3g})"
            if self.worst_output is not None
            else "no rows"
        )
        ties = f", plus {self.tied_flips} at a tie" if self.tied_flips else ""
        decisions = (
            ""
            if self.output_kind == "regression" and self.threshold is None
            else f"; {self.decision_flips} decision(s) flipped{ties} (allowed {self.max_flips})"
        )
        beyond = f"{self.rows_beyond_tolerance} of {self.rows_checked} rows beyond tolerance"
        return f"{where}, {beyond}{decisions}"


# Field kinds of a serialised report, for from_dict: "int" (not a bool), "float" (a finite
# number; an int is taken as the same float), "bool", "str", and "?" for "or None".
_OUTPUT_FIELDS = {
    "name": "str",
    "max_abs_diff": "float",
    "max_rel_diff": "float",
    "scale": "float",
    "tolerance": "float",
    "rows_beyond_tolerance": "int",
}
_REPORT_FIELDS = {
    "rows_checked": "int",
    "output_kind": "str",
    "max_abs_diff": "float",
    "max_rel_diff": "float",
    "decision_flips": "int",
    "atol": "float",
    "rtol": "float",
    "max_flips": "int",
    "threshold": "float?",
    "passed": "bool",
    "tied_flips": "int",
    "rows_beyond_tolerance": "int",
    "worst_row": "int?",
    "worst_output": "str?",
    "worst_abs_diff": "float",
}


def _typed(fields: dict[str, Any], kinds: dict[str, str], prefix: str) -> dict[str, Any]:
    """``fields`` with each known field checked against its kind (unknown or missing fields
    are left for the dataclass to refuse)."""
    out = dict(fields)
    for name, kind in kinds.items():
        if name not in out:
            continue
        value = out[name]
        if kind.endswith("?"):
            if value is None:
                continue
            kind = kind[:-1]
        ok: bool
        if kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif kind == "float":
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and bool(np.isfinite(value))
            )
            if ok:
                value = float(value)
        elif kind == "bool":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            wanted = {
                "int": "a whole number >= 0",
                "float": "a finite number",
                "bool": "true or false",
                "str": "text",
            }[kind]
            raise SerializationError(
                f"not a parity report: field '{prefix}{name}' must be {wanted}"
                f"{' or null' if kinds[name].endswith('?') else ''}, got {value!r:.60}"
            )
        out[name] = value
    return out


def check_parity(
    native_predict: Callable[[Any], Any],
    model: Model,
    X: pd.DataFrame | np.ndarray,
    *,
    output_kind: OutputKind = "probability",
    atol: float | None = None,
    rtol: float | None = None,
    max_flips: int = 0,
    threshold: float | None = None,
    raise_on_failure: bool = False,
) -> ParityReport:
    """Compare ``native_predict(X)`` with ``model.predict(X)``.

    Parameters
    ----------
    native_predict : callable
        The original model's scoring function on ``X`` (e.g. ``pipeline.predict_proba``),
        returning the same outputs as ``model``: shape ``(n_samples,)`` or
        ``(n_samples, n_outputs)``.
    model : Model
        The exported model.
    X : DataFrame or array of shape (n_samples, n_features)
        Rows to check on. Use real rows (a held-out sample): a converter bug only shows on
        rows that reach the mistranslated branches.
    output_kind : {"probability", "margin", "regression"}
        What the outputs are; sets the default tolerances and the decision rule.
    atol, rtol : float, optional
        An output passes when its largest difference is at most ``atol + rtol * scale``,
        ``scale`` being the largest ``|native output|`` over ``X``. Defaults per kind in
        :data:`DEFAULT_TOLERANCES`: ``1e-4`` absolute for probabilities, ``1e-6 + 1e-5 *
        scale`` for margins and regression outputs.
    max_flips : int
        Decisions allowed to differ (ties broken by round-off are not counted).
    threshold : float, optional
        Decision threshold: for a single probability (default 0.5) or margin (default 0),
        and, if given, for each regression output. Several probabilities or margins are
        decided by arg-max; regression outputs without a threshold have no decision.
    raise_on_failure : bool
        Raise :class:`~surrogate_xai.exceptions.ParityError` instead of returning a failed
        report.

    Raises
    ------
    ParityError
        If the two outputs have different shapes or the native model returns NaN or
        infinity (no comparison is possible), or, with ``raise_on_failure``, if the check
        fails.
    """
    if output_kind not in DEFAULT_TOLERANCES:
        raise ConfigurationError(
            f"output_kind must be one of {sorted(DEFAULT_TOLERANCES)}, got {output_kind!r}"
        )
    default_atol, default_rtol = DEFAULT_TOLERANCES[output_kind]
    atol = default_atol if atol is None else float(atol)
    rtol = default_rtol if rtol is None else float(rtol)
    threshold = DEFAULT_THRESHOLDS[output_kind] if threshold is None else float(threshold)

    try:
        ours = model.predict(X)
    except NonFiniteOutputError as exc:
        raise ParityError(f"the exported model is not usable on these rows: {exc}") from exc
    theirs = np.asarray(native_predict(X), dtype=np.float64)
    if theirs.ndim == 1:
        theirs = theirs.reshape(-1, 1)
    if theirs.shape != ours.shape:
        raise ParityError(f"native output has shape {theirs.shape}, exported {ours.shape}")
    if not np.all(np.isfinite(theirs)):
        row, col = np.argwhere(~np.isfinite(theirs))[0]
        raise ParityError(
            f"the native model returned {theirs[row, col]} at row {int(row)}: nothing to "
            "compare the export with"
        )

    diff = np.abs(theirs - ours)
    scale = np.abs(theirs).max(axis=0, initial=0.0)
    tolerance = atol + rtol * scale
    beyond = diff > tolerance
    # A native output this close to the decision boundary is a tie that float32 round-off
    # may break either way. It is a few ulps, not atol: a generous atol excuses no flip.
    tie = _TIE_RTOL * np.maximum(scale, 1.0)
    names = model.output_names
    outputs = tuple(
        OutputParity(
            name=names[j],
            max_abs_diff=float(diff[:, j].max(initial=0.0)),
            max_rel_diff=float(diff[:, j].max(initial=0.0) / max(scale[j], 1e-12)),
            scale=float(scale[j]),
            tolerance=float(tolerance[j]),
            rows_beyond_tolerance=int(beyond[:, j].sum()),
        )
        for j in range(ours.shape[1])
    )

    # Several probabilities/margins: arg-max. A regression output with a threshold is
    # decided per column.
    multi = ours.shape[1] > 1 and output_kind != "regression"
    decided = multi or threshold is not None
    flips = tied = 0
    if multi:
        native_choice = theirs.argmax(axis=1)
        export_choice = ours.argmax(axis=1)
        changed = native_choice != export_choice
        rows = np.arange(len(theirs))
        gap = theirs[rows, native_choice] - theirs[rows, export_choice]
        is_tie = gap <= tie.max(initial=0.0)
        tied = int(np.sum(changed & is_tie))
        flips = int(np.sum(changed & ~is_tie))
    elif threshold is not None:
        changed_cells = (theirs > threshold) != (ours > threshold)
        near = np.abs(theirs - threshold) <= tie
        real = (changed_cells & ~near).any(axis=1)
        flips = int(real.sum())
        tied = int(np.sum(changed_cells.any(axis=1) & ~real))

    # The cell furthest beyond (or least within) its output's tolerance.
    worst = np.unravel_index(int((diff - tolerance).argmax()), diff.shape) if diff.size else None
    report = ParityReport(
        rows_checked=len(ours),
        output_kind=output_kind,
        max_abs_diff=float(diff.max(initial=0.0)),
        max_rel_diff=max((o.max_rel_diff for o in outputs), default=0.0),
        decision_flips=flips,
        atol=atol,
        rtol=rtol,
        max_flips=max_flips,
        threshold=None if multi else threshold,
        passed=not beyond.any() and flips <= max_flips,
        tied_flips=tied,
        rows_beyond_tolerance=int(beyond.any(axis=1).sum()),
        worst_row=None if worst is None else int(worst[0]),
        worst_output=None if worst is None else names[int(worst[1])],
        worst_abs_diff=0.0 if worst is None else float(diff[worst]),
        outputs=outputs,
    )
    if raise_on_failure and not report.passed:
        if not decided:
            hint = (
                "; pass a larger rtol= if float32 rounding explains the gap, it is recorded "
                "in the provenance"
            )
        elif flips == 0:
            hint = (
                "; a gap without flips may be float32 rounding (e.g. a scaler in front of "
                "trees): pass a larger atol= if that is acceptable, it is recorded in the "
                "provenance"
            )
        else:
            hint = ""
        raise ParityError(
            f"exported model differs from the original on the {report.rows_checked} rows "
            f"checked: {report.summary()}{hint}",
            report,
        )
    return report


def require_parity(
    native_predict: Callable[[Any], Any],
    model: ONNXModel,
    X: pd.DataFrame | np.ndarray,
    *,
    output_kind: OutputKind,
    atol: float | None = None,
    rtol: float | None = None,
    max_flips: int = 0,
) -> ParityReport:
    """The gate every adapter's ``to_onnx`` runs: check, and raise on failure.

    The adapters then record the report in the file itself
    (:meth:`ONNXModel.with_export_metadata`), from where ``model.parity_report`` and every
    explanation's provenance (``ONNXModel.describe()["parity"]``) read it.

    Raises
    ------
    ParityError
        If the export is not within tolerance of ``native_predict`` on ``X``.
    """
    return check_parity(
        native_predict,
        model,
        X,
        output_kind=output_kind,
        atol=atol,
        rtol=rtol,
        max_flips=max_flips,
        raise_on_failure=True,
    )


# -- evidence files ----------------------------------------------------------------------------
#: What a parity evidence file says it is (checked when it is read back).
EVIDENCE_FORMAT = "surrogate-xai parity evidence"


def write_parity_evidence(path: str | Path, model: ONNXModel) -> Path:
    """Keep ``model.parity_report`` beside the exported file, bound to its sha256.

    The export is where parity can be measured (the original model is at hand); an auditor
    who later receives only the ONNX file gets this file with it, and ``sxai audit --parity``
    shows it, refusing it for any other model bytes.
    """
    report = model.parity_report
    if report is None:
        raise ConfigurationError(
            "this model carries no parity report (export it with an adapter's to_onnx, which "
            "checks parity against the original)"
        )
    body = {"format": EVIDENCE_FORMAT, "model_sha256": model.identity, "report": report.to_dict()}
    out = Path(path)
    out.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out


def read_parity_evidence(path: str | Path, model: ONNXModel) -> ParityReport:
    """The parity report of an evidence file, if it is about these model bytes.

    Raises
    ------
    InputError
        If the file is missing, not evidence, or about another model (sha256 differs).
    """
    p = Path(path)
    try:
        body = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no such file: {p}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p} is not a parity evidence file (not JSON: {exc})") from exc
    if not isinstance(body, dict) or body.get("format") != EVIDENCE_FORMAT:
        raise InputError(f"{p} is not a parity evidence file (no format {EVIDENCE_FORMAT!r})")
    if body.get("model_sha256") != model.identity:
        raise InputError(
            f"{p} is the parity evidence of another model (sha256 "
            f"{str(body.get('model_sha256'))[:16]}..., this model {model.identity[:16]}...)"
        )
    try:
        return ParityReport.from_dict(body["report"])
    except (KeyError, SerializationError) as exc:
        raise InputError(f"{p}: {exc}") from exc
