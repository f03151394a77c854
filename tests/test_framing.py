"""Words that fit any model: a regression and a multiclass model through ``sxai explain`` and
``sxai audit`` with neutral wording, no decision without a threshold, one default output
rule, numeric targets scored, and a misspelt header blamed on the right file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.decisions import CREDIT, DecisionPolicy, decide, decision_output
from surrogate_xai.report import audit_report, build_audit_findings, decision_report
from tests.cli_runner import assert_user_error, sxai_here

CREDIT_WORDS = re.compile(r"applicant|declined|approved", re.IGNORECASE)


def _tensor_model(folder: Path, name: str, estimator, X: pd.DataFrame, y) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    estimator.fit(X.to_numpy(np.float32), y)
    options = {"zipmap": False} if hasattr(estimator, "predict_proba") else None
    proto = to_onnx(
        estimator,
        initial_types=[("input", FloatTensorType([None, X.shape[1]]))],
        target_opset=17,
        options=options,
    )
    path = folder / f"{name}.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A diabetes regressor and a wine (3-class) classifier as single-tensor ONNX files, as
    skl2onnx writes them (the regressor's output is called ``variable``), and their CSVs."""
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    folder = tmp_path_factory.mktemp("framing")
    for name, loader, estimator in (
        ("diabetes", load_diabetes, GradientBoostingRegressor(n_estimators=20, random_state=0)),
        ("wine", load_wine, GradientBoostingClassifier(n_estimators=10, random_state=0)),
    ):
        data = loader(as_frame=True)
        X = data.data.astype(np.float32).astype(np.float64)
        _tensor_model(folder, name, estimator, X, data.target)
        X.iloc[:4].to_csv(folder / f"{name}.csv", index=False)
        X.iloc[100:130].to_csv(folder / f"{name}_bg.csv", index=False)
        audit = X.assign(y=data.target).sample(120, random_state=0)  # every class present
        audit.to_csv(folder / f"{name}_audit.csv", index=False)
    return folder


def _explain(models: Path, name: str, capsys, *extra: str):
    return sxai_here(
        "explain", f"{name}.onnx", "--data", f"{name}.csv", "--background", f"{name}_bg.csv",
        "--max-evals", "600", "--out", f"{name}.jsonl", "--report-dir", f"rep-{name}", *extra,
        cwd=models, capsys=capsys,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["diabetes", "wine"])
def test_explain_without_a_threshold_decides_nothing_in_neutral_words(models, capsys, name):
    proc = _explain(models, name, capsys)
    assert proc.returncode == 0, proc.stderr
    # Today's default: threshold 0.5, "variable <= 0.5 is declined".
    assert "no decision made (give --threshold to decide)" in proc.stdout
    assert not CREDIT_WORDS.search(proc.stdout)
    lines = [json.loads(s) for s in (models / f"{name}.jsonl").read_text().splitlines()]
    assert {(line["decision"], line["threshold"]) for line in lines} == {(None, None)}
    # The default output is the last column, for the decision as for the reasons.
    assert {line["output"] for line in lines} == {
        "variable" if name == "diabetes" else "probabilities[2]"
    }
    for report in (models / f"rep-{name}").glob("decision-*.html"):
        text = report.read_text()
        assert not CREDIT_WORDS.search(text), CREDIT_WORDS.search(text)
        assert "Values of this row" in text
        assert "no threshold was given, so nothing was decided" in text
        assert "Explanation of row" in text


def test_a_regression_output_reads_as_a_prediction(models, capsys):
    proc = _explain(models, "diabetes", capsys)
    assert proc.returncode == 0, proc.stderr
    text = (models / "rep-diabetes" / "decision-0.html").read_text()
    assert "prediction (variable)" in text  # the axis: the readable name and the graph's
    assert ">prediction</div>" in text  # not "prediction (variable)" in the decision box
    # Reason titles without a catalogue entry show the value rounded, not at full precision.
    titles = re.findall(r'<span class="text">(.*?)</span>', text)
    assert titles
    digits = [
        v.lstrip("-0.").replace(".", "") for t in titles for v in re.findall(r"-?\d+\.\d+", t)
    ]
    assert digits
    assert all(len(d) <= 6 for d in digits), titles


def test_a_threshold_on_a_regression_decides_in_neutral_labels_unless_told_otherwise(
    models, capsys
):
    proc = _explain(models, "diabetes", capsys, "--threshold", "150")
    assert proc.returncode == 0, proc.stderr
    assert "adverse, " in proc.stdout
    assert "favourable" in proc.stdout
    assert "variable <= 150.0 is adverse" in proc.stdout
    lines = [json.loads(s) for s in (models / "diabetes.jsonl").read_text().splitlines()]
    assert {line["decision"] for line in lines} <= {"adverse", "favourable"}
    proc = _explain(
        models, "diabetes", capsys, "--threshold", "150", "--subject", "patient",
        "--adverse-label", "flagged", "--favourable-label", "cleared",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(s) for s in (models / "diabetes.jsonl").read_text().splitlines()]
    assert {line["decision"] for line in lines} <= {"flagged", "cleared"}
    text = (models / "rep-diabetes" / "decision-0.html").read_text()
    assert "Values of this patient" in text
    assert "Decision on patient 0" in text
    same = _explain(models, "diabetes", capsys, "--adverse-label", "x", "--favourable-label", "x")
    assert_user_error(same, "two outcomes need different labels")


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("diabetes", ["R² ", "RMSE", "mean absolute error"]),
        ("wine", ["AUC", "positive class <code>2</code>"]),
    ],
)
def test_audit_scores_the_target_in_neutral_words(models, capsys, name, wanted):
    report = models / f"audit-{name}.html"
    proc = sxai_here(
        "audit", f"{name}.onnx", "--data", f"{name}_audit.csv", "--target", "y",
        "--report", report, "--n-explain", "6", "--quiet",
        cwd=models, capsys=capsys,
    )  # fmt: skip
    # Today: "cannot tell which value of column 'y' ... labels include ['100.0', ...]".
    assert proc.returncode == 0, proc.stderr
    text = report.read_text()
    for fragment in wanted:
        assert fragment in text, fragment
    assert not CREDIT_WORDS.search(text)
    assert "no threshold was given, so no decision is made" in text
    assert f"<title>Model audit: {name}.onnx, output" in text


def test_regression_scores_are_the_textbook_formulas(models):
    model = sx.ONNXModel(models / "diabetes.onnx")
    data = pd.read_csv(models / "diabetes_audit.csv")
    X = data.drop(columns="y").set_axis(model.feature_names, axis=1)
    findings = build_audit_findings(
        model, X, X.iloc[:20], target=data["y"].to_numpy(), n_explain=4, random_state=1
    )
    predicted = model.predict(X)[:, 0]
    residual = data["y"].to_numpy() - predicted
    performance = findings.performance
    assert performance is not None
    assert performance["kind"] == "regression"
    assert performance["rmse"] == pytest.approx(np.sqrt(np.mean(residual**2)))
    assert performance["mae"] == pytest.approx(np.mean(np.abs(residual)))
    r2 = 1 - np.sum(residual**2) / np.sum((data["y"] - data["y"].mean()) ** 2)
    assert performance["r2"] == pytest.approx(r2)


def test_a_target_that_fits_no_output_says_what_to_do_in_one_sentence(models, capsys, tmp_path):
    data = pd.read_csv(models / "wine_audit.csv")
    data.assign(y=data["y"].map({0: "barolo", 1: "grignolino", 2: "barbera"})).to_csv(
        tmp_path / "named.csv", index=False
    )
    proc = sxai_here(
        "audit", models / "wine.onnx", "--data", "named.csv", "--target", "y",
        "--report", "r.html", cwd=tmp_path, capsys=capsys,
    )  # fmt: skip
    line = assert_user_error(proc, "choose the output of one of these classes", "--score")
    assert line.count(". ") == 0  # one sentence
    assert not (tmp_path / "r.html").exists()


def test_a_misspelt_data_header_is_blamed_on_the_data_file(models, capsys, tmp_path):
    rows = pd.read_csv(models / "diabetes.csv")
    rows.rename(columns={"age": "aeg"}).to_csv(tmp_path / "rows.csv", index=False)
    proc = sxai_here(
        "explain", models / "diabetes.onnx", "--data", "rows.csv",
        "--background", models / "diabetes_bg.csv", "--out", "o.jsonl",
        cwd=tmp_path, capsys=capsys,
    )  # fmt: skip
    # Today: "diabetes_bg.csv: column 0 is 'age' but the model's tensor column 0 is 'aeg'".
    line = assert_user_error(proc, "error: rows.csv: column 0 is 'aeg'", "calls it 'age'")
    assert "the model's tensor column" not in line


# -- the library: one default output rule, one framing ------------------------------------------
@pytest.fixture(scope="module")
def wine_explanation(models):
    model = sx.ONNXModel(models / "wine.onnx")
    X = pd.read_csv(models / "wine.csv").set_axis(model.feature_names, axis=1)
    bg = pd.read_csv(models / "wine_bg.csv").set_axis(model.feature_names, axis=1)
    return model, sx.KernelSHAP(max_evals=400, random_state=0).fit(model, bg).explain(X), bg


def test_one_default_output_everywhere(wine_explanation):
    from surrogate_xai import plots, reason_codes

    model, exp, bg = wine_explanation
    last = len(exp.output_names) - 1
    assert decision_output(exp.output_names, None) == last
    assert reason_codes(exp)[0].output == exp.output_names[last]  # was index 0
    assert decide(exp, DecisionPolicy()).reasons[0].output == exp.output_names[last]
    html = decision_report(exp, 0)
    assert f"output <code>{exp.output_names[last]}</code>" in html
    findings = build_audit_findings(model, bg, bg, n_explain=4, random_state=0)
    assert findings.output == exp.output_names[last]
    figure = plots.waterfall(exp, 0)
    assert exp.output_names[last] in figure.axes[0].get_xlabel()


def test_framing_is_recorded_and_shown(wine_explanation, tmp_path):
    _, exp, _ = wine_explanation
    decisions = decide(exp, DecisionPolicy(threshold=0.5, adverse="increase", framing=CREDIT))
    assert set(decisions.labels or []) <= {"declined", "approved"}
    outcome = (decisions.outcomes or [])[0]
    assert outcome["adverse"] == (outcome["decision"] == "declined")
    neutral = decide(exp, DecisionPolicy(threshold=0.5, adverse="increase"))
    assert set(neutral.labels or []) <= {"adverse", "favourable"}
    assert neutral.n_adverse == decisions.n_adverse == decisions.declined
    page = decision_report(exp, 0, framing=CREDIT, outcome=outcome)
    assert "Values of this applicant" in page
    neutral_page = decision_report(exp, 0)
    assert not CREDIT_WORDS.search(neutral_page)


def test_audit_without_a_threshold_counts_reasons_over_every_row(wine_explanation):
    model, _, bg = wine_explanation
    findings = build_audit_findings(model, bg, bg, n_explain=6, random_state=0)
    assert not findings.decided
    assert findings.n_adverse == 0
    assert sum(f.count for f in findings.reason_frequencies) == sum(
        len(r.reasons) for r in findings.reasons
    )
    text = audit_report(findings)
    assert "Reason-code frequencies</h2>" in text
    assert "among adverse decisions" not in text
    assert not CREDIT_WORDS.search(text)


def test_labels_that_are_the_models_classes_are_read_as_classes():
    from surrogate_xai.model_audit import target_truth

    names = ["probabilities[0]", "probabilities[1]", "probabilities[2]"]
    # 0/1 labels of a 3-class model are classes 0 and 1: none of them is class 2 (they used
    # to be read as "is class 2" yes/no).
    positive, truth = target_truth(np.array([0, 1, 1, 0]), "probabilities[2]", names)
    assert positive == "2"
    assert not truth.any()
