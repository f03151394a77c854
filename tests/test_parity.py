"""check_parity on hand-made outputs: tolerances per output kind, flips apart from gaps."""

from __future__ import annotations

import json

import numpy as np
import pytest

import surrogate_xai as sx
from surrogate_xai.exceptions import ConfigurationError, ParityError
from surrogate_xai.parity import DEFAULT_TOLERANCES


def exported(values: np.ndarray, names: list[str] | None = None) -> sx.FunctionModel:
    """A stand-in export that returns ``values`` for the rows ``0..n-1`` it is given."""
    values = np.asarray(values, dtype=np.float64)
    k = 1 if values.ndim == 1 else values.shape[1]
    return sx.FunctionModel(
        lambda X: values[np.asarray(X[:, 0], dtype=int)],
        feature_names=["row"],
        output_names=names or [f"p{j}" for j in range(k)],
        input_type="array",
    )


def rows(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64).reshape(-1, 1)


def native(values: np.ndarray):
    values = np.asarray(values, dtype=np.float64)
    return lambda X: values[np.asarray(X, dtype=int)[:, 0]]


PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])


def test_identical_outputs_pass_with_a_json_ready_report():
    report = sx.check_parity(native(PROBS), exported(PROBS), rows(4))
    assert report.passed
    assert (report.max_abs_diff, report.decision_flips, report.rows_checked) == (0.0, 0, 4)
    assert (report.atol, report.rtol) == DEFAULT_TOLERANCES["probability"]
    assert [o.name for o in report.outputs] == ["p0", "p1"]
    data = report.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["outputs"][1]["name"] == "p1"


def test_a_gap_without_flips_fails_on_size_and_names_the_worst_cell():
    # float32 rounding at a split behind a scaler: one tree's vote, no decision changed.
    ours = PROBS + np.array([[0, 0], [0, 0], [-0.03, 0.03], [0, 0]])
    report = sx.check_parity(native(PROBS), exported(ours), rows(4))
    assert not report.passed
    assert report.decision_flips == 0
    assert report.rows_beyond_tolerance == 1
    assert report.worst_row == 2
    assert report.max_abs_diff == pytest.approx(0.03)
    with pytest.raises(ParityError, match=r"\|diff\| 0\.03 .* at row 2 .* 0 decision\(s\) flipped"):
        sx.check_parity(native(PROBS), exported(ours), rows(4), raise_on_failure=True)
    with pytest.raises(ParityError, match="pass a larger atol="):
        sx.check_parity(native(PROBS), exported(ours), rows(4), raise_on_failure=True)
    assert sx.check_parity(native(PROBS), exported(ours), rows(4), atol=0.05).passed


def test_flips_are_counted_apart_from_the_gap():
    ours = PROBS.copy()
    ours[2] = [0.49, 0.51]  # within atol=0.2, but the decision changed
    report = sx.check_parity(native(PROBS), exported(ours), rows(4), atol=0.2)
    assert report.rows_beyond_tolerance == 0
    assert report.decision_flips == 1
    assert not report.passed
    assert sx.check_parity(native(PROBS), exported(ours), rows(4), atol=0.2, max_flips=1).passed


def test_a_tie_flipped_by_round_off_is_not_a_decision_flip():
    theirs = np.array([[0.5, 0.5], [0.1, 0.9]])
    ours = np.array([[0.5 - 3e-8, 0.5 + 3e-8], [0.1, 0.9]])
    report = sx.check_parity(native(theirs), exported(ours), rows(2))
    assert (report.decision_flips, report.tied_flips, report.passed) == (0, 1, True)


def test_single_probability_uses_the_threshold():
    theirs = np.array([0.2, 0.7, 0.55])
    ours = np.array([0.2, 0.7, 0.45])
    report = sx.check_parity(native(theirs), exported(ours), rows(3), atol=0.2)
    assert (report.threshold, report.decision_flips) == (0.5, 1)
    assert sx.check_parity(native(theirs), exported(ours), rows(3), atol=0.2, threshold=0.4).passed


def test_regression_tolerance_is_relative_to_the_output_scale():
    theirs = np.array([12_000.0, -3_000.0, 0.5])
    drift = np.array([0.01, -0.01, 0.01])  # float32 round-off of a sum of this size
    report = sx.check_parity(
        native(theirs), exported(theirs + drift), rows(3), output_kind="regression"
    )
    assert report.passed
    assert report.threshold is None
    assert report.decision_flips == 0
    assert report.outputs[0].scale == 12_000.0
    assert report.max_rel_diff == pytest.approx(0.01 / 12_000)
    # The same absolute tolerance would have failed it, and 1e-3 relative is too much.
    assert not sx.check_parity(
        native(theirs), exported(theirs + drift), rows(3), output_kind="regression", rtol=0.0
    ).passed
    bad = theirs + np.array([0.0, 0.0, 12.0])
    with pytest.raises(ParityError, match=r"1 of 3 rows beyond tolerance; pass a larger rtol="):
        sx.check_parity(
            native(theirs), exported(bad), rows(3), output_kind="regression", raise_on_failure=True
        )
    assert not sx.check_parity(
        native(theirs), exported(bad), rows(3), output_kind="regression"
    ).passed


def test_margins_flip_at_zero_and_regression_only_with_a_threshold():
    theirs = np.array([-2.0, 0.5, 3.0])
    ours = np.array([-2.0, -0.5, 3.0])
    margin = sx.check_parity(
        native(theirs), exported(ours), rows(3), output_kind="margin", atol=2.0
    )
    assert (margin.threshold, margin.decision_flips) == (0.0, 1)
    regression = sx.check_parity(
        native(theirs), exported(ours), rows(3), output_kind="regression", atol=2.0
    )
    assert regression.decision_flips == 0
    assert regression.passed
    at_zero = sx.check_parity(
        native(theirs), exported(ours), rows(3), output_kind="regression", atol=2.0, threshold=0
    )
    assert at_zero.decision_flips == 1


def test_per_output_numbers():
    theirs = np.array([[1.0, 100.0], [2.0, 200.0]])
    ours = theirs + np.array([[1e-3, 0.0], [0.0, 1e-3]])
    report = sx.check_parity(
        native(theirs), exported(ours, ["a", "b"]), rows(2), output_kind="regression"
    )
    a, b = report.outputs
    assert (a.name, a.scale, a.max_abs_diff) == ("a", 2.0, pytest.approx(1e-3))
    assert a.rows_beyond_tolerance == 1
    assert b.rows_beyond_tolerance == 0
    assert report.worst_output == "a"
    assert report.threshold is None
    assert report.decision_flips == 0


def test_comparisons_that_cannot_be_made():
    with pytest.raises(ParityError, match=r"native output has shape \(4, 1\)"):
        sx.check_parity(native(PROBS[:, 0]), exported(PROBS), rows(4))
    with pytest.raises(ParityError, match="returned nan at row 1"):
        sx.check_parity(native(np.array([0.1, np.nan])), exported(np.array([0.1, 0.2])), rows(2))
    broken = sx.FunctionModel(
        lambda X: np.where(X[:, 0] > 0, np.nan, 0.5), feature_names=["row"], input_type="array"
    )
    with pytest.raises(ParityError, match=r"exported model is not usable.*returned nan"):
        sx.check_parity(native(np.array([0.5, 0.5])), broken, rows(2))
    with pytest.raises(ConfigurationError, match="output_kind must be one of"):
        sx.check_parity(native(PROBS), exported(PROBS), rows(4), output_kind="logits")  # type: ignore[arg-type]


def test_parity_evidence_travels_with_the_model_bytes(tmp_path, gbm_regressor):
    from surrogate_xai.adapters.sklearn import to_onnx
    from surrogate_xai.exceptions import InputError
    from surrogate_xai.parity import read_parity_evidence, write_parity_evidence

    native, path, X = gbm_regressor
    model = to_onnx(native, X.iloc[:50])
    evidence = write_parity_evidence(tmp_path / "m.parity.json", model)
    again = read_parity_evidence(evidence, sx.ONNXModel(model.model_bytes))
    assert again == model.parity_report
    # Another model's bytes: refused, naming both digests.
    with pytest.raises(InputError, match="parity evidence of another model"):
        read_parity_evidence(evidence, sx.ONNXModel(path))
    (tmp_path / "not.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="not a parity evidence file"):
        read_parity_evidence(tmp_path / "not.json", model)
    with pytest.raises(ConfigurationError, match="no parity report"):
        write_parity_evidence(tmp_path / "x.json", sx.ONNXModel(path))


def _evidence_report() -> dict:
    return sx.check_parity(native(PROBS), exported(PROBS), rows(4)).to_dict()


def test_from_dict_round_trips_a_real_report():
    d = _evidence_report()
    report = sx.ParityReport.from_dict(json.loads(json.dumps(d)))
    assert report == sx.ParityReport.from_dict(d)
    assert report.to_dict() == d


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"max_abs_diff": {"a": 1}}, "'max_abs_diff' must be a finite number"),
        ({"max_abs_diff": float("nan")}, "'max_abs_diff' must be a finite number"),
        ({"atol": float("inf")}, "'atol' must be a finite number"),
        ({"rows_checked": "abc"}, "'rows_checked' must be a whole number"),
        ({"rows_checked": 1.5}, "'rows_checked' must be a whole number"),
        ({"decision_flips": True}, "'decision_flips' must be a whole number"),
        ({"passed": "yes"}, "'passed' must be true or false"),
        ({"output_kind": 3}, "'output_kind' must be text"),
        ({"threshold": "0.5"}, "'threshold' must be a finite number or null"),
        ({"worst_output": "nope"}, "'worst_output' 'nope' is not one of its outputs"),
        ({"outputs": "p0"}, "'outputs' must be a list"),
        ({"outputs": [1]}, "outputs[0] must be an object"),
    ],
)
def test_from_dict_names_a_field_of_the_wrong_type(change, fragment):
    from surrogate_xai.exceptions import SerializationError

    with pytest.raises(SerializationError) as info:
        sx.ParityReport.from_dict({**_evidence_report(), **change})
    assert fragment in str(info.value)


def test_from_dict_checks_each_output_too():
    from surrogate_xai.exceptions import SerializationError

    d = _evidence_report()
    d["outputs"][1]["scale"] = None
    with pytest.raises(SerializationError, match=r"'outputs\[1\]\.scale' must be a finite"):
        sx.ParityReport.from_dict(d)
    d = _evidence_report()
    d["rows_checked"] = 4.0 + 0  # a float where a count belongs
    with pytest.raises(SerializationError, match="rows_checked"):
        sx.ParityReport.from_dict(d)
