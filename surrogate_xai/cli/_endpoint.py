"""``sxai explain --endpoint URL``: a model server instead of an ONNX file.

The server's columns are the data file's header (without the id column), in order; its
outputs are ``--output-names`` or counted from its first answer. Credentials come from a
header file (``Name: value`` per line, like ``curl -H @file``) or the ``SXAI_ENDPOINT_TOKEN``
environment variable, never from the command line, where they would stay in the shell's
history and the process list. Every problem is a one-line error naming the option or the
line of the header file (never its value).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import InputError
from ..inputs import load_endpoint
from ..model import Model
from . import _config
from ._config import ExplainSettings

#: A bearer token for --endpoint, read from the environment.
TOKEN_ENV = "SXAI_ENDPOINT_TOKEN"
#: Options that mean something only for a model server.
ENDPOINT_ONLY = (
    "protocol",
    "protocol_option",
    "output_names",
    "header_file",
    "model_id",
    "max_requests",
    "max_rows",
    "batch_rows",
    "timeout",
    "rate_limit",
    "max_retries",
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_endpoint_options(settings: ExplainSettings) -> None:
    """Refuse a model file together with an endpoint, and endpoint options without one."""
    if settings.endpoint is not None and settings.model is not None:
        raise InputError("give an ONNX MODEL or --endpoint URL, not both")
    if settings.endpoint is not None and settings.parity is not None:
        raise InputError("--parity is evidence about an ONNX file; it does not apply to --endpoint")
    if settings.endpoint is None:
        for name in ENDPOINT_ONLY:
            if getattr(settings, name) != _config.default(ExplainSettings, name):
                raise InputError(f"{flag(name)} applies only with --endpoint URL")


def read_header_file(path: Path) -> dict[str, str]:
    """Headers from ``Name: value`` lines (blank lines and ``#`` comments skipped)."""
    if not path.is_file():
        raise InputError(f"--header-file: no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"--header-file {path} is not UTF-8 text") from None
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        # The line is named, never shown: it holds a credential.
        if not sep or not _HEADER_NAME.fullmatch(name) or not value:
            raise InputError(f"--header-file {path}: line {number} is not 'Name: value'")
        if name.lower() in (h.lower() for h in headers):
            raise InputError(f"--header-file {path}: header {name!r} is given twice")
        headers[name] = value
    return headers


def protocol_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items as a mapping; a VALUE that parses as JSON is taken as JSON."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--protocol-option {item!r} is not KEY=VALUE")
        if key in options:
            raise InputError(f"--protocol-option {key!r} is given twice")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def endpoint_model(
    settings: ExplainSettings, data_path: Path, data: pd.DataFrame, background: pd.DataFrame
) -> Model:
    """The server at ``settings.endpoint`` as a model over the columns of ``data``.

    ``data`` and ``background`` are the files as read (text), without the id column.
    """
    assert settings.endpoint is not None
    headers = read_header_file(settings.header_file) if settings.header_file else {}
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token and not any(k.lower() == "authorization" for k in headers):
        headers["Authorization"] = f"Bearer {token}"
    output: str | int | None = settings.output
    if settings.output is not None and re.fullmatch(r"-?\d+", settings.output):
        output = int(settings.output)
    names = None
    if settings.output_names is not None:
        names = [n.strip() for n in settings.output_names.split(",")]
        if not all(names) or len(set(names)) != len(names):
            raise InputError("--output-names must be distinct, non-empty names separated by commas")
    options = {
        "protocol": settings.protocol,
        "output": output,
        "protocol_options": protocol_options(settings.protocol_option),
        "headers": headers,
        "identity": settings.model_id,
        "max_requests": settings.max_requests,
        "max_rows": settings.max_rows,
        "batch_rows": settings.batch_rows,
        "timeout": settings.timeout,
        "rate_limit": settings.rate_limit,
        "max_retries": settings.max_retries,
    }
    columns = [str(c) for c in data.columns]
    return load_endpoint(
        settings.endpoint,
        columns,
        [data, background],
        what=str(data_path),
        output_names=names,
        options=options,
    )
