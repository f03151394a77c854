"""Running ``sxai`` as a user would: in a subprocess, or in this process for the many small
error cases; and the check that a user mistake is one ``error:`` line with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


def sxai(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m surrogate_xai.cli`` as a user would (stdout/stderr are not terminals)."""
    return subprocess.run(
        [sys.executable, "-m", "surrogate_xai.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def sxai_here(*args: object, cwd: Path, capsys: pytest.CaptureFixture[str]) -> Result:
    """The same entry point in this process (for the many small error cases: no start-up)."""
    from surrogate_xai.cli import main

    before = Path.cwd()
    os.chdir(cwd)
    try:
        code = main([str(a) for a in args])
    finally:
        os.chdir(before)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def assert_user_error(proc: Result | subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, exactly one line on stderr, ``error: ...``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
