"""How often the exact value lies within ±1.96 standard errors, per estimator and budget.

Two kinds of game. The model of tests/test_calibration.py (d=10, 3-way and higher
interactions), exact values from ExactSHAP over the same 60-row background, 8 seeds on 40 rows
x 10 features (400 pairs per seed). And sums of unanimity games (SOUM, shapiq's synthetic game:
``x = 1`` against the background row ``b = 0``, closed-form values from
``surrogate_xai.datasets.make_unanimity``) at 20 and 40 players, 20 seeds on the one row. The
table gives the mean and range of the coverage over seeds, the root-mean-square error against
the root-mean-square standard error (an honest standard error has a ratio near 1), and how many
sampled values claimed a standard error of 0.

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
from surrogate_xai.datasets import make_unanimity
from tests.test_calibration import interacting_model

SECTION = "## Standard-error calibration"
INTERACTING = "interacting model (d=10, 60 background rows)"
CONFIGS = [
    (INTERACTING, "PermutationSHAP", 1_000, "below one pass"),
    (INTERACTING, "PermutationSHAP", 2_000, "just over one pass"),
    (INTERACTING, "PermutationSHAP", 6_000, "five passes"),
    (INTERACTING, "KernelSHAP", 1_500, "below one pass"),
    (INTERACTING, "KernelSHAP", 6_000, "one pass"),
    (INTERACTING, "KernelSHAP", 20_000, "one pass, larger blocks"),
    (INTERACTING, "OddKernelSHAP", 20_000, "one pass, refit with triples"),
    (INTERACTING, "OddKernelSHAP", 40_000, "one pass, refit with triples"),
    ("SOUM, 20 players", "PermutationSHAP", 2_000, "low budget"),
    ("SOUM, 20 players", "KernelSHAP", 2_000, "low budget"),
    ("SOUM, 20 players", "OddKernelSHAP", 6_000, "refit with triples"),
    ("SOUM, 40 players", "PermutationSHAP", 2_000, "low budget (the issue's case)"),
    ("SOUM, 40 players", "KernelSHAP", 2_000, "low budget"),
    ("SOUM, 40 players", "PermutationSHAP", 8_000, "four times that"),
]


def games() -> dict[str, tuple[object, object, object, np.ndarray, range]]:
    """model, background, rows, exact values and seeds of each game."""
    X, model = interacting_model()
    rows = X.iloc[:40]
    out = {
        INTERACTING: (model, X, rows, sx.ExactSHAP().fit(model, X).explain(rows).values, range(8))
    }
    for n, terms in ((20, 30), (40, 50)):
        p = make_unanimity(n, terms, random_state=0)
        m = sx.FunctionModel(p.predict, p.feature_names, input_type="array")
        exact = p.shapley_values(p.X, p.background)[:, :, None]
        out[f"SOUM, {n} players"] = (m, p.background, p.X, exact, range(20))
    return out


def measure() -> list[str]:
    lines = [
        "| game | estimator | max_evals | regime | coverage of ±1.96·stderr, mean (min-max) over seeds | rms error / rms stderr | stderr 0 while wrong |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    cases = games()
    for game, name, budget, regime in CONFIGS:
        model, background, rows, exact, seeds = cases[game]
        cls = getattr(sx, name)
        coverage, ratio, silent = [], [], 0
        for seed in seeds:
            exp = cls(max_evals=budget, random_state=seed).fit(model, background).explain(rows)
            err = np.abs(exp.values - exact)
            # 1e-9: units estimated exactly get stderr 0 and floating-point-sized errors.
            coverage.append(float(np.mean(err <= 1.96 * exp.stderr + 1e-9)))
            ratio.append(float(np.sqrt((err**2).mean()) / np.sqrt((exp.stderr**2).mean())))
            silent += int(np.sum((exp.stderr == 0) & (err > 1e-9)))
        lines.append(
            f"| {game} | {name} | {budget:,} | {regime} | {np.mean(coverage):.1%} "
            f"({min(coverage):.1%}-{max(coverage):.1%}) | {np.median(ratio):.2f} | {silent} |"
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
            f"Run time {took / 60:.1f} min. Interacting model: tests/test_calibration.py's (d=10, "
            "3-way and higher interactions), exact values by ExactSHAP over the same 60-row "
            "background, 40 rows x 10 features = 400 pairs per seed, 8 seeds. SOUM: shapiq's "
            "sum-of-unanimity game (`make_unanimity(n, terms)`: terms of every order up to n), "
            "closed-form values, one row, 20 seeds (400 / 800 pairs).",
            "",
            *table,
        ]
    )
    _report.write_section(args.out, SECTION, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
