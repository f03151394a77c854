"""Scale-out on Dask: one process vs a LocalCluster of two workers, and the memory cap.

Throughput: the same batch (synthetic rows, d=10, explained with PermutationSHAP against 100
background rows) through an ONNX GradientBoostingRegressor (100 trees, depth 3, one
onnxruntime thread), explained

* in one process: ``explainer.explain(X)``;
* on ``LocalCluster(n_workers=2, threads_per_worker=1)``: ``explain_batch(explainer, X,
  client=client)``, timed per call, shipping of the explainer included, cluster start-up not.

The two results are asserted bit-identical. Times are medians of ``--repeats`` calls; the
first cluster call (workers import the library and build their session) is reported apart.

Memory: LocalSurrogate (2,000 samples per row) over a batch, with the default cap
(``batch_rows=65536`` perturbed rows at once) and without one (``batch_rows`` above the
whole batch's rows): the peak of Python/NumPy allocations in one process (``tracemalloc``)
and the peak resident set size of each worker process of a fresh 2-worker cluster
(``VmHWM``, reset before the call; onnxruntime's own buffers included), and its growth over
the resident size before the call.

Usage::

    python benchmarks/scale.py            # full run (~3 min on 2 quiet cores)
    python benchmarks/scale.py --quick    # smoke run, writes benchmarks/out/scale-quick.md

The full run writes the section "## Scale-out on Dask" of ``docs/benchmarks.md`` (every other
section is kept) and the raw record to ``benchmarks/out/``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _report  # benchmarks/_report.py, beside this script
import numpy as np
import pandas as pd

import surrogate_xai as sx
from surrogate_xai.batch import dask_client

ROOT = _report.ROOT
SECTION = "## Scale-out on Dask"
D = 10
MAX_EVALS = 1_000
N_BACKGROUND = 100
LOCAL_SAMPLES = 2_000
PARTITION_ROWS = 256


def build_model() -> tuple[sx.ONNXModel, pd.DataFrame]:
    """A GBM regressor on synthetic data, exported to ONNX (float32 tensor input)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(6_000, D)).astype(np.float32).astype(np.float64),
        columns=[f"x{j}" for j in range(D)],
    )
    y = X["x0"] * X["x1"] + np.sin(2 * X["x2"]) + (X["x3"] > 0) * X["x4"] + X["x5"] - X["x6"] ** 2
    native = GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0)
    native.fit(X.iloc[:2_000], y.iloc[:2_000])
    proto = to_onnx(native, initial_types=[("input", FloatTensorType([None, D]))], target_opset=17)
    return sx.ONNXModel(proto.SerializeToString(), feature_names=list(X.columns)), X


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def identical(a: sx.Explanation, b: sx.Explanation) -> bool:
    da, db = a.to_dict(), b.to_dict()
    da["provenance"].pop("created_at")
    db["provenance"].pop("created_at")
    return da == db and all(
        np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)
        for f in ("values", "stderr", "base_values")
    )


def throughput(model: sx.ONNXModel, X: pd.DataFrame, n_rows: int, repeats: int, log: Any) -> dict:
    explainer = sx.PermutationSHAP(max_evals=MAX_EVALS, random_state=0)
    explainer.fit(model, X.iloc[-N_BACKGROUND:])
    rows = X.iloc[:n_rows]
    explainer.explain(rows.iloc[:50])  # warm: the design cache and onnxruntime's first run
    single: list[float] = []
    cluster: list[float] = []
    reference = result = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's shutdown chatter is not the measurement
        began = time.perf_counter()
        with dask_client("local:2") as client:
            start_up = time.perf_counter() - began

            def distributed() -> sx.Explanation:
                return sx.explain_batch(
                    explainer, rows, client=client, partition_rows=PARTITION_ROWS
                )

            first, result = timed(distributed)
            log(f"  2 workers, first call: {first:.2f} s (start-up {start_up:.2f} s)")
            # The two sides alternate, so a slow spell of this shared machine lands on both;
            # idle workers only exchange heartbeats while the single process runs.
            for _ in range(repeats):
                seconds, reference = timed(lambda: explainer.explain(rows))
                single.append(seconds)
                seconds, result = timed(distributed)
                cluster.append(seconds)
                log(f"  1 process: {single[-1]:.2f} s, 2 workers: {cluster[-1]:.2f} s")
    assert reference is not None
    assert result is not None
    evaluations = int(reference.diagnostics.model_evaluations.sum())
    same = identical(result, reference)
    if not same:
        raise AssertionError("the 2-worker result differs from the single-process result")
    t1, t2 = statistics.median(single), statistics.median(cluster)
    ratios = [a / b for a, b in zip(single, cluster, strict=True)]
    return {
        "rows": n_rows,
        "model_rows": evaluations,
        "single_s": t1,
        "cluster_s": t2,
        "cluster_first_s": first,
        "cluster_start_s": start_up,
        "single_rows_per_s": n_rows / t1,
        "cluster_rows_per_s": n_rows / t2,
        "single_model_rows_per_s": evaluations / t1,
        "cluster_model_rows_per_s": evaluations / t2,
        "ratio": statistics.median(ratios),
        "ratio_range": (min(ratios), max(ratios)),
        "identical": same,
        "single_runs": single,
        "cluster_runs": cluster,
    }


def _peak_rss(reset: bool = False) -> int:
    """This process's peak resident set size in bytes (Linux ``VmHWM``), optionally reset.

    ``ru_maxrss`` would not do: a worker process forked from a large parent starts with the
    parent's high-water mark. Writing ``5`` to ``clear_refs`` resets the mark (Linux >= 4.0).
    """
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) * 1024


def memory(model: sx.ONNXModel, X: pd.DataFrame, n_rows: int, log: Any) -> list[dict]:
    rows = X.iloc[:n_rows]
    background = X.iloc[-N_BACKGROUND:]
    out = []
    for label, batch_rows in (("capped (batch_rows=65,536)", 65_536), ("no cap", 10**12)):
        explainer = sx.LocalSurrogate(
            n_samples=LOCAL_SAMPLES, random_state=0, batch_rows=batch_rows
        ).fit(model, background)
        gc.collect()
        tracemalloc.start()
        seconds, local = timed(lambda e=explainer: e.explain(rows))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with dask_client("local:2") as client:
                # Warm-up on one row per worker: imports, the session, the explainer's copy.
                sx.explain_batch(explainer, rows.iloc[:2], client=client, partition_rows=1)
                before = client.run(_peak_rss, True)
                result = sx.explain_batch(explainer, rows, client=client, partition_rows=n_rows)
                after = client.run(_peak_rss)
        if not identical(result, local):
            raise AssertionError("the worker's result differs from the in-process result")
        growth = max(after[w] - before[w] for w in after)
        out.append(
            {
                "setting": label,
                "batch_rows": batch_rows,
                "rows": n_rows,
                "perturbed_rows": n_rows * LOCAL_SAMPLES,
                "tracemalloc_peak_mb": peak / 2**20,
                "worker_peak_rss_mb": max(after.values()) / 2**20,
                "worker_rss_growth_mb": growth / 2**20,
                "seconds": seconds,
            }
        )
        log(f"  {label}: {json.dumps(out[-1])}")
    return out


def render(result: dict[str, Any]) -> str:
    facts = result["machine"]
    versions = ", ".join(
        f"{k} {v}" for k, v in facts.items() if k not in ("nproc", "python", "cpu", "commit")
    )
    t = result["throughput"]
    met = "**met**" if t["ratio"] >= 1.7 else "**missed**"
    lines = [
        SECTION,
        "",
        f"Command: `{result['command']}` (from the repository root)  ",
        f"Date: {result['date']}, total run time {result['total_minutes']:.1f} min, "
        f"commit {facts.get('commit', 'unknown')}  ",
        f"Machine: {facts['nproc']} cores ({facts['cpu']}), load average before/after "
        f"{result['load_before']} / {result['load_after']}, Python {facts['python']}  ",
        f"Versions: {versions}",
        "",
        f"How it is measured: {t['rows']:,} synthetic rows (d={D}) explained with "
        f"`PermutationSHAP(max_evals={MAX_EVALS:,})` against {N_BACKGROUND} background rows, "
        "through an ONNX GradientBoostingRegressor (100 trees, depth 3, 1 onnxruntime thread). "
        "*1 process* is `explainer.explain(X)`; *2 Dask workers* is `sx.explain_batch(explainer, "
        f"X, client=client, partition_rows={PARTITION_ROWS})` on `LocalCluster(n_workers=2, "
        "threads_per_worker=1)`, shipping of the explainer included and cluster start-up "
        f"excluded. {len(t['single_runs'])} calls each, the two sides alternating; seconds are "
        "medians, the speed-up is the median of the paired ratios (range in brackets); both results are asserted "
        "bit-identical (values, standard errors, diagnostics, provenance but its timestamp).",
        "",
        "| run | seconds (median) | explained rows/s | model rows/s | speed-up |",
        "|---|---:|---:|---:|---:|",
        f"| 1 process | {t['single_s']:.2f} | {t['single_rows_per_s']:,.0f} | "
        f"{t['single_model_rows_per_s']:,.0f} | 1.00x |",
        f"| 2 Dask workers | {t['cluster_s']:.2f} | {t['cluster_rows_per_s']:,.0f} | "
        f"{t['cluster_model_rows_per_s']:,.0f} | {t['ratio']:.2f}x |",
        "",
        f"- Speed-up >= 1.7x on 2 workers: {t['ratio']:.2f}x "
        f"[{t['ratio_range'][0]:.2f} to {t['ratio_range'][1]:.2f}] {met}. Identical results: "
        f"{'yes' if t['identical'] else 'NO'}.",
        f"- Cluster start-up {t['cluster_start_s']:.1f} s; first call {t['cluster_first_s']:.2f} s "
        "(workers import the library and build their onnxruntime session).",
        "",
        f"Memory: `LocalSurrogate(n_samples={LOCAL_SAMPLES:,})` on the same model; the capped run "
        "builds at most `batch_rows` perturbed rows at once, the uncapped run builds every "
        "explained row's neighbourhood in one array. *tracemalloc peak* is the largest "
        "Python/NumPy allocation total in one process during `explain`; *worker peak RSS* is the "
        "largest peak resident set size (`VmHWM`, reset after a one-row warm-up) of the 2 "
        "workers of a fresh cluster during `explain_batch` (all rows in one partition, so one "
        "worker holds the whole batch), and its growth over the resident size before the call. Results asserted identical to the in-process run.",
        "",
        "| setting | explained rows | perturbed rows | tracemalloc peak MB | worker peak RSS MB | worker RSS growth MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in result["memory"]:
        lines.append(
            f"| {m['setting']} | {m['rows']:,} | {m['perturbed_rows']:,} | "
            f"{m['tracemalloc_peak_mb']:.0f} | {m['worker_peak_rss_mb']:.0f} | "
            f"{m['worker_rss_growth_mb']:.0f} |"
        )
    if result.get("note"):
        lines += ["", result["note"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small batches")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per side")
    parser.add_argument("--rows", type=int, default=3_000, help="explained rows (throughput)")
    parser.add_argument("--memory-rows", type=int, default=1_000, help="explained rows (memory)")
    parser.add_argument(
        "--note", default="", help="a line added under the tables (e.g. 'machine shared')"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or (
        ROOT / "benchmarks/out/scale-quick.md" if args.quick else ROOT / "docs/benchmarks.md"
    )
    run = _report.Run(
        "scale.py",
        argv,
        ("onnxruntime", "numpy", "scikit-learn", "skl2onnx", "dask", "distributed"),
    )
    log, result = run.log, run.result
    result["note"] = args.note
    model, X = build_model()
    n_rows, mem_rows, repeats = (
        (300, 100, 1) if args.quick else (args.rows, args.memory_rows, args.repeats)
    )
    log(f"throughput: {n_rows} rows")
    result["throughput"] = throughput(model, X, n_rows, repeats, log)
    log(f"memory: {mem_rows} rows")
    result["memory"] = memory(model, X, mem_rows, log)
    run.finish("scale")
    _report.write_section(out, SECTION, render(result))
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
