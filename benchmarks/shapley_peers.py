"""Our Shapley estimators against shapiq 1.8's, per model row, side by side.

shapiq >= 1.5 needs Python 3.12; the project's venv is 3.11. So shapiq runs in its own venv
(``make bench-peers`` builds ``.venv-peers`` from ``benchmarks/peers/requirements.txt``) as a
small server (``benchmarks/peers/shapiq_side.py``); the two sides exchange only files (the ONNX
bytes, the background and the rows as ``.npy``) and results. Both run the same ONNX bytes through
onnxruntime with one intra-op thread, on the same interventional game over the same background
rows. A shapiq budget is coalitions, each costing ``n_bg`` model rows; ours is model rows, so a
budget multiple ``M`` is ``M · 2d`` coalitions for shapiq and ``M · 2d · n_bg + 1`` rows for us.

Cases (models and oracles from benchmarks/shapley.py): the diabetes GBM (d=10), the
breast-cancer GBM (d=30), the synthetic XGBoost (d=100; TreeExplainer's interventional values
averaged over 100-row chunks), and an MLP on diabetes exported to ONNX (exact values by
enumerating all 2^10 coalitions through the ONNX model). Each with a 100-row background (a
seeded sample of the training set) and, for d <= 30, the whole training set.

Methods run one row per call, interleaved row by row with the order rotating, so machine noise
hits every method alike; errors are ``||phi_hat - phi|| / ||phi||`` per row (medians); wall
times are medians per row; "outside model" is 1 - (time in ``session.run``) / wall.

Usage::

    make bench-peers                                  # builds .venv-peers, runs the full set
    python benchmarks/shapley_peers.py --quick        # smoke run (d=10 only, 2 rows)
    python benchmarks/shapley_peers.py --cases diabetes,mlp --rows 5 --budgets 1,4,16,64
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _report
import numpy as np
import shapley as base  # benchmarks/shapley.py: cases, oracles, timed sessions

ROOT = _report.ROOT
SECTION = "## Shapley estimators vs shapiq"
PEERS_PYTHON = ROOT / ".venv-peers/bin/python"
#: The peer side's estimators, as its first "load" answers (set there, not written twice).
PEER_METHODS: tuple[str, ...] = ()
OUR_METHODS = ("KernelSHAP", "PermutationSHAP", "OddKernelSHAP")
SEED = 7


class Peer:
    """The shapiq side: one process of the peers' venv, spoken to in JSON lines."""

    def __init__(self) -> None:
        if not PEERS_PYTHON.exists():
            raise SystemExit(f"{PEERS_PYTHON} is missing: run `make bench-peers` first")
        script = ROOT / "benchmarks/peers/shapiq_side.py"
        self.proc = subprocess.Popen(
            [str(PEERS_PYTHON), str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, **request: Any) -> dict[str, Any]:
        if self.proc.stdin is None or self.proc.stdout is None:
            raise RuntimeError("the peer process has no pipes")
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is None:
            raise RuntimeError("the peer process has no pipes")
        self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)


def peer_versions() -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m, sys;"
        "print(json.dumps({p: m.version(p) for p in ('shapiq', 'onnxruntime', 'numpy', "
        "'lightgbm', 'xgboost-cpu', 'scikit-learn')} | {'python': sys.version.split()[0]}))"
    )
    out = subprocess.run([str(PEERS_PYTHON), "-c", code], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


# -- cases --------------------------------------------------------------------------------------


def mlp() -> base.Case:
    """An MLP regressor on diabetes (standardised inputs inside the exported pipeline)."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_diabetes
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X = base.as_float32_values(X)
    X_tr, X_te, y_tr, y_te = base._split(X, y, 0.2)
    model = make_pipeline(
        StandardScaler(),
        MLPRegressor(
            hidden_layer_sizes=(32, 16), max_iter=3000, random_state=0, learning_rate_init=0.01
        ),
    ).fit(X_tr, y_tr)
    onx = to_onnx(model, X_tr[:1].astype(np.float32), target_opset=17)
    return base.Case(
        name="mlp",
        description="sklearn MLPRegressor(32, 16) behind a StandardScaler, on diabetes",
        X_train=X_tr,
        X_explain=X_te,
        onnx_bytes=onx.SerializeToString(),
        native=model.predict,
        native_model=model,
        facts={"test R2": round(float(model.score(X_te, y_te)), 3)},
    )


def brute_force(predict: base.TimedPredict, X: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Exact values through the ONNX model: all 2^d coalitions against every background row."""
    d = X.shape[1]
    masks = ((np.arange(2**d)[:, None] >> np.arange(d)) & 1).astype(bool)
    out = np.empty(X.shape)
    for i, x in enumerate(X):
        v = np.empty(2**d)
        for start in range(0, 2**d, 64):
            m = masks[start : start + 64]
            rows = np.where(m[:, None, :], x[None, None, :], B[None]).reshape(-1, d)
            v[start : start + len(m)] = predict(rows).reshape(len(m), len(B)).mean(1)
        out[i] = base.shapley_from_game(v, d)
    predict.reset()
    return out


def exact(case: base.Case, predict: base.TimedPredict, B: np.ndarray) -> np.ndarray:
    X = case.X_explain
    if case.name == "mlp":
        return brute_force(predict, X, B)
    if case.name == "synthetic":
        return base.tree_explainer_oracle(case, X, B)
    return base.sklearn_gbm_oracle(case, X, B)


# -- methods ------------------------------------------------------------------------------------


@dataclass
class Result:
    side: str
    method: str
    multiple: float
    records: list[dict[str, Any]] = field(default_factory=list)
    batch_s_per_row: float | None = None
    batch_outside: float | None = None
    failed: str | None = None


def our_runner(
    name: str, model: Any, B: np.ndarray, max_evals: int
) -> tuple[Any, Callable[[np.ndarray, int], np.ndarray]]:
    import surrogate_xai as sx

    ex = getattr(sx, name)(max_evals=max_evals, random_state=SEED).fit(model, B)

    def run(x: np.ndarray, i: int) -> np.ndarray:
        ex.random_state = SEED + i  # a design per row, as each shapiq call has its own
        return np.asarray(ex.explain(x[None, :]).values[0, :, 0])

    return ex, run


def measure(
    case: base.Case,
    B: np.ndarray,
    truth: np.ndarray,
    multiples: list[float],
    peer: Peer,
    timer: base.TimedPredict,
    log: Callable[[str], None],
    tmp: Path,
) -> list[Result]:
    d, n_bg, n = case.d, len(B), len(case.X_explain)
    model = base.our_onnx_model(case, timer)
    x_path = tmp / f"{case.name}-{n_bg}-x.npy"
    np.save(x_path, case.X_explain)
    results: list[Result] = []
    for mult in multiples:
        coalitions = int(mult * 2 * d)
        max_evals = coalitions * n_bg + 1
        ours = {}
        for name in OUR_METHODS:
            try:
                ours[name] = our_runner(name, model, B, max_evals)
            except AttributeError:
                continue  # an estimator this checkout does not have
            ours[name][1](case.X_train[0], -1)  # untimed: seed -1 is no measured call's
        plan: list[tuple[Result, Callable[[int], dict[str, Any]]]] = []
        for name, (_, run) in ours.items():

            def call(i: int, run: Callable[[np.ndarray, int], np.ndarray] = run) -> dict[str, Any]:
                timer.reset()
                began = time.perf_counter()
                values = run(case.X_explain[i], i)
                wall = time.perf_counter() - began
                return {
                    "values": values,
                    "wall_s": wall,
                    "model_s": timer.seconds,
                    "model_rows": timer.rows,
                }

            plan.append((Result("ours", name, mult), call))
        for name in PEER_METHODS:

            def ask(i: int, name: str = name, coalitions: int = coalitions) -> dict[str, Any]:
                reply = peer.ask(
                    op="run", method=name, budget=coalitions, x=str(x_path), row=i, seed=SEED + i
                )
                if "values" in reply:
                    reply["values"] = np.asarray(reply["values"])
                return reply

            plan.append((Result("shapiq", name, mult), ask))
        for i in range(n):
            order = plan[i % len(plan) :] + plan[: i % len(plan)]
            for res, call in order:
                if res.failed:
                    continue
                rec = call(i)
                if "error" in rec:
                    res.failed = rec["error"]
                    continue
                rec["rel_error"] = base.relative_error(rec.pop("values"), truth[i])
                res.records.append(rec)
        for res, _ in plan:
            if res.side == "ours" and not res.failed:
                ex = ours[res.method][0]
                ex.random_state = SEED
                timer.reset()
                began = time.perf_counter()
                ex.explain(case.X_explain)
                wall = time.perf_counter() - began
                res.batch_s_per_row = wall / n
                res.batch_outside = 1 - timer.seconds / wall
        results += [res for res, _ in plan]
        log(f"  {case.name} n_bg={n_bg} {mult:g}x: " + ", ".join(_short(r) for r, _ in plan))
    return results


def _short(r: Result) -> str:
    if r.failed:
        return f"{r.method} failed"
    return f"{r.method} {100 * np.median([x['rel_error'] for x in r.records]):.3g}%"


# -- report -------------------------------------------------------------------------------------


def summary(r: Result) -> dict[str, Any]:
    if r.failed or not r.records:
        return {"side": r.side, "method": r.method, "multiple": r.multiple, "failed": r.failed}
    wall = np.array([x["wall_s"] for x in r.records])
    model = np.array([x["model_s"] for x in r.records])
    return {
        "side": r.side,
        "method": r.method,
        "multiple": r.multiple,
        "rows": float(np.median([x["model_rows"] for x in r.records])),
        "err": float(np.median([x["rel_error"] for x in r.records])),
        "wall": float(np.median(wall)),
        "outside": float(np.median(1 - model / wall)),
        "batch": r.batch_s_per_row,
        "batch_outside": r.batch_outside,
    }


def _err(e: float) -> str:
    return f"{100 * e:.2g}%" if e >= 1e-5 else f"{e:.0e}"


def _ms(s: float) -> str:
    return f"{1000 * s:.3g} ms" if s < 1 else f"{s:.3g} s"


def tables(block: dict[str, Any]) -> list[str]:
    rows = block["summaries"]
    methods = [*OUR_METHODS, *PEER_METHODS]
    present = [m for m in methods if any(r["method"] == m for r in rows)]
    head = "| budget | model rows/row | " + " | ".join(
        f"{'ours ' if m in OUR_METHODS else ''}{m}" for m in present
    )
    lines = [
        "Median relative error / median wall time per row (one row per call):",
        "",
        head + " | best shapiq |",
        "|---|---:|" + "---:|" * (len(present) + 1),
    ]
    for mult in block["multiples"]:
        at = {r["method"]: r for r in rows if r["multiple"] == mult}
        cells, best = [], None
        for m in present:
            r = at.get(m)
            if r is None or "err" not in r:
                cells.append("refused" if r and r.get("failed") else "")
                continue
            cells.append(f"{_err(r['err'])} / {_ms(r['wall'])}")
            if m in PEER_METHODS and (best is None or r["err"] < best[1]):
                best = (m, r["err"])
        ours = [r for r in at.values() if r["side"] == "ours" and "rows" in r]
        n_rows = f"{np.median([r['rows'] for r in ours]):,.0f}" if ours else ""
        lines.append(
            f"| {mult:g}x | {n_rows} | " + " | ".join(cells) + f" | {best[0] if best else ''} |"
        )
    lines += [
        "",
        "Share of wall time outside the model (one row per call; ours also with one call for all "
        "rows, and that call's time per row):",
        "",
        "| budget | " + " | ".join(present) + " |",
        "|---|" + "---:|" * len(present),
    ]
    for mult in block["multiples"]:
        at = {r["method"]: r for r in rows if r["multiple"] == mult}
        cells = []
        for m in present:
            r = at.get(m)
            if r is None or "outside" not in r:
                cells.append("")
            elif r["batch"] is not None:
                cells.append(
                    f"{100 * r['outside']:.0f}% (all rows: {100 * r['batch_outside']:.0f}%, "
                    f"{_ms(r['batch'])}/row)"
                )
            else:
                cells.append(f"{100 * r['outside']:.0f}%")
        lines.append(f"| {mult:g}x | " + " | ".join(cells) + " |")
    failed = sorted({f"{r['method']}: {r['failed']}" for r in rows if r.get("failed")})
    if failed:
        lines += ["", "Refused: " + "; ".join(failed)]
    return lines


def verdict(blocks: list[dict[str, Any]], ours: str) -> list[str]:
    """Where ``ours`` is at most the best shapiq estimator's error at the same model rows."""
    won, lost = [], []
    for b in blocks:
        for mult in b["multiples"]:
            at = [r for r in b["summaries"] if r["multiple"] == mult and "err" in r]
            mine = next((r for r in at if r["method"] == ours), None)
            theirs = [r for r in at if r["side"] == "shapiq"]
            if mine is None or not theirs:
                continue
            best = min(theirs, key=lambda r: r["err"])
            tag = f"{b['label']} {mult:g}x ({_err(mine['err'])} vs {best['method']} {_err(best['err'])})"
            (won if mine["err"] <= best["err"] else lost).append(tag)
    return [
        f"- **{ours} at most the best shapiq error at the same model rows**: "
        f"{len(won)} of {len(won) + len(lost)} settings.",
        *([f"- Not reached: {'; '.join(lost)}."] if lost else []),
    ]


def render(result: dict[str, Any]) -> str:
    m, peers = result["machine"], result["peers"]
    lines = [
        SECTION,
        "",
        f"Command: `{result['command']}` (from the repository root; `make bench-peers` builds "
        "`.venv-peers` first)  ",
        f"Date: {result['date']}, run time {result['total_minutes']:.1f} min, load average "
        f"before/after {result['load_before']} / {result['load_after']} on {m['nproc']} cores "
        f"({m['cpu']}); other work shared the machine, so wall times are noisy: compare the "
        "columns of one row (measured interleaved), not runs  ",
        f"Ours: Python {m['python']}, commit {m['commit']}, onnxruntime {m.get('onnxruntime')}, "
        f"numpy {m.get('numpy')}. Peers: Python {peers.get('python')}, shapiq {peers.get('shapiq')}, "
        f"onnxruntime {peers.get('onnxruntime')}, numpy {peers.get('numpy')}, lightgbm "
        f"{peers.get('lightgbm')}, xgboost {peers.get('xgboost-cpu')}.",
        "",
        "Both sides run the same ONNX bytes (1 intra-op thread) on the same interventional game "
        "over the same background rows. Budget `Mx` = `M * 2d` coalitions for shapiq (each costs "
        "`n_bg` model rows) = `M * 2d * n_bg + 1` model rows for ours. Error: "
        "`||phi_hat - phi||_2 / ||phi||_2` per row against exact values, median over "
        f"{result['rows']} held-out rows, each its own seed on both sides (so ours builds a new "
        "design in every call). shapiq's estimators as configured in "
        "`benchmarks/peers/shapiq_side.py` (LeverageSHAP and KernelSHAP paired; OddSHAP, ProxySHAP "
        "and RegressionMSR with their default tree proxies).",
        "",
    ]
    for b in result["blocks"]:
        lines += [
            f"### {b['label']}",
            "",
            f"Model: {b['description']}. Exact values: {b['oracle']}.",
            "",
            *tables(b),
            "",
        ]
    lines += ["### Summary", "", *verdict(result["blocks"], result["default"]), ""]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


ORACLES = {
    "diabetes": "enumeration per tree (sklearn's trees)",
    "breast_cancer": "enumeration per tree (sklearn's trees)",
    "synthetic": "TreeExplainer interventional on the raw margin, 100-row chunks",
    "mlp": "all 2^10 coalitions through the ONNX model",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--cases", default="diabetes,breast_cancer,synthetic,mlp")
    parser.add_argument("--budgets", default="1,4,16,64", help="multiples of 2*d*n_bg rows")
    parser.add_argument(
        "--whole",
        default="diabetes,breast_cancer,mlp",
        help="cases also run over the whole training set",
    )
    parser.add_argument("--whole-budgets", default="1,4,16")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    n_rows = args.rows or (2 if args.quick else 6)
    cases = ["diabetes"] if args.quick else args.cases.split(",")
    multiples = [1.0, 4.0] if args.quick else [float(b) for b in args.budgets.split(",")]
    whole_multiples = [float(b) for b in args.whole_budgets.split(",")]
    whole = set() if args.quick else set(args.whole.split(","))
    out = args.out or (
        ROOT / "benchmarks/out/benchmarks-quick.md" if args.quick else ROOT / "docs/benchmarks.md"
    )
    warnings.filterwarnings("ignore")
    run = _report.Run("shapley_peers.py", argv, ("onnxruntime", "numpy"))
    log, result = run.log, run.result
    result.update(rows=n_rows, blocks=[], peers=peer_versions(), default="OddKernelSHAP")
    peer = Peer()
    builders = {
        "diabetes": base.diabetes,
        "breast_cancer": base.breast_cancer,
        "synthetic": lambda: base.synthetic(1000),
        "mlp": mlp,
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name in cases:
            case = builders[name]()
            case.X_explain = case.X_explain[:n_rows]
            timer = base.TimedPredict(case.onnx_bytes)
            onnx_path = tmp / f"{name}.onnx"
            onnx_path.write_bytes(case.onnx_bytes)
            rng = np.random.default_rng(0)
            settings = [
                (
                    "100-row background",
                    case.X_train[rng.choice(len(case.X_train), 100, replace=False)],
                    multiples,
                )
            ]
            if name in whole:
                settings.append(
                    (
                        f"whole training set ({len(case.X_train)} rows)",
                        case.X_train,
                        whole_multiples,
                    )
                )
            for label, B, mults in settings:
                bg_path = tmp / f"{name}-{len(B)}-bg.npy"
                np.save(bg_path, B)
                loaded = peer.ask(op="load", onnx=str(onnx_path), background=str(bg_path))
                global PEER_METHODS
                PEER_METHODS = tuple(loaded["methods"])
                log(f"{name}: d={case.d}, {label}: exact values")
                truth = exact(case, timer, B)
                res = measure(case, B, truth, mults, peer, timer, log, tmp)
                result["blocks"].append(
                    {
                        "label": f"{name} (d={case.d}), {label}",
                        "description": f"{case.description}; {', '.join(f'{k} {v}' for k, v in case.facts.items())}",
                        "oracle": ORACLES[name],
                        "multiples": mults,
                        "summaries": [summary(r) for r in res],
                    }
                )
                # Written after every block: a later failure keeps what was measured.
                result.setdefault("total_minutes", 0.0)
                result.setdefault("load_after", "(run still going)")
                _report.write_section(out, SECTION, render(result))
    peer.close()
    raw = run.finish("shapley-peers")
    _report.write_section(out, SECTION, render(result))
    log(f"wrote {out} and {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
