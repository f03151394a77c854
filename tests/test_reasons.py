"""Reason codes: known adverse drivers, catalogues, exclusion, stability, reference checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.exceptions import CatalogueError, ConfigurationError, ReferenceMismatchError
from surrogate_xai.explanation import Diagnostics, Explanation, Provenance
from surrogate_xai.reasons import (
    DecisionReasons,
    ReasonCatalogue,
    load_catalogue,
    reason_codes,
)

FEATURES = [
    "income",
    "debt_ratio",
    "missed_payments",
    "tenure",
    "savings",
    "age",
    "inquiries",
    "utilisation",
    "sex",
]
# Exact Shapley value of each feature for the explained row (linear model, weights 1):
# x_j - E[x_j]. Negative values lower the score of a good outcome (the adverse direction).
CONTRIBUTIONS = {
    "income": -0.50,
    "debt_ratio": 0.30,
    "missed_payments": -0.10,
    "tenure": -0.40,
    "savings": -0.05,
    "age": -0.45,
    "inquiries": -0.25,
    "utilisation": -0.20,
    "sex": 0.10,
}
CATALOGUE = {
    "name": "test-catalogue",
    "version": "2024-06",
    "reasons": [
        {"code": "R01", "text": "Income too low", "features": ["income"]},
        {
            "code": "R02",
            "text": "Too many recent inquiries or high utilisation",
            "features": ["inquiries", "utilisation"],
        },
        {"code": "R03", "text": "Short credit history", "features": ["tenure"]},
        {"code": "R04", "text": "Missed payments", "features": ["missed_payments"]},
    ],
}


@pytest.fixture(scope="module")
def constructed():
    """A linear scorer whose exact attributions for row 0 are CONTRIBUTIONS by construction."""
    rng = np.random.default_rng(0)
    background = pd.DataFrame(rng.normal(size=(30, len(FEATURES))), columns=FEATURES)
    mean = background.mean().to_numpy()
    row = mean + np.array([CONTRIBUTIONS[f] for f in FEATURES])
    second = mean - np.array([CONTRIBUTIONS[f] for f in FEATURES])  # every sign flipped
    X = pd.DataFrame([row, second], columns=FEATURES)

    def score(A):
        s = 0.5 + np.asarray(A).sum(axis=1)
        return np.column_stack([s, 1.0 - s])

    model = sx.FunctionModel(score, FEATURES, ["good", "bad"], input_type="array")
    explainer = sx.ExactSHAP(max_features=len(FEATURES)).fit(model, background)
    return explainer.explain(X), background


def test_known_adverse_drivers_are_the_top_four_in_order(constructed):
    explanation, _ = constructed
    assert np.allclose(explanation.values[0, :, 0], [CONTRIBUTIONS[f] for f in FEATURES])
    result = reason_codes(explanation, exclude=["age", "sex"], output="good")[0]
    assert [r.features for r in result.reasons] == [
        ("income",),
        ("tenure",),
        ("inquiries",),
        ("utilisation",),
    ]
    assert [r.rank for r in result.reasons] == [1, 2, 3, 4]
    assert [r.contribution for r in result.reasons] == pytest.approx([-0.5, -0.4, -0.25, -0.2])
    # Exact values have zero standard error: every rank is stable, every interval a point.
    assert all(r.stable is True and r.stderr == 0 for r in result.reasons)
    assert result.reasons[0].interval == (result.reasons[0].contribution,) * 2


def test_excluded_protected_attribute_never_appears_and_is_flagged(constructed):
    explanation, _ = constructed
    unrestricted = reason_codes(explanation, output="good")[0]
    assert [r.features[0] for r in unrestricted.reasons] == ["income", "age", "tenure", "inquiries"]
    for row in reason_codes(explanation, exclude=["age", "sex"], n=9, output="good"):
        emitted = {f for r in row.reasons for f in r.features}
        assert not emitted & {"age", "sex"}
    result = reason_codes(explanation, exclude=["age", "sex"], output="good")[0]
    assert result.excluded == ("age", "sex")
    assert result.suppressed == ("age",)  # sex pushes toward the good outcome: nothing to flag
    assert any("protected attribute age" in f for f in result.flags)


def test_only_contributions_toward_the_adverse_outcome_count(constructed):
    explanation, _ = constructed
    # Row 1 mirrors row 0: only debt_ratio and sex now push the good score down.
    result = reason_codes(explanation, n=4, output="good")[1]
    assert [r.features[0] for r in result.reasons] == ["debt_ratio", "sex"]
    assert all(r.contribution < 0 for r in result.reasons)


def test_adverse_increase_on_the_bad_output_gives_the_same_reasons(constructed):
    explanation, _ = constructed
    good = reason_codes(explanation, output="good", adverse="decrease", exclude=["age"])
    bad = reason_codes(explanation, output=1, adverse="increase", exclude=["age"])
    for g, b in zip(good, bad, strict=True):
        assert g.codes == b.codes
        assert b.output == "bad"
        assert b.adverse == "increase"
        assert [r.contribution for r in b.reasons] == pytest.approx(
            [-r.contribution for r in g.reasons]
        )


def test_catalogue_codes_combine_features_many_to_one(constructed, tmp_path):
    explanation, _ = constructed
    path = tmp_path / "reasons.yaml"
    import yaml

    path.write_text(yaml.safe_dump(CATALOGUE))
    for source in (CATALOGUE, path, str(path), load_catalogue(CATALOGUE)):
        result = reason_codes(explanation, source, exclude=["age", "sex"], output="good")[0]
        assert result.codes == ["R01", "R02", "R03", "R04"]
        r02 = result.reasons[1]
        assert r02.features == ("inquiries", "utilisation")
        assert r02.text == "Too many recent inquiries or high utilisation"
        assert r02.contribution == pytest.approx(-0.45)
        assert result.catalogue is not None
        assert result.catalogue["version"] == "2024-06"
        assert result.catalogue["sha256"] == load_catalogue(CATALOGUE).sha256
        assert all(r.catalogued for r in result.reasons)
        # One reason per code: the applicant never gets the same code twice.
        assert len(set(result.codes)) == len(result.codes)


def test_features_without_an_entry_get_a_generated_text_and_a_flag(constructed):
    explanation, _ = constructed
    result = reason_codes(explanation, CATALOGUE, n=5, exclude=["age", "sex"], output="good")[0]
    last = result.reasons[-1]
    assert last.code == "UNMAPPED:savings"
    assert not last.catalogued
    assert last.text.startswith("savings = ")
    assert any("'savings' has no catalogue entry" in f for f in result.flags)


def test_combined_standard_errors_and_stability():
    # values for one row, output "good"; stderr chosen so that the intervals of the first two
    # candidates overlap and the others are well separated.
    values = [-0.50, -0.47, -0.20, -0.10, 0.05]
    stderr = [0.02, 0.02, 0.01, 0.01, 0.01]
    explanation = make_explanation(values, stderr)
    result = reason_codes(explanation, n=3)[0]
    assert result.codes == ["UNMAPPED:f0", "UNMAPPED:f1", "UNMAPPED:f2"]
    assert [r.stable for r in result.reasons] == [False, True, True]
    r0 = result.reasons[0]
    assert r0.interval == pytest.approx((-0.50 - 1.96 * 0.02, -0.50 + 1.96 * 0.02))
    assert any("overlap the next candidate" in f for f in result.flags)
    # The last reason is compared with the first candidate left out.
    tight = reason_codes(make_explanation([-0.5, -0.2, -0.19], [0.001, 0.01, 0.01]), n=2)[0]
    assert [r.stable for r in tight.reasons] == [True, False]
    # A code of two features: contributions add up, standard errors add in quadrature.
    catalogue = {
        "version": "1",
        "reasons": [{"code": "A", "text": "a", "features": ["f2", "f3"]}],
    }
    combined = reason_codes(explanation, catalogue, n=3)[0]
    a = next(r for r in combined.reasons if r.code == "A")
    assert a.contribution == pytest.approx(-0.30)
    assert a.stderr == pytest.approx(math.sqrt(0.01**2 + 0.01**2))
    assert combined.codes == ["UNMAPPED:f0", "UNMAPPED:f1", "A"]


def test_missing_standard_errors_make_stability_unknown():
    explanation = make_explanation([-0.5, -0.2, 0.1], [np.nan, np.nan, np.nan])
    result = reason_codes(explanation)[0]
    assert [r.stable for r in result.reasons] == [None, None]
    assert all(r.interval is None for r in result.reasons)
    assert any("stability of the reasons is unknown" in f for f in result.flags)
    json.dumps(result.to_dict(), allow_nan=False)  # NaN is written as null


def test_groups_take_the_code_of_their_columns_and_exclusion_covers_the_group():
    groups = {"f0": ["f0"], "personal": ["f1", "f2"], "f3": ["f3"]}
    explanation = make_explanation([-0.4, -0.3, -0.1], [0, 0, 0], units=list(groups), groups=groups)
    catalogue = {
        "version": "1",
        "reasons": [{"code": "P", "text": "Personal situation", "features": ["f2"]}],
    }
    result = reason_codes(explanation, catalogue)[0]
    assert result.codes == ["UNMAPPED:f0", "P", "UNMAPPED:f3"]
    excluded = reason_codes(explanation, catalogue, exclude=["f1"])[0]
    assert "P" not in excluded.codes
    assert excluded.suppressed == ("personal",)
    assert any("excluded as a whole" in f for f in excluded.flags)
    clash = {
        "version": "1",
        "reasons": [
            {"code": "A", "text": "a", "features": ["f1"]},
            {"code": "B", "text": "b", "features": ["f2"]},
        ],
    }
    with pytest.raises(CatalogueError, match="group 'personal'"):
        reason_codes(explanation, clash)


def test_reference_must_be_the_background_the_explanation_used(constructed):
    explanation, background = constructed
    approved = sx.Background(background, kind="approved applicants")
    result = reason_codes(explanation, reference=approved)[0]
    assert result.reference["kind"] == "approved applicants"
    assert result.reference["hash"] == explanation.provenance.background["hash"]
    with pytest.raises(ReferenceMismatchError, match=r"explain again with it as the background"):
        reason_codes(explanation, reference=background.iloc[:10])
    # Without a reference the explanation's background is recorded as the reference.
    assert reason_codes(explanation)[0].reference == explanation.provenance.background


def test_round_trip_and_json(constructed):
    explanation, _ = constructed
    for result in reason_codes(explanation, CATALOGUE, exclude=["age"]):
        d = result.to_dict()
        assert DecisionReasons.from_dict(json.loads(json.dumps(d, allow_nan=False))) == result


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be"),
        ({"adverse": "down"}, "adverse must be"),
        ({"output": "nope"}, "unknown output"),
        ({"output": 5}, "out of range"),
        ({"exclude": ["race"]}, "neither a feature"),
        ({"z": -1.0}, "z must be"),
    ],
)
def test_bad_arguments_are_refused(constructed, kwargs, match):
    explanation, _ = constructed
    with pytest.raises(ConfigurationError, match=match):
        reason_codes(explanation, **kwargs)


@pytest.mark.parametrize(
    ("catalogue", "match"),
    [
        ({"reasons": [{"code": "A", "text": "a", "features": ["x"]}]}, "no 'version'"),
        ({"version": "1", "reasons": []}, "non-empty list"),
        (
            {
                "version": "1",
                "reasons": [
                    {"code": "A", "text": "a", "features": ["x"]},
                    {"code": "B", "text": "b", "features": ["x"]},
                ],
            },
            "under both",
        ),
        ({"version": "1", "reasons": [{"code": "A", "text": "a"}]}, "exactly the keys"),
        ({"version": "1", "codes": {}}, "unknown catalogue key"),
    ],
)
def test_malformed_catalogues_are_refused(catalogue, match):
    with pytest.raises(CatalogueError, match=match):
        ReasonCatalogue.from_dict(catalogue)


def test_catalogue_file_errors(tmp_path):
    with pytest.raises(CatalogueError, match="no catalogue file"):
        load_catalogue(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("reasons: [unclosed")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(bad)


# -- helpers -------------------------------------------------------------------------------------
def make_explanation(values, stderr, units=None, groups=None):
    """A one-row, one-output Explanation with the given values and standard errors."""
    values = np.asarray(values, dtype=np.float64)
    d = len(values)
    units = units or [f"f{j}" for j in range(d)]
    groups = groups or {u: [u] for u in units}
    columns = [c for cols in groups.values() for c in cols]
    data = pd.DataFrame([np.arange(len(columns), dtype=np.float64)], columns=columns)
    provenance = Provenance(
        method="test",
        parameters={},
        seed=0,
        model={"identity": "test", "feature_names": columns},
        background={"hash": "0" * 64, "size": 1, "kind": "full"},
        feature_groups=groups,
        design={},
        versions={},
        created_at="2024-01-01T00:00:00+00:00",
    )
    diagnostics = Diagnostics(
        model_evaluations=np.array([0]),
        background_evaluations=0,
        converged=np.array([True]),
        efficiency_gap=np.zeros((1, 1)),
        predictions=np.array([[values.sum()]]),
        blocks=np.array([1]),
        exact=False,
    )
    return Explanation(
        values=values.reshape(1, d, 1),
        base_values=np.zeros((1, 1)),
        stderr=np.asarray(stderr, dtype=np.float64).reshape(1, d, 1),
        data=data,
        feature_names=units,
        output_names=["good"],
        diagnostics=diagnostics,
        provenance=provenance,
    )


def test_adverse_mask_follows_the_parity_decision_rule_at_the_threshold():
    from surrogate_xai.reasons import adverse_mask

    p = np.array([0.2, 0.5, 0.7])
    # Approved iff output > threshold when a low score is adverse, and the reverse.
    assert adverse_mask(p, 0.5, "decrease").tolist() == [True, True, False]
    assert adverse_mask(p, 0.5, "increase").tolist() == [False, False, True]
    with pytest.raises(sx.ConfigurationError, match="adverse"):
        adverse_mask(p, 0.5, "down")  # type: ignore[arg-type]


def test_catalogue_features_can_be_checked_against_the_model():
    catalogue = load_catalogue(CATALOGUE)
    catalogue.check_features(["income", "inquiries", "utilisation", "tenure", "missed_payments"])
    with pytest.raises(CatalogueError, match=r"'tenure', 'missed_payments'.*features: income"):
        catalogue.check_features(["income", "inquiries", "utilisation"])
    # a group's name and the columns inside it are features too
    catalogue.check_features(["income", "debt"], groups={"debt": ["inquiries", "utilisation",
                             "tenure", "missed_payments"]})  # fmt: skip


def test_catalogue_that_is_not_utf8_is_a_catalogue_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(
        "version: '1'\nreasons: [{code: R1, text: 'Âge', features: [a]}]\n".encode("latin-1")
    )
    with pytest.raises(CatalogueError, match="not UTF-8"):
        load_catalogue(path)


def test_one_output_index_rule():
    from surrogate_xai.reasons import output_index

    names = ["p[a]", "p[b]"]
    assert output_index(names, "p[b]") == 1
    assert output_index(names, -1) == 1
    for bad, match in (("q", "unknown output"), (2, "out of range"), (True, "index or a name")):
        with pytest.raises(ConfigurationError, match=match):
            output_index(names, bad)  # type: ignore[arg-type]
