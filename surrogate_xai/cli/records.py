"""``sxai replay`` and ``sxai verify``: check an audit store from the command line.

Both exit 0 when the check passes, 1 when it ran and failed (a replay that is not
bit-identical, a tampered or broken chain), and 2 for a user mistake (no such store or
record, the wrong model or background). Neither creates or changes a store: the store is
opened with ``create=False``, so a file that is not an audit store is refused as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..audit import AuditStore
from ..audit.chain import anchor_text, parsed_anchor
from ..exceptions import InputError
from ._common import EXIT_FAILED, existing_store, fail, load_model, read_table, user_errors


def replay(
    record_id: Annotated[str, typer.Argument(help="The record to re-run.", show_default=False)],
    store: Annotated[
        str,
        typer.Option(help="Audit store URL or SQLite file path.", show_default=False),
    ],
    model: Annotated[Path, typer.Option(help="The recorded ONNX model file.", show_default=False)],
    background: Annotated[
        Path, typer.Option(help="CSV of the recorded background rows.", show_default=False)
    ],
) -> None:
    """Re-run a recorded explanation; exit 0 only if it is bit-identical to the record."""
    with user_errors(), AuditStore(existing_store(store), create=False) as audit:
        record = audit.get(record_id)
        # The record names the graph output it explained and, for a single-tensor
        # graph, the column names it was given; the model is rebuilt the same way.
        names = record["model"].get("feature_names")
        onnx = load_model(model, record["model"].get("output"))
        if record["model"].get("input_mode") == "tensor" and names != onnx.feature_names:
            onnx = load_model(model, record["model"].get("output"), feature_names=names)
        rows = read_table(background, onnx)
        result = audit.replay(record_id, onnx, rows)
    if not result.identical:
        worst = ", ".join(f"{k} by up to {v:.3g}" for k, v in result.differences.items())
        fail(f"replay of record {record_id} is not bit-identical: {worst}", EXIT_FAILED)
    note = f" ({'; '.join(result.notes)})" if result.notes else ""
    typer.echo(f"identical: record {record_id} replayed bit for bit ({result.method}){note}")


def verify(
    store: Annotated[
        str,
        typer.Option(help="Audit store URL or SQLite file path.", show_default=False),
    ],
    anchor: Annotated[
        str | None,
        typer.Option(
            help="A head published earlier, SEQUENCE:HASH as this command prints it: the chain "
            "must still hold it (this shows a cut tail or a rebuilt chain).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check every record against its hash and the hash chain; exit 1 if anything changed."""
    with user_errors():
        pinned = None
        if anchor is not None:
            try:
                pinned = parsed_anchor(anchor)
            except ValueError as exc:
                raise InputError(f"--anchor {exc}") from None
        with AuditStore(existing_store(store), create=False) as audit:
            result = audit.verify(anchor=pinned)
    if not result.ok:
        where = (
            f"record {result.first_bad_record_id} (sequence {result.first_bad_sequence})"
            if result.first_bad_record_id
            else f"sequence {result.first_bad_sequence}"
            if result.first_bad_sequence is not None
            else "its database"
        )
        fail(f"the audit store fails verification at {where}: {result.reason}", EXIT_FAILED)
    pinned_note = "" if pinned is None else f", holds the published head {anchor_text(pinned)}"
    typer.echo(
        f"ok: {result.records} records, hash chain intact{pinned_note}, "
        f"head {anchor_text((result.records, result.head_hash))} "
        "(publish it; check it later with --anchor)"
    )
