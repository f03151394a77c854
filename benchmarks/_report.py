"""What the benchmark scripts share: machine facts and writing their section of a doc."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def machine_facts(packages: Sequence[str]) -> dict[str, Any]:
    """Cores, Python, CPU model, the library commit and the versions of ``packages``."""
    facts: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version()}
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "surrogate_xai", "adapters"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        facts["commit"] = commit + (" (library has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        facts["commit"] = "unknown"
    try:
        facts["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        facts["cpu"] = platform.processor() or "unknown"
    for pkg in ("surrogate-xai", *packages):
        try:
            facts[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return facts


def write_section(path: Path, section: str, text: str) -> None:
    """Replace (or append) the ``section`` heading's part of ``path``; keep every other byte."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(f"\n{section}\n")
    body = text.rstrip("\n") + "\n"
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + body
    else:
        start += 1
        nxt = old.find("\n## ", start + len(section))
        tail = "" if nxt < 0 else old[nxt + 1 :]
        new = old[:start] + body + ("\n" + tail if tail else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)
