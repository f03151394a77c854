"""Self-contained HTML reports: one per decision, and an auditor's report for a model.

Every page is rendered by Jinja2 with autoescape, carries a restrictive Content-Security-Policy
(no script at all, nothing from the network, one stylesheet allowed by its hash), draws its
charts as inline SVG, and is written atomically by :func:`write_html`.
"""

# The findings are computed by surrogate_xai.model_audit; re-exported where they always were.
from ..model_audit import AuditFindings, build_audit_findings
from ._html import write_html
from .decision import decision_report
from .model_audit import audit_report

__all__ = [
    "AuditFindings",
    "audit_report",
    "build_audit_findings",
    "decision_report",
    "write_html",
]
