"""What the benchmark scripts share: a run's record and clock, machine facts, and writing their
section of a doc."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import time
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


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


class Run:
    """One benchmark run: the command that reproduces it, a clock for its log lines, and the
    record (``result``) its table is rendered from.

    ``result`` starts with the command, the date, the machine facts and the load average;
    :meth:`finish` adds the load after and the run time, and keeps the raw record as
    ``benchmarks/out/<name>-<timestamp>.json``.
    """

    def __init__(self, script: str, argv: Sequence[str] | None, packages: Sequence[str]) -> None:
        import sys

        self.began = time.perf_counter()
        args = list(argv if argv is not None else sys.argv[1:])
        self.result: dict[str, Any] = {
            "command": shlex.join(["python", f"benchmarks/{script}", *args]),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_facts(packages),
            "load_before": _load(),
        }

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.began:7.1f}s] {msg}", flush=True)

    def finish(self, name: str, raw: Any = None) -> Path:
        """Close the record; write it (or ``raw``, a larger payload) to benchmarks/out/."""
        self.result["load_after"] = _load()
        self.result["total_minutes"] = (time.perf_counter() - self.began) / 60
        out_dir = ROOT / "benchmarks/out"
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        path = out_dir / f"{name}-{stamp}.json"
        payload = self.result if raw is None else raw
        path.write_text(json.dumps(payload, indent=1, default=str))
        return path
