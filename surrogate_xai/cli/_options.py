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


# -- a model server instead of an ONNX file (sxai explain --endpoint) ---------------------------
EndpointOption = Annotated[
    str | None,
    typer.Option(
        help="URL of a model server to explain instead of an ONNX MODEL; its columns are the "
        "--data file's header, in order.",
        show_default=False,
    ),
]
ProtocolOption = Annotated[
    str,
    typer.Option(
        help="Wire format of --endpoint: json, kserve-v1, oip-v2 (the model's .../infer URL), "
        "mlflow (.../invocations), sagemaker, vertex, bentoml or template."
    ),
]
ProtocolOptionOption = Annotated[
    list[str] | None,
    typer.Option(
        help="An option of the protocol as KEY=VALUE, VALUE as JSON or text (repeatable), e.g. "
        'format=csv (mlflow), argument=input_data (bentoml), template=\'{"rows": "$rows"}\'.',
        show_default=False,
    ),
]
OutputNamesOption = Annotated[
    str | None,
    typer.Option(
        help="Names of the endpoint's outputs, comma-separated (default: counted from its "
        "first answer, named output[0], output[1], ...).",
        show_default=False,
    ),
]
HeaderFileOption = Annotated[
    Path | None,
    typer.Option(
        help="File of request headers, one 'Name: value' per line (e.g. 'Authorization: "
        "Bearer ...'); or set SXAI_ENDPOINT_TOKEN for a bearer token. Header values are never "
        "logged, stored or shown.",
        show_default=False,
    ),
]
ModelIdOption = Annotated[
    str | None,
    typer.Option(
        help="Identity of the served model for provenance (e.g. its name and version; default "
        "the URL, which does not change when the model behind it does).",
        show_default=False,
    ),
]
MaxRequestsOption = Annotated[
    int | None,
    typer.Option(help="Budget of requests to --endpoint, retries included.", show_default=False),
]
MaxRowsOption = Annotated[
    int | None,
    typer.Option(help="Budget of rows sent to --endpoint, retries included.", show_default=False),
]
BatchRowsOption = Annotated[int, typer.Option(help="Rows per request to --endpoint, at most.")]
TimeoutOption = Annotated[
    float, typer.Option(help="Seconds a request to --endpoint may take in total.")
]
RateLimitOption = Annotated[
    float | None,
    typer.Option(help="Requests per second to --endpoint, at most.", show_default=False),
]
MaxRetriesOption = Annotated[
    int, typer.Option(help="Retries of a request to --endpoint after a 5xx or a timeout.")
]
