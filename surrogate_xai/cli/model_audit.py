"""``sxai audit``: one self-contained HTML report on a model, for an auditor.

Computes what :func:`surrogate_xai.report.build_audit_findings` gathers (global importance,
surrogate fidelity, explanation quality, reason-code frequencies, reproducibility details)
on a CSV of rows, optionally with the true labels, and writes it with
:func:`~surrogate_xai.report.audit_report`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from ..background import Background
from ..exceptions import InputError
from ..parity import read_parity_evidence
from . import _config
from ._common import (
    check_distinct_paths,
    check_writable_dir,
    load_catalogue,
    load_model,
    read_csv,
    read_table,
    score_index,
    user_errors,
    write_atomic,
)
from ._config import AuditSettings
from ._invocation import command_line
from ._options import (
    AdverseLabelOption,
    AdverseOption,
    CatalogueOption,
    FavourableLabelOption,
    ModelArgument,
    ParityOption,
    QuietOption,
    SubjectOption,
    ThresholdOption,
    ToleranceOption,
)
from ._progress import Progress

_D = AuditSettings
_THRESHOLD = _config.default(_D, "threshold")
_ADVERSE = _config.default(_D, "adverse")
_SUBJECT, _ADVERSE_LABEL, _FAVOURABLE_LABEL = (
    _config.default(_D, name) for name in ("subject", "adverse_label", "favourable_label")
)


@dataclass(frozen=True)
class AuditRun:
    """What ``sxai audit`` wrote, and what it found."""

    path: Path
    findings: Any


def run_audit(
    settings: AuditSettings,
    *,
    parity: object = None,
    command: str | None = None,
    progress: Progress | None = None,
    config: Path | None = None,
) -> AuditRun:
    """Build the audit report ``settings`` describes and write it; returns where, and the
    findings.

    ``config`` is the ``--config`` file, if any (only to refuse writing over it).
    """
    progress = progress or Progress(enabled=False)
    if settings.model is None or settings.data is None or settings.report is None:
        which = (
            "MODEL" if settings.model is None else "--data" if settings.data is None else "--report"
        )
        raise InputError(f"missing {which} (give it on the command line or in --config)")
    # Where the report goes is checked first: a bad path must not cost a whole audit. Nor
    # may it be one of the inputs (the report would be renamed over the data or the model).
    check_writable_dir(settings.report, "--report")
    inputs = {
        label: value
        for label, value in (
            ("MODEL", settings.model),
            ("--data", settings.data),
            ("--background", settings.background),
            ("--catalogue", settings.catalogue),
            ("--parity", settings.parity),
            ("--config", config),
        )
        if value is not None
    }
    check_distinct_paths({"--report": settings.report}, inputs)
    report = import_module("surrogate_xai.report")
    raw = read_csv(settings.data)
    target = None
    if settings.target is not None:
        if settings.target not in raw.columns:
            raise InputError(f"{settings.data}: no target column {settings.target!r} (--target)")
        target = raw[settings.target]
        numeric = pd.to_numeric(target, errors="coerce")
        target = numeric if numeric.notna().all() else target.astype(object)
    drop = (settings.target,) if settings.target else ()
    # A single-tensor graph takes its column names from the background's header if there is
    # one (as `sxai explain` does), else from the data file's.
    raw_background = None if settings.background is None else read_csv(settings.background)
    names = raw if raw_background is None else raw_background
    model = load_model(
        settings.model,
        settings.output,
        columns=[str(c) for c in names.columns if raw_background is not None or c not in drop],
    )
    if raw_background is not None and settings.background is not None:
        background = Background(read_table(settings.background, model, frame=raw_background))
        data = read_table(
            settings.data, model, frame=raw, drop=drop, names_from=str(settings.background)
        )
    else:
        data = read_table(settings.data, model, frame=raw, drop=drop)
        background = Background.sample(
            data, min(settings.background_rows, len(data)), random_state=settings.seed
        )
    if parity is None and settings.parity is not None:
        parity = read_parity_evidence(settings.parity, model)
    catalogue = (
        load_catalogue(settings.catalogue, model.feature_names) if settings.catalogue else None
    )
    output = score_index(model, settings.score)
    if target is not None:
        # Missing labels, labels that are not the model's classes and a target that fits
        # neither a classifier nor a regression are refused before the audit runs, naming the
        # file, the column and the row.
        import_module("surrogate_xai.model_audit").check_target(
            target,
            model.output_names[output],
            model.output_names,
            what=f"column {settings.target!r} of {settings.data}",
        )
    with progress.task(f"auditing on {len(data)} rows", total=None):
        findings = report.build_audit_findings(
            model,
            data,
            background,
            target=target,
            catalogue=catalogue,
            output=output,
            adverse=settings.adverse,
            threshold=settings.threshold,
            n_explain=settings.n_explain,
            random_state=settings.seed,
            parity=parity,
            command=command,
            max_evals=settings.max_evals,
            tol=settings.tol,
            surrogate=settings.surrogate,
            surrogate_depth=settings.surrogate_depth,
            framing=settings.framing(),
            display_names=settings.display_names,
            progress=False,  # the command shows its own spinner
        )
        html = report.audit_report(
            findings, title=f"Model audit: {settings.model.name}, output {findings.output}"
        )
    # Named errors (the user's path, not a temporary file's) and no half-written file.
    return AuditRun(write_atomic(settings.report, html), findings)


def audit(
    ctx: typer.Context,
    model: ModelArgument = None,
    data: Annotated[
        Path | None,
        typer.Option(help="CSV of rows to audit the model on.", show_default=False),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="Column of --data with the true outcome (not a model input)."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="The HTML report to write.", show_default=False)
    ] = None,
    background: Annotated[
        Path | None,
        typer.Option(
            help="CSV of reference rows (default: a sample of --data, see --background-rows).",
            show_default=False,
        ),
    ] = None,
    background_rows: Annotated[
        int, typer.Option(help="Rows sampled from --data when no --background is given.")
    ] = _config.default(_D, "background_rows"),
    output: Annotated[
        str | None,
        typer.Option(help="Which graph output: 'probability', 'margin' or an output name."),
    ] = None,
    score: Annotated[
        str | None,
        typer.Option(help="Output column the decision is made on (name or index; default last)."),
    ] = None,
    threshold: ThresholdOption = _THRESHOLD,
    adverse: AdverseOption = _ADVERSE,
    subject: SubjectOption = _SUBJECT,
    adverse_label: AdverseLabelOption = _ADVERSE_LABEL,
    favourable_label: FavourableLabelOption = _FAVOURABLE_LABEL,
    catalogue: CatalogueOption = None,
    parity: ParityOption = None,
    n_explain: Annotated[
        int, typer.Option(help="Rows explained for the explanation-quality section.")
    ] = _config.default(_D, "n_explain"),
    max_evals: Annotated[
        int | None,
        typer.Option(
            help="Model rows per explained row, at most (default: the audit's 4096).",
            show_default=False,
        ),
    ] = None,
    tol: ToleranceOption = None,
    surrogate: Annotated[
        str,
        typer.Option(
            help="The global surrogate: 'tree' (readable rules) or 'linear' (one weight per "
            "column; fits additive models better)."
        ),
    ] = _config.default(_D, "surrogate"),
    surrogate_depth: Annotated[
        int, typer.Option(help="Depth of a tree surrogate.")
    ] = _config.default(_D, "surrogate_depth"),
    seed: Annotated[int, typer.Option(help="Seed of every sampled step.")] = _config.default(
        _D, "seed"
    ),
    config: Annotated[
        Path | None,
        typer.Option(
            help="YAML file of these options; options given here win.", show_default=False
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Write an auditor's HTML report on a model: importance, fidelity, reasons, provenance."""
    given = {k: v for k, v in locals().items() if k not in ("ctx", "config")}
    with user_errors():
        settings = _config.resolve(AuditSettings, ctx, given, config)
        command = command_line(*sys.argv[1:])
        run = run_audit(
            settings, command=command, progress=Progress(not settings.quiet), config=config
        )
    if not settings.quiet:
        typer.echo(f"audit report: {run.path}")
