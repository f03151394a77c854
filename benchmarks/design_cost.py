"""Time to build a KernelSHAP design against the model rows it serves, with and without the cap
on base designs (``_design._DESIGN_ENTRIES``).

A design's cost is base designs x rows x d²; the model's is background rows x rows. Without a
cap 64 base designs made wide designs cost more than their model rows (issue 13: 9.45 s against
PermutationSHAP's 1.59 s at d = 60 and 64 passes).

Usage::

    python benchmarks/design_cost.py     # ~1 min; writes its section of docs/benchmarks.md
"""

from __future__ import annotations

import sys
import time

import _report
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(_report.ROOT))

from surrogate_xai.explainers import _design  # instrumentation: the cap is switched off

SECTION = "## KernelSHAP design cost"
CASES = [(30, 16), (30, 64), (60, 4), (60, 16), (60, 64), (100, 16)]
N_BACKGROUND = 100


def build_seconds(d: int, rows: int, cap: int) -> tuple[float, int]:
    saved = _design._DESIGN_ENTRIES
    _design._DESIGN_ENTRIES = cap
    try:
        with threadpool_limits(limits=1, user_api="blas"):  # as the explainers build them
            began = time.perf_counter()
            design = _design.kernel_design(
                d, rows, np.arange(N_BACKGROUND), 1, N_BACKGROUND, np.random.default_rng(0)
            )
            return time.perf_counter() - began, design.masks.shape[0]
    finally:
        _design._DESIGN_ENTRIES = saved


def main() -> int:
    run = _report.Run("design_cost.py", None, ("numpy",))
    lines = [
        SECTION,
        "",
        "Command: `python benchmarks/design_cost.py` (from the repository root)  ",
        f"Date: {run.result['date']}, load average before {run.result['load_before']} on "
        f"{run.result['machine']['nproc']} cores (other work shared the machine: compare the "
        "columns of one row)",
        "",
        f"One KernelSHAP design for {N_BACKGROUND} background rows (one pass), one BLAS thread:",
        "",
        "| d | passes of 2d rows | rows per block | model rows it serves | 64 base designs | capped (2^22 entries, >= 8 designs) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for d, mult in CASES:
        rows = 2 * d * mult
        before, n_before = build_seconds(d, rows, 10**15)
        after, n_after = build_seconds(d, rows, _design._DESIGN_ENTRIES)
        lines.append(
            f"| {d} | {mult} | {rows:,} | {rows * N_BACKGROUND:,} | {before:.2f} s ({n_before}) "
            f"| {after:.2f} s ({n_after}) |"
        )
        run.log(lines[-1])
    _report.write_section(_report.ROOT / "docs/benchmarks.md", SECTION, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
