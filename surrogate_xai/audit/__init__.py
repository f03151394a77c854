"""Per-decision audit records: an append-only, hash-chained store, and bit-exact replay.

``AuditStore(url)`` writes one record per explained row (see ``docs/audit-record.schema.json``
for the layout and ``docs/compliance.md`` for what each field is for).
"""

from .record import (
    FORMAT,
    GENESIS_HASH,
    VERSION,
    canonical_json,
    explanation_from_record,
    record_hash,
)
from .replay import ReplayResult
from .store import AuditStore, VerifyResult

__all__ = [
    "FORMAT",
    "GENESIS_HASH",
    "VERSION",
    "AuditStore",
    "ReplayResult",
    "VerifyResult",
    "canonical_json",
    "explanation_from_record",
    "record_hash",
]
