"""``sxai explain``: the command (its options and its summary); the run itself is
:mod:`surrogate_xai.cli.explain_run`. The model is an ONNX file or, with ``--endpoint``, a
model server (:mod:`surrogate_xai.cli._endpoint`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from ..explainers import registry
from . import _config
from ._common import user_errors
from ._config import ExplainSettings
from ._options import (
    AdverseLabelOption,
    AdverseOption,
    BatchRowsOption,
    CatalogueOption,
    EndpointOption,
    FavourableLabelOption,
    HeaderFileOption,
    MaxRequestsOption,
    MaxRetriesOption,
    MaxRowsOption,
    ModelArgument,
    ModelIdOption,
    OutputNamesOption,
    ParityOption,
    ProtocolOption,
    ProtocolOptionOption,
    QuietOption,
    RateLimitOption,
    SubjectOption,
    ThresholdOption,
    TimeoutOption,
    ToleranceOption,
)
from ._progress import Progress
from .explain_run import ExplainRun, run_explain, shown_url


# -- the command ---------------------------------------------------------------------------------
def _listed(estimators: Iterable[registry.Estimator], *, aliases: bool = True) -> str:
    """Method names for a help text (``local-surrogate (local)``), from the registry."""
    return ", ".join(
        e.name + (f" ({', '.join(e.aliases)})" if aliases and e.aliases else "") for e in estimators
    )


_D = ExplainSettings
_THRESHOLD = _config.default(_D, "threshold")
_ADVERSE = _config.default(_D, "adverse")
_PROTOCOL = _config.default(_D, "protocol")
_BATCH_ROWS = _config.default(_D, "batch_rows")
_TIMEOUT = _config.default(_D, "timeout")
_MAX_RETRIES = _config.default(_D, "max_retries")
_SUBJECT, _ADVERSE_LABEL, _FAVOURABLE_LABEL = (
    _config.default(_D, name) for name in ("subject", "adverse_label", "favourable_label")
)


def explain(
    ctx: typer.Context,
    model: ModelArgument = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="CSV of the rows to explain. Columns map to the model's inputs by name "
            "(one input per column), or in order for a model that takes one tensor.",
            show_default=False,
        ),
    ] = None,
    background: Annotated[
        Path | None,
        typer.Option(
            help="CSV of reference rows (all are used; its hash is recorded).",
            show_default=False,
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(help=f"The estimator: {_listed(registry.estimators(row_independent=True))}."),
    ] = _config.default(_D, "method"),
    seed: Annotated[
        int, typer.Option(help="Seed of the sampling (same seed, same numbers).")
    ] = _config.default(_D, "seed"),
    max_evals: Annotated[
        int,
        typer.Option(
            help="Model rows per explained row, at most "
            f"({_listed(registry.estimators(budget='max_evals'), aliases=False)})."
        ),
    ] = _config.default(_D, "max_evals"),
    tol: ToleranceOption = None,
    n_samples: Annotated[
        int,
        typer.Option(
            help="Neighbourhood samples per row "
            f"({_listed(registry.estimators(budget='n_samples', row_independent=True))})."
        ),
    ] = _config.default(_D, "n_samples"),
    output: Annotated[
        str | None,
        typer.Option(
            help="Which graph output to explain: 'probability', 'margin' or an output name "
            "(default: the probabilities of a classifier). With --endpoint: the output tensor "
            "(oip-v2, a name or index) or what to pick from each prediction (an index, or a "
            "JMESPath expression such as 'scores')."
        ),
    ] = None,
    score: Annotated[
        str | None,
        typer.Option(
            help="The output column the decision and the reasons are about, by name (e.g. "
            "'probabilities[bad]') or index (default: the last column: a binary classifier's "
            "second class, a regression's only output)."
        ),
    ] = None,
    threshold: ThresholdOption = _THRESHOLD,
    adverse: AdverseOption = _ADVERSE,
    subject: SubjectOption = _SUBJECT,
    adverse_label: AdverseLabelOption = _ADVERSE_LABEL,
    favourable_label: FavourableLabelOption = _FAVOURABLE_LABEL,
    n_reasons: Annotated[
        int, typer.Option(help="Principal reasons per decision, at most.")
    ] = _config.default(_D, "n_reasons"),
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Protected attribute never given as a reason (repeatable)."),
    ] = None,
    catalogue: CatalogueOption = None,
    parity: ParityOption = None,
    id_column: Annotated[
        str | None,
        typer.Option(help="Column of decision ids (default: the row number, from 0)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="JSON-lines file, one line per decision.", show_default=False),
    ] = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for one HTML report per decision.", show_default=False),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="Audit store URL (sqlite:///audit.db, postgresql+psycopg://...) or a SQLite "
            "file path; one record per decision.",
            show_default=False,
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Explain on Dask: 'local:N' (N local workers) or a scheduler address "
            "'tcp://host:8786'.",
            show_default=False,
        ),
    ] = None,
    endpoint: EndpointOption = None,
    protocol: ProtocolOption = _PROTOCOL,
    protocol_option: ProtocolOptionOption = None,
    output_names: OutputNamesOption = None,
    header_file: HeaderFileOption = None,
    model_id: ModelIdOption = None,
    max_requests: MaxRequestsOption = None,
    max_rows: MaxRowsOption = None,
    batch_rows: BatchRowsOption = _BATCH_ROWS,
    timeout: TimeoutOption = _TIMEOUT,
    rate_limit: RateLimitOption = None,
    max_retries: MaxRetriesOption = _MAX_RETRIES,
    config: Annotated[
        Path | None,
        typer.Option(
            help="YAML file of these options (keys like max_evals); options given here win.",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Explain every row of a CSV file: attributions, decision and principal reasons.

    The model is an ONNX file (MODEL) or a model server (--endpoint URL --protocol NAME).
    """
    given = {k: v for k, v in locals().items() if k not in ("ctx", "config")}
    with user_errors():
        settings = _config.resolve(ExplainSettings, ctx, given, config)
        progress = Progress(enabled=not settings.quiet)
        run = run_explain(settings, progress=progress, config=config)
    if not settings.quiet:
        typer.echo(summary(run, settings))


def summary(run: ExplainRun, settings: ExplainSettings) -> str:
    """One line per thing written, for the terminal."""
    n = len(run.results)
    head = f"explained {n} rows with {settings.method} in {run.seconds:.1f} s"
    if settings.threshold is None:
        head += f" on output {run.score_name}; no decision made (give --threshold to decide)"
    else:
        adverse, favourable = settings.adverse_label, settings.favourable_label
        head += (
            f": {run.n_adverse} {adverse}, {n - run.n_adverse} {favourable} "
            f"({run.score_name} {'<=' if settings.adverse == 'decrease' else '>'} "
            f"{settings.threshold} is {adverse})"
        )
    lines = [head]
    if settings.tol is not None:
        converged = int(run.explanation.diagnostics.converged.sum())
        lines.append(
            f"converged: {converged} of {n} rows (every standard error below {settings.tol})"
        )
    if settings.out is not None:
        lines.append(f"results: {settings.out}")
    if run.record_ids is not None:
        lines.append(f"audit records: {len(run.record_ids)} in {shown_url(settings.store or '')}")
    if run.reports:
        lines.append(f"reports: {len(run.reports)} in {settings.report_dir}")
    lines.extend(run.recovered)
    return "\n".join(lines)
