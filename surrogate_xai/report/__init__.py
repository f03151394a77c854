"""Self-contained HTML reports: one per decision, and an auditor's report for a model.

Every page is rendered by Jinja2 with autoescape, carries a restrictive Content-Security-Policy
(no script at all, nothing from the network, one stylesheet allowed by its hash), draws its
charts as inline SVG, and is written atomically by :func:`write_html`.
"""

from ._html import write_html
from .audit import audit_report
from .decision import decision_report
from .findings import AuditFindings, build_audit_findings

__all__ = [
    "AuditFindings",
    "audit_report",
    "build_audit_findings",
    "decision_report",
    "write_html",
]
