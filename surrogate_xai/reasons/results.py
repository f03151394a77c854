"""The principal reasons of one decision, as computed and as recorded."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..explanation import Explanation
from ..numbers import finite_or_none

#: Which direction of the score is the adverse outcome.
AdverseDirection = Literal["decrease", "increase"]


# -- results -------------------------------------------------------------------------------------
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
            "stderr": finite_or_none(self.stderr),
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
