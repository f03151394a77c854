"""Tests that need a system program (Chromium, PostgreSQL) skip without it — except in CI.

`.ci/run` installs the programs and sets ``SXAI_REQUIRE_SYSTEM_TOOLS=1``; there a missing
program is a collection error, so an acceptance test can never pass by quietly skipping.
On a developer's machine the tests skip, and the end of the run says so in one line per
missing program, with the command that installs it (this module is a pytest plugin too:
``tests/conftest.py`` loads it for :func:`pytest_terminal_summary`).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

REQUIRED = os.environ.get("SXAI_REQUIRE_SYSTEM_TOOLS") == "1"
#: How a skip reason of this module starts (the summary finds its skips by it).
PREFIX = "system program missing: "


def skip_unless_available(missing: str | None, install: str | None = None) -> pytest.MarkDecorator:
    """``skipif`` on ``missing`` (why the program is unusable, or None), fatal under CI.

    ``install`` is the command that installs the program, shown in the run's summary.
    """
    if missing is not None and REQUIRED:
        raise RuntimeError(f"SXAI_REQUIRE_SYSTEM_TOOLS=1 but {missing}")
    reason = "" if missing is None else PREFIX + missing
    if missing is not None and install:
        reason += f"; to run these tests: {install}"
    return pytest.mark.skipif(missing is not None, reason=reason)


def _reason(report: Any) -> str | None:
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2]).removeprefix("Skipped: ")
        return text if text.startswith(PREFIX) else None
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per missing program: how many tests did not run, and how to install it."""
    counts = Counter(
        reason
        for report in terminalreporter.stats.get("skipped", [])
        if (reason := _reason(report)) is not None
    )
    for reason, n in sorted(counts.items()):
        terminalreporter.write_line(
            f"NOT RUN: {n} test{'s' if n != 1 else ''} ({reason.removeprefix(PREFIX)}). "
            "CI installs it with .ci/run and fails instead of skipping.",
            yellow=True,
            bold=True,
        )
