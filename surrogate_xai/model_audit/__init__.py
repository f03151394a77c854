"""The model audit: an auditor's review of a whole model, computed once as plain findings.

Not to be confused with the audit *trail*, :mod:`surrogate_xai.audit` (the per-decision
records). The findings are rendered by :func:`surrogate_xai.report.audit_report`; ``sxai
audit`` runs both.
"""

from .build import build_audit_findings
from .findings import AuditFindings
from .scoring import check_target, target_truth

__all__ = ["AuditFindings", "build_audit_findings", "check_target", "target_truth"]
