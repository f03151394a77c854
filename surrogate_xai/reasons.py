"""Principal reasons for a decision: the largest contributions toward the adverse outcome.

A *catalogue* maps features (or feature groups) to reason codes and their texts, many features
to one code::

    name: german-credit
    version: "2024-06"
    reasons:
      - code: R07
        text: Too many existing credits
        features: [number_of_existing_credits_at_this_bank]
      - code: R02
        text: Loan amount or duration too high
        features: [credit_amount, duration_in_month]

:func:`reason_codes` turns each explained row into a :class:`DecisionReasons`: the top ``n``
codes that push the chosen output toward the adverse outcome, each with its contribution, an
interval from the standard errors, and whether that rank is stable across re-runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .background import Background
from .exceptions import CatalogueError, ConfigurationError, ReferenceMismatchError
from .explanation import Explanation

AdverseDirection = Literal["decrease", "increase"]

#: Prefix of the code given to a feature that has no catalogue entry.
UNMAPPED_PREFIX = "UNMAPPED:"


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


# -- the catalogue -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogueEntry:
    """One reason code, its text and the features (or groups) it covers."""

    code: str
    text: str
    features: tuple[str, ...]


class ReasonCatalogue:
    """Reason codes and texts keyed by feature or feature-group name (many-to-one).

    Parameters
    ----------
    entries : sequence of CatalogueEntry
    version : str
        The catalogue's version, recorded with every reason (regulators ask which wording was
        in force).
    name : str, optional

    Notes
    -----
    ``sha256`` is a digest of the entries, name and version, so a record proves which texts
    were used even if a version string was not bumped after an edit.
    """

    def __init__(
        self, entries: Sequence[CatalogueEntry], *, version: str, name: str | None = None
    ) -> None:
        if not isinstance(version, str) or not version:
            raise CatalogueError("a catalogue needs a non-empty version string (it is recorded)")
        codes: set[str] = set()
        owner: dict[str, str] = {}
        for entry in entries:
            if entry.code in codes:
                raise CatalogueError(f"code {entry.code!r} appears twice in the catalogue")
            if entry.code.startswith(UNMAPPED_PREFIX):
                raise CatalogueError(f"code {entry.code!r} uses the reserved prefix")
            codes.add(entry.code)
            for feat in entry.features:
                if feat in owner:
                    raise CatalogueError(
                        f"feature {feat!r} is under both {owner[feat]!r} and {entry.code!r}; "
                        "each feature maps to one code"
                    )
                owner[feat] = entry.code
        self.entries = tuple(entries)
        self.version = version
        self.name = name
        self._by_feature = {f: e for e in self.entries for f in e.features}
        self.sha256 = hashlib.sha256(
            json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=True).encode()
        ).hexdigest()

    def __repr__(self) -> str:
        return (
            f"ReasonCatalogue(name={self.name!r}, version={self.version!r}, "
            f"{len(self.entries)} codes)"
        )

    def entry_for(self, feature: str) -> CatalogueEntry | None:
        """The entry that covers ``feature`` (a feature or group name), if any."""
        return self._by_feature.get(feature)

    def check_features(
        self, feature_names: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        """Refuse a catalogue that maps a feature the model does not have.

        :func:`reason_codes` accepts such a catalogue (one catalogue may serve several
        models); a caller that knows its catalogue is written for this model (``sxai``, the
        service) checks it here, so that a typo (``purpos``) is not silently an unmapped
        feature.

        Parameters
        ----------
        feature_names : sequence of str
            The model's features.
        groups : mapping, optional
            Feature groups: a group name and the columns inside it are known too.

        Raises
        ------
        CatalogueError
            Naming the unknown feature(s) and the model's features.
        """
        known = {str(f) for f in feature_names}
        for name, cols in (groups or {}).items():
            known.add(str(name))
            known.update(str(c) for c in cols)
        unknown = [f for e in self.entries for f in e.features if f not in known]
        if unknown:
            shown = ", ".join(str(f) for f in list(feature_names)[:20])
            raise CatalogueError(
                f"the catalogue maps {', '.join(repr(u) for u in unknown)}, which the model "
                f"does not have; the model's features: {shown}"
                + (", ..." if len(feature_names) > 20 else "")
            )

    def describe(self) -> dict[str, Any]:
        """What a record keeps: name, version and digest."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "reasons": [
                {"code": e.code, "text": e.text, "features": list(e.features)} for e in self.entries
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReasonCatalogue:
        """Build from ``{"name": ..., "version": ..., "reasons": [{code, text, features}]}``."""
        if not isinstance(d, Mapping):
            raise CatalogueError(f"a catalogue must be a mapping, got {type(d).__name__}")
        unknown = set(d) - {"name", "version", "reasons"}
        if unknown:
            raise CatalogueError(f"unknown catalogue key(s) {sorted(unknown)}")
        if "version" not in d:
            raise CatalogueError("the catalogue has no 'version'")
        reasons = d.get("reasons")
        if not isinstance(reasons, list) or not reasons:
            raise CatalogueError("the catalogue needs a non-empty list under 'reasons'")
        entries = []
        for i, item in enumerate(reasons):
            if not isinstance(item, Mapping) or set(item) != {"code", "text", "features"}:
                raise CatalogueError(
                    f"reasons[{i}] must have exactly the keys code, text, features; got "
                    f"{sorted(item) if isinstance(item, Mapping) else type(item).__name__}"
                )
            code, text, feats = item["code"], item["text"], item["features"]
            if not isinstance(code, str) or not code or not isinstance(text, str) or not text:
                raise CatalogueError(f"reasons[{i}]: code and text must be non-empty strings")
            if isinstance(feats, str):
                feats = [feats]
            if (
                not isinstance(feats, list)
                or not feats
                or not all(isinstance(f, str) for f in feats)
            ):
                raise CatalogueError(f"reasons[{i}] ({code}): features must be a list of names")
            entries.append(CatalogueEntry(code, text, tuple(feats)))
        version = d["version"]
        name = d.get("name")
        return cls(
            entries,
            version=str(version) if isinstance(version, int | float) else version,
            name=None if name is None else str(name),
        )

    @classmethod
    def from_yaml(cls, text: str) -> ReasonCatalogue:
        """Parse YAML text (see the module docstring for the layout)."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CatalogueError(f"the catalogue is not valid YAML: {exc}") from exc
        return cls.from_dict(data)


def load_catalogue(
    source: ReasonCatalogue | Mapping[str, Any] | str | os.PathLike[str],
) -> ReasonCatalogue:
    """A catalogue from a YAML file path, a dict, or a :class:`ReasonCatalogue` (returned as is)."""
    if isinstance(source, ReasonCatalogue):
        return source
    if isinstance(source, Mapping):
        return ReasonCatalogue.from_dict(source)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise CatalogueError(
                f"no catalogue file at {str(path)!r} (YAML text goes to ReasonCatalogue.from_yaml)"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            # A catalogue saved in another encoding: say so, not a decoding traceback.
            raise CatalogueError(
                f"the catalogue {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason})"
            ) from exc
        return ReasonCatalogue.from_yaml(text)
    raise CatalogueError(f"cannot read a catalogue from {type(source).__name__}")


# -- results -------------------------------------------------------------------------------------
def _plain_float(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class Reason:
    """One principal reason.

    Attributes
    ----------
    rank : int
        1 for the strongest reason.
    code, text : str
        From the catalogue, or generated (``catalogued=False``) for an unmapped feature.
    features : tuple of str
        The attribution units (features or groups) whose contributions were summed.
    contribution : float
        Their summed attribution to the chosen output, signed (negative when
        ``adverse="decrease"``).
    stderr : float
        Standard error of ``contribution`` (members combined as if independent); NaN if the
        method gives none.
    interval : tuple of float, or None
        ``contribution ± z · stderr``; None when ``stderr`` is NaN.
    stable : bool or None
        False when this reason's interval overlaps the next candidate's (a re-run with another
        seed could swap them, or drop this reason); None when unknown (no standard errors).
    catalogued : bool
    """

    rank: int
    code: str
    text: str
    features: tuple[str, ...]
    contribution: float
    stderr: float
    interval: tuple[float, float] | None
    stable: bool | None
    catalogued: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "code": self.code,
            "text": self.text,
            "features": list(self.features),
            "contribution": self.contribution,
            "stderr": _plain_float(self.stderr),
            "interval": None if self.interval is None else list(self.interval),
            "stable": self.stable,
            "catalogued": self.catalogued,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Reason:
        return cls(
            rank=int(d["rank"]),
            code=d["code"],
            text=d["text"],
            features=tuple(d["features"]),
            contribution=float(d["contribution"]),
            stderr=math.nan if d["stderr"] is None else float(d["stderr"]),
            interval=None if d["interval"] is None else (d["interval"][0], d["interval"][1]),
            stable=d["stable"],
            catalogued=bool(d["catalogued"]),
        )


@dataclass(frozen=True)
class DecisionReasons:
    """The principal reasons for one explained row, and how they were chosen.

    Attributes
    ----------
    row : int
        Position of the row in the explanation.
    reasons : tuple of Reason
        At most ``n``, strongest first; fewer when fewer codes push toward the adverse outcome.
    output : str
        The output the reasons explain.
    adverse : {"decrease", "increase"}
        Which direction of ``output`` is the adverse outcome.
    n, z : int, float
        The parameters used.
    prediction, base_value : float
        The model's value of ``output`` for the row and the reference population's mean.
    catalogue : dict or None
        Name, version and sha256 of the catalogue used.
    reference : dict
        The reference population (the explanation's background): hash, size, kind.
    excluded : tuple of str
        Protected attributes that were never eligible.
    suppressed : tuple of str
        Those of ``excluded`` (or the groups containing them) that would have ranked within
        the top ``n``: the decision is driven by a protected attribute, which a reviewer must see.
    flags : tuple of str
        Human-readable warnings (unmapped features, unstable or unknown ranks, suppression).
    source_sha256 : str
        Digest of the row's values and base values, so a store can check the reasons belong
        to the explanation row they are stored with.
    """

    row: int
    reasons: tuple[Reason, ...]
    output: str
    adverse: AdverseDirection
    n: int
    z: float
    prediction: float
    base_value: float
    catalogue: dict[str, Any] | None
    reference: dict[str, Any]
    excluded: tuple[str, ...] = ()
    suppressed: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    source_sha256: str = ""

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "reasons": [r.to_dict() for r in self.reasons],
            "output": self.output,
            "adverse": self.adverse,
            "n": self.n,
            "z": self.z,
            "prediction": self.prediction,
            "base_value": self.base_value,
            "catalogue": self.catalogue,
            "reference": self.reference,
            "excluded": list(self.excluded),
            "suppressed": list(self.suppressed),
            "flags": list(self.flags),
            "source_sha256": self.source_sha256,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecisionReasons:
        return cls(
            row=int(d["row"]),
            reasons=tuple(Reason.from_dict(r) for r in d["reasons"]),
            output=d["output"],
            adverse=d["adverse"],
            n=int(d["n"]),
            z=float(d["z"]),
            prediction=float(d["prediction"]),
            base_value=float(d["base_value"]),
            catalogue=None if d["catalogue"] is None else dict(d["catalogue"]),
            reference=dict(d["reference"]),
            excluded=tuple(d["excluded"]),
            suppressed=tuple(d["suppressed"]),
            flags=tuple(d["flags"]),
            source_sha256=d["source_sha256"],
        )


def row_digest(explanation: Explanation, row: int) -> str:
    """sha256 of one row's values and base values (little-endian float64 bytes)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(explanation.values[row], dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(explanation.base_values[row], dtype="<f8").tobytes())
    return h.hexdigest()


def reasons_mismatch(reasons: Any, explanation: Explanation, row: int) -> str | None:
    """Why ``reasons`` cannot go with row ``row`` of ``explanation`` (None if they can).

    Reports and audit records pair a row with its reasons; reasons computed for another row
    or another explanation (their digest differs) would state someone else's principal reasons.
    """
    if not isinstance(reasons, DecisionReasons):
        return (
            f"reasons must be a DecisionReasons (from reason_codes), got {type(reasons).__name__}"
        )
    if reasons.row != row or reasons.source_sha256 != row_digest(explanation, row):
        return (
            f"the reasons given for row {row} were computed for row {reasons.row} of another "
            "explanation or row"
        )
    return None


# -- the computation -----------------------------------------------------------------------------
@dataclass
class _Candidate:
    code: str
    text: str
    units: list[int]
    catalogued: bool
    excluded: bool


def _output_index(explanation: Explanation, output: int | str) -> int:
    return output_index(explanation.output_names, output)


def output_index(output_names: Sequence[str], output: int | str) -> int:
    """The position of ``output`` (a name, or an index that may be negative) in the outputs.

    The one rule for reasons, audit findings and the command line's ``--score``.
    """
    names = list(output_names)
    if isinstance(output, str):
        if output not in names:
            raise ConfigurationError(f"unknown output {output!r}; outputs: {names}")
        return names.index(output)
    if isinstance(output, bool) or not isinstance(output, int | np.integer):
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
    output: int | str = 0,
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
    output : int or str
        The output whose value decided the outcome.
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
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigurationError(f"n must be an integer >= 1, got {n!r}")
    if adverse not in ("decrease", "increase"):
        raise ConfigurationError(f"adverse must be 'decrease' or 'increase', got {adverse!r}")
    if isinstance(z, bool) or not isinstance(z, int | float) or not z >= 0:
        raise ConfigurationError(f"z must be a number >= 0, got {z!r}")
    cat = None if catalogue is None else load_catalogue(catalogue)
    k = _output_index(explanation, output)
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
