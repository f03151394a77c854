"""A bounded load test of the REST service: N requests, C at a time, on loopback.

Starts ``sxai serve`` (a subprocess, with a SQLite audit store) on two models in turn, the small
credit model of tests/test_service.py and the German-credit pipeline of ``sxai demo``, fires the requests with an httpx AsyncClient (one applicant per
request, the way a decision system calls it), and checks that every answer is 200 and that
the store holds exactly one record per request, with an intact hash chain. While the load
runs, ``/healthz`` is polled to show how long a liveness probe waits.

Usage::

    python benchmarks/service_load.py                  # 200 requests, 8 concurrent
    python benchmarks/service_load.py --requests 400 --concurrency 16 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _report  # benchmarks/_report.py, beside this script
import numpy as np
import pandas as pd

sys.path.insert(0, str(_report.ROOT))

import httpx

import surrogate_xai as sx
from tests.test_service import KEY, request_rows, running_service, write_service_files

SECTION = "## REST service under load"


async def fire(
    url: str, rows: list[list[dict[str, Any]]], concurrency: int, method: str
) -> tuple[list[float], list[httpx.Response], list[float], float]:
    """Latencies and answers of one request per item of ``rows``, ``concurrency`` at a time;
    health-probe latencies while they ran; the wall time."""
    n = len(rows)
    limit = asyncio.Semaphore(concurrency)
    done = asyncio.Event()
    latencies = [0.0] * n
    answers: list[httpx.Response | None] = [None] * n
    probes: list[float] = []
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=300,
        limits=httpx.Limits(max_connections=concurrency + 1),
    ) as client:

        async def one(i: int) -> None:
            async with limit:
                started = time.perf_counter()
                answers[i] = await client.post(
                    "/v1/explanations", json={"rows": rows[i], "seed": i, "method": method}
                )
                latencies[i] = time.perf_counter() - started

        async def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                await client.get("/healthz")
                probes.append(time.perf_counter() - started)
                await asyncio.sleep(0.1)

        prober = asyncio.create_task(probe())
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - started
        done.set()
        await prober
    return latencies, [a for a in answers if a is not None], probes, wall


@dataclass
class Scenario:
    name: str
    files: dict[str, Path]
    rows: list[list[dict[str, Any]]]  # one request body's rows per request


def small_model(folder: Path, n: int) -> Scenario:
    """The service tests' GBM classifier (d=4, 48 background rows)."""
    files = write_service_files(folder)
    return Scenario(
        "service tests' GBM (d=4)", files, [request_rows(1, 1000 + i) for i in range(n)]
    )


def german_credit(folder: Path, n: int) -> Scenario:
    """The demo's German-credit pipeline (d=20, 100 background rows), built by `sxai demo`."""
    from surrogate_xai.cli.demo import run_demo

    with contextlib.redirect_stdout(io.StringIO()):
        run_demo(folder, rows=20, quiet=True)
    people = pd.concat(
        [pd.read_csv(folder / "applicants.csv"), pd.read_csv(folder / "holdout.csv")]
    ).drop(columns=["applicant_id", "creditability"], errors="ignore")
    records = json.loads(people.to_json(orient="records"))
    files = {
        "model": folder / "credit.onnx",
        "background": folder / "background.csv",
        "catalogue": folder / "reasons.yaml",
    }
    return Scenario(
        "German credit demo pipeline (d=20)", files, [[records[i % len(records)]] for i in range(n)]
    )


def run(scenario: Scenario, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    store = folder / "service-audit.db"  # the demo keeps its own audit.db beside it
    with running_service(scenario.files, "--workers", str(args.workers), store=store) as svc:
        latencies, answers, probes, wall = asyncio.run(
            fire(svc.url, scenario.rows, args.concurrency, args.method)
        )
        with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
            info = c.get("/v1/model").json()
    errors = [a.status_code for a in answers if a.status_code != 200]
    ids = {rid for a in answers if a.status_code == 200 for rid in a.json()["record_ids"]}
    with sx.AuditStore(f"sqlite:///{store}") as audit:
        stored, chain_ok = len(audit), audit.verify().ok
    first = answers[0].json()["explanations"][0]
    lat = np.array(latencies) * 1000
    n = len(scenario.rows)
    return {
        "name": scenario.name,
        "background": info["background"]["size"],
        "max_evals": info["limits"]["max_evals"],
        "model_rows": first["model_evaluations"],
        "errors": len(errors),
        "stored": stored,
        "chain_ok": chain_ok,
        "ids": len(ids),
        "ok": not errors and len(answers) == n and stored == n == len(ids),
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "max": float(lat.max()),
        "rate": n / wall,
        "probe_p50": float(np.median(probes)) * 1000,
        "probe_max": max(probes) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="sxai serve --workers")
    parser.add_argument("--method", default="kernelshap")
    parser.add_argument("--out", type=Path, default=_report.ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    results = []
    for build in (small_model, german_credit):
        with tempfile.TemporaryDirectory() as tmp:
            scenario = build(Path(tmp), args.requests)
            print(f"{scenario.name}: {args.requests} requests ...", flush=True)
            results.append(run(scenario, Path(tmp), args))
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    ok = all(r["ok"] for r in results)
    facts = _report.machine_facts(["fastapi", "uvicorn", "httpx", "onnxruntime"])
    versions = ", ".join(
        f"{k} {facts[k]}"
        for k in ("surrogate-xai", "fastapi", "uvicorn", "httpx", "onnxruntime")
        if k in facts
    )
    command = "python benchmarks/service_load.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    rows = [
        f"| {r['name']} | {r['background']} | {r['model_rows']:,} | {args.requests} | "
        f"{args.concurrency} | {r['errors']} | {r['stored']} | {'yes' if r['chain_ok'] else 'NO'} | "
        f"{r['p50']:.0f} | {r['p95']:.0f} | {r['max']:.0f} | {r['rate']:.1f} | "
        f"{r['probe_p50']:.1f} / {r['probe_max']:.1f} |"
        for r in results
    ]
    text = "\n".join(
        [
            SECTION,
            "",
            f"Command: `{command}` (from the repository root)  ",
            f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
            f"Machine: {facts['nproc']} cores ({facts['cpu']}), load average before/after "
            f"{' '.join(load_before)} / {' '.join(load_after)}, Python {facts['python']}  ",
            f"Library commit: {facts['commit']}  ",
            f"Versions: {versions}",
            "",
            f"`sxai serve` (uvicorn, one process, `--workers {args.workers}` explanation "
            "threads, SQLite audit store) on loopback; the client (httpx AsyncClient) runs on "
            "the same machine and shares its cores. Each request explains one applicant with "
            f"`{args.method}` (the service's default budget, max_evals "
            f"{results[0]['max_evals']:,}), finds its reasons and writes one audit record.",
            "",
            "| model | background rows | model rows per request | requests | concurrent | errors "
            "| records stored | chain intact | p50 ms | p95 ms | max ms | requests/s "
            "| /healthz p50 / max ms during load |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Result: {'no error and no lost record' if ok else 'FAILED'} (as many distinct "
            "record ids returned and records stored as requests, in every run). Latency "
            f"includes queueing: with {args.concurrency} requests in flight and {args.workers} "
            "explanation threads, a request waits for the ones ahead of it, so p50 is about "
            "(concurrency / workers) times the time of one explanation plus its store write.",
        ]
    )
    _report.write_section(args.out, SECTION, text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
