"""What an auditor's report says about a model: the findings as plain data.

The *model audit* is the auditor's review of a whole model (global importance, a global
surrogate, explanation quality, reason frequencies, limitations), rendered by
:func:`surrogate_xai.report.audit_report` and run by ``sxai audit``. It is not the *audit
trail* (``surrogate_xai.audit``: the hash-chained store of per-decision records).
The findings are plain data, so they can be tested without rendering and rendered without
recomputing; :func:`~surrogate_xai.model_audit.build_audit_findings` computes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..decisions import NEUTRAL, Framing
from ..explanation import Explanation
from ..global_ import Fidelity, ImportanceSummary
from ..parity import ParityReport
from ..reasons import (
    AdverseDirection,
    DecisionReasons,
)

#: Model rows per explained row for the default explainer: enough for standard errors well
#: below typical contributions on tabular credit models, small enough for a quick audit.
DEFAULT_MAX_EVALS = 4_096
#: Features compared between seeds (FCRA's "up to four key factors").
TOP = 4
#: |Spearman correlation| from which a pair of numeric columns is listed as a limitation.
CORRELATION_LIMIT = 0.5


@dataclass(frozen=True)
class SurrogateFindings:
    """The global surrogate: a shallow tree fitted to the model's output, judged held-out."""

    kind: str
    max_depth: int
    output: str
    fidelity: Fidelity
    rules: list[str]
    low_fidelity: bool
    min_fidelity: float


@dataclass(frozen=True)
class SeedStability:
    """Agreement of each row's top adverse features between two seeds.

    ``jaccard[i]`` is ``|A ∩ B| / |A ∪ B|`` of row ``i``'s top-``top`` features pushing toward
    the adverse outcome under each seed (1 when both sets are empty).
    """

    seeds: tuple[int | None, int | None]
    top: int
    jaccard: np.ndarray
    mean: float
    identical_rows: int


@dataclass(frozen=True)
class BackgroundSensitivity:
    """How much the attributions move when the reference population is resampled."""

    alternative: dict[str, Any]
    relative_change: float
    top_jaccard: float
    base_value_shift: float


@dataclass(frozen=True)
class ReasonFrequency:
    """How often a reason code is given among adverse decisions."""

    code: str
    text: str
    count: int
    first: int
    share: float


@dataclass(frozen=True)
class AuditFindings:
    """Everything the audit report shows; built by :func:`build_audit_findings`.

    Attributes
    ----------
    model : dict
        The model's description (identity, kind, columns, outputs, parity if recorded).
    output : str
        The output decisions are made on.
    adverse : {"decrease", "increase"}
    threshold : float or None
        A row's decision is adverse when its output is ``<= threshold`` (``"decrease"``) or
        ``> threshold`` (``"increase"``): the rule ``output > threshold`` used by the parity
        check, read in the adverse direction. None: no decision was made.
    n_data : int
        Rows of the audit data.
    data_sha256 : str
    data_summary : list of dict
        One entry per input column: kind, missing count, and range or categories.
    background : dict
        The explainer's background: hash, size, kind.
    explained_rows : int array
        Positions in the audit data of the rows explained (a seeded sample).
    explanation : Explanation
    importance : ImportanceSummary
        Mean |attribution| with bootstrap intervals over the explained rows.
    surrogate : SurrogateFindings
    parity : ParityReport or None
    efficiency_gap : array of shape (n_explained,)
    stderr : array of shape (n_explained * n_features,)
        Every standard error of the chosen output.
    seed_stability : SeedStability or None
        None when the explainer has no seed (its values do not depend on one).
    background_sensitivity : BackgroundSensitivity or None
        None when no different background could be drawn from the audit data.
    reasons : list of DecisionReasons
        One per explained row.
    adverse_rows : bool array of shape (n_explained,)
        All False without a threshold.
    reason_frequencies : list of ReasonFrequency
        Codes among adverse decisions (without a threshold: among all explained rows), most
        frequent first; counts sum to the number of reasons given to those rows.
    performance : dict or None
        Against ``target``, when given: for a classifier (``kind`` "classification") the
        accuracy of the decision rule (None without a threshold) and the AUC; for a
        regression (``kind`` "regression") R², RMSE and MAE.
    correlations : list of (str, str, float)
        Numeric column pairs with ``|Spearman| >= CORRELATION_LIMIT``.
    limitations : list of str
    reproducibility : dict
        Seeds, hashes, versions and the command that produced the report.
    catalogue : dict or None
    framing : Framing
        What a row is called and the outcome labels.
    display_names : dict
        The name shown for each feature and output (:mod:`surrogate_xai.display`).
    """

    model: dict[str, Any]
    output: str
    adverse: AdverseDirection
    threshold: float | None
    n_data: int
    data_sha256: str
    data_summary: list[dict[str, Any]]
    background: dict[str, Any]
    explained_rows: np.ndarray
    explanation: Explanation
    importance: ImportanceSummary
    surrogate: SurrogateFindings
    parity: ParityReport | None
    efficiency_gap: np.ndarray
    stderr: np.ndarray
    seed_stability: SeedStability | None
    background_sensitivity: BackgroundSensitivity | None
    reasons: list[DecisionReasons]
    adverse_rows: np.ndarray
    reason_frequencies: list[ReasonFrequency]
    performance: dict[str, Any] | None
    correlations: list[tuple[str, str, float]]
    limitations: list[str]
    reproducibility: dict[str, Any]
    catalogue: dict[str, Any] | None
    framing: Framing = NEUTRAL
    display_names: dict[str, str] = field(default_factory=dict)

    @property
    def decided(self) -> bool:
        """Whether a threshold was given, so that rows have decisions."""
        return self.threshold is not None

    def name(self, key: str) -> str:
        """The display name of a feature or output."""
        return self.display_names.get(key, key)

    @property
    def output_index(self) -> int:
        return self.explanation.output_names.index(self.output)

    @property
    def n_adverse(self) -> int:
        return int(self.adverse_rows.sum())


# -- pieces --------------------------------------------------------------------------------------
def top_adverse(values: np.ndarray, adverse: str, top: int = TOP) -> list[frozenset[int]]:
    """Per row, the ``top`` units pushing hardest toward the adverse outcome (push > 0).

    ``values`` has shape (n_samples, n_features); ties keep the first feature first, as in
    :func:`~surrogate_xai.reason_codes`.
    """
    push = -values if adverse == "decrease" else values
    out = []
    for row in push:
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))
        out.append(frozenset(j for j in order[:top] if row[j] > 0))
    return out


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """``|a ∩ b| / |a ∪ b|``, 1 for two empty sets."""
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def reason_frequencies(
    reasons: Sequence[DecisionReasons], adverse_rows: np.ndarray
) -> list[ReasonFrequency]:
    """Counts of each code among the adverse decisions' reasons, most frequent first."""
    counts: Counter[str] = Counter()
    first: Counter[str] = Counter()
    texts: dict[str, str] = {}
    for r, is_adverse in zip(reasons, adverse_rows, strict=True):
        if not is_adverse:
            continue
        for reason in r.reasons:
            counts[reason.code] += 1
            # A generated text names one applicant's value; describe the code instead.
            texts.setdefault(
                reason.code,
                reason.text
                if reason.catalogued
                else f"{', '.join(reason.features)} (no catalogue entry)",
            )
        if r.reasons:
            first[r.reasons[0].code] += 1
    n_adverse = max(int(np.sum(adverse_rows)), 1)
    return [
        ReasonFrequency(code, texts[code], n, first[code], n / n_adverse)
        for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
