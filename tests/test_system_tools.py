"""A developer without Chromium (or PostgreSQL) is told, in one line at the end of the run,
what did not run and how to install it; CI (``SXAI_REQUIRE_SYSTEM_TOOLS=1``) still fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASE = """
from tests.system_tools import skip_unless_available

pytestmark = skip_unless_available(
    "Debian package 'chromium' is not installed", install="sudo apt-get install chromium"
)


def test_one():
    pass


def test_two():
    pass
"""


def _run(tmp_path: Path, required: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_needs_a_browser.py").write_text(CASE)
    env = {k: v for k, v in os.environ.items() if k != "SXAI_REQUIRE_SYSTEM_TOOLS"}
    env["PYTHONPATH"] = str(ROOT)
    if required:
        env["SXAI_REQUIRE_SYSTEM_TOOLS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.system_tools", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip


def test_a_missing_program_is_named_once_with_how_to_install_it(tmp_path):
    proc = _run(tmp_path, required=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("NOT RUN:")]
    assert lines == [
        "NOT RUN: 2 tests (Debian package 'chromium' is not installed; to run these tests: "
        "sudo apt-get install chromium). CI installs it with .ci/run and fails instead of "
        "skipping."
    ]


def test_ci_still_fails_when_the_program_is_missing(tmp_path):
    proc = _run(tmp_path, required=True)
    assert proc.returncode != 0
    assert "SXAI_REQUIRE_SYSTEM_TOOLS=1 but Debian package 'chromium'" in proc.stdout + proc.stderr
