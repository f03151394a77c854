"""A bounded load test of the REST service: N requests, C at a time, on loopback.

Starts ``sxai serve`` (a subprocess, with a SQLite audit store) on the small credit model of
tests/test_service.py, fires the requests with an httpx AsyncClient (one applicant per
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
import shlex
import sys
import tempfile
import time
from pathlib import Path

import _report  # benchmarks/_report.py, beside this script
import numpy as np

sys.path.insert(0, str(_report.ROOT))

import httpx

import surrogate_xai as sx
from tests.test_service import KEY, request_rows, running_service, write_service_files

SECTION = "## REST service under load"


async def fire(
    url: str, n: int, concurrency: int, method: str
) -> tuple[list[float], list[httpx.Response], list[float], float]:
    """Latencies and answers of ``n`` requests, ``concurrency`` at a time; health-probe
    latencies while they ran; the wall time."""
    limit = asyncio.Semaphore(concurrency)
    done = asyncio.Event()
    rows = [request_rows(1, seed=1000 + i) for i in range(n)]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="sxai serve --workers")
    parser.add_argument("--method", default="kernelshap")
    parser.add_argument("--out", type=Path, default=_report.ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_service_files(folder)
        store = folder / "audit.db"
        load_before = Path("/proc/loadavg").read_text().split()[:3]
        with running_service(files, "--workers", str(args.workers), store=store) as svc:
            latencies, answers, probes, wall = asyncio.run(
                fire(svc.url, args.requests, args.concurrency, args.method)
            )
            with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
                info = c.get("/v1/model").json()
        load_after = Path("/proc/loadavg").read_text().split()[:3]
        errors = [a.status_code for a in answers if a.status_code != 200]
        ids = {rid for a in answers if a.status_code == 200 for rid in a.json()["record_ids"]}
        with sx.AuditStore(f"sqlite:///{store}") as audit:
            stored, chain_ok = len(audit), audit.verify().ok
        first = answers[0].json()

    lat = np.array(latencies) * 1000
    p50, p95, worst = np.percentile(lat, 50), np.percentile(lat, 95), lat.max()
    ok = not errors and len(answers) == args.requests and stored == args.requests == len(ids)
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
            "the same machine and shares its cores. Model: the service tests' GBM classifier "
            f"(d={len(info['feature_names'])}, {info['background']['size']} background rows, "
            f"ONNX). Each request explains one applicant with `{args.method}` "
            f"(max_evals {info['limits']['max_evals']:,}; "
            f"{first['explanations'][0]['model_evaluations']:,} model rows per row, "
            f"{'exact' if first['exact'] else 'sampled'}), finds its reasons and writes one "
            "audit record.",
            "",
            "| requests | concurrent | errors | records stored | chain intact | p50 ms | p95 ms "
            "| max ms | requests/s | /healthz p50 / max ms during load |",
            "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
            f"| {args.requests} | {args.concurrency} | {len(errors)} | {stored} | "
            f"{'yes' if chain_ok else 'NO'} | {p50:.0f} | {p95:.0f} | {worst:.0f} | "
            f"{args.requests / wall:.1f} | {np.median(probes) * 1000:.1f} / "
            f"{max(probes) * 1000:.1f} |",
            "",
            f"Result: {'no error and no lost record' if ok else 'FAILED'} "
            f"({len(ids)} distinct record ids returned for {args.requests} requests). Latency "
            "includes queueing: with 8 requests in flight and 2 explanation threads, a request "
            "waits for the ones ahead of it, so p50 is about (concurrency / workers) times the "
            "time of one explanation plus its store write.",
        ]
    )
    _report.write_section(args.out, SECTION, text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
