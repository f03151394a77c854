"""How often the exact value lies within ±1.96 standard errors, per estimator and budget.

The model has 3-way and higher interactions (the one of tests/test_calibration.py); exact
values come from ExactSHAP over the same 60-row background. Each configuration is run with
8 seeds on 40 rows x 10 features (400 pairs per seed); the table gives the mean and range of
the coverage over seeds, and the root-mean-square error against the root-mean-square
standard error (an honest standard error has a ratio near 1).

Usage::

    python benchmarks/calibration.py            # ~10 s; writes its section of docs/benchmarks.md
    python benchmarks/calibration.py --out F    # another file
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _report  # benchmarks/_report.py, beside this script
import numpy as np

sys.path.insert(0, str(_report.ROOT))

import surrogate_xai as sx
from tests.test_calibration import interacting_model

SECTION = "## Standard-error calibration"
SEEDS = range(8)
CONFIGS = [
    ("PermutationSHAP", 1_000, "below one pass"),
    ("PermutationSHAP", 2_000, "just over one pass"),
    ("PermutationSHAP", 6_000, "five passes"),
    ("KernelSHAP", 1_500, "below one pass"),
    ("KernelSHAP", 6_000, "one pass"),
    ("KernelSHAP", 20_000, "one pass, larger blocks"),
]


def measure() -> list[str]:
    X, model = interacting_model()
    rows = X.iloc[:40]
    exact = sx.ExactSHAP().fit(model, X).explain(rows).values
    lines = [
        "| estimator | max_evals | background coverage | coverage of ±1.96·stderr, mean (min-max) over 8 seeds | rms error / rms stderr |",
        "|---|---:|---|---:|---:|",
    ]
    for name, budget, regime in CONFIGS:
        cls = getattr(sx, name)
        coverage, ratio = [], []
        for seed in SEEDS:
            exp = cls(max_evals=budget, random_state=seed).fit(model, X).explain(rows)
            err = np.abs(exp.values - exact)
            # 1e-9: units estimated exactly get stderr 0 and floating-point-sized errors.
            coverage.append(float(np.mean(err <= 1.96 * exp.stderr + 1e-9)))
            ratio.append(float(np.sqrt((err**2).mean()) / np.sqrt((exp.stderr**2).mean())))
        lines.append(
            f"| {name} | {budget:,} | {regime} | {np.mean(coverage):.1%} "
            f"({min(coverage):.1%}-{max(coverage):.1%}) | {np.median(ratio):.2f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=_report.ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = measure()
    took = time.perf_counter() - start
    text = "\n".join(
        [
            SECTION,
            "",
            "Command: `python benchmarks/calibration.py` (from the repository root)  ",
            f"Run time {took / 60:.1f} min. Model: tests/test_calibration.py's (d=10, 3-way and "
            "higher interactions); exact values by ExactSHAP over the same 60-row background; "
            "40 rows x 10 features = 400 pairs per seed.",
            "",
            *table,
        ]
    )
    _report.write_section(args.out, SECTION, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
