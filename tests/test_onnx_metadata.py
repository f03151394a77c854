"""Self-describing exports: a saved and reloaded file knows the user's columns, categories,
output and parity evidence; files without (or with broken) metadata behave as they should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import surrogate_xai as sx
from surrogate_xai.exceptions import ModelLoadError
from surrogate_xai.onnx_metadata import ExportMetadata, embed_metadata


def _frame(n: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(n, 4)).astype(np.float32).astype(float),
        columns=["age", "income", "debt", "tenure"],
    )
    return X, (X["age"] + X["income"] * X["debt"] > 0).astype(int).to_numpy()


def _export(kind: str):
    X, y = _frame()
    if kind == "sklearn":
        from sklearn.ensemble import GradientBoostingClassifier

        from surrogate_xai.adapters.sklearn import to_onnx

        native = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y)
    elif kind == "xgboost":
        xgboost = pytest.importorskip("xgboost")
        from surrogate_xai.adapters.xgboost import to_onnx

        native = xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(X, y)
    else:
        lightgbm = pytest.importorskip("lightgbm")
        from surrogate_xai.adapters.lightgbm import to_onnx

        native = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1).fit(X, y)
    return native, to_onnx(native, X.iloc[:200]), X


@pytest.mark.parametrize("kind", ["sklearn", "xgboost", "lightgbm"])
def test_a_reloaded_export_explains_the_users_dataframe_without_feature_names(tmp_path, kind):
    native, exported, X = _export(kind)
    path = tmp_path / "model.onnx"
    path.write_bytes(exported.model_bytes)

    model = sx.ONNXModel(path)  # no feature_names=
    assert model.feature_names == ["age", "income", "debt", "tenure"]
    assert model.feature_names_source == "metadata"
    assert model.output_names == exported.output_names
    assert model.output_reason == "named in the file's metadata"
    assert model.parity_report == exported.parity_report
    assert model.parity["passed"]
    assert model.describe()["parity_source"] == "the file's metadata (not re-measured)"
    assert exported.describe()["parity_source"] == "measured at export"
    assert model.describe()["converter"].split()[0] in ("skl2onnx", "onnxmltools")

    shuffled = X[["tenure", "debt", "age", "income"]]  # by name, not by position
    np.testing.assert_allclose(model.predict(shuffled), native.predict_proba(X), atol=1e-5)
    explainer = sx.KernelSHAP(max_evals=300, random_state=0)
    exp = explainer.fit(model, shuffled.iloc[200:230]).explain(shuffled.iloc[:2])
    assert exp.feature_names == model.feature_names
    same = sx.KernelSHAP(max_evals=300, random_state=0).fit(exported, X.iloc[200:230])
    np.testing.assert_array_equal(exp.values, same.explain(X.iloc[:2]).values)


def test_a_column_mode_export_keeps_its_categories_and_missing_value_rule(credit_model, tmp_path):
    from surrogate_xai.adapters.sklearn import to_onnx

    pipe, _, X = credit_model
    sample = X.iloc[:200].copy()
    exported = to_onnx(pipe, sample)
    path = tmp_path / "credit.onnx"
    path.write_bytes(exported.model_bytes)
    model = sx.ONNXModel(path)
    assert model.feature_names == exported.feature_names
    assert model.known_categories == exported.known_categories
    assert model.allow_missing == exported.allow_missing
    np.testing.assert_array_equal(model.predict(X.iloc[:30]), exported.predict(X.iloc[:30]))


def test_files_without_metadata_behave_as_before(gbm_regressor):
    _, path, _X = gbm_regressor
    model = sx.ONNXModel(path)
    assert model.feature_names == [f"x{j}" for j in range(8)]
    assert model.feature_names_source == "graph"
    assert model.parity_report is None
    assert model.parity is None
    assert "parity_source" not in model.describe()


def _with(data: bytes, **props: str) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"surrogate_xai.{key}", value
    return proto.SerializeToString()


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"feature_names": '["a", "b"]'}, "names 2 feature columns but its inputs take 8"),
        ({"feature_names": "[1, 2]"}, "'surrogate_xai.feature_names' must be a list of text"),
        ({"feature_names": "[" * 100_000}, "'surrogate_xai.feature_names' is not valid JSON"),
        ({"output": '"nope"'}, "names output 'nope', which the graph does not have"),
        ({"parity": '{"passed": "yes"}'}, "surrogate_xai.parity"),
        ({"categories": '{"zz": ["a"]}'}, "categories for 'zz', which is not a column"),
        ({"allow_missing": '"yes"'}, "'surrogate_xai.allow_missing' must be true or false"),
    ],
)
def test_metadata_that_contradicts_the_graph_is_refused_by_name(gbm_regressor, props, message):
    _, path, _ = gbm_regressor
    with pytest.raises(ModelLoadError, match=message.replace("(", r"\(").replace("[", r"\[")):
        sx.ONNXModel(_with(path.read_bytes(), **props))


def test_embedding_keeps_other_tools_metadata_and_the_computation(gbm_regressor):
    import onnx

    _, path, X = gbm_regressor
    theirs = _with(path.read_bytes())
    proto = onnx.load_from_string(theirs)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "catboost_version_info", "kept"
    data = embed_metadata(proto.SerializeToString(), ExportMetadata(feature_names=list("abcdefgh")))
    again = embed_metadata(data, ExportMetadata(feature_names=list("hgfedcba")))
    keys = [p.key for p in onnx.load_from_string(again).metadata_props]
    assert keys == ["catboost_version_info", "surrogate_xai.feature_names"]
    model = sx.ONNXModel(again)
    assert model.feature_names == list("hgfedcba")
    np.testing.assert_array_equal(
        model.predict(X.to_numpy()), sx.ONNXModel(path).predict(X.to_numpy())
    )
