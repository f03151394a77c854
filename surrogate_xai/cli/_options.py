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
ThresholdOption = Annotated[float, typer.Option(help="Decision threshold on the score.")]
AdverseOption = Annotated[
    str,
    typer.Option(
        help="'decrease': a score at or below the threshold is declined and reasons are "
        "what lowers it; 'increase': a score above it is declined, reasons raise it."
    ),
]
QuietOption = Annotated[bool, typer.Option(help="No progress bars and no summary.")]
