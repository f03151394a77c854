"""What a reader sees for a feature or an output name: the one rule every report follows.

Records, results and provenance keep the names exactly as the model has them; only what a
person reads changes. In order of precedence a name is shown as

1. the caller's ``display_names`` mapping (``display_names:`` in an ``sxai`` config file);
2. for a feature, the text of the reason-catalogue entry that covers this feature alone (a
   catalogue names the factor: "Duration of the credit requested");
3. for the only output of a model whose graph gave it a converter's generic name
   (skl2onnx names a regressor's output ``variable``), "prediction";
4. the name itself, with underscores as spaces (``age_in_years`` → "age in years"), so a
   long name can wrap between words.

>>> display_names(["age_in_years"], ["variable"])
{'age_in_years': 'age in years', 'variable': 'prediction'}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .reasons import ReasonCatalogue

#: Output names converters give a graph's output when the model had none to give: skl2onnx
#: (``variable``), hummingbird and tf2onnx (``output``, ``output_0``), Keras (``dense``).
GENERIC_OUTPUT_NAMES = frozenset(
    {"variable", "output", "output_0", "output0", "outputs", "y", "Y", "dense", "predictions"}
)


def plain_name(name: str) -> str:
    """``name`` with underscores as spaces (a name with spaces already is left as it is)."""
    text = str(name)
    if " " in text or "_" not in text.strip("_"):
        return text
    return " ".join(part for part in text.split("_") if part)


def display_names(
    feature_names: Sequence[str],
    output_names: Sequence[str] = (),
    *,
    catalogue: ReasonCatalogue | None = None,
    given: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The name to show for every feature and output (see the module's rules).

    Parameters
    ----------
    feature_names : sequence of str
        Features (or feature groups) as the explanation names them.
    output_names : sequence of str
        The model's outputs.
    catalogue : ReasonCatalogue, optional
        Texts of entries covering one feature each become those features' names.
    given : mapping of str to str, optional
        Names chosen by the caller; they win over every rule.

    Returns
    -------
    dict
        One entry per feature and output.
    """
    chosen = dict(given or {})
    out: dict[str, str] = {}
    for name in feature_names:
        entry = None if catalogue is None else catalogue.entry_for(name)
        if name in chosen:
            out[name] = chosen[name]
        elif entry is not None and list(entry.features) == [name]:
            out[name] = entry.text
        else:
            out[name] = plain_name(name)
    for name in output_names:
        if name in chosen:
            out[name] = chosen[name]
        elif len(output_names) == 1 and name in GENERIC_OUTPUT_NAMES:
            out[name] = "prediction"
        else:
            out[name] = name
    return out


__all__ = ["GENERIC_OUTPUT_NAMES", "display_names", "plain_name"]
