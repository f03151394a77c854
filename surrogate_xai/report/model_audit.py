"""The auditor's report for a model, rendered from :class:`AuditFindings`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..model_audit import AuditFindings
from . import _svg
from ._context import article, as_text, generator, model_facts, parity_view, provenance_facts
from ._html import num, render

#: Features drawn in the global-importance chart (all are in the table).
MAX_BARS = 20


def _importance(findings: AuditFindings) -> tuple[Any, list[dict[str, Any]]]:
    imp, k = findings.importance, findings.output_index
    order = np.argsort(-imp.mean_abs[:, k], kind="stable")
    rows = [
        {
            "feature": findings.name(imp.feature_names[j]),
            "column": imp.feature_names[j],
            "mean_abs": float(imp.mean_abs[j, k]),
            "interval": (float(imp.lower[j, k]), float(imp.upper[j, k])),
            "stderr": float(imp.stderr[j, k]),
        }
        for j in order
    ]
    shown = rows[:MAX_BARS]
    chart = _svg.interval_bars(
        [r["feature"] for r in shown],
        [r["mean_abs"] for r in shown],
        [r["interval"][0] for r in shown],
        [r["interval"][1] for r in shown],
        title=f"Mean |attribution| to {findings.output} with {imp.confidence:.0%} bootstrap intervals",
        xlabel=f"mean |attribution| to {findings.name(findings.output)}",
    )
    return chart, rows


def _table(frame: pd.DataFrame | None) -> dict[str, Any] | None:
    """A DataFrame as header + formatted cells (numbers through the common format); numeric
    columns are marked, so they align right and never wrap."""
    if frame is None:
        return None
    numeric = [
        pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        for c in frame.columns
    ]
    cells = [
        [num(v) if isinstance(v, float | np.floating) else str(v) for v in record]
        for record in frame.itertuples(index=False)
    ]
    return {"columns": [str(c) for c in frame.columns], "numeric": numeric, "rows": cells}


def _quality(findings: AuditFindings) -> dict[str, Any]:
    gap, se = findings.efficiency_gap, findings.stderr
    exact = findings.explanation.diagnostics.exact
    finite = se[np.isfinite(se)]
    quality: dict[str, Any] = {
        "gap_max": float(gap.max()) if gap.size else math.nan,
        "gap_mean": float(gap.mean()) if gap.size else math.nan,
        "exact": exact,
        "stderr_median": float(np.median(finite)) if finite.size else math.nan,
        "stderr_p90": float(np.quantile(finite, 0.9)) if finite.size else math.nan,
        "stderr_max": float(finite.max()) if finite.size else math.nan,
        "stderr_missing": int(se.size - finite.size),
        "converged": int(findings.explanation.diagnostics.converged.sum()),
        "tolerance": findings.explanation.provenance.parameters.get("tol"),
        "rows": len(findings.explanation),
        "mean_evaluations": float(findings.explanation.diagnostics.model_evaluations.mean()),
    }
    quality["stderr_chart"] = (
        None
        if exact or not finite.size
        else _svg.histogram(
            finite,
            title="Distribution of the standard errors of all attributions",
            xlabel=f"standard error of an attribution to {findings.name(findings.output)}",
            ylabel="number of attributions",
        )
    )
    return quality


def audit_report(findings: AuditFindings, *, title: str | None = None) -> str:
    """A self-contained HTML audit report for a model.

    Sections: scope and model identity; conversion (parity) evidence; data and background;
    global importance with intervals; the global surrogate with held-out fidelity and rules;
    explanation quality (efficiency gap, standard errors, seed stability of the top-4,
    background sensitivity); reason-code frequencies among adverse decisions; limitations;
    a reproducibility appendix (seeds, hashes, versions, command).

    Parameters
    ----------
    findings : AuditFindings
        From :func:`build_audit_findings`.
    title : str, optional

    Returns
    -------
    str
        A complete HTML document.
    """
    if not isinstance(findings, AuditFindings):
        raise ConfigurationError(
            f"audit_report takes AuditFindings (from build_audit_findings), got "
            f"{type(findings).__name__}"
        )
    chart, importance = _importance(findings)
    fidelity = findings.surrogate.fidelity
    frequencies = findings.reason_frequencies
    kind = str(findings.model.get("kind", "model"))
    framing = findings.framing
    return render(
        "audit.j2",
        title=title or f"Model audit: {kind}, output {findings.name(findings.output)}",
        output_label=findings.name(findings.output),
        subject=framing.subject,
        adverse_label=framing.adverse,
        adverse_article=article(findings.adverse),
        f=findings,
        model_facts=model_facts(findings.model),
        parity=parity_view(findings.parity, findings.model),
        provenance_facts=provenance_facts(findings.explanation),
        importance_chart=chart,
        importance=importance,
        fidelity_scores=[(key, num(v)) for key, v in fidelity.scores.items()],
        by_leaf=_table(fidelity.by_leaf),
        quality=_quality(findings),
        n_reasons=sum(fr.count for fr in frequencies),
        frequencies=frequencies,
        reproducibility={
            section: {str(key): as_text(v) for key, v in values.items()}
            if isinstance(values, dict)
            else values
            for section, values in findings.reproducibility.items()
        },
        **generator(),
    )
