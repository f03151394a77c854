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

from .catalogue import UNMAPPED_PREFIX, CatalogueEntry, ReasonCatalogue, load_catalogue
from .codes import adverse_mask, output_index, reason_codes
from .results import AdverseDirection, DecisionReasons, Reason, reasons_mismatch, row_digest

__all__ = [
    "UNMAPPED_PREFIX",
    "AdverseDirection",
    "CatalogueEntry",
    "DecisionReasons",
    "Reason",
    "ReasonCatalogue",
    "adverse_mask",
    "load_catalogue",
    "output_index",
    "reason_codes",
    "reasons_mismatch",
    "row_digest",
]
