"""Plain values for the templates: parity evidence, provenance facts, displayed cell values.

Templates receive dicts, lists and strings only, so what a report shows is decided here, in
code that can be tested, and the templates stay layout.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..explanation import Explanation
from ..parity import OutputParity, ParityReport
from ._html import num


def generator() -> dict[str, str]:
    """Who wrote the page and when (UTC)."""
    from .. import __version__

    return {
        "generator_version": __version__,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def display_value(value: Any) -> str:
    """A cell of the explained data as a person reads it: whole floats without ``.0``."""
    if value is None:
        return "missing"
    if isinstance(value, float | np.floating):
        x = float(value)
        if math.isnan(x):
            return "missing"
        return str(int(x)) if x.is_integer() and abs(x) < 1e15 else num(x, 6)
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def article(word: str | None) -> str:
    """ "a" or "an" before ``word`` ("an increase", "a decrease")."""
    return "an" if word and word[0].lower() in "aeiou" else "a"


def as_text(value: Any) -> str:
    """A value as a person reads it: strings bare, None as "none", numbers rounded for
    reading, a mapping as ``key value; key value``, a list comma-separated (never JSON)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "none"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return num(value, 6)
    if isinstance(value, Mapping):
        return "; ".join(f"{key} {as_text(v)}" for key, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(as_text(v) for v in value) or "none"
    return json.dumps(value, default=str, ensure_ascii=False)


#: What each way of feeding a graph means, for the model facts.
INPUT_MODES = {
    "columns": "the graph's inputs take the table's columns by name",
    "tensor": "one float tensor takes the table's columns in order",
}


def _input_mode(mode: Any) -> str:
    text = as_text(mode)
    meaning = INPUT_MODES.get(text)
    return f"{text} ({meaning})" if meaning else text


def parity_view(
    parity: ParityReport | Mapping[str, Any] | None, model: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The parity evidence to show: the report given, else the one recorded in provenance.

    ``to_onnx`` records its parity check in the model's description, which travels into every
    explanation's provenance as a plain dict; it is turned back into a report for its summary.
    """
    if parity is None:
        parity = model.get("parity")
    if parity is None:
        return None
    if not isinstance(parity, ParityReport):
        fields = dict(parity)
        fields["outputs"] = tuple(OutputParity(**o) for o in fields.get("outputs", ()))
        parity = ParityReport(**fields)
    view = parity.to_dict()
    view["summary"] = parity.summary() if parity.outputs else ""
    return view


def model_facts(model: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Identity of the explained model, from its description (parity shown elsewhere)."""
    facts = [("identity", str(model.get("identity", "unknown")))]
    # Which output was explained and why, and where the file came from, are the auditor's.
    for key in (
        "kind",
        "format",
        "sha256",
        "output",
        "output_reason",
        "input_mode",
        "converter",
        "parity_source",
    ):
        if key in model and key != "identity":
            value = model[key]
            facts.append((key, _input_mode(value) if key == "input_mode" else as_text(value)))
    outputs = model.get("output_names")
    if outputs:
        facts.append(("outputs", ", ".join(map(str, outputs))))
    return facts


def provenance_facts(explanation: Explanation) -> list[tuple[str, str]]:
    """Method, seed, every parameter, background and time of an explanation."""
    p = explanation.provenance
    bg = p.background
    facts = [
        ("method", p.method),
        ("seed", "none (deterministic method)" if p.seed is None else str(p.seed)),
        ("parameters", as_text(p.parameters)),
        (
            "background",
            f"{bg.get('kind', '?')}, {bg.get('size', '?')} rows"
            + (", weighted" if bg.get("weighted") else ""),
        ),
        ("background sha256", str(bg.get("hash", "unknown"))),
        ("explained at", p.created_at),
    ]
    groups = {u: c for u, c in p.feature_groups.items() if list(c) != [u]}
    if groups:
        facts.append(("feature groups", as_text(groups)))
    return facts
