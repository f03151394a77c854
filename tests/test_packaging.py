"""The wheel maps adapters/ and datasets/ into the package, as the editable install does."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents_and_imports(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    # Every folder with files in it is declared (a package, or package data): setuptools
    # otherwise prints a ~40-line banner on every install ("Package would be ignored").
    assert "would be ignored" not in build.stderr, build.stderr
    assert "absent from the `packages` configuration" not in build.stderr, build.stderr
    wheel = next(tmp_path.glob("surrogate_xai-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "surrogate_xai/adapters/sklearn.py" in names
    assert "surrogate_xai/datasets/german_credit.csv" in names
    assert "surrogate_xai/py.typed" in names
    assert "surrogate_xai/report/templates/decision.j2" in names
    assert "surrogate_xai/report/templates/style.css.j2" in names
    assert not any(n.startswith(("adapters/", "datasets/", "tests/")) for n in names)

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = (
        "import surrogate_xai, surrogate_xai.adapters.sklearn;"
        "from surrogate_xai.datasets import load_german_credit;"
        "X, y = load_german_credit(); print(surrogate_xai.__file__, X.shape)"
    )
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    ).stdout
    assert str(unpacked) in out  # imported from the wheel, not the checkout
    assert "(1000, 20)" in out
