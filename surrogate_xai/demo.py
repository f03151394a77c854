"""The main job on bundled data: ``python -m surrogate_xai.demo`` (``make demo``).

Trains a credit model on German Credit, exports it to ONNX, proves the export equal to the
original, explains ten applicants with KernelSHAP and prints each one's main contributions
toward a "bad" rating. Files go to ``./sxai-demo/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .background import Background
from .explainers import KernelSHAP
from .explanation import Explanation


def _train(X: pd.DataFrame, y: pd.Series) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    prep = ColumnTransformer(
        [("text", OneHotEncoder(handle_unknown="ignore"), text)], remainder="passthrough"
    )
    model = GradientBoostingClassifier(n_estimators=150, max_depth=3, random_state=0)
    return Pipeline([("prep", prep), ("gbm", model)]).fit(X, y)


def _table(exp: Explanation, output: int, top: int) -> str:
    lines = []
    for i in range(len(exp)):
        p = exp.diagnostics.predictions[i, output]
        lines.append(
            f"\napplicant {i}: P(bad) = {p:.3f}   (base rate {exp.base_values[i, output]:.3f})"
        )
        order = np.argsort(-exp.values[i, :, output])[:top]
        for j in order:
            v, se = exp.values[i, j, output], exp.stderr[i, j, output]
            name = exp.feature_names[j]
            value = str(exp.data.iloc[i][name]) if name in exp.data.columns else "(group)"
            lines.append(f"  {v:+.4f} ± {1.96 * se:.4f}  {name} = {value[:48]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from sklearn.model_selection import train_test_split

    from .adapters.sklearn import to_onnx
    from .datasets import load_german_credit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sxai-demo", help="folder for the files written")
    parser.add_argument("--rows", type=int, default=10, help="applicants to explain")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    X, y = load_german_credit()
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    print(f"German Credit: {len(X_train)} training rows, {X.shape[1]} raw columns")
    pipeline = _train(X_train, y_train)
    model = to_onnx(pipeline, X_test, output="probability")
    parity = model.parity_report
    (out / "credit.onnx").write_bytes(model.model_bytes)
    print(
        f"ONNX export: sha256 {model.identity[:16]}..., parity on {parity.rows_checked} rows: "
        f"max |diff| {parity.max_abs_diff:.2e}, {parity.decision_flips} decision flips"
    )

    background = Background.sample(X_train, 100, random_state=0)
    explainer = KernelSHAP(max_evals=10_000, random_state=args.seed).fit(model, background)
    bad = model.output_names.index("probabilities[bad]")
    start = time.perf_counter()
    exp = explainer.explain(X_test.iloc[: args.rows])
    took = time.perf_counter() - start
    (out / "explanations.json").write_text(exp.to_json())

    print(
        f"KernelSHAP: {len(exp)} applicants in {took:.2f} s, "
        f"{int(exp.diagnostics.model_evaluations.mean())} model rows per applicant, "
        f"background of {len(background)} rows (hash {background.hash[:12]}...), seed {args.seed}"
    )
    print("\nLargest contributions toward a 'bad' rating (value ± 95% interval):")
    print(_table(exp, bad, top=4))
    gap = float(exp.diagnostics.efficiency_gap.max())
    print(f"\nvalues sum to prediction - base rate within {gap:.1e}")
    print(f"wrote {out / 'credit.onnx'} and {out / 'explanations.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
