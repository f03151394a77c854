"""TreeSHAP and the tree reader against real exports: skl2onnx, onnxmltools, CatBoost, and
hand-built graphs of the opset-5 TreeEnsemble operator (every split mode, set membership,
missing-value tracks), all evaluated by onnxruntime.

Oracles: brute-force enumeration through onnxruntime (``ExactSHAP`` on the ONNX model) at
d <= 12, and shap's TreeExplainer (interventional, raw output, <= 100 background rows) at
d = 40, where XGBoost's float32 thresholds make it agree with the float32 graph.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

import surrogate_xai as sx
from surrogate_xai.exceptions import TreeGraphError
from surrogate_xai.trees.margin import compare_outputs

D = 5


def _data(n: int = 240, d: int = D, classes: int = 2, seed: int = 0, nan: bool = False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).round(2)  # ties on thresholds are exercised too
    score = X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    if nan:
        X[rng.random(X.shape) < 0.1] = np.nan
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(d)]), y, score


def _sklearn(kind: str):
    from sklearn import ensemble

    from surrogate_xai.adapters.sklearn import to_onnx

    est, classes, nan, regress = {
        "gbc2": (
            ensemble.GradientBoostingClassifier(n_estimators=15, max_depth=3),
            2,
            False,
            False,
        ),
        "gbc3": (ensemble.GradientBoostingClassifier(n_estimators=8, max_depth=3), 3, False, False),
        "rf2": (ensemble.RandomForestClassifier(12, max_depth=5, random_state=0), 2, False, False),
        "et": (ensemble.ExtraTreesRegressor(12, max_depth=5, random_state=0), 2, False, True),
        "hgb": (ensemble.HistGradientBoostingRegressor(max_iter=15), 2, True, True),
        "hgbc": (ensemble.HistGradientBoostingClassifier(max_iter=15), 2, True, False),
    }[kind]
    X, y, score = _data(classes=classes, nan=nan)
    est.fit(X, score if regress else y)
    return to_onnx(est, X), X


def _xgboost(kind: str):
    import xgboost

    from surrogate_xai.adapters.xgboost import to_onnx

    classes = {"xgb2": 2, "xgb3": 3, "xgbr": 2}[kind]
    X, y, score = _data(classes=classes, nan=kind == "xgbr")
    est = (xgboost.XGBRegressor if kind == "xgbr" else xgboost.XGBClassifier)(
        n_estimators=12, max_depth=3
    )
    est.fit(X, score if kind == "xgbr" else y)
    return to_onnx(est, X), X


def _lightgbm(kind: str):
    import lightgbm

    from surrogate_xai.adapters.lightgbm import to_onnx

    X, y, _ = _data(classes={"lgb2": 2, "lgb3": 3}[kind], nan=True)
    est = lightgbm.LGBMClassifier(n_estimators=12, num_leaves=8, min_child_samples=5, verbose=-1)
    return to_onnx(est.fit(X, y), X), X


def _catboost(kind: str, tmp_path):
    import catboost

    X, y, score = _data(classes={"cb2": 2, "cb3": 3, "cbr": 2}[kind])
    cls = catboost.CatBoostRegressor if kind == "cbr" else catboost.CatBoostClassifier
    est = cls(iterations=12, depth=3, verbose=0, allow_writing_files=False, random_seed=0)
    est.fit(X, score if kind == "cbr" else y)
    path = tmp_path / f"{kind}.onnx"
    est.save_model(str(path), format="onnx")
    return sx.ONNXModel(path, feature_names=list(X.columns)), X


def _export(kind: str, tmp_path):
    if kind.startswith("xgb"):
        return _xgboost(kind)
    if kind.startswith("lgb"):
        return _lightgbm(kind)
    if kind.startswith("cb"):
        return _catboost(kind, tmp_path)
    return _sklearn(kind)


CONVERTERS = [
    "gbc2",
    "gbc3",
    "rf2",
    "et",
    "hgb",
    "hgbc",
    "xgb2",
    "xgb3",
    "xgbr",
    "lgb2",
    "lgb3",
    "cb2",
    "cb3",
    "cbr",
]


@pytest.mark.parametrize("kind", CONVERTERS)
def test_parsed_trees_reproduce_the_graph_and_treeshap_equals_enumeration(kind, tmp_path):
    model, X = _export(kind, tmp_path)
    margin = sx.TreeMarginModel(model)
    rows = X.sample(200, random_state=1)
    assert margin.check(rows) <= 1e-6  # the graph's own output from the parsed margins

    B, R = X.iloc[:16], X.iloc[100:103]
    tree = sx.TreeSHAP(random_state=0).fit(model, B).explain(R)
    brute = sx.ExactSHAP().fit(model, B).explain(R)
    scale = np.abs(brute.values).max()
    assert np.abs(tree.values - brute.values).max() <= 1e-6 * max(scale, 1.0)
    assert set(tree.diagnostics.extra["tree_path"]) <= {"exact", "enumerated"}
    assert np.all(tree.stderr == 0)

    # Margin space: exact values of the parsed margin, equal to enumerating it.
    mt = sx.TreeSHAP().fit(margin, B).explain(R)
    me = sx.ExactSHAP().fit(margin, B).explain(R)
    assert mt.diagnostics.exact
    assert mt.diagnostics.extra["tree_path"] == ["exact"] * 3
    assert np.abs(mt.values - me.values).max() <= 1e-9 * max(np.abs(me.values).max(), 1.0)
    spread = np.abs(mt.diagnostics.predictions - mt.base_values).max()
    assert mt.diagnostics.efficiency_gap.max() <= 1e-9 * max(spread, 1.0)


def test_binary_margin_is_the_graphs_log_odds_through_onnxruntime():
    """Brute force on onnxruntime's own probabilities, turned into log-odds."""
    model, X = _xgboost("xgb2")
    B, R = X.iloc[:20], X.iloc[150:153]

    def log_odds(rows):
        p = model.predict(rows)[:, 1]
        return np.log(p) - np.log1p(-p)

    ort = sx.FunctionModel(log_odds, list(X.columns), input_type="array")
    brute = sx.ExactSHAP().fit(ort, B).explain(R).values[:, :, 0]
    mine = sx.TreeSHAP().fit(sx.TreeMarginModel(model), B).explain(R).values[:, :, 0]
    assert np.abs(mine - brute).max() <= 1e-5 * np.abs(brute).max()  # float32 logit noise


@pytest.mark.parametrize("d", [40, 70])  # 70: the unit sets span two 64-bit words
def test_margin_equals_tree_explainer_at_forty_features(d):
    import shap
    import xgboost

    from surrogate_xai.adapters.xgboost import to_onnx

    X, y, score = _data(n=400, d=d, seed=3)
    X = X.astype(np.float32).astype(np.float64)
    score = score + X.iloc[:, -5:].sum(axis=1).to_numpy()  # features beyond the 64th matter
    models = [(xgboost.XGBRegressor(n_estimators=40, max_depth=4), score)]
    if d == 40:
        models.append((xgboost.XGBClassifier(n_estimators=40, max_depth=4), y))
    for est, target in models:
        est.fit(X, target)
        model = sx.TreeMarginModel(to_onnx(est, X))
        B, R = X.iloc[:100], X.iloc[200:206]
        oracle = shap.TreeExplainer(
            est, data=B.to_numpy(), feature_perturbation="interventional", model_output="raw"
        ).shap_values(R.to_numpy(), check_additivity=False)
        exp = sx.TreeSHAP().fit(model, B).explain(R)
        assert np.abs(exp.values[:, :, 0] - oracle).max() <= 1e-6 * np.abs(oracle).max()
        spread = np.abs(exp.diagnostics.predictions - exp.base_values).max()
        assert exp.diagnostics.efficiency_gap.max() <= 1e-9 * spread


def _single_node_model(node, n_out: int, ml_opset: int) -> bytes:
    """A graph of one tree node on a (N, 3) float input."""
    graph = helper.make_graph(
        [node],
        "trees",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, n_out])],
    )
    default = 21 if ml_opset >= 5 else 17  # ai.onnx.ml 5 came with opset 21
    opsets = [helper.make_opsetid("", default), helper.make_opsetid("ai.onnx.ml", ml_opset)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10).SerializeToString()


def _v5_graph(aggregate: int = 1, post: int = 0) -> bytes:
    """Two trees on three features with GTE, EQ, MEMBER and NEQ splits and missing tracks."""
    node = helper.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml",
        n_targets=2, aggregate_function=aggregate, post_transform=post, tree_roots=[0, 3],
        nodes_featureids=[0, 1, 2, 1],
        nodes_splits=numpy_helper.from_array(np.array([0.5, 1.0, 0.0, 2.0], np.float32)),
        nodes_modes=numpy_helper.from_array(np.array([2, 4, 6, 5], np.uint8)),
        nodes_truenodeids=[1, 0, 2, 4], nodes_trueleafs=[0, 1, 1, 1],
        nodes_falsenodeids=[2, 1, 3, 5], nodes_falseleafs=[0, 1, 1, 1],
        nodes_missing_value_tracks_true=[0, 0, 1, 1],
        membership_values=numpy_helper.from_array(np.array([1, 3, np.nan], np.float32)),
        leaf_targetids=[0, 1, 0, 1, 0, 1],
        leaf_weights=numpy_helper.from_array(np.array([1.5, -2.0, 0.25, 3.0, 0.7, -0.4], np.float32)),
    )  # fmt: skip
    return _single_node_model(node, 2, 5)


def _discrete(n: int, seed: int, nan: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.choice([0.0, 0.5, 1.0, 2.0, 3.0], size=(n, 3))
    if nan:
        X[rng.random(X.shape) < 0.15] = np.nan
    return X


def test_opset5_tree_ensemble_every_mode_membership_and_missing_values():
    model = sx.ONNXModel(_v5_graph(), allow_missing=True)
    X = _discrete(300, 0)
    assert sx.TreeMarginModel(model).check(X) <= 1e-7
    B, R = X[:30], X[100:110]
    tree = sx.TreeSHAP().fit(model, B).explain(R)
    brute = sx.ExactSHAP().fit(model, B).explain(R)
    assert tree.diagnostics.exact
    assert np.abs(tree.values - brute.values).max() <= 1e-6


def test_a_graph_it_cannot_follow_falls_back_and_says_why():
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    from surrogate_xai.adapters.sklearn import to_onnx

    X, _, score = _data()
    model = to_onnx(
        make_pipeline(Normalizer(), GradientBoostingRegressor(n_estimators=5)).fit(X, score), X
    )
    exp = sx.TreeSHAP(max_evals=2_000, random_state=0).fit(model, X.iloc[:10]).explain(X.iloc[:2])
    assert exp.diagnostics.extra["tree_path"] == ["permutation-fallback"] * 2
    assert "Normalizer" in exp.diagnostics.extra["fallback_reason"]
    assert not exp.diagnostics.exact
    assert np.all(exp.stderr[exp.values != 0] > 0)
    with pytest.raises(TreeGraphError, match="Normalizer"):
        sx.TreeSHAP(fallback="raise").fit(model, X.iloc[:10])
    # An aggregate that is not a sum over trees (MAX) is not split tree by tree.
    maxed = sx.ONNXModel(_v5_graph(aggregate=3), allow_missing=True)
    with pytest.raises(TreeGraphError, match="aggregate_function MAX"):
        sx.TreeSHAP(fallback="raise").fit(maxed, _discrete(20, 1))
    plain = sx.FunctionModel(lambda a: a.sum(axis=1), ["a"], input_type="array")
    with pytest.raises(TreeGraphError, match="no graph to read"):
        sx.TreeSHAP(fallback="raise").fit(plain, pd.DataFrame({"a": [1.0]}))


def test_a_reading_that_does_not_reproduce_the_graph_is_refused():
    graph = np.array([[0.2, 0.8], [0.4, 0.6]])
    assert compare_outputs(graph + 1e-7, graph, ["p0", "p1"], "the background") < 1e-6
    with pytest.raises(TreeGraphError, match=r"output 'p1' at row 1 of the background"):
        compare_outputs(
            graph + np.array([[0, 0], [0, 0.01]]), graph, ["p0", "p1"], "the background"
        )


def test_pipeline_with_imputer_scaler_and_one_hot_is_explained_in_raw_columns():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from surrogate_xai.adapters.sklearn import to_onnx

    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame(
        {
            "income": rng.normal(size=n).round(2),
            "debt": rng.normal(size=n).round(2),
            "purpose": rng.choice(["car", "home", "edu"], n),
            "housing": rng.choice(["own", "rent"], n),
        }
    )
    df.loc[::6, "income"] = np.nan
    y = ((df.debt + (df.purpose == "car") - df.income.fillna(0)) > 0.3).astype(int)
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["income", "debt"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["purpose", "housing"]),
        ]
    )
    pipe = Pipeline([("prep", prep), ("gb", GradientBoostingClassifier(n_estimators=20))]).fit(
        df, y
    )
    model = to_onnx(pipe, df)
    B, R = df.iloc[:25], df.iloc[200:204]
    tree = sx.TreeSHAP().fit(model, B).explain(R)
    brute = sx.ExactSHAP().fit(model, B).explain(R)
    assert tree.feature_names == ["income", "debt", "purpose", "housing"]
    assert tree.diagnostics.extra["tree_path"] == ["enumerated"] * 4
    assert np.abs(tree.values - brute.values).max() <= 1e-6
    margin = sx.TreeMarginModel(model)
    mt = sx.TreeSHAP().fit(margin, B).explain(R)
    me = sx.ExactSHAP().fit(margin, B).explain(R)
    assert np.abs(mt.values - me.values).max() <= 1e-9 * np.abs(me.values).max()


@pytest.fixture(scope="module")
def wide_classifier():
    """A boosted classifier on 10 features, probabilities behind LOGISTIC."""
    from sklearn.ensemble import GradientBoostingClassifier

    from surrogate_xai.adapters.sklearn import to_onnx

    X, y, _ = _data(n=400, d=10, seed=5)
    est = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    return to_onnx(est, X), X


def test_control_variate_path_is_calibrated_deterministic_and_says_so(wide_classifier):
    model, X = wide_classifier
    B, R = X.iloc[:20], X.iloc[300:304]
    truth = sx.ExactSHAP().fit(model, B).explain(R).values
    exp = sx.TreeSHAP(max_evals=3_000, random_state=7).fit(model, B).explain(R)
    # Rows whose differing units are few are enumerated, the others sampled.
    assert set(exp.diagnostics.extra["tree_path"]) == {"control-variate", "enumerated"}
    enumerated = np.array(exp.diagnostics.extra["tree_path"]) == "enumerated"
    assert np.all(exp.stderr[enumerated] == 0)
    assert np.all(exp.diagnostics.converged == enumerated)
    assert not exp.diagnostics.exact
    assert np.all(np.abs(exp.values - truth) <= 5 * exp.stderr + 1e-9)
    assert np.all(exp.diagnostics.efficiency_gap <= 1e-9)
    # Same seed, rows one by one or together, in another order: the same bits.
    again = sx.TreeSHAP(max_evals=3_000, random_state=7).fit(model, B)
    alone = np.concatenate([again.explain(R.iloc[[i]]).values for i in (3, 2, 1, 0)])[::-1]
    assert np.array_equal(alone, exp.values)
    threads = sx.TreeSHAP(max_evals=3_000, random_state=7, n_jobs=2).fit(model, B).explain(R)
    assert np.array_equal(threads.values, exp.values)


def test_exact_values_do_not_depend_on_the_batch(wide_classifier):
    model, X = wide_classifier
    margin = sx.TreeMarginModel(model)
    B, R = X.iloc[:60], X.iloc[300:312]
    explainer = sx.TreeSHAP().fit(margin, B)
    together = explainer.explain(R).values
    alone = np.concatenate([explainer.explain(R.iloc[[i]]).values for i in range(len(R))])
    assert np.array_equal(together, alone)
    # Shipped to a worker (Dask pickles the fitted explainer) and in partitions: same bits.
    shipped = pickle.loads(pickle.dumps(explainer))
    assert np.array_equal(shipped.explain(R).values, together)
    assert np.array_equal(sx.explain_batch(explainer, R, partition_rows=5).values, together)
    weighted = sx.Background(B, weights=np.arange(1.0, 61.0))
    exp = sx.TreeSHAP().fit(margin, weighted).explain(R.iloc[:2])
    brute = sx.ExactSHAP().fit(margin, weighted).explain(R.iloc[:2])
    assert np.abs(exp.values - brute.values).max() <= 1e-9 * np.abs(brute.values).max()


def test_records_replay_bit_for_bit_and_exact_reasons_are_stable(wide_classifier, tmp_path):
    model, X = wide_classifier
    margin = sx.TreeMarginModel(model)
    B, R = X.iloc[:40], X.iloc[300:306]
    exp = sx.TreeSHAP().fit(margin, B).explain(R)
    reasons = sx.reason_codes(exp, adverse="decrease")
    assert all(r.stable for row in reasons for r in row.reasons)
    assert not any("overlap" in f for row in reasons for f in row.flags)
    store = sx.AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    ids = store.record(exp, reasons=reasons)
    for record_id in ids:
        result = store.replay(record_id, sx.TreeMarginModel(model), B)
        assert result.identical, result.differences
    sampled = sx.TreeSHAP(max_evals=3_000, random_state=3).fit(model, B).explain(R.iloc[:2])
    for record_id in store.record(sampled):
        assert store.replay(record_id, model, B).identical
    store.close()


def _v1_regressor(modes: list[str]) -> bytes:
    """A TreeEnsembleRegressor (ai.onnx.ml opset 3) with the given split modes on one tree
    of three interior nodes, missing values sent right at the root."""
    node = helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml",
        n_targets=1, post_transform="NONE", aggregate_function="SUM", base_values=[0.5],
        nodes_treeids=[0] * 7, nodes_nodeids=list(range(7)),
        nodes_featureids=[0, 1, 2, 0, 0, 0, 0],
        nodes_values=[0.5, 1.0, 2.0, 0, 0, 0, 0],
        nodes_modes=[*modes, "LEAF", "LEAF", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 3, 5, 0, 0, 0, 0], nodes_falsenodeids=[2, 4, 6, 0, 0, 0, 0],
        nodes_missing_value_tracks_true=[1, 0, 0, 0, 0, 0, 0],
        target_treeids=[0] * 4, target_nodeids=[3, 4, 5, 6], target_ids=[0] * 4,
        target_weights=[1.0, -2.0, 0.25, 4.0],
    )  # fmt: skip
    return _single_node_model(node, 1, 3)


@pytest.mark.parametrize(
    "modes",
    [
        ["BRANCH_GTE", "BRANCH_EQ", "BRANCH_NEQ"],
        ["BRANCH_LT", "BRANCH_GT", "BRANCH_LEQ"],
    ],
)
def test_old_operator_modes_and_missing_tracks(modes):
    model = sx.ONNXModel(_v1_regressor(modes), allow_missing=True)
    X = _discrete(300, 2)
    assert sx.TreeMarginModel(model).check(X) <= 1e-7
    B, R = X[:30], X[100:108]
    tree = sx.TreeSHAP().fit(model, B).explain(R)
    brute = sx.ExactSHAP().fit(model, B).explain(R)
    assert np.abs(tree.values - brute.values).max() <= 1e-6


def test_an_unknown_split_mode_is_refused_by_name():
    import onnx

    from surrogate_xai.trees.graph import read_tree_node

    proto = onnx.load_from_string(_v1_regressor(["BRANCH_GTE", "BRANCH_EQ", "BRANCH_NEQ"]))
    node = proto.graph.node[0]
    modes = next(a for a in node.attribute if a.name == "nodes_modes")
    modes.strings[1] = b"BRANCH_ROUGHLY"
    with pytest.raises(TreeGraphError, match="BRANCH_ROUGHLY"):
        read_tree_node(node, 3, np.dtype(np.float32))


def test_cli_method_tree_explains_records_and_replays(gbm_regressor, tmp_path, capsys):
    from tests.test_cli import sxai_here

    _, path, X = gbm_regressor
    X.iloc[:40].to_csv(tmp_path / "ref.csv", index=False)
    X.iloc[200:205].to_csv(tmp_path / "rows.csv", index=False)
    out, store = tmp_path / "r.jsonl", tmp_path / "a.db"
    proc = sxai_here(
        "explain", path, "--data", "rows.csv", "--background", "ref.csv", "--method", "tree",
        "--out", out, "--store", store, "--threshold", "0", cwd=tmp_path, capsys=capsys,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(set(line["stderr"].values()) == {0.0} for line in lines)
    replay = ("replay", lines[0]["record_id"], "--store", store, "--model", path)
    assert (
        sxai_here(*replay, "--background", "ref.csv", cwd=tmp_path, capsys=capsys).returncode == 0
    )


def test_walks_over_trees_testing_more_than_64_units_use_several_words(wide_classifier):
    """The multi-word bit sets give the same values as one word (positions moved past 64)."""
    from surrogate_xai.trees.interventional import TreeGame, interventional_values

    model, X = wide_classifier
    explainer = sx.TreeSHAP().fit(sx.TreeMarginModel(model), X.iloc[:30])
    game = explainer.trees_.game
    function = explainer.trees_.function
    dec_x = function.ensemble.decisions(function.features(function.frame_columns(X.iloc[300:305])))
    one_word = interventional_values(game, dec_x)
    tree_of, slot, slot_unit = game.layout
    wide = TreeGame(
        **{
            f: getattr(game, f)
            for f in ("ensemble", "leaf_values", "units", "n_units", "dec_b", "weights")
        }
    )
    padded = np.full((slot_unit.shape[0], 64 + slot_unit.shape[1]), -1)
    padded[:, 64:] = slot_unit
    wide.__dict__["layout"] = (tree_of, np.where(slot >= 0, slot + 64, -1), padded)
    assert np.array_equal(interventional_values(wide, dec_x), one_word)
