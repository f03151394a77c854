"""What our exporters write into an ONNX file's ``metadata_props``, and reading it back.

A graph knows its input tensors, not the user's columns: a tree ensemble exported from a
DataFrame takes one float tensor ``(batch, 30)``, so a reloaded file would expect columns
``x0 .. x29``. The adapters' ``to_onnx`` therefore write, next to the graph, what they knew:

==============================  ==============================================================
key                             value (JSON)
==============================  ==============================================================
``surrogate_xai.feature_names`` the flat input columns, in order (a list of text)
``surrogate_xai.categories``    the categories enforced per categorical column
``surrogate_xai.output``        the graph output that is explained
``surrogate_xai.output_names``  the names of that output's columns
``surrogate_xai.parity``        the parity report measured at export (``ParityReport.to_dict``)
``surrogate_xai.converter``     the converter and its version, e.g. ``"skl2onnx 1.20.0"``
``surrogate_xai.allow_missing`` whether numeric NaN may be passed (the export proved it)
==============================  ==============================================================

Everything here is a claim made by whoever wrote the file: :class:`~surrogate_xai.ONNXModel`
checks each value's type and its fit with the graph, refuses a file whose metadata
contradicts its graph, and records where a parity report came from. Keys of other tools
(CatBoost writes its own) are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import ModelLoadError

__all__ = ["PREFIX", "ExportMetadata", "embed_metadata", "read_metadata"]

PREFIX = "surrogate_xai."
_FEATURE_NAMES = PREFIX + "feature_names"
_CATEGORIES = PREFIX + "categories"
_OUTPUT = PREFIX + "output"
_OUTPUT_NAMES = PREFIX + "output_names"
_PARITY = PREFIX + "parity"
_CONVERTER = PREFIX + "converter"
_ALLOW_MISSING = PREFIX + "allow_missing"
# A file is an attacker's input: a value this long or this deeply nested is not metadata.
_MAX_VALUE_CHARS = 32 * 1024**2


@dataclass(frozen=True)
class ExportMetadata:
    """The facts an export records about its graph (``None``: not recorded)."""

    feature_names: list[str] | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)
    output: str | None = None
    output_names: list[str] | None = None
    parity: dict[str, Any] | None = None
    converter: str | None = None
    allow_missing: bool | None = None

    @property
    def empty(self) -> bool:
        return self == ExportMetadata()

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` entries, JSON-encoded, only for what is recorded."""
        values: dict[str, Any] = {
            _FEATURE_NAMES: self.feature_names,
            _CATEGORIES: self.categories or None,
            _OUTPUT: self.output,
            _OUTPUT_NAMES: self.output_names,
            _PARITY: self.parity,
            _CONVERTER: self.converter,
            _ALLOW_MISSING: self.allow_missing,
        }
        return {
            key: json.dumps(value, sort_keys=True, separators=(",", ":"))
            for key, value in values.items()
            if value is not None
        }


def _parse(key: str, text: str) -> Any:
    if len(text) > _MAX_VALUE_CHARS:
        raise ModelLoadError(f"metadata {key!r} is {len(text)} characters long; not metadata")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelLoadError(f"metadata {key!r} is not valid JSON: {str(exc)[:120]}") from None


def _texts(key: str, value: Any, *, distinct: bool) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelLoadError(f"metadata {key!r} must be a list of text")
    if distinct and len(set(value)) != len(value):
        raise ModelLoadError(f"metadata {key!r} holds duplicate names")
    return list(value)


def read_metadata(props: Mapping[str, str]) -> ExportMetadata:
    """The recorded facts among a file's ``metadata_props`` (other keys are ignored).

    Raises
    ------
    ModelLoadError
        Naming the key whose value is not valid JSON or not of its type.
    """
    found = {key: _parse(key, text) for key, text in props.items() if key.startswith(PREFIX)}
    names = found.get(_FEATURE_NAMES)
    output_names = found.get(_OUTPUT_NAMES)
    categories = found.get(_CATEGORIES, {})
    if not isinstance(categories, dict):
        raise ModelLoadError(f"metadata {_CATEGORIES!r} must map column names to categories")
    checked = {
        str(col): _texts(f"{_CATEGORIES}[{col!r}]", cats, distinct=True)
        for col, cats in categories.items()
    }
    output, converter, parity = found.get(_OUTPUT), found.get(_CONVERTER), found.get(_PARITY)
    for key, value in ((_OUTPUT, output), (_CONVERTER, converter)):
        if value is not None and not isinstance(value, str):
            raise ModelLoadError(f"metadata {key!r} must be text")
    allow_missing = found.get(_ALLOW_MISSING)
    if allow_missing is not None and not isinstance(allow_missing, bool):
        raise ModelLoadError(f"metadata {_ALLOW_MISSING!r} must be true or false")
    if parity is not None and not isinstance(parity, dict):
        raise ModelLoadError(f"metadata {_PARITY!r} must be a parity report (an object)")
    return ExportMetadata(
        feature_names=None if names is None else _texts(_FEATURE_NAMES, names, distinct=True),
        categories=checked,
        output=output,
        output_names=(
            None if output_names is None else _texts(_OUTPUT_NAMES, output_names, distinct=True)
        ),
        parity=parity,
        converter=converter,
        allow_missing=allow_missing,
    )


def embed_metadata(data: bytes, metadata: ExportMetadata) -> bytes:
    """``data`` (a serialised ONNX model) with ``metadata`` in its ``metadata_props``.

    Entries of ours already in the file are replaced; other tools' entries are kept. The
    graph itself is untouched, so the file computes exactly what it did.
    """
    import onnx

    proto = onnx.load_from_string(data)
    kept = [(p.key, p.value) for p in proto.metadata_props if not p.key.startswith(PREFIX)]
    del proto.metadata_props[:]
    for key, value in [*kept, *sorted(metadata.to_props().items())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return bytes(proto.SerializeToString())
