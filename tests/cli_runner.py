"""Running ``sxai`` as a user would: in a subprocess, or in this process for the many small
error cases; the check that a user mistake is one ``error:`` line with exit 2; and the small
credit-like model with its CSVs that the command-line tests run on (:func:`make_work`)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

N_ROWS = 6
CATALOGUE = """\
name: tiny-credit
version: "1"
reasons:
  - code: R01
    text: Income too low
    features: [income]
  - code: R02
    text: Purpose of the loan
    features: [purpose]
  - code: R03
    text: Housing situation
    features: [housing]
"""


def make_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small credit-like model (numbers + categories) exported to ONNX, and its CSVs."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from surrogate_xai.adapters.sklearn import to_onnx

    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(3.0, 1.0, n).round(3),
            "purpose": rng.choice(["car", "house", "education"], n).astype(object),
            "housing": rng.choice(["own", "rent"], n).astype(object),
        }
    )
    logit = 1.2 * X["income"] - 3.0 + (X["purpose"] == "house") - 0.8 * (X["housing"] == "rent")
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "good", "bad")
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("t", OneHotEncoder(), ["purpose", "housing"])], remainder="passthrough"
                ),
            ),
            ("lr", LogisticRegression()),
        ]
    ).fit(X, y)
    folder = tmp_path_factory.mktemp("cli")
    model = to_onnx(pipe, X.iloc[:100], output="probability")
    (folder / "model.onnx").write_bytes(model.model_bytes)
    rows = X.iloc[:N_ROWS].assign(app=[f"A/{i}" for i in range(N_ROWS)])
    rows[["app", *X.columns]].to_csv(folder / "rows.csv", index=False)
    X.iloc[200:240].to_csv(folder / "ref.csv", index=False)
    (folder / "reasons.yaml").write_text(CATALOGUE)
    (folder / "model.txt").write_text("this is not a model\n")
    return folder


def sxai(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m surrogate_xai.cli`` as a user would (stdout/stderr are not terminals)."""
    return subprocess.run(
        [sys.executable, "-m", "surrogate_xai.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def sxai_here(*args: object, cwd: Path, capsys: pytest.CaptureFixture[str]) -> Result:
    """The same entry point in this process (for the many small error cases: no start-up)."""
    from surrogate_xai.cli import main

    before = Path.cwd()
    os.chdir(cwd)
    try:
        code = main([str(a) for a in args])
    finally:
        os.chdir(before)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def assert_user_error(proc: Result | subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, exactly one line on stderr, ``error: ...``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def hidden(folder: Path) -> list[str]:
    """Hidden entries of ``folder``: what a run that staged its outputs could leave behind
    (staging folders, temporary files)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
