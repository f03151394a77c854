"""HTML reports: contents, escaping of hostile names and values, audit findings, atomic writes."""

from __future__ import annotations

import math
import os
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

import surrogate_xai as sx
from surrogate_xai.datasets import load_german_credit, make_linear
from surrogate_xai.exceptions import (
    ConfigurationError,
    MissingColumnError,
    ReferenceMismatchError,
)
from surrogate_xai.report import (
    AuditFindings,
    audit_report,
    build_audit_findings,
    decision_report,
    write_html,
)
from surrogate_xai.report._html import content_security_policy, num

SCRIPT = "<script>alert(1)</script>"
QUOTES = "\"quotes'"
UNICODE = "é ✓ 中文"
# The forms autoescape gives them (markupsafe writes quotes as numeric references).
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
QUOTES_ESCAPED = "&#34;quotes&#39;"

HOSTILE_FEATURES = ["income", SCRIPT, QUOTES, UNICODE]
CATEGORIES = [SCRIPT, QUOTES, UNICODE, "plain"]
CATALOGUE = {
    "name": "hostile <catalogue>",
    "version": "2024-06",
    "reasons": [
        {"code": "R01", "text": "Income too low", "features": ["income"]},
        {"code": "R02", "text": f"Segment {SCRIPT} is risky", "features": [SCRIPT]},
        {"code": "R03", "text": f"Debt {QUOTES} too high", "features": [QUOTES]},
        {"code": "R04", "text": f"Region {UNICODE}", "features": [UNICODE]},
    ],
}


def _score(frame: pd.DataFrame) -> np.ndarray:
    effect = {SCRIPT: -1.2, QUOTES: 0.4, UNICODE: -0.3, "plain": 0.6}
    z = (
        0.9 * frame["income"].to_numpy(dtype=float)
        - 0.7 * frame[QUOTES].to_numpy(dtype=float)
        + 0.5 * frame[UNICODE].to_numpy(dtype=float) * frame["income"].to_numpy(dtype=float)
        + frame[SCRIPT].map(effect).to_numpy(dtype=float)
    )
    good = 1 / (1 + np.exp(-z))
    return np.column_stack([1 - good, good])


def hostile_case(n: int = 60, seed: int = 5) -> dict:
    """A model whose column names and category values are hostile, explained and reasoned.

    Used by the browser test too.
    """
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "income": rng.normal(size=n).round(3),
            SCRIPT: pd.Series(rng.choice(CATEGORIES, size=n), dtype=object),
            QUOTES: rng.normal(size=n).round(3),
            UNICODE: rng.normal(size=n).round(3),
        }
    )
    model = sx.FunctionModel(
        _score,
        feature_names=HOSTILE_FEATURES,
        output_names=["probabilities[bad]", "probabilities[good]"],
        identity="hostile-test-model",
        categories={SCRIPT: CATEGORIES},
    )
    background = sx.Background.sample(data, 20, random_state=1)
    explainer = sx.KernelSHAP(max_evals=120, random_state=3).fit(model, background)
    exp = explainer.explain(data.iloc[:6])
    reasons = sx.reason_codes(exp, CATALOGUE, adverse="decrease", output="probabilities[good]")
    # A row whose decision is adverse and has a reason coded from the hostile column.
    row = next(
        i
        for i, r in enumerate(reasons)
        if exp.diagnostics.predictions[i, 1] <= 0.5 and "R02" in r.codes
    )
    return {
        "data": data,
        "model": model,
        "background": background,
        "explainer": explainer,
        "explanation": exp,
        "reasons": reasons,
        "row": row,
    }


@pytest.fixture(scope="module")
def hostile() -> dict:
    return hostile_case()


class _Collector(HTMLParser):
    """Start tags, attributes and text of a document, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []
        self._raw = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag == "style":
            self._raw += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._raw -= 1

    def handle_data(self, data: str) -> None:
        if not self._raw:
            self.text.append(data)


def parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    c.close()
    return c


def assert_self_contained(html: str) -> None:
    """No script, no URL, no resource reference, and the CSP meta tag first in the head."""
    assert "<script" not in html.lower()
    assert "http://" not in html
    assert "https://" not in html
    doc = parse(html)
    assert doc.tags["script"] == 0
    assert doc.tags["link"] == 0
    assert doc.tags["iframe"] == 0
    assert not [a for a in doc.attrs if a[1] in ("src", "href", "action", "srcset", "style")]
    assert not [a for a in doc.attrs if a[1].startswith("on")]  # no event handlers
    csp = content_security_policy()
    assert f'<meta http-equiv="Content-Security-Policy" content="{csp}">' in html
    assert csp.startswith("default-src 'none'; style-src 'sha256-")
    assert "img-src data:" in csp
    assert "unsafe-inline" not in csp
    assert html.index("Content-Security-Policy") < html.index("<style>")
    assert doc.tags["style"] == 1


def assert_hostile_escaped(html: str) -> None:
    assert SCRIPT not in html
    assert SCRIPT_ESCAPED in html
    assert QUOTES not in html
    assert QUOTES_ESCAPED in html
    assert UNICODE in html  # plain text: UTF-8, nothing to escape
    text = "".join(parse(html).text)
    # What a reader sees is the names themselves, as text.
    assert SCRIPT in text
    assert QUOTES in text
    assert UNICODE in text


# -- the decision report -------------------------------------------------------------------------
def test_decision_report_shows_reasons_prediction_and_replay(hostile: dict) -> None:
    exp, row = hostile["explanation"], hostile["row"]
    reasons = hostile["reasons"][row]
    command = (
        "sxai replay rec-42 --store sqlite:///audit.db --model credit.onnx --background ref.csv"
    )
    html = decision_report(
        exp,
        row,
        reasons=reasons,
        outcome={"decision": "declined", "threshold": 0.5},
        record_id="rec-42",
        replay_command=command,
    )
    assert_self_contained(html)
    text = "".join(parse(html).text)
    assert reasons.reasons, "the fixture row must have reasons"
    for r in reasons.reasons:
        assert r.code in text
        assert r.text in text
    assert "declined" in text
    prediction = exp.diagnostics.predictions[row, 1]
    assert num(prediction) in text
    assert num(exp.base_values[row, 1]) in text
    assert command in text
    assert "rec-42" in text
    # The waterfall is inline SVG with one bar per feature (4 features: no lumping).
    assert parse(html).tags["svg"] == 1
    assert html.count('class="bar adverse"') + html.count('class="bar favourable"') == 4
    # Every applicant value is shown, hostile category value included.
    for col in exp.data.columns:
        assert str(col) in text
    assert_hostile_escaped(html)


@pytest.mark.reliability
def test_decision_report_escapes_hostile_category_value_in_chart_and_table(hostile: dict) -> None:
    exp, reasons = hostile["explanation"], hostile["reasons"]
    rows = [i for i in range(len(exp)) if exp.data[SCRIPT].iloc[i] == SCRIPT]
    assert rows, "the fixture must explain a row whose category value is the script tag"
    i = rows[0]
    html = decision_report(exp, i, reasons=reasons[i])
    # As a label in the SVG ("name = value") and as a cell of the applicant table.
    assert f"{SCRIPT_ESCAPED} = {SCRIPT_ESCAPED}" in html
    assert f"<td>{SCRIPT_ESCAPED}</td>" in html
    assert_hostile_escaped(html)
    assert_self_contained(html)


def test_decision_report_without_reasons_or_record(hostile: dict) -> None:
    html = decision_report(hostile["explanation"], 0, output="probabilities[good]")
    text = "".join(parse(html).text)
    assert "No principal reasons were supplied" in text
    assert "not recorded in an audit store" in text
    assert "not recorded" in text  # no outcome given
    assert_self_contained(html)


def test_decision_report_generic_replay_command_with_record_only(hostile: dict) -> None:
    row = hostile["row"]
    html = decision_report(
        hostile["explanation"], row, reasons=hostile["reasons"][row], record_id="r-7"
    )
    assert "sxai replay r-7 --store STORE_URL --model MODEL.onnx" in html


def test_decision_report_rejects_mismatched_inputs(hostile: dict) -> None:
    exp, reasons = hostile["explanation"], hostile["reasons"]
    with pytest.raises(ConfigurationError, match="row 0"):
        decision_report(exp, 0, reasons=reasons[1])
    with pytest.raises(ConfigurationError, match="out of range"):
        decision_report(exp, len(exp))
    with pytest.raises(ConfigurationError, match="probabilities\\[good\\]"):
        decision_report(exp, 0, reasons=reasons[0], output="probabilities[bad]")
    with pytest.raises(ConfigurationError, match="unknown output"):
        decision_report(exp, 0, output="nope")
    with pytest.raises(ConfigurationError, match="outcome"):
        decision_report(exp, 0, outcome="declined")  # type: ignore[arg-type]


def test_waterfall_lumps_the_tail_and_keeps_the_sum() -> None:
    from surrogate_xai.report.decision import MAX_STEPS, waterfall_steps

    d = 20
    problem, _ = make_linear(n_samples=40, n_features=d, random_state=2)
    model = sx.FunctionModel(
        problem.predict, feature_names=problem.feature_names, input_type="array"
    )
    X = problem.X
    exp = sx.KernelSHAP(max_evals=2000, random_state=0).fit(model, X.iloc[:10]).explain(X.iloc[:2])
    steps = waterfall_steps(exp, 1, 0)
    assert len(steps) == MAX_STEPS + 1
    assert steps[-1].label == f"{d - MAX_STEPS} other features"
    assert math.isclose(sum(s.value for s in steps), exp.values[1, :, 0].sum(), rel_tol=1e-12)
    shown = [abs(s.value) for s in steps[:-1]]
    assert shown == sorted(shown, reverse=True)
    html = decision_report(exp, 1)
    assert f"{d - MAX_STEPS} other features" in html
    assert_self_contained(html)


# -- atomic writes -------------------------------------------------------------------------------
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "report.html")


def test_write_html_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    assert write_html(target, "<p>one</p>") == target
    assert target.read_text(encoding="utf-8") == "<p>one</p>"
    write_html(str(target), f"<p>two {UNICODE}</p>")
    assert target.read_text(encoding="utf-8") == f"<p>two {UNICODE}</p>"
    assert _leftovers(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == 0o666 & ~umask  # a new file follows the umask


@pytest.mark.reliability
def test_write_html_failure_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    write_html(target, "<p>old</p>")

    # Text that cannot be encoded fails after the temporary file exists.
    with pytest.raises(UnicodeEncodeError):
        write_html(target, "<p>new \udcff</p>")
    assert target.read_text(encoding="utf-8") == "<p>old</p>"
    assert _leftovers(tmp_path) == []

    # A failure at the final rename (disk full, permissions...) leaves the old file too.
    def refuse(src: str, dst: str) -> None:
        assert Path(src).read_text(encoding="utf-8") == "<p>new</p>"  # fully written first
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("surrogate_xai.staging.os.replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_html(target, "<p>new</p>")
    assert target.read_text(encoding="utf-8") == "<p>old</p>"
    assert _leftovers(tmp_path) == []


def test_write_html_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no folder"):
        write_html(tmp_path / "missing" / "r.html", "<p></p>")
    with pytest.raises(ConfigurationError, match="str"):
        write_html(tmp_path / "r.html", b"<p></p>")  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


# -- audit findings ------------------------------------------------------------------------------
CREDIT_CATALOGUE = {
    "name": "german-credit",
    "version": "1",
    "reasons": [
        {
            "code": "C01",
            "text": "Checking account status",
            "features": ["status_of_existing_checking_account"],
        },
        {
            "code": "C02",
            "text": "Loan amount or duration too high",
            "features": ["credit_amount", "duration_in_month"],
        },
        {"code": "C03", "text": "Credit history", "features": ["credit_history"]},
        {"code": "C04", "text": "Savings", "features": ["savings_account_and_bonds"]},
    ],
}


@pytest.fixture(scope="module")
def credit_findings(credit_model) -> tuple[AuditFindings, sx.ONNXModel]:
    pipe, path, X = credit_model
    _, y = load_german_credit()
    model = sx.ONNXModel(path, output="probabilities")
    data, labels = X.iloc[600:760].reset_index(drop=True), y.iloc[600:760].to_numpy()
    parity = sx.check_parity(pipe.predict_proba, model, X.iloc[:100])
    background = sx.Background.sample(X.iloc[:600], 40, random_state=0)
    findings = build_audit_findings(
        model,
        data,
        background,
        target=labels,
        catalogue=CREDIT_CATALOGUE,
        output="probabilities[good]",
        adverse="decrease",
        threshold=0.5,
        n_explain=24,
        random_state=11,
        parity=parity,
        command="sxai audit credit.onnx --data audit.csv --background ref.csv",
    )
    return findings, model


def test_audit_findings_have_sane_numbers(credit_findings) -> None:
    f, model = credit_findings
    exp = f.explanation
    assert len(exp) == 24
    assert f.n_data == 160
    assert f.output == "probabilities[good]"
    assert f.output_index == 1
    # The rows explained are the audit rows at the recorded positions.
    assert len(set(f.explained_rows.tolist())) == 24
    # Global surrogate: held-out fidelity on a quarter of the audit rows.
    fid = f.surrogate.fidelity
    assert fid.metric == "r2"
    assert fid.n_test == 40
    assert fid.n_train == 120
    assert math.isfinite(fid.value)
    assert fid.value <= 1.0
    assert f.surrogate.low_fidelity == (fid.value < f.surrogate.min_fidelity)
    assert f.surrogate.rules
    assert all("THEN" in r for r in f.surrogate.rules)
    # Importance: intervals contain the estimate, over every feature.
    k = f.output_index
    imp = f.importance
    assert np.all(imp.lower[:, k] <= imp.mean_abs[:, k] + 1e-15)
    assert np.all(imp.mean_abs[:, k] <= imp.upper[:, k] + 1e-15)
    # Quality: the values add up; standard errors exist (sampled) and are non-negative.
    assert f.efficiency_gap.shape == (24,)
    assert float(f.efficiency_gap.max()) < 1e-9
    assert f.stderr.shape == (24 * 20,)
    assert np.all(f.stderr >= 0)
    assert f.stderr.max() > 0
    s = f.seed_stability
    assert s is not None
    assert s.seeds[0] == 11
    assert s.seeds[1] != 11
    assert np.all((s.jaccard >= 0) & (s.jaccard <= 1))
    assert 0 <= s.mean <= 1
    assert s.mean == pytest.approx(float(np.mean(s.jaccard)))
    b = f.background_sensitivity
    assert b is not None
    assert b.relative_change >= 0
    assert 0 <= b.top_jaccard <= 1
    assert b.alternative["hash"] != f.background["hash"]
    # Adverse decisions, recomputed from the model itself.
    X = f.explanation.data
    p_good = model.predict(X)[:, 1]
    assert np.array_equal(f.adverse_rows, p_good <= 0.5)
    assert 0 < f.n_adverse < 24, "the sample should hold both kinds of decisions"
    # Reason frequencies: counted among adverse decisions only; they sum to the reasons given.
    expected = Counter(
        code for r, bad in zip(f.reasons, f.adverse_rows, strict=True) if bad for code in r.codes
    )
    assert {fr.code: fr.count for fr in f.reason_frequencies} == dict(expected)
    assert sum(fr.count for fr in f.reason_frequencies) == sum(
        len(r.reasons) for r, bad in zip(f.reasons, f.adverse_rows, strict=True) if bad
    )
    assert sum(fr.first for fr in f.reason_frequencies) == sum(
        1 for r, bad in zip(f.reasons, f.adverse_rows, strict=True) if bad and r.reasons
    )
    counts = [fr.count for fr in f.reason_frequencies]
    assert counts == sorted(counts, reverse=True)
    assert all(0 < fr.share <= 1 for fr in f.reason_frequencies)
    # Performance against the labels, and the appendix.
    assert f.performance is not None
    assert f.performance["positive_class"] == "good"
    assert 0.5 < f.performance["accuracy"] <= 1
    assert 0.5 < f.performance["auc"] <= 1
    assert f.parity is not None
    assert f.parity.passed
    assert f.reproducibility["hashes"]["model"] == model.identity
    assert f.reproducibility["seeds"]["explanation"] == 11
    assert any("independen" in lim for lim in f.limitations)


def test_audit_findings_are_reproducible(credit_findings) -> None:
    f, model = credit_findings
    again = build_audit_findings(
        model,
        _credit_X().iloc[600:760].reset_index(drop=True),
        sx.Background.sample(_credit_X().iloc[:600], 40, random_state=0),
        catalogue=CREDIT_CATALOGUE,
        output="probabilities[good]",
        n_explain=24,
        random_state=11,
    )
    assert np.array_equal(again.explained_rows, f.explained_rows)
    assert np.array_equal(again.explanation.values, f.explanation.values)
    assert again.seed_stability is not None
    assert f.seed_stability is not None
    assert again.seed_stability.mean == f.seed_stability.mean
    assert again.surrogate.fidelity.value == f.surrogate.fidelity.value


def _credit_X() -> pd.DataFrame:
    X, _ = load_german_credit()
    return X


def test_audit_report_renders_every_section(credit_findings) -> None:
    f, _ = credit_findings
    html = audit_report(f)
    assert_self_contained(html)
    text = "".join(parse(html).text)
    for heading in (
        "Scope and model identity",
        "Conversion and parity evidence",
        "Data and background",
        "Global importance",
        "Global surrogate",
        "Explanation quality",
        "Stability across seeds",
        "Sensitivity to the background",
        "Reason-code frequencies among adverse decisions",
        "Limitations",
        "Reproducibility appendix",
    ):
        assert heading in text
    assert f"held-out r2 {num(f.surrogate.fidelity.value)}" in text
    assert f.seed_stability is not None
    assert num(f.seed_stability.mean, 3) in text
    assert "parity passed" in text
    for fr in f.reason_frequencies:
        assert fr.code in text
        assert fr.text in text
    assert f.model["identity"] in text
    assert "sxai audit credit.onnx --data audit.csv --background ref.csv" in text
    assert parse(html).tags["svg"] == 2  # importance bars and the standard-error histogram


@pytest.mark.reliability
def test_audit_report_escapes_hostile_names_and_categories(hostile: dict) -> None:
    findings = build_audit_findings(
        hostile["model"],
        hostile["data"],
        hostile["background"],
        explainer=hostile["explainer"],
        catalogue=CATALOGUE,
        output="probabilities[good]",
        n_explain=10,
        random_state=2,
    )
    html = audit_report(findings)
    assert_self_contained(html)
    assert_hostile_escaped(html)
    # Names and category values reach the surrogate's rules and the data summary: escaped.
    rules = findings.surrogate.rules
    assert any(SCRIPT in rule for rule in rules)
    for rule in rules:
        assert str(escape(rule)) in html
    summaries = {entry["column"]: entry["summary"] for entry in findings.data_summary}
    assert set(summaries) == set(HOSTILE_FEATURES)
    for column, summary in summaries.items():
        # Shown by its display name (a catalogue text, or the name itself), the column's own
        # name beside it when they differ.
        shown = findings.name(column)
        cell = (
            f"<td>{escape(column)}</td>"
            if shown == column
            else f'<td>{escape(shown)} <code class="muted">{escape(column)}</code></td>'
        )
        assert cell in html
        assert f"<td>{escape(summary)}</td>" in html


def test_audit_findings_check_their_inputs(hostile: dict) -> None:
    model, data, bg = hostile["model"], hostile["data"], hostile["background"]
    with pytest.raises(MissingColumnError, match="income"):
        build_audit_findings(model, data.drop(columns=["income"]), bg)
    with pytest.raises(ConfigurationError, match="at least 8"):
        build_audit_findings(model, data.iloc[:5], bg)
    other = sx.Background.sample(data, 20, random_state=99)
    with pytest.raises(ReferenceMismatchError, match="background"):
        build_audit_findings(model, data, other, explainer=hostile["explainer"])
    with pytest.raises(ConfigurationError, match="not fitted"):
        build_audit_findings(model, data, bg, explainer=sx.KernelSHAP())
    with pytest.raises(ConfigurationError, match="adverse"):
        build_audit_findings(model, data, bg, adverse="down")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="target"):
        build_audit_findings(model, data, bg, target=np.array(["x"] * len(data)), n_explain=2)
    with pytest.raises(ConfigurationError, match="AuditFindings"):
        audit_report({"not": "findings"})  # type: ignore[arg-type]


def test_exact_method_has_no_seed_stability(hostile: dict) -> None:
    model, data, bg = hostile["model"], hostile["data"], hostile["background"]
    exact = sx.ExactSHAP().fit(model, bg)
    f = build_audit_findings(
        model, data, bg, explainer=exact, output="probabilities[good]", n_explain=6
    )
    assert f.seed_stability is None
    assert f.explanation.diagnostics.exact
    html = audit_report(f)
    assert "The method has no seed" in html
    assert_self_contained(html)


def test_audit_refuses_target_labels_it_would_mis_score(hostile: dict) -> None:
    # An empty cell ("nan") or a third class would silently count as the other class.
    from surrogate_xai.exceptions import InputError

    model, data, bg = hostile["model"], hostile["data"], hostile["background"]
    good = np.where(np.arange(len(data)) % 2 == 0, "good", "bad").astype(object)
    missing = good.copy()
    missing[4] = None
    third = good.copy()
    third[6] = "maybe"
    kwargs = {"output": "probabilities[good]", "n_explain": 2, "explainer": hostile["explainer"]}
    with pytest.raises(InputError, match="target is missing a value at row 4"):
        build_audit_findings(model, data, bg, target=missing, **kwargs)
    with pytest.raises(InputError, match=r"target holds 'maybe' at row 6.*'bad', 'good'"):
        build_audit_findings(model, data, bg, target=third, **kwargs)
    f = build_audit_findings(model, data, bg, target=good, **kwargs)
    assert f.performance is not None
    assert f.performance["positive_class"] == "good"


def test_decision_report_shows_image_and_time_step_figures(hostile: dict) -> None:
    from tests.deep_cases import IMAGE, image_explanation, sequence_explanation

    image = decision_report(image_explanation(), 0)
    assert_self_contained(image)
    assert "Where in the image" in image
    assert image.count('class="cell"') == IMAGE[0] * IMAGE[1]
    assert "Over time" not in image
    sequence = decision_report(sequence_explanation(), 1)
    assert_self_contained(sequence)
    assert "Contributions to y per time step" in sequence
    assert "Where in the image" not in sequence
    tabular = decision_report(hostile["explanation"], hostile["row"])
    assert 'class="figure"' not in tabular
