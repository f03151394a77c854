"""Computing principal reasons: the contributions that push toward the adverse outcome."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..background import Background
from ..exceptions import CatalogueError, ConfigurationError, ReferenceMismatchError
from ..explanation import Explanation
from ..validation import check_int, check_number, is_int
from .catalogue import UNMAPPED_PREFIX, ReasonCatalogue, load_catalogue
from .results import AdverseDirection, DecisionReasons, Reason, row_digest


def adverse_mask(predictions: Any, threshold: float, adverse: AdverseDirection) -> np.ndarray:
    """Which predictions are adverse decisions at ``threshold``.

    The decision rule is the one parity checks count flips under, ``output > threshold``;
    ``adverse`` says which side of it is the adverse one: ``"decrease"`` (a low score, e.g.
    P(good), declines: ``output <= threshold``) or ``"increase"`` (a high score, e.g. P(bad),
    declines: ``output > threshold``). One rule for reports, the CLI and the service, so the
    same score is never declined in one and approved in another.
    """
    p = np.asarray(predictions, dtype=np.float64)
    if adverse == "decrease":
        return p <= threshold
    if adverse == "increase":
        return p > threshold
    raise ConfigurationError(f"adverse must be 'decrease' or 'increase', got {adverse!r}")


# -- the computation -----------------------------------------------------------------------------
@dataclass
class _Candidate:
    code: str
    text: str
    units: list[int]
    catalogued: bool
    excluded: bool


def output_index(output_names: Sequence[str], output: int | str | None) -> int:
    """The position of ``output`` (a name, or an index that may be negative) in the outputs.

    The one rule for reasons, decisions, reports, plots, audit findings and the command
    line's ``--score``. ``None`` is the default output everywhere: the **last** column, which
    is a binary classifier's positive class (``probabilities[1]``, as scikit-learn orders
    classes) and a regression's only output.
    """
    names = list(output_names)
    if output is None:
        if not names:
            raise ConfigurationError("the model has no outputs")
        return len(names) - 1
    if isinstance(output, str):
        if output not in names:
            raise ConfigurationError(f"unknown output {output!r}; outputs: {names}")
        return names.index(output)
    if not is_int(output):
        raise ConfigurationError(f"output must be an index or a name, got {output!r}")
    if not -len(names) <= output < len(names):
        raise ConfigurationError(f"output index {output} out of range for outputs {names}")
    return int(output) % len(names)


def _excluded_units(
    units: list[str], groups: Mapping[str, Sequence[str]], exclude: Iterable[str]
) -> tuple[set[int], list[str], list[str]]:
    """Indices of excluded units, the names asked for, and notes on whole groups excluded."""
    if isinstance(exclude, str):
        exclude = [exclude]
    owner = {col: u for u, cols in groups.items() for col in cols}
    out: set[int] = set()
    asked, notes = [], []
    for name in exclude:
        asked.append(str(name))
        if name in units:
            out.add(units.index(name))
        elif name in owner and owner[name] in units:
            out.add(units.index(owner[name]))
            notes.append(
                f"group {owner[name]!r} contains protected attribute {name!r} and is "
                "excluded as a whole"
            )
        else:
            raise ConfigurationError(
                f"exclude names {name!r}, which is neither a feature nor a grouped column of "
                f"this explanation; features: {units}"
            )
    return out, asked, notes


def _fallback_text(unit: str, columns: Sequence[str], data: pd.DataFrame, row: int) -> str:
    if len(columns) == 1 and columns[0] in data.columns:
        return f"{unit} = {data[columns[0]].iloc[row]}"
    return f"{unit} ({', '.join(columns)})"


def _candidates(
    units: list[str],
    groups: Mapping[str, Sequence[str]],
    catalogue: ReasonCatalogue | None,
    excluded: set[int],
) -> list[_Candidate]:
    """Reason candidates in first-unit order: codes with their member units.

    Excluded units are candidates of their own (so that suppression can be reported) and never
    join a code shared with other units.
    """
    by_code: dict[str, _Candidate] = {}
    out: list[_Candidate] = []
    for j, unit in enumerate(units):
        cols = list(groups.get(unit, [unit]))
        entry = catalogue.entry_for(unit) if catalogue is not None else None
        if entry is None and catalogue is not None:
            found = {e.code: e for c in cols if (e := catalogue.entry_for(c)) is not None}
            if len(found) > 1:
                raise CatalogueError(
                    f"group {unit!r} has columns under several codes {sorted(found)}; "
                    "map the group itself in the catalogue"
                )
            entry = next(iter(found.values()), None)
        if j in excluded:
            code = entry.code if entry is not None else UNMAPPED_PREFIX + unit
            out.append(_Candidate(code, "", [j], entry is not None, excluded=True))
        elif entry is None:
            out.append(_Candidate(UNMAPPED_PREFIX + unit, "", [j], False, excluded=False))
        elif entry.code in by_code:
            by_code[entry.code].units.append(j)
        else:
            cand = _Candidate(entry.code, entry.text, [j], True, excluded=False)
            by_code[entry.code] = cand
            out.append(cand)
    return out


def _check_reference(
    explanation: Explanation, reference: Background | pd.DataFrame | np.ndarray | None
) -> dict[str, Any]:
    recorded = dict(explanation.provenance.background)
    if reference is None:
        return recorded
    bg = reference if isinstance(reference, Background) else Background(reference)
    columns = explanation.provenance.model.get("feature_names") or list(explanation.data.columns)
    bg = bg.with_columns(list(columns))
    if bg.hash != recorded.get("hash"):
        raise ReferenceMismatchError(
            f"the explanation was computed against background {recorded.get('hash')!r} "
            f"(size {recorded.get('size')}), not against this reference (hash {bg.hash!r}, "
            f"size {len(bg)}); attributions depend on the reference, so explain again with it "
            "as the background: explainer.fit(model, reference).explain(X)"
        )
    return {**recorded, **bg.describe()}


def reason_codes(
    explanation: Explanation,
    catalogue: ReasonCatalogue | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    n: int = 4,
    adverse: AdverseDirection = "decrease",
    output: int | str | None = None,
    exclude: Iterable[str] = (),
    reference: Background | pd.DataFrame | np.ndarray | None = None,
    *,
    z: float = 1.96,
) -> list[DecisionReasons]:
    """The principal reasons for each explained row.

    Parameters
    ----------
    explanation : Explanation
        Values of shape (n_samples, n_features, n_outputs).
    catalogue : ReasonCatalogue, dict, or path to a YAML file, optional
        Maps features or feature groups (or the columns inside a group) to codes and texts.
        Features without an entry get a generated code ``UNMAPPED:<feature>`` and text, and
        are flagged.
    n : int
        At most this many reasons per row.
    adverse : {"decrease", "increase"}
        The adverse outcome is a low (``"decrease"``) or high (``"increase"``) value of
        ``output``: with ``output="probabilities[good]"`` it is ``"decrease"``, with
        ``"probabilities[bad]"`` ``"increase"``. Only contributions in that direction count.
    output : int or str, optional
        The output whose value decided the outcome; default the last
        (:func:`output_index`).
    exclude : iterable of str
        Protected attributes (features, or columns inside a group: the whole group is then
        excluded). They are never emitted; if one would have ranked within the top ``n`` it is
        listed in ``suppressed`` and flagged.
    reference : Background or DataFrame, optional
        The reference population the reasons are relative to (e.g. approved applicants only).
        Attributions are computed against the explainer's background, so a finished explanation
        cannot be moved to another reference: explain with the reference *as the background*
        (``explainer.fit(model, reference)``), and pass it here too. It is then checked
        (:class:`~surrogate_xai.exceptions.ReferenceMismatchError` if the explanation's
        background hash differs) and its description (kind, size, hash) is recorded in each
        result. Without it the explanation's background is recorded as the reference.
    z : float
        Half-width of the intervals in standard errors (1.96: 95 % under normality).

    Returns
    -------
    list of DecisionReasons
        One per explained row.

    Notes
    -----
    Features sharing a code are combined before ranking, so an applicant never gets the same
    reason twice: their contributions are summed, and their standard errors combined as
    ``sqrt(Σ se²)``, which assumes the estimates are independent (they come from one sampling
    design and may be correlated, so the interval is approximate). A reason's contribution is
    the net sum of its features: one feature pushing toward the adverse outcome and another
    away from it partly cancel.

    Candidates are ranked by their push toward the adverse outcome (ties: first feature
    first). A reason is ``stable=False`` when its interval overlaps the next candidate's
    (for the last reason, the first candidate not emitted, or zero when there is none); with
    exact values (standard errors 0) every reason is stable. When the method gives no
    standard errors (``ShapKernel``), ``stable`` is None and the row is flagged.
    """
    if not isinstance(explanation, Explanation):
        raise ConfigurationError(f"expected an Explanation, got {type(explanation).__name__}")
    check_int("n", n)
    if adverse not in ("decrease", "increase"):
        raise ConfigurationError(f"adverse must be 'decrease' or 'increase', got {adverse!r}")
    check_number("z", z, minimum=0)
    cat = None if catalogue is None else load_catalogue(catalogue)
    k = output_index(explanation.output_names, output)
    units = list(explanation.feature_names)
    groups = {u: list(c) for u, c in explanation.provenance.feature_groups.items()}
    excluded, asked, exclusion_notes = _excluded_units(units, groups, exclude)
    candidates = _candidates(units, groups, cat, excluded)
    reference_desc = _check_reference(explanation, reference)
    context = _Context(
        output=k,
        candidates=candidates,
        groups=groups,
        adverse=adverse,
        n=int(n),
        z=float(z),
        catalogue=None if cat is None else cat.describe(),
        reference=reference_desc,
        excluded=tuple(asked),
        notes=tuple(exclusion_notes),
    )
    return [_row_reasons(explanation, i, context) for i in range(len(explanation))]


@dataclass(frozen=True)
class _Context:
    output: int
    candidates: list[_Candidate]
    groups: Mapping[str, Sequence[str]]
    adverse: AdverseDirection
    n: int
    z: float
    catalogue: dict[str, Any] | None
    reference: dict[str, Any]
    excluded: tuple[str, ...]
    notes: tuple[str, ...]


def _row_reasons(explanation: Explanation, i: int, ctx: _Context) -> DecisionReasons:
    k, candidates, groups, n, z = ctx.output, ctx.candidates, ctx.groups, ctx.n, ctx.z
    sign = -1.0 if ctx.adverse == "decrease" else 1.0
    values = explanation.values[i, :, k]
    stderr = explanation.stderr[i, :, k]
    contrib = np.array([values[c.units].sum() for c in candidates])
    se = np.array([math.sqrt(float(np.sum(stderr[c.units] ** 2))) for c in candidates])
    push = sign * contrib  # > 0: toward the adverse outcome
    # Ties keep the first feature first, so the order never depends on anything but the values.
    order = sorted(range(len(candidates)), key=lambda c: (-push[c], c))
    flags: list[str] = list(ctx.notes)
    suppressed = [
        ", ".join(explanation.feature_names[u] for u in candidates[c].units)
        for c in order[:n]
        if candidates[c].excluded and push[c] > 0
    ]
    for name in suppressed:
        flags.append(
            f"protected attribute {name} would have been among the top {n} reasons and was "
            "not emitted"
        )
    eligible = [c for c in order if not candidates[c].excluded]
    emitted = [c for c in eligible if push[c] > 0][:n]
    reasons = []
    for rank, c in enumerate(emitted, start=1):
        cand = candidates[c]
        nxt = eligible[eligible.index(c) + 1] if eligible.index(c) + 1 < len(eligible) else None
        if math.isnan(se[c]) or (nxt is not None and math.isnan(se[nxt])):
            stable: bool | None = None
        else:
            upper_next = 0.0 if nxt is None else push[nxt] + z * se[nxt]
            stable = bool(push[c] - z * se[c] > upper_next)
        names = tuple(explanation.feature_names[u] for u in cand.units)
        text = cand.text
        if not cand.catalogued:
            u = cand.units[0]
            unit = explanation.feature_names[u]
            text = _fallback_text(unit, groups.get(unit, [unit]), explanation.data, i)
            flags.append(f"feature {unit!r} has no catalogue entry; its reason text is generated")
        interval = (
            None
            if math.isnan(se[c])
            else (float(contrib[c] - z * se[c]), float(contrib[c] + z * se[c]))
        )
        reasons.append(
            Reason(
                rank=rank,
                code=cand.code,
                text=text,
                features=names,
                contribution=float(contrib[c]),
                stderr=float(se[c]),
                interval=interval,
                stable=stable,
                catalogued=cand.catalogued,
            )
        )
    if any(r.stable is None for r in reasons):
        flags.append(
            f"standard errors are unavailable (method {explanation.provenance.method!r}); "
            "the stability of the reasons is unknown"
        )
    unstable = [r.code for r in reasons if r.stable is False]
    if unstable:
        flags.append(
            f"reason(s) {', '.join(unstable)} overlap the next candidate within {z} standard "
            "errors; a re-run with another seed could give a different list"
        )
    return DecisionReasons(
        row=i,
        reasons=tuple(reasons),
        output=explanation.output_names[k],
        adverse=ctx.adverse,
        n=n,
        z=z,
        prediction=float(explanation.diagnostics.predictions[i, k]),
        base_value=float(explanation.base_values[i, k]),
        catalogue=ctx.catalogue,
        reference=ctx.reference,
        excluded=ctx.excluded,
        suppressed=tuple(suppressed),
        flags=tuple(flags),
        source_sha256=row_digest(explanation, i),
    )
