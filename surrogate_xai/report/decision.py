"""The per-decision report: what was decided, why, for whom, and how to reproduce it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from markupsafe import Markup

from ..decisions import NEUTRAL, Framing
from ..display import display_names as _names_for
from ..exceptions import ConfigurationError
from ..explanation import Explanation
from ..groups import image_of, pixel_attributions, step_contributions
from ..parity import ParityReport
from ..reasons import DecisionReasons, output_index, reasons_mismatch
from ..validation import is_int
from . import _svg
from ._context import (
    article,
    display_value,
    generator,
    model_facts,
    parity_view,
    provenance_facts,
)
from ._html import render

#: Contributions drawn one by one in the waterfall; the rest are summed into one bar.
MAX_STEPS = 12
_Z = 1.96


def _check_row(explanation: Explanation, row: Any) -> int:
    if not is_int(row):
        raise ConfigurationError(f"row must be an integer position, got {row!r}")
    n = len(explanation)
    if not -n <= row < n:
        raise ConfigurationError(f"row {row} is out of range for an explanation of {n} rows")
    return int(row) % n


def _resolve_output(
    explanation: Explanation, output: int | str | None, reasons: DecisionReasons | None
) -> int:
    """The output explained: as asked, else the reasons' output, else the default (the last,
    :func:`~surrogate_xai.reasons.output_index`)."""
    if output is None and reasons is not None:
        output = reasons.output
    k = output_index(explanation.output_names, output)
    if reasons is not None and reasons.output != explanation.output_names[k]:
        raise ConfigurationError(
            f"the reasons explain output {reasons.output!r} but output="
            f"{explanation.output_names[k]!r} was asked for; leave output unset to use the "
            "reasons' output"
        )
    return k


def _check_reasons(explanation: Explanation, row: int, reasons: Any) -> None:
    problem = None if reasons is None else reasons_mismatch(reasons, explanation, row)
    if problem is not None:
        raise ConfigurationError(problem)


def _unit_label(
    explanation: Explanation, row: int, unit: str, names: Mapping[str, str] | None = None
) -> str:
    """``name = value`` for a feature (its display name, its value rounded for reading), or
    the group's name and size."""
    shown = (names or {}).get(unit, unit)
    columns = explanation.provenance.feature_groups.get(unit, [unit])
    data = explanation.data
    if len(columns) == 1 and columns[0] in data.columns:
        return f"{shown} = {display_value(data[columns[0]].iloc[row])}"
    return f"{shown} (group of {len(columns)})"


def waterfall_steps(
    explanation: Explanation, row: int, k: int, names: Mapping[str, str] | None = None
) -> list[_svg.Step]:
    """The waterfall's bars: largest |contribution| first, the tail summed into one bar.

    The tail's standard error combines its members' as if independent (an approximation, as
    for reasons sharing a code).
    """
    values = explanation.values[row, :, k]
    stderr = explanation.stderr[row, :, k]
    order = sorted(range(len(values)), key=lambda j: (-abs(values[j]), j))
    shown = order if len(order) <= MAX_STEPS + 1 else order[:MAX_STEPS]
    steps = [
        _svg.Step(
            _unit_label(explanation, row, explanation.feature_names[j], names),
            values[j],
            stderr[j],
        )
        for j in shown
    ]
    rest = order[len(shown) :]
    if rest:
        steps.append(
            _svg.Step(
                f"{len(rest)} other features",
                float(values[rest].sum()),
                math.sqrt(float(np.sum(stderr[rest] ** 2))),
            )
        )
    return steps


def figures(explanation: Explanation, row: int, k: int) -> list[tuple[str, str, Markup]]:
    """``(heading, note, svg)`` for an image model (attributions over the image) and a
    sequence model (contributions per time step); none for tabular data."""
    out = []
    name = explanation.output_names[k]
    members = {u: list(c) for u, c in explanation.provenance.feature_groups.items()}
    grid = pixel_attributions(explanation.values[row, :, k], explanation.feature_names, members)
    if grid is not None:
        image = image_of(explanation.data.iloc[row].to_dict(), grid.shape)
        svg = _svg.heatmap(
            grid,
            image,
            title=f"Attributions to {name} over the image",
            label=f"attribution to {name} (red raises it, blue lowers it)",
        )
        note = (
            "Each patch (or pixel) is tinted by its contribution, over the image in grey; "
            "hover a cell for its value."
        )
        out.append(("Where in the image", note, svg))
    steps = step_contributions(
        explanation.values[:, :, k],
        explanation.stderr[:, :, k],
        explanation.feature_names,
        members,
        row=row,
        z=_Z,
    )
    if steps is not None:
        labels, heights, half = steps
        svg = _svg.interval_bars(
            labels,
            list(heights),
            list(heights - half),
            list(heights + half),
            title=f"Contributions to {name} per time step",
        )
        note = "Contribution of each time step (or window), in time order, with 95 % intervals."
        out.append(("Over time", note, svg))
    return out


def _value_rows(
    explanation: Explanation, row: int, k: int, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Each input column's value, with the attribution of the unit it belongs to."""
    owner = {
        col: j
        for j, unit in enumerate(explanation.feature_names)
        for col in explanation.provenance.feature_groups.get(unit, [unit])
    }
    out = []
    for col in explanation.data.columns:
        j = owner.get(str(col))
        value = float(explanation.values[row, j, k]) if j is not None else math.nan
        se = float(explanation.stderr[row, j, k]) if j is not None else math.nan
        out.append(
            {
                "column": str(col),
                "name": names.get(str(col), str(col)),
                "value": display_value(explanation.data[col].iloc[row]),
                "unit": explanation.feature_names[j] if j is not None else "",
                "grouped": j is not None and explanation.feature_names[j] != str(col),
                "contribution": value,
                "interval": None if math.isnan(se) else (value - _Z * se, value + _Z * se),
            }
        )
    return out


def _reason_rows(
    reasons: DecisionReasons, explanation: Explanation, row: int, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    # The row's value goes next to each reason: a catalogue text names the factor, the value
    # says what this row had. A reason without a catalogue entry has a generated text that
    # holds the value at full precision (as recorded); its title shows it rounded.
    stable = {True: "yes", False: "no (could swap on a re-run)", None: "unknown"}
    return [
        {
            "rank": r.rank,
            "code": r.code,
            "text": r.text
            if r.catalogued
            else "; ".join(_unit_label(explanation, row, f, names) for f in r.features),
            "features": "; ".join(_unit_label(explanation, row, f, names) for f in r.features),
            "contribution": r.contribution,
            "interval": r.interval,
            "stable": stable[r.stable],
            "catalogued": r.catalogued,
        }
        for r in reasons.reasons
    ]


def _replay(record_id: str | None, command: str | None) -> dict[str, Any]:
    if command is not None:
        return {"record_id": record_id, "command": command, "generic": False}
    if record_id is not None:
        # The store URL and file paths are the caller's; the form of the command is fixed
        # (and `sxai` is whatever starts it where the replay is run).
        return {
            "record_id": record_id,
            "command": f"sxai replay {record_id} --store STORE_URL --model MODEL.onnx "
            "--background BACKGROUND.csv",
            "generic": True,
        }
    return {"record_id": None, "command": None, "generic": False}


def decision_report(
    explanation: Explanation,
    row: int,
    *,
    reasons: DecisionReasons | None = None,
    output: int | str | None = None,
    outcome: Mapping[str, Any] | None = None,
    record_id: str | None = None,
    replay_command: str | None = None,
    parity: ParityReport | None = None,
    title: str | None = None,
    framing: Framing | None = None,
    display_names: Mapping[str, str] | None = None,
) -> str:
    """A self-contained HTML page explaining one decision.

    It shows the decision and prediction, the principal reasons, a waterfall of the
    contributions with 95 % intervals, the applicant's values, the parity evidence, the
    provenance, and how to replay the record. No script, no network: a restrictive
    Content-Security-Policy is in the page, and every name and value is escaped.

    Parameters
    ----------
    explanation : Explanation
        Values of shape (n_samples, n_features, n_outputs).
    row : int
        Position of the decision's row in ``explanation``.
    reasons : DecisionReasons, optional
        From :func:`~surrogate_xai.reason_codes` for this row and explanation (checked).
    output : int or str, optional
        The output the decision was made on. Default: the reasons' output, or the last.
    outcome : dict, optional
        The decision as recorded, e.g. ``{"decision": "declined", "threshold": 0.5}``.
    record_id : str, optional
        The audit record of this decision.
    replay_command : str, optional
        The exact command to replay the record; without it, and with ``record_id``, the
        command's form is shown with the store and file arguments left to fill in.
    parity : ParityReport, optional
        Conversion evidence; default the parity check recorded in the model's provenance.
    title : str, optional
    framing : Framing, optional
        What a row is called ("applicant") and the outcome labels; default neutral.
    display_names : mapping of str to str, optional
        Names to show for features and outputs (see :func:`surrogate_xai.display.display_names`;
        the names missing here follow its rules).

    Returns
    -------
    str
        A complete HTML document.

    Raises
    ------
    ConfigurationError
        If ``row`` or ``output`` is out of range, or ``reasons`` belong to another row,
        explanation or output.
    """
    if not isinstance(explanation, Explanation):
        raise ConfigurationError(f"expected an Explanation, got {type(explanation).__name__}")
    i = _check_row(explanation, row)
    _check_reasons(explanation, i, reasons)
    k = _resolve_output(explanation, output, reasons)
    if outcome is not None and not isinstance(outcome, Mapping):
        raise ConfigurationError(f"outcome must be a dict, got {type(outcome).__name__}")
    if parity is not None and not isinstance(parity, ParityReport):
        raise ConfigurationError(f"parity must be a ParityReport, got {type(parity).__name__}")

    framing = framing or NEUTRAL
    names = _names_for(explanation.feature_names, explanation.output_names, given=display_names)
    out_name = explanation.output_names[k]
    out_label = names.get(out_name, out_name)
    prediction = float(explanation.diagnostics.predictions[i, k])
    base = float(explanation.base_values[i, k])
    decision = None if outcome is None else outcome.get("decision")
    adverse = reasons.adverse if reasons is not None else None
    bg_size = explanation.provenance.background.get("size")
    chart = _svg.waterfall(
        base,
        waterfall_steps(explanation, i, k, names),
        prediction,
        adverse=adverse,
        z=_Z,
        title=f"Contributions to {out_label}, from the base value to the prediction",
        xlabel=f"{out_label} ({out_name})" if out_label != out_name else out_name,
    )
    diagnostics = explanation.diagnostics
    model = explanation.provenance.model
    tolerance = explanation.provenance.parameters.get("tol")
    converged = bool(diagnostics.converged[i])
    return render(
        "decision.j2",
        title=title or f"Decision report: {decision or f'row {i}'}",
        row=i,
        subject=framing.subject,
        output=out_name,
        output_label=out_label,
        prediction=prediction,
        base_value=base,
        background_size=bg_size,
        decision=None if decision is None else str(decision),
        outcome=[
            (str(key), v)
            for key, v in (outcome or {}).items()
            if key not in ("decision", "adverse", "output") and v is not None
        ],
        reasons=reasons,
        reason_rows=[] if reasons is None else _reason_rows(reasons, explanation, i, names),
        adverse=adverse,
        adverse_article=article(adverse),
        waterfall=chart,
        figures=figures(explanation, i, k),
        values=_value_rows(explanation, i, k, names),
        diagnostics={
            "model rows evaluated": int(diagnostics.model_evaluations[i]),
            "exact values": "yes" if diagnostics.exact else "no (sampled, with standard errors)",
            "converged": _converged_text(diagnostics.exact, converged, tolerance),
            "efficiency gap": diagnostics.efficiency_gap[i, k],
        },
        model_facts=model_facts(model),
        provenance_facts=provenance_facts(explanation),
        versions=explanation.provenance.versions,
        parity=parity_view(parity, model),
        replay=_replay(record_id, replay_command),
        **generator(),
    )


def _converged_text(exact: bool, converged: bool, tolerance: Any) -> str:
    """Whether sampling reached its tolerance, in words (no tolerance: nothing to reach)."""
    if exact:
        return "yes (exact values)"
    if tolerance is None:
        return "no tolerance was set: the row used its whole budget"
    if converged:
        return f"yes: every standard error is below the tolerance {tolerance:g}"
    return f"no: some standard errors are still above the tolerance {tolerance:g}"
