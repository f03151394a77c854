"""``progress=`` in the Python API: a bar where a person watches, nothing elsewhere, and
never a different number."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import surrogate_xai as sx
from surrogate_xai.batch import explain_batch
from surrogate_xai.datasets import make_linear
from surrogate_xai.exceptions import ConfigurationError
from surrogate_xai.progress import progress_bar, watched
from surrogate_xai.report import build_audit_findings


@pytest.fixture(scope="module")
def fitted():
    problem, _ = make_linear(n_samples=40, n_features=4, random_state=2)
    model = sx.FunctionModel(problem.predict, problem.feature_names, input_type="array")
    explainer = sx.KernelSHAP(max_evals=200, random_state=3).fit(model, problem.X.iloc[:10])
    return model, explainer, problem.X


def test_a_bar_when_asked_nothing_when_nobody_watches(fitted, capsys):
    _, explainer, X = fitted
    quiet = explain_batch(explainer, X, partition_rows=8)  # stderr is captured: not watched
    assert capsys.readouterr().err == ""
    shown = explain_batch(explainer, X, partition_rows=8, progress=True)
    err = capsys.readouterr().err
    assert "explaining" in err
    assert "40/40" in err
    np.testing.assert_array_equal(quiet.values, shown.values)  # the bar changes no value
    steps: list[int] = []
    explain_batch(explainer, X, partition_rows=16, progress=steps.append)
    assert steps == [16, 16, 8]
    assert capsys.readouterr().err == ""


def test_the_audit_reports_its_steps(fitted):
    model, _, X = fitted
    steps: list[int] = []
    build_audit_findings(model, X, X.iloc[:10], n_explain=4, progress=steps.append)
    assert steps == [1] * 5


def test_worker_threads_never_draw_and_bad_values_are_refused():
    seen = []
    thread = threading.Thread(target=lambda: seen.append(watched()))
    thread.start()
    thread.join()
    assert seen == [False]
    with pytest.raises(ConfigurationError, match="progress must be"), progress_bar("yes", 3, "x"):  # type: ignore[arg-type]
        pass
