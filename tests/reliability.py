"""The reliability suite: every attack on the audit trail, the CLI, the service and the model
loaders that was ever tried, replayed on every run.

A test marked ``reliability`` is one attack (each parametrised case counts once). The
``attack`` fixture lets a test report what a user or a client would have seen — a traceback
on a CLI's stderr, an answer of 5xx from the service — and the terminal summary ends with one
line::

    reliability: 212 attacks tried, 212 held, 0 tracebacks, 0 answers of 5xx

An attack that fails its test is not "held"; tracebacks and 5xx answers are counted even when
the test goes on to fail for another reason. Under pytest-xdist the counts travel with each
test's report (``user_properties``) to the controller, which prints the line.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

MARK = "reliability"
_totals: Counter[str] = Counter()


class Attack:
    """What one attack observed: tracebacks shown and 5xx answers given."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def _count(self, what: str) -> None:
        self._node.user_properties.append((f"{MARK}:{what}", 1))

    def cli(self, proc: Any) -> Any:
        """Note a finished CLI run (``CompletedProcess`` or a result with ``stderr``)."""
        if "Traceback" in (proc.stderr or ""):
            self._count("tracebacks")
        return proc

    def http(self, response: Any) -> Any:
        """Note a service answer (anything with ``status_code``)."""
        if response.status_code >= 500:
            self._count("5xx")
        return response


@pytest.fixture
def attack(request: pytest.FixtureRequest) -> Attack:
    return Attack(request.node)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if MARK not in report.keywords:
        return
    for name, value in report.user_properties:
        if report.when == "call" and str(name).startswith(f"{MARK}:"):
            _totals[str(name).split(":", 1)[1]] += int(value)
    if report.when == "call":
        _totals["tried"] += 1
        _totals["held"] += int(report.passed)
    elif report.when == "setup" and report.failed:
        _totals["tried"] += 1  # an attack whose setup broke did not hold either


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _totals["tried"]:
        terminalreporter.write_line(
            f"{MARK}: {_totals['tried']} attacks tried, {_totals['held']} held, "
            f"{_totals['tracebacks']} tracebacks, {_totals['5xx']} answers of 5xx"
        )
