"""The whole job on bundled data: ``sxai demo`` (also ``make demo``).

Trains a credit model on German Credit (a OneHotEncoder + gradient-boosted stumps: an
additive score, as credit scorecards are), exports it to ONNX and proves the export equal to
the original, then runs exactly what a user runs with ``sxai explain --config
sxai-demo/explain.yaml``: applicants explained with KernelSHAP until every standard error is
below a tolerance, principal reasons from a reason-code catalogue (protected attributes
excluded), one HTML report per decision, an audit report, and a SQLite audit store. Every file
goes to ``./sxai-demo/``; the summary printed at the end says what to open and what to try
next, as commands that work when pasted (see :mod:`surrogate_xai.cli._invocation`).

The budget, tolerance and surrogate are chosen so that a healthy model looks healthy
(measured: every one of the 200 held-out applicants converges at 10,000 model rows with a
largest standard error of 0.0004 against the tolerance 0.002; the linear surrogate's held-out
R² is 0.85-0.93 over 12 seeds against the minimum 0.8). A depth-3 tree surrogate of a
depth-3 boosted model reached R² 0.26 here: what it would have said is "do not read me".
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: Reason codes for German Credit's raw columns. Each text names the factor, not a value:
#: a contribution is measured against the reference population, so an applicant's small loan
#: or long-held job can still push toward "bad" — "Loan amount too high" would then be false.
#: Factor names stay accurate whatever the value (the style of Reg B's sample notice); the
#: applicant's own value is shown next to the reason in the report.
CATALOGUE: list[tuple[str, str, str]] = [
    ("R01", "Status of existing checking account", "status_of_existing_checking_account"),
    ("R02", "Duration of the credit requested", "duration_in_month"),
    ("R03", "Credit history", "credit_history"),
    ("R04", "Purpose of the credit", "purpose"),
    ("R05", "Amount of credit requested", "credit_amount"),
    ("R06", "Savings and bonds held", "savings_account_and_bonds"),
    ("R07", "Length of present employment", "present_employment_since"),
    (
        "R08",
        "Instalment rate relative to disposable income",
        "installment_rate_in_percentage_of_disposable_income",
    ),
    ("R09", "Other debtors or guarantors", "other_debtors_or_guarantors"),
    ("R10", "Length of residence at present address", "present_residence_since"),
    ("R11", "Property held", "property"),
    ("R12", "Other instalment plans", "other_installment_plans"),
    ("R13", "Housing", "housing"),
    ("R14", "Number of existing credits at this bank", "number_of_existing_credits_at_this_bank"),
    ("R15", "Type of employment", "job"),
    (
        "R16",
        "Number of people the applicant supports",
        "number_of_people_being_liable_to_provide_maintenance_for",
    ),
    ("R17", "Telephone registered in the applicant's name", "telephone"),
]
#: Never given as a reason (sex and marital status, age, national origin: ECOA / Reg B).
PROTECTED = ["personal_status_and_sex", "age_in_years", "foreign_worker"]
ID_COLUMN = "applicant_id"
PARITY_FILE = "credit.parity.json"
SCORE = "probabilities[bad]"
#: Model rows per applicant, and the largest standard error a converged row may have.
MAX_EVALS, TOLERANCE = 10_000, 0.002
#: The auditor's global surrogate: the model is additive, so a linear surrogate fits it.
SURROGATE = "linear"
#: Where the summary's `sxai explain --config` writes: a fresh store and fresh outputs, so the
#: command adds no second record for a decision the demo's store already holds.
RERUN = {"--store": "rerun.db", "--out": "rerun.jsonl", "--report-dir": "rerun-reports"}


@dataclass
class DemoResult:
    """Where the demo wrote its files, and what it found."""

    out: Path
    rows: int
    declined: int
    record_ids: list[str]
    seconds: float


def _train(X: pd.DataFrame, y: pd.Series) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    prep = ColumnTransformer(
        [("text", OneHotEncoder(handle_unknown="ignore"), text)], remainder="passthrough"
    )
    # Stumps: each tree splits one column, so the score is a sum of one function per column
    # (held-out AUC 0.83, the same as depth-3 trees on these 800 rows).
    model = GradientBoostingClassifier(n_estimators=100, max_depth=1, random_state=0)
    return Pipeline([("prep", prep), ("gbm", model)]).fit(X, y)


def catalogue_yaml() -> str:
    """The demo's reason catalogue as YAML (the layout ``ReasonCatalogue.from_yaml`` reads)."""
    import yaml

    doc = {
        "name": "german-credit-demo",
        "version": "2024-06",
        "reasons": [{"code": c, "text": t, "features": [f]} for c, t, f in CATALOGUE],
    }
    head = (
        "# Reason codes for the German Credit demo model (one code per raw column).\n"
        f"# Protected attributes have no code and are excluded from reasons: {', '.join(PROTECTED)}\n"
        "# (see 'exclude' in explain.yaml).\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def config_yaml(rows_file: str, seed: int) -> str:
    """``explain.yaml``: every option of the demo's run, usable as ``sxai explain --config``."""
    import yaml

    doc: dict[str, Any] = {
        "model": "credit.onnx",
        "data": rows_file,
        "background": "background.csv",
        "id_column": ID_COLUMN,
        "method": "kernelshap",
        "seed": seed,
        "max_evals": MAX_EVALS,
        "tol": TOLERANCE,
        "score": SCORE,
        "adverse": "increase",
        "threshold": 0.5,
        "subject": "applicant",
        "adverse_label": "declined",
        "favourable_label": "approved",
        "n_reasons": 4,
        "catalogue": "reasons.yaml",
        "parity": PARITY_FILE,
        "exclude": PROTECTED,
        "out": "results.jsonl",
        "report_dir": "reports",
        "store": "audit.db",
    }
    head = "# sxai explain --config explain.yaml (paths are relative to this file)\n"
    return head + yaml.safe_dump(doc, sort_keys=False)


def _prepare(out: Path, rows: int, seed: int, say: Any) -> tuple[Any, pd.DataFrame, pd.Series]:
    """Train, export, and write the model, the tables, the catalogue and the config."""
    from sklearn.model_selection import train_test_split

    from ..adapters.sklearn import to_onnx
    from ..background import Background
    from ..datasets import load_german_credit
    from ..parity import write_parity_evidence

    X, y = load_german_credit()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=0, stratify=y
    )
    say(f"German Credit: {len(X_train)} training rows, {X.shape[1]} raw columns")
    model = to_onnx(_train(X_train, y_train), X_test, output="probability")
    parity = model.parity_report
    (out / "credit.onnx").write_bytes(model.model_bytes)
    # The conversion evidence travels with the file: `sxai explain/audit --parity` show it.
    write_parity_evidence(out / PARITY_FILE, model)
    say(
        f"ONNX export: sha256 {model.identity[:16]}..., parity on {parity.rows_checked} rows: "
        f"max |diff| {parity.max_abs_diff:.2e}, {parity.decision_flips} decision flips"
    )
    Background.sample(X_train, 100, random_state=0).data.to_csv(out / "background.csv", index=False)
    applicants = X_test.iloc[:rows]
    ids = [f"APP-{i:04d}" for i in applicants.index]
    applicants.assign(**{ID_COLUMN: ids})[[ID_COLUMN, *X.columns]].to_csv(
        out / "applicants.csv", index=False
    )
    (out / "reasons.yaml").write_text(catalogue_yaml(), encoding="utf-8")
    (out / "explain.yaml").write_text(config_yaml("applicants.csv", seed), encoding="utf-8")
    return parity, X_test, y_test


#: Every file and folder the demo writes into its folder.
DEMO_FILES = (
    "audit.db",
    "credit.onnx",
    "credit.parity.json",
    "background.csv",
    "applicants.csv",
    "reasons.yaml",
    "explain.yaml",
    "results.jsonl",
    "reports",
    "audit.html",
    "holdout.csv",
    *RERUN.values(),
)


def _check_folder(folder: Path, force: bool) -> None:
    """Refuse to overwrite an earlier run unless ``force``: an audit store holds records that
    may have to be kept for years, and must never be deleted without being asked to."""
    from ..exceptions import InputError

    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} exists and is not a folder")
    found = [name for name in DEMO_FILES if (folder / name).exists()]
    if found and not force:
        raise InputError(
            f"{folder} already holds {', '.join(found[:3])}{', ...' if len(found) > 3 else ''} "
            "from an earlier run; choose another --out, or pass --force to replace them "
            "(the audit store there is deleted)"
        )


def _clear_earlier_run(folder: Path) -> None:
    """Remove what an earlier demo wrote (``--force``), and nothing else.

    Only the demo's own names (:data:`DEMO_FILES`) and its reports (``reports/decision-*.html``)
    go: a report left from an earlier run with more applicants would name a record that is
    not in the fresh audit store. Other files in the folder, and folders, are left alone.
    """
    for name in DEMO_FILES:
        path = folder / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    for name in ("reports", RERUN["--report-dir"]):
        reports = folder / name
        if reports.is_dir() and not reports.is_symlink():
            for path in reports.glob("decision-*.html"):
                if path.is_file() or path.is_symlink():
                    path.unlink()


def run_demo(
    out: str | Path = "sxai-demo",
    *,
    rows: int = 20,
    seed: int = 7,
    quiet: bool = False,
    force: bool = False,
) -> DemoResult:
    """Run the demo into ``out`` and print what to open; returns what was written.

    A folder that already holds any of the demo's files (an earlier run) is refused unless
    ``force``; with ``force`` the demo's earlier files (its audit store, results and reports)
    are removed first, so the folder holds exactly this run.

    Raises
    ------
    InputError
        If ``out`` holds an earlier run and ``force`` is not given.
    """
    from rich.console import Console

    from ._config import AuditSettings, ExplainSettings, read_config
    from ._invocation import command_line
    from ._progress import Progress
    from .explain_run import run_explain
    from .model_audit import run_audit

    console = Console(highlight=False, soft_wrap=True)
    say = console.print
    start = time.perf_counter()
    folder = Path(out)
    _check_folder(folder, force)
    folder.mkdir(parents=True, exist_ok=True)
    if force:
        _clear_earlier_run(folder)
    _, X_test, y_test = _prepare(folder, rows, seed, say)

    settings = ExplainSettings.model_validate(
        {**read_config(folder / "explain.yaml", ExplainSettings), "quiet": quiet}
    )
    progress = Progress(enabled=not quiet)
    run = run_explain(settings, progress=progress)
    diagnostics = run.explanation.diagnostics
    say(
        f"KernelSHAP: {len(run.results)} applicants in {run.seconds:.1f} s, "
        f"{int(diagnostics.model_evaluations.mean())} model rows per applicant, seed {seed}; "
        f"converged {int(diagnostics.converged.sum())} of {len(run.results)} "
        f"(every standard error below {TOLERANCE})"
    )
    holdout = folder / "holdout.csv"
    X_test.assign(creditability=y_test.to_numpy()).to_csv(holdout, index=False)
    audit_settings = AuditSettings.model_validate(
        {
            "model": settings.model,
            "data": holdout,
            "target": "creditability",
            "background": settings.background,
            "report": folder / "audit.html",
            "score": SCORE,
            "adverse": "increase",
            "threshold": settings.threshold,
            "subject": settings.subject,
            "adverse_label": settings.adverse_label,
            "favourable_label": settings.favourable_label,
            "catalogue": settings.catalogue,
            "parity": settings.parity,
            "n_explain": 40,
            "max_evals": MAX_EVALS,
            "tol": TOLERANCE,
            "surrogate": SURROGATE,
            "seed": seed,
        }
    )
    audit = run_audit(audit_settings, command=command_line("demo"), progress=progress)
    fidelity = audit.findings.surrogate.fidelity
    say(
        f"Audit: global surrogate ({SURROGATE}) held-out {fidelity.metric} {fidelity.value:.3f} "
        f"on {fidelity.n_test} rows (minimum {audit.findings.surrogate.min_fidelity:g}"
        f"{': below it' if audit.findings.surrogate.low_fidelity else ''})"
    )
    seconds = time.perf_counter() - start
    _summary(console, folder, run, settings, seconds)
    return DemoResult(folder, len(run.results), run.declined, run.record_ids or [], seconds)


def _summary(console: Any, folder: Path, run: Any, settings: Any, seconds: float) -> None:
    from rich.table import Table

    from ._invocation import command_line
    from .explain_run import replay_command, report_name

    n = len(run.results)
    declined = [r for r in run.results if r["decision"] == settings.adverse_label]
    console.print(
        f"\n[bold]{len(declined)} of {n} applicants declined[/bold] "
        f"(P(bad) > {settings.threshold}); done in {seconds:.1f} s."
    )
    shown = declined[0] if declined else run.results[0]
    table = Table(
        title=f"Principal reasons for {shown['decision_id']} ({shown['decision']}, "
        f"P(bad) = {shown['prediction']:.3f})"
    )
    for column in ("code", "reason", "contribution to P(bad)", "stable"):
        table.add_column(column)
    for r in shown["reasons"]:
        table.add_row(r["code"], r["text"], f"{r['contribution']:+.3f}", str(r["stable"]))
    if not shown["reasons"]:
        table.add_row("-", "nothing pushes this applicant toward 'bad'", "", "")
    console.print(table)
    report = folder / "reports" / report_name(shown["decision_id"])
    console.print("\nOpen:")
    for line in (
        f"{report}   (this applicant's report; one per applicant in {folder}/reports)",
        f"{folder / 'audit.html'}   (the auditor's report on the model)",
        f"{folder / 'results.jsonl'}   (one JSON line per decision)",
    ):
        console.print(f"  {line}", markup=False)  # a path may hold brackets
    console.print("Try (each line works pasted into a shell here, no virtualenv needed):")
    rerun = [arg for flag, name in RERUN.items() for arg in (flag, str(folder / name))]
    for line in (
        replay_command(shown["record_id"], settings),
        command_line("verify", "--store", str(folder / "audit.db")),
        command_line("explain", "--config", str(folder / "explain.yaml"), *rerun)
        + "  # the same run, into a fresh store",
    ):
        # Not markup: a path may hold brackets.
        console.print(f"  {line}", markup=False)


def main(argv: list[str] | None = None) -> int:
    """``python -m surrogate_xai.cli.demo [--out DIR] [--rows N] [--seed S]``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default="sxai-demo", help="folder for the files written")
    parser.add_argument("--rows", type=int, default=20, help="applicants to explain")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--force", action="store_true", help="replace an earlier run (and its audit store)"
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    from ..exceptions import SurrogateXAIError

    try:
        run_demo(args.out, rows=args.rows, seed=args.seed, quiet=args.quiet, force=args.force)
    except SurrogateXAIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
