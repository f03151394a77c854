"""Wire formats of model servers, behind ``HTTPModel(protocol=...)``.

One small module per protocol family; each format turns a batch of rows into a request body
and a 2xx answer into predictions, and nothing else: batching, retries, budgets, rate limit,
cache, authentication and error messages are :class:`~surrogate_xai.adapters.http.HTTPModel`'s,
the same for every format.

=============  ==========================================================================
``protocol``   request → answer
=============  ==========================================================================
json           ``{"instances": rows}`` → ``{"predictions": [...]}`` (keys movable; default)
kserve-v1      KServe V1 / TF Serving ``:predict``: ``instances`` → ``predictions``
oip-v2         Open Inference Protocol V2 ``/infer``: input tensors → an output tensor
mlflow         MLflow ``/invocations``: dataframe_split/records, instances, inputs, CSV
sagemaker      CSV or JSON Lines → CSV, JSON Lines or JSON (Clarify-style selection)
vertex         ``{"instances", "parameters"}`` → ``{"predictions"}``
bentoml        named-argument JSON → the API's return value
template       a JSON template holding ``"$rows"`` / ``"$records"`` → a JMESPath
=============  ==========================================================================
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ...exceptions import ConfigurationError
from ._base import Answer, ResponseFormatError, WireFormat, check_options
from .envelopes import BentoML, KServeV1, PlainJSON, Template, Vertex
from .mlflow import MLflow
from .oip import OpenInferenceV2
from .sagemaker import SageMaker

#: ``protocol`` name → format class; the one list of what ``HTTPModel`` and ``sxai`` accept.
FORMATS: dict[str, type[WireFormat]] = {
    cls.name: cls
    for cls in (PlainJSON, KServeV1, OpenInferenceV2, MLflow, SageMaker, Vertex, BentoML, Template)
}
PROTOCOLS: tuple[str, ...] = tuple(FORMATS)


def option_names(protocol: str) -> list[str]:
    """The keyword options the protocol's format takes."""
    return list(inspect.signature(FORMATS[protocol]).parameters)


def wire_format(protocol: str | WireFormat, options: Mapping[str, Any] | None = None) -> WireFormat:
    """The format for ``protocol`` (a name from :data:`PROTOCOLS`, or a format as it is).

    ``options`` are the format's keyword options (e.g. ``{"format": "csv"}`` for MLflow);
    an option the format does not take is refused by name.
    """
    if isinstance(protocol, WireFormat):
        if options:
            raise ConfigurationError("protocol_options apply to a protocol given by name")
        return protocol
    if protocol not in FORMATS:
        raise ConfigurationError(
            f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}"
        )
    given = dict(options or {})
    check_options(protocol, given, option_names(protocol))
    return FORMATS[protocol](**given)


__all__ = [
    "FORMATS",
    "PROTOCOLS",
    "Answer",
    "BentoML",
    "KServeV1",
    "MLflow",
    "OpenInferenceV2",
    "PlainJSON",
    "ResponseFormatError",
    "SageMaker",
    "Template",
    "Vertex",
    "WireFormat",
    "option_names",
    "wire_format",
]
