"""The published layout of an audit record (``record.schema.json``, JSON Schema 2020-12).

The same file is published as ``docs/audit-record.schema.json``. A record's hash says that it
is what the writer wrote; its layout says that a reader can use it. Only a writer that
controls the database and recomputes the chain could store a well-hashed record of another
layout, and even then a reader names the problem instead of failing on a missing field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any


@cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(resources.files(__package__).joinpath("record.schema.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def layout_problem(record: Mapping[str, Any]) -> str | None:
    """Why ``record`` does not have the published layout (the first error), or None."""
    error = next(iter(_validator().iter_errors(record)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "the record"
    return f"it does not have the layout of an audit record at {where}: {error.message[:200]}"
