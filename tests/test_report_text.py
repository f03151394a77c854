"""What a reviewer reads in the reports: grammar, names, numbers, axis labels, plain words for
jargon, and failures (a surrogate that does not fit, rows that did not converge) shown as
failures. (Layout in a real browser: tests/test_report_browser.py.)"""

from __future__ import annotations

import html as html_lib
import re

import pytest
from markupsafe import escape

import surrogate_xai as sx
from surrogate_xai.decisions import CREDIT
from surrogate_xai.display import display_names
from surrogate_xai.reasons import load_catalogue
from surrogate_xai.report import audit_report, build_audit_findings, decision_report
from tests.test_report import parse

CATALOGUE = {
    "name": "credit-text",
    "version": "1",
    "reasons": [
        {"code": "R01", "text": "Status of the checking account", "features": ["status_of_existing_checking_account"]},
        {"code": "R02", "text": "Duration of the credit", "features": ["duration_in_month"]},
    ],
}  # fmt: skip


def text_of(page: str) -> str:
    return html_lib.unescape("".join(parse(page).text))


@pytest.fixture(scope="module")
def credit(credit_model):
    """The depth-3 boosted credit model, explained with too small a tolerance to be met."""
    _, path, X = credit_model
    model = sx.ONNXModel(path)
    background = X.iloc[:40]
    explainer = sx.KernelSHAP(max_evals=1500, tol=1e-9, random_state=0).fit(model, background)
    exp = explainer.explain(X.iloc[200:203])
    reasons = sx.reason_codes(exp, CATALOGUE, adverse="decrease", output="probabilities[good]")
    return model, X, background, exp, reasons


def test_decision_report_reads_well(credit):
    _, _, _, exp, reasons = credit
    names = display_names(
        exp.feature_names,
        exp.output_names,
        catalogue=load_catalogue(CATALOGUE),
        given={"credit_amount": "Amount asked for"},
    )
    page = decision_report(
        exp,
        0,
        reasons=reasons[0],
        outcome={"decision": "declined", "threshold": 0.5},
        framing=CREDIT,
        display_names=names,
    )
    text = text_of(page)
    assert "a decrease of" in text or "an increase of" in text
    assert not re.search(r"\ba increase\b|\ban decrease\b", text)
    assert not re.search(r"[).][A-Z]", text.replace("e.g.", "")), re.findall(
        r".{20}[).][A-Z].{10}", text
    )
    # Parameters as words, not a JSON dump.
    assert '{"' not in text
    assert "null" not in text
    assert re.search(r"parameters\s*max_evals 1500; tol 1e-09;", text)
    # Display names: the catalogue's text, the mapping given, else the name with spaces.
    assert "Status of the checking account = " in page
    assert "Amount asked for = " in page
    assert '<td>present employment since <code class="muted">present_employment_since' in page
    # Long labels wrap onto lines (tspans) instead of being cut with "…".
    assert "…" not in re.sub(r"<title>.*?</title>", "", page)
    assert "<tspan" in page
    # The chart's axis is named; jargon is explained where it first appears.
    assert 'class="axis-label">probabilities[good]</text>' in page
    assert "the model's average over the 40 background rows" in text
    assert "± 1.96 standard errors" in text
    assert "how far the contributions' sum is from prediction \N{MINUS SIGN} base value" in text
    assert "the graph's inputs take the table's columns by name" in text
    # A row that did not reach its tolerance says so.
    assert "no: some standard errors are still above the tolerance 1e-09" in text


def test_audit_report_shows_a_failing_surrogate_and_convergence_honestly(credit):
    model, X, background, _, _ = credit
    findings = build_audit_findings(
        model,
        X.iloc[200:400],
        background,
        catalogue=CATALOGUE,
        output="probabilities[good]",
        threshold=0.5,
        n_explain=6,
        max_evals=1500,
        tol=1e-9,
        random_state=0,
    )
    assert findings.surrogate.low_fidelity  # a depth-3 tree cannot mimic this model
    page = audit_report(findings)
    text = text_of(page)
    assert 'class="badge bad" id="surrogate-verdict"' in page
    assert "do not read its rules" in text
    # The rules are withheld behind a closed <details>, not printed under the warning.
    details = re.search(r'<details id="surrogate-rules">(.*?)</details>', page, re.S)
    assert details
    assert all(str(escape(r)) in details[1] for r in findings.surrogate.rules)
    assert '<details id="surrogate-rules" open' not in page
    assert "0 of 6 (every standard error below the tolerance 1e-09)" in text
    # A real title, axis names on every chart, no JSON, numbers that never wrap.
    assert "<title>Model audit: ONNXModel, output probabilities[good]</title>" in page
    assert page.count('class="axis-label"') >= 3  # importance x, histogram x and y
    assert ">number of attributions</text>" in page
    assert '{"' not in text
    assert re.search(r'<td class="num">\d', page)


def test_a_passing_surrogate_prints_its_rules(credit):
    _, X, background, _, _ = credit
    data = X.iloc[200:400]
    # A model a depth-3 tree describes exactly: one split.
    simple = sx.FunctionModel(
        lambda frame: (frame["duration_in_month"].to_numpy() > 20).astype(float)[:, None],
        feature_names=list(data.columns),
        output_names=["score"],
    )
    findings = build_audit_findings(simple, data, background, n_explain=4, random_state=0)
    assert not findings.surrogate.low_fidelity
    page = audit_report(findings)
    assert 'class="badge good" id="surrogate-verdict"' in page
    assert "<details" not in page
    assert '<div id="surrogate-rules">' in page


def test_a_hostile_long_name_is_shortened_with_its_full_text_in_the_tooltip():
    from surrogate_xai.report import _svg

    lines = _svg.wrap("word " * 100)
    assert len(lines) == 3
    assert lines[-1].endswith("…")
    assert _svg.wrap("status_of_existing_checking_account = 0 <= ... < 200 DM") == [
        "status_of_existing_checking_account = 0 <=",
        "... < 200 DM",
    ]
    assert _svg.wrap("x" * 50) == ["x" * 44, "x" * 6]  # a word longer than a line is broken
