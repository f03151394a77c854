"""A run of ``sxai explain`` (also ``sxai demo``'s): every row of a CSV file explained through
an ONNX model (or a model server, ``--endpoint``) and decided by :mod:`surrogate_xai.decisions`,
with its outputs and records.

The run is all or nothing. Every input (model, tables, catalogue, ids, output paths, store)
is read and checked before the first model evaluation. After every row is explained, the
results file and every report are rendered in memory and written to temporary files next to
their final paths; only then are the audit records committed, in one transaction; only then
are the files renamed into place. So a failure while writing an output leaves no records, a
failure of the store leaves no outputs, and the only step after the commit is a rename per
file. The record ids are chosen before anything is written, so the staged files already
carry them. From the commit to the last rename Ctrl-C is held back; a rename that fails is
named, the others are still done. A failure leaves no half-written file and no partial
batch; a process killed outright (SIGKILL, power loss) after the commit can leave the staged
files, with their real record ids, as hidden ``.NAME.XXXX.tmp`` files next to the outputs.
"""

from __future__ import annotations

import inspect
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..audit import AuditStore
from ..decisions import DecisionPolicy, Decisions, decide, record
from ..display import display_names
from ..exceptions import ConfigurationError, InputError, RecordNotFoundError, SurrogateXAIError
from ..explainers import registry
from ..explainers.base import BaseExplainer
from ..explanation import Explanation
from ..model import Model
from ..numbers import finite_or_none
from ..onnx_model import ONNXModel
from ..output_files import write_target
from ..parity import read_parity_evidence
from ..reasons import DecisionReasons, ReasonCatalogue
from ..staging import Recovered, recover, remove_old_temporaries
from ..storable import text_problem
from ._common import (
    StagedFiles,
    check_distinct_paths,
    check_writable_dir,
    deferred_interrupts,
    existing_store,
    load_catalogue,
    load_model,
    read_csv,
    read_table,
    score_index,
    shown_url,
    sqlite_path,
    store_url,
)
from ._config import ExplainSettings
from ._endpoint import check_endpoint_options, endpoint_model
from ._invocation import command_line
from ._progress import Progress


@dataclass
class Inputs:
    """Everything a run needs, read and checked before any model evaluation."""

    model: Model
    X: pd.DataFrame
    background: pd.DataFrame
    decision_ids: list[str]
    score: int
    catalogue: ReasonCatalogue | None
    store: AuditStore | None


@dataclass
class ExplainRun:
    """What a run produced."""

    explanation: Explanation
    reasons: list[DecisionReasons]
    results: list[dict[str, Any]]
    score_name: str
    seconds: float
    record_ids: list[str] | None = None
    reports: list[Path] = field(default_factory=list)
    #: What was done with the outputs of earlier runs that died mid-way (lines to show).
    recovered: list[str] = field(default_factory=list)
    #: Rows whose outcome is the adverse one (0 without a threshold).
    n_adverse: int = 0

    #: The same count under its credit name (the demo's applicants are declined).
    @property
    def declined(self) -> int:
        return self.n_adverse


def _require(settings: ExplainSettings) -> tuple[Path | None, Path, Path]:
    check_endpoint_options(settings)
    hint = {"model": "MODEL", "data": "--data", "background": "--background"}
    if settings.endpoint is not None:
        del hint["model"]
    for name, flag in hint.items():
        if getattr(settings, name) is None:
            raise InputError(
                f"missing {flag} (give it on the command line or as {name!r} in --config)"
            )
    assert settings.data is not None
    assert settings.background is not None
    return settings.model, settings.data, settings.background


def _decision_ids(frame: pd.DataFrame, id_column: str | None, name: str) -> list[str]:
    if id_column is None:
        return [str(i) for i in range(len(frame))]
    if id_column not in frame.columns:
        raise InputError(f"{name}: no id column {id_column!r} (--id-column)")
    ids = frame[id_column]
    if ids.isna().any():
        raise InputError(
            f"{name}: id column {id_column!r} is empty at row {int(np.flatnonzero(ids.isna())[0])}"
        )
    out = [str(v) for v in ids]
    # The ids go into the audit store as text: what a database refuses (PostgreSQL text holds
    # no NUL, neither backend takes a lone surrogate) is refused here, naming file, column and
    # row, before any work, rather than by the store after the whole batch is explained.
    for row, value in enumerate(out):
        problem = text_problem(value)
        if problem is not None:
            raise InputError(f"{name}: id column {id_column!r} {problem} at row {row}")
    first: dict[str, int] = {}
    for row, value in enumerate(out):
        if value in first:
            raise InputError(
                f"{name}: id {value!r} appears more than once in {id_column!r} "
                f"(rows {first[value]} and {row})"
            )
        first[value] = row
    return out


def report_name(decision_id: str) -> str:
    """A file name for a decision's report that is safe on every file system."""
    return "decision-" + re.sub(r"[^A-Za-z0-9._-]", "_", decision_id)[:120] + ".html"


def _check_outputs_are_not_inputs(
    settings: ExplainSettings,
    model: Path | None,
    data: Path,
    background: Path,
    config: Path | None,
    decision_ids: list[str],
) -> None:
    # An output renamed over an input destroys it: --out audit.db --store audit.db replaces
    # the audit store (every earlier record) with the results, --out rows.csv --data rows.csv
    # the data. Compared as real paths (symlinks, "..", the working folder resolved).
    inputs: dict[str, Path] = {"--data": data, "--background": background}
    for label, value in (
        ("MODEL", model),
        ("--header-file", settings.header_file),
        ("--catalogue", settings.catalogue),
        ("--parity", settings.parity),
        ("--config", config),
    ):
        if value is not None:
            inputs[label] = value
    if settings.store:
        db = sqlite_path(store_url(settings.store))
        if db is not None:
            inputs["--store"] = db
    outputs: dict[str, Path] = {}
    if settings.out is not None:
        outputs["--out"] = settings.out
    if settings.report_dir is not None:
        for d in decision_ids:
            outputs[f"the report of {d!r}"] = settings.report_dir / report_name(d)
    check_distinct_paths(outputs, inputs)


def read_inputs(settings: ExplainSettings, config: Path | None = None) -> Inputs:
    """Read and check every input; nothing is evaluated yet.

    ``config`` is the ``--config`` file, if any (only to refuse writing over it).
    """
    model_path, data_path, bg_path = _require(settings)
    raw = read_csv(data_path)
    decision_ids = _decision_ids(raw, settings.id_column, str(data_path))
    drop = (settings.id_column,) if settings.id_column else ()
    raw_background = read_csv(bg_path)
    if model_path is None:  # --endpoint: a model server takes the data header's columns
        model = endpoint_model(settings, data_path, raw.drop(columns=list(drop)), raw_background)
        X = read_table(data_path, model, frame=raw, drop=drop)
        background = read_table(bg_path, model, frame=raw_background)
    else:
        # A single-tensor graph has no column names: the background's header gives them (as
        # for `sxai serve`, and as the record keeps them for `sxai replay`), and the data
        # must name the same columns in the same order; a misspelt header is named with
        # both files.
        header = [str(c) for c in raw_background.columns]
        model = load_model(model_path, settings.output, columns=header)
        background = read_table(bg_path, model, frame=raw_background)
        X = read_table(data_path, model, frame=raw, drop=drop, names_from=str(bg_path))
    unknown = [e for e in settings.exclude if e not in model.feature_names]
    if unknown:
        raise ConfigurationError(
            f"--exclude {unknown[0]!r} is not a column of the model; columns: "
            f"{', '.join(model.feature_names)}"
        )
    score = score_index(model, settings.score)
    catalogue = (
        load_catalogue(settings.catalogue, model.feature_names) if settings.catalogue else None
    )
    if settings.out is not None:
        check_writable_dir(settings.out, "--out")
    if settings.report_dir is not None:
        if settings.report_dir.exists() and not settings.report_dir.is_dir():
            raise InputError(f"--report-dir {settings.report_dir} exists and is not a folder")
        files = [settings.report_dir / report_name(d) for d in decision_ids]
        if len(set(files)) < len(decision_ids):
            raise InputError("two decision ids give the same report file name; use other ids")
        # A folder that does not exist yet is created (with its parents) when reports are
        # written; here only whether that can work is checked.
        check_writable_dir(settings.report_dir / "x", "--report-dir", create=True)
        taken = next((f for f in files if f.is_dir()), None)
        if taken is not None:
            raise InputError(f"--report-dir: {taken} is a folder, so the report cannot be written")
        if settings.out is not None and settings.out in files:
            raise InputError(f"--out {settings.out} is also the path of a report")
    _check_outputs_are_not_inputs(settings, model_path, data_path, bg_path, config, decision_ids)
    store = AuditStore(store_url(settings.store)) if settings.store else None
    return Inputs(model, X, background, decision_ids, score, catalogue, store)


def build_explainer(settings: ExplainSettings) -> BaseExplainer:
    """The explainer ``--method`` names (see the estimator registry), with the run's seed,
    budget and (for the methods that stop early) tolerance."""
    estimator = registry.get(settings.method, row_independent=True)
    extra: dict[str, Any] = {}
    if settings.tol is not None:
        if "tol" not in inspect.signature(estimator.load()).parameters:
            raise ConfigurationError(
                f"--tol does not apply to {settings.method!r}, which does not stop early; "
                "leave it out, or use kernelshap or permutation"
            )
        extra["tol"] = settings.tol
    return estimator.build(
        seed=settings.seed, max_evals=settings.max_evals, n_samples=settings.n_samples, **extra
    )


def _explain(
    explainer: Any, X: pd.DataFrame, dask: str | None, advance: Callable[[int], None]
) -> Explanation:
    # In partitions, so the bar moves as rows finish; explain_batch equals one explain call.
    from ..batch import dask_client, explain_batch

    if dask is None:
        # About fifty steps, at least 8 rows each (each partition costs a few ms of checks).
        step = max(8, -(-len(X) // 50))
        return explain_batch(explainer, X, partition_rows=step, progress=advance)
    with dask_client(dask) as client:
        return explain_batch(explainer, X, client=client, progress=advance)


def _result_line(decisions: Decisions, i: int, decision_id: str, k: int, s: Any) -> dict[str, Any]:
    exp, reasons = decisions.explanation, decisions.reasons[i]
    prediction = float(exp.diagnostics.predictions[i, k])
    names = exp.feature_names
    line: dict[str, Any] = {
        "decision_id": decision_id,
        "row": i,
        "output": exp.output_names[k],
        "prediction": prediction,
        "threshold": s.threshold,
        "decision": None if decisions.labels is None else decisions.labels[i],
        "base_value": float(exp.base_values[i, k]),
        "attributions": {n: float(exp.values[i, j, k]) for j, n in enumerate(names)},
        "stderr": {n: finite_or_none(exp.stderr[i, j, k]) for j, n in enumerate(names)},
        "reasons": [
            {"code": r.code, "text": r.text, "contribution": r.contribution, "stable": r.stable}
            for r in reasons.reasons
        ],
    }
    return line


def replay_command(record_id: str, settings: ExplainSettings) -> str:
    """The command that re-runs a record and checks it bit for bit, as it can be pasted into
    a fresh shell (:func:`~surrogate_xai.cli._invocation.command_line`).

    The store URL is shown with its password hidden (``***``): this text goes into every
    report and onto the terminal.
    """
    return command_line(
        "replay",
        record_id,
        "--store",
        shown_url(settings.store or ""),
        "--model",
        str(settings.model),
        "--background",
        str(settings.background),
    )


def run_explain(
    settings: ExplainSettings,
    *,
    parity: Any = None,
    progress: Progress | None = None,
    config: Path | None = None,
) -> ExplainRun:
    """Explain every row of ``settings.data``; write results, records and reports.

    Parameters
    ----------
    settings : ExplainSettings
    parity : ParityReport, optional
        Export evidence to show in the reports (the demo has it; a bare ONNX file does not).
    progress : Progress, optional
        Where progress is shown (default: none).
    config : Path, optional
        The ``--config`` file the settings came from (no output may be written over it).

    Returns
    -------
    ExplainRun
    """
    progress = progress or Progress(enabled=False)
    inputs = read_inputs(settings, config)
    try:
        if parity is None and settings.parity is not None:
            assert isinstance(inputs.model, ONNXModel)  # --parity is refused with --endpoint
            parity = read_parity_evidence(settings.parity, inputs.model)
        return _run(settings, inputs, parity, progress)
    finally:
        if inputs.store is not None:
            inputs.store.close()
        close = getattr(inputs.model, "close", None)  # a model server's connections
        if close is not None:
            close()


def _run(settings: ExplainSettings, inputs: Inputs, parity: Any, progress: Progress) -> ExplainRun:
    # Only a run with reports needs the report module (and jinja2).
    report = import_module("surrogate_xai.report") if settings.report_dir is not None else None

    start = time.perf_counter()
    explainer = build_explainer(settings)
    explainer.fit(inputs.model, inputs.background)
    with progress.task(
        f"explaining {len(inputs.X)} rows ({settings.method})", total=len(inputs.X)
    ) as advance:
        exp = _explain(explainer, inputs.X, settings.dask, advance)
    seconds = time.perf_counter() - start
    k = inputs.score
    decisions = decide(
        exp,
        DecisionPolicy(
            output=k,
            threshold=settings.threshold,
            adverse=settings.adverse,
            n_reasons=settings.n_reasons,
            exclude=tuple(settings.exclude),
            catalogue=inputs.catalogue,
            framing=settings.framing(),
        ),
    )
    reasons = decisions.reasons
    names = display_names(
        exp.feature_names,
        exp.output_names,
        catalogue=inputs.catalogue,
        given=settings.display_names,
    )
    results = [
        _result_line(decisions, i, inputs.decision_ids[i], k, settings) for i in range(len(exp))
    ]
    # The record ids are chosen here, before anything is written (the store takes them as
    # given, after checking they are new uuid4s), so the results file and every report are
    # staged with their final ids and nothing has to be rewritten after the commit.
    record_ids = [str(uuid.uuid4()) for _ in results] if inputs.store is not None else None
    if record_ids is not None:
        for line, rid in zip(results, record_ids, strict=True):
            line["record_id"] = rid
    run = ExplainRun(
        exp, reasons, results, exp.output_names[k], seconds, n_adverse=decisions.n_adverse
    )
    run.recovered = _recover_interrupted(
        settings, inputs, [line["decision_id"] for line in results]
    )
    staged = StagedFiles()
    committed = False
    try:
        if settings.out is not None:
            text = "".join(
                json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in results
            )
            staged.stage(settings.out, text)
        if report is not None and settings.report_dir is not None:
            with progress.task("writing reports", total=len(exp)) as advance:
                for i, line in enumerate(results):
                    record_id: str | None = line.get("record_id")
                    html = report.decision_report(
                        exp,
                        i,
                        reasons=reasons[i],
                        output=k,
                        outcome={"decision": line["decision"], "threshold": settings.threshold},
                        framing=settings.framing(),
                        display_names=names,
                        record_id=record_id,
                        # A server's answers cannot be replayed from files: no command.
                        replay_command=None
                        if record_id is None or settings.endpoint is not None
                        else replay_command(record_id, settings),
                        parity=parity,
                        title=f"{'Explanation of' if settings.threshold is None else 'Decision on'}"
                        f" {settings.subject} {line['decision_id']}",
                    )
                    path = settings.report_dir / report_name(line["decision_id"])
                    staged.stage(path, html)
                    run.reports.append(path)
                    advance()
        # From the commit of the records to the last rename, Ctrl-C is held back (and raised
        # afterwards): records whose results and reports were never renamed into place would
        # be records nobody can find from the outputs.
        # From here a run that dies has its outputs finished by the next one (if its records
        # were committed) or removed (if not): see surrogate_xai.staging.
        staged.seal(record_ids, shown_url(settings.store) if settings.store else None)
        with deferred_interrupts():
            if inputs.store is not None and record_ids is not None:
                record(decisions, inputs.store, inputs.decision_ids, record_ids=record_ids)
                run.record_ids = record_ids
            committed = True
            try:
                staged.commit()
            except SurrogateXAIError as exc:
                if run.record_ids is None:
                    raise
                # Only renames failed after the commit (each was attempted): say which
                # outputs are missing and that the records exist.
                raise InputError(
                    f"{exc}; the {len(run.record_ids)} audit records were committed (their "
                    f"ids start with {run.record_ids[0]})"
                ) from exc
    finally:
        # Before the commit nothing may remain; after it, commit() has dealt with every file.
        if not committed:
            staged.discard()
    return run


def _recover_interrupted(
    settings: ExplainSettings, inputs: Inputs, decision_ids: list[str]
) -> list[str]:
    """Finish or remove what runs that died mid-way left in this run's output folders."""
    folders: dict[Path, set[str]] = {}
    if settings.out is not None:
        target = write_target(settings.out)
        folders.setdefault(target.parent, set()).add(target.name)
    if settings.report_dir is not None and settings.report_dir.is_dir():
        folders.setdefault(settings.report_dir, set()).update(report_name(d) for d in decision_ids)
    here = shown_url(settings.store) if settings.store else None

    def committed(store: str, record_ids: list[str]) -> bool | None:
        if not record_ids:
            return False
        if store == here and inputs.store is not None:
            return _has_record(inputs.store, record_ids[0])
        if sqlite_path(store_url(store)) is None:
            return None  # another server: its password is not ours to know
        try:
            with AuditStore(existing_store(store), create=False) as other:
                return _has_record(other, record_ids[0])
        except SurrogateXAIError:
            return None

    done = Recovered()
    for folder, names in folders.items():
        done.merge(recover(folder, committed))
        old = remove_old_temporaries(folder, names)
        if old:
            done.removed += old
    return done.describe()


def _has_record(store: AuditStore, record_id: str) -> bool | None:
    try:
        store.get(record_id)
    except RecordNotFoundError:
        return False
    except SurrogateXAIError:
        return None
    return True
