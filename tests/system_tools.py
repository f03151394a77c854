"""Tests that need a system program (Chromium, PostgreSQL) skip without it — except in CI.

`.ci/run` installs the programs and sets ``SXAI_REQUIRE_SYSTEM_TOOLS=1``; there a missing
program is a collection error, so an acceptance test can never pass by quietly skipping.
"""

from __future__ import annotations

import os

import pytest

REQUIRED = os.environ.get("SXAI_REQUIRE_SYSTEM_TOOLS") == "1"


def skip_unless_available(missing: str | None) -> pytest.MarkDecorator:
    """``skipif`` on ``missing`` (why the program is unusable, or None), fatal under CI."""
    if missing is not None and REQUIRED:
        raise RuntimeError(f"SXAI_REQUIRE_SYSTEM_TOOLS=1 but {missing}")
    return pytest.mark.skipif(missing is not None, reason=missing or "")
