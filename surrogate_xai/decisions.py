"""The decision pipeline: explanation → principal reasons → decision → audit record.

One module for what ``sxai explain``, the REST service and ``sxai demo`` all do with an
explanation, so a rule (which output a decision is made on, which side of the threshold is
adverse, what an outcome records) is written once. Reading the inputs, choosing the explainer
and writing files stay with each surface; what is decided, and how it is recorded, is here.

>>> policy = DecisionPolicy(output=1, threshold=0.5, framing=CREDIT)       # doctest: +SKIP
>>> decisions = decide(explanation, policy)                                # doctest: +SKIP
>>> ids = record(decisions, store, decision_ids=app_ids)                   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .audit import AuditStore
from .exceptions import ConfigurationError
from .explanation import Explanation
from .reasons import (
    AdverseDirection,
    DecisionReasons,
    ReasonCatalogue,
    adverse_mask,
    output_index,
    reason_codes,
)


@dataclass(frozen=True)
class Framing:
    """The words a decision is told in: what it is about, and its two outcomes.

    Results, records and reports use these words; nothing is computed from them. The
    defaults are neutral (a model of tumours, wines or blood sugar makes no "applicants");
    :data:`CREDIT` is the wording of a credit decision.

    Attributes
    ----------
    subject : str
        What one row is, as a noun ("row", "applicant", "patient").
    adverse, favourable : str
        The labels of the two outcomes ("declined" / "approved").
    """

    subject: str = "row"
    adverse: str = "adverse"
    favourable: str = "favourable"

    def label(self, is_adverse: bool) -> str:
        return self.adverse if is_adverse else self.favourable


#: The neutral wording, the default everywhere.
NEUTRAL = Framing()
#: A credit decision: applicants, declined or approved.
CREDIT = Framing(subject="applicant", adverse="declined", favourable="approved")
#: The labels of a credit decision (:data:`CREDIT`), as results and records hold them.
DECLINED, APPROVED = CREDIT.adverse, CREDIT.favourable


def decision_output(output_names: Sequence[str], given: str | int | None) -> int:
    """The output column a decision is made on: a name, an index (also as text, as a command
    line gives it), or by default the one rule of :func:`~surrogate_xai.reasons.output_index`
    (the last column: a classifier's positive class, a regression's only output)."""
    names = list(output_names)
    if given is None:
        return output_index(names, None)
    try:
        if isinstance(given, int) or given in names:
            return output_index(names, given)
        text = str(given).strip()
        if text.lstrip("-").isdigit():
            return output_index(names, int(text))
    except ConfigurationError:
        pass
    raise ConfigurationError(f"{given!r} is not an output of the model; outputs: {names}")


@dataclass(frozen=True)
class DecisionPolicy:
    """How explanations become decisions.

    Attributes
    ----------
    output : int or str
        The output the decision and the reasons are about (index or name).
    threshold : float, optional
        Without one, reasons are given but no decision is made.
    adverse : {"decrease", "increase"}
        With ``"decrease"`` a score at or below the threshold is adverse (declined); with
        ``"increase"`` a score above it (:func:`~surrogate_xai.reasons.adverse_mask`).
    n_reasons : int
        Principal reasons per decision, at most.
    exclude : tuple of str
        Features never given as a reason (protected attributes).
    catalogue : ReasonCatalogue, optional
        Codes and texts of the reasons.
    framing : Framing
        The words of the outcome (default neutral: "adverse" / "favourable").
    """

    output: int | str | None = None
    threshold: float | None = None
    adverse: AdverseDirection = "decrease"
    n_reasons: int = 4
    exclude: tuple[str, ...] = ()
    catalogue: ReasonCatalogue | None = None
    framing: Framing = NEUTRAL


@dataclass(frozen=True)
class Decisions:
    """What a policy made of an explanation: per row, the reasons and (with a threshold) the
    decision."""

    explanation: Explanation
    reasons: list[DecisionReasons]
    labels: list[str] | None
    policy: DecisionPolicy

    #: Per row, whether the outcome is the adverse one (None without a decision).
    is_adverse: list[bool] | None = None

    @property
    def outcomes(self) -> list[dict[str, Any]] | None:
        """What the audit record's ``outcome`` holds per row (None without a decision): the
        label, whether it is the adverse outcome (so a reader needs no list of labels), the
        threshold and the output."""
        if self.labels is None or self.is_adverse is None:
            return None
        return [
            {
                "decision": label,
                "adverse": is_adverse,
                "threshold": self.policy.threshold,
                "output": r.output,
            }
            for label, is_adverse, r in zip(self.labels, self.is_adverse, self.reasons, strict=True)
        ]

    @property
    def n_adverse(self) -> int:
        """Rows whose outcome is the adverse one (0 without a decision)."""
        return 0 if self.is_adverse is None else sum(self.is_adverse)

    #: The same count under its credit name (``sxai demo`` reports declined applicants).
    declined = n_adverse


def decide(explanation: Explanation, policy: DecisionPolicy) -> Decisions:
    """The principal reasons of every row, and its decision when the policy has a threshold."""
    reasons = reason_codes(
        explanation,
        policy.catalogue,
        n=policy.n_reasons,
        adverse=policy.adverse,
        output=policy.output,
        exclude=list(policy.exclude),
    )
    labels = is_adverse = None
    if policy.threshold is not None:
        mask = adverse_mask([r.prediction for r in reasons], policy.threshold, policy.adverse)
        is_adverse = [bool(a) for a in mask]
        labels = [policy.framing.label(a) for a in is_adverse]
    return Decisions(explanation, reasons, labels, policy, is_adverse)


def record(
    decisions: Decisions,
    store: AuditStore,
    decision_ids: Sequence[str] | None = None,
    *,
    record_ids: Sequence[str] | None = None,
) -> list[str]:
    """One audit record per row (explanation, reasons, outcome), in one transaction."""
    return store.record(
        decisions.explanation,
        reasons=decisions.reasons,
        decision_ids=None if decision_ids is None else list(decision_ids),
        outcomes=decisions.outcomes,
        record_ids=record_ids,
    )
