"""The ``sxai`` command line.

``sxai explain`` explains the rows of a CSV file through an ONNX model; ``sxai audit`` writes
an auditor's report; ``sxai replay`` and ``sxai verify`` check an audit store; ``sxai demo``
runs the whole job on bundled data; ``sxai serve`` starts the REST service.

A user mistake ends with one line ``error: ...`` on stderr and exit code 2 (click's code for
usage errors, which are worded the same way); a check that ran and failed (a replay that is
not bit-identical, a tampered store) exits with 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._common import EXIT_USAGE, one_line, user_errors
from .explain import explain
from .model_audit import audit
from .records import replay, verify
from .serve import serve

app = typer.Typer(
    name="sxai",
    help="Explanations, reason codes and audit records for any ONNX model.",
    add_completion=False,
    # A genuine bug should show a plain traceback; user mistakes never reach typer's handler.
    pretty_exceptions_enable=False,
)
app.command("explain")(explain)
app.command("audit")(audit)
app.command("replay")(replay)
app.command("verify")(verify)


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for every file written.")] = Path("sxai-demo"),
    rows: Annotated[int, typer.Option(help="Applicants to explain.", min=1)] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the explanations.")] = 7,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    force: Annotated[
        bool,
        typer.Option(help="Replace an earlier run in --out, including its audit store."),
    ] = False,
) -> None:
    """German credit end to end: train, export to ONNX, explain, report, record."""
    from .demo import run_demo

    with user_errors():
        run_demo(out, rows=rows, seed=seed, quiet=quiet, force=force)


app.command("serve")(serve)  # FastAPI/uvicorn are imported only when it runs


class _Stderr(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment (a handler bound to the stream at the first
    call would write into a stream that a later in-process call has replaced or closed)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _log_warnings() -> None:
    """Show the library's warnings (e.g. a low-fidelity surrogate) as ``warning: ...`` lines."""
    logger = logging.getLogger("surrogate_xai")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run ``sxai`` with ``argv`` (default: the process arguments); returns the exit code."""
    _log_warnings()
    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="sxai", standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors (typer ships its own click)
        typer.echo(f"error: {one_line(exc.format_message())}", err=True)
        return int(getattr(exc, "exit_code", EXIT_USAGE))
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    return result if isinstance(result, int) else 0


__all__ = ["app", "main"]
