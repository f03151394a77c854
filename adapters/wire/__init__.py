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


def resolve_format(
    protocol: str | WireFormat,
    options: Mapping[str, Any] | None,
    output: str | int | None,
    legacy: Mapping[str, Any],
) -> WireFormat:
    """The format ``HTTPModel`` uses: ``protocol`` with its ``options``, ``output`` and the
    keyword arguments ``HTTPModel`` had before protocols (``legacy``: ``instance_format``,
    ``request_key``, ``response_key``; ``None`` means not given).

    The legacy arguments are options of the JSON formats: given with a protocol that has no
    such option they are refused by name, never ignored.
    """
    given = {k: v for k, v in legacy.items() if v is not None}
    if options is not None and not isinstance(options, Mapping):
        raise ConfigurationError("protocol_options must be a mapping of option names to values")
    merged = dict(options or {})
    for key, value in given.items():
        if key in merged and merged[key] != value:
            raise ConfigurationError(f"{key} is given twice (also in protocol_options)")
        merged[key] = value
    if isinstance(protocol, WireFormat):
        if given:
            raise ConfigurationError(
                f"{next(iter(given))} applies to a protocol given by name; "
                f"set it on the format object"
            )
        return wire_format(protocol, options).with_output(output)
    if output is not None:
        if merged.get("output", output) != output:
            raise ConfigurationError("output is given twice (also in protocol_options)")
        merged["output"] = output
    return wire_format(protocol, merged)


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
    "resolve_format",
    "wire_format",
]
