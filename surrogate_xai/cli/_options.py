"""Options that ``sxai explain`` and ``sxai audit`` share, written once so their help agrees."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelArgument = Annotated[
    Path | None, typer.Argument(help="The ONNX model file.", show_default=False)
]
CatalogueOption = Annotated[
    Path | None, typer.Option(help="Reason-code catalogue (YAML).", show_default=False)
]
ParityOption = Annotated[
    Path | None,
    typer.Option(
        help="Parity evidence of the export (JSON written by "
        "surrogate_xai.parity.write_parity_evidence; refused for other model bytes).",
        show_default=False,
    ),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option(
        help="Decision threshold on the score. Without one no decision is made: reasons and "
        "reports only.",
        show_default=False,
    ),
]
ToleranceOption = Annotated[
    float | None,
    typer.Option(
        help="Stop a row early once every standard error is below this (kernelshap, "
        "permutation); a row that gets there is reported as converged.",
        show_default=False,
    ),
]
SubjectOption = Annotated[
    str, typer.Option(help="What one row is, in reports and summaries (e.g. applicant).")
]
AdverseLabelOption = Annotated[
    str, typer.Option(help="Label of the adverse outcome (e.g. declined).")
]
FavourableLabelOption = Annotated[
    str, typer.Option(help="Label of the other outcome (e.g. approved).")
]
AdverseOption = Annotated[
    str,
    typer.Option(
        help="'decrease': a score at or below the threshold is the adverse outcome and "
        "reasons are what lowers it; 'increase': a score above it is adverse, reasons raise it."
    ),
]
QuietOption = Annotated[bool, typer.Option(help="No progress bars and no summary.")]
