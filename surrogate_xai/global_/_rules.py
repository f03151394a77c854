"""Helpers of :class:`~surrogate_xai.global_.GlobalSurrogate`: encoding, fidelity, rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def encoder_for(frame: pd.DataFrame, scale: bool) -> tuple[Any, list[str]]:
    """One-hot coding of text columns (``column=category``), numbers passed or standardised."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = [
        c
        for c in frame.columns
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    ]
    numeric = [c for c in frame.columns if c not in categorical]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("num", StandardScaler() if scale else "passthrough", numeric))
    if categorical:
        onehot = OneHotEncoder(
            handle_unknown="ignore",
            sparse_output=False,
            feature_name_combiner=lambda col, cat: f"{col}={cat}",
        )
        parts.append(("cat", onehot, categorical))
    encoder = ColumnTransformer(parts, verbose_feature_names_out=False)
    return encoder, categorical


def metrics(
    truth: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: np.ndarray | None,
    names: list[str],
) -> dict[str, float | None]:
    """Fidelity figures of predictions against the black box's outputs."""
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    if classes is None:
        t = truth.reshape(len(truth), -1)
        p = pred.reshape(len(pred), -1)
        out: dict[str, float | None] = {"rmse": float(np.sqrt(np.mean((t - p) ** 2)))}
        if len(t) < 2 or np.all(t.var(axis=0) == 0):
            out["r2"] = None
            return out
        per = r2_score(t, p, multioutput="raw_values")
        out["r2"] = float(np.mean(per))
        if len(names) > 1:
            out.update({f"r2[{n}]": float(v) for n, v in zip(names, per, strict=True)})
        return out
    out = {"accuracy": float(accuracy_score(truth, pred)), "auc": None}
    present = np.unique(truth)
    if proba is not None and len(present) > 1:
        if len(classes) == 2:
            out["auc"] = float(roc_auc_score(truth == classes[1], proba[:, 1]))
        elif len(present) == len(classes):
            out["auc"] = float(roc_auc_score(truth, proba, multi_class="ovr", labels=classes))
    return out


def segment_table(
    name: str,
    keys: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: np.ndarray | None,
    names: list[str],
) -> pd.DataFrame:
    """Fidelity figures per value of ``keys`` (one row per segment)."""
    rows = []
    for key in pd.unique(keys):
        sel = keys == key
        figures = metrics(
            truth[sel], pred[sel], None if proba is None else proba[sel], classes, names
        )
        rows.append({name: key, "n_test": int(sel.sum()), **figures})
    return pd.DataFrame(rows)


def _condition(
    name: str, categorical: list[str], left: bool, threshold: float
) -> tuple[str, str, Any]:
    """(column, operator, value) of one branch of a split on an encoded column."""
    column, sep, category = name.partition("=")
    if sep and column in categorical:
        return column, ("!=" if left else "=="), category
    return name, ("<=" if left else ">"), threshold


def _merge(conditions: list[tuple[str, str, Any]]) -> str:
    """Tightest bounds per numeric column, one membership test per categorical column."""
    parts: list[str] = []
    for column in dict.fromkeys(c for c, _, _ in conditions):
        mine = [(op, v) for c, op, v in conditions if c == column]
        equal = [v for op, v in mine if op == "=="]
        if equal:
            parts.append(f"{column} == {equal[0]!r}")
        elif any(op == "!=" for op, _ in mine):
            values = sorted({v for op, v in mine if op == "!="})
            parts.append(
                f"{column} != {values[0]!r}"
                if len(values) == 1
                else f"{column} not in {set(values)!r}"
            )
        else:
            upper = min((v for op, v in mine if op == "<="), default=None)
            lower = max((v for op, v in mine if op == ">"), default=None)
            if lower is not None and upper is not None:
                parts.append(f"{lower:.4g} < {column} <= {upper:.4g}")
            elif upper is not None:
                parts.append(f"{column} <= {upper:.4g}")
            else:
                parts.append(f"{column} > {lower:.4g}")
    return " AND ".join(parts) if parts else "always"


def leaf_rules(tree: Any, names: list[str], categorical: list[str]) -> list[tuple[int, str]]:
    """``(leaf id, "IF ... THEN ...")`` for every leaf of a fitted sklearn tree."""
    t = tree.tree_
    classes = getattr(tree, "classes_", None)
    out: list[tuple[int, str]] = []

    def outcome(node: int) -> str:
        value = t.value[node]
        if classes is not None:
            share = value[0] / value[0].sum()
            best = int(np.argmax(share))
            return f"class {classes[best]!r} (p={share[best]:.2f})"
        flat = value[:, 0]
        return ", ".join(f"{v:.4g}" for v in flat) if len(flat) > 1 else f"{flat[0]:.4g}"

    def walk(node: int, path: list[tuple[str, str, Any]]) -> None:
        if t.children_left[node] == -1:
            rule = f"IF {_merge(path)} THEN {outcome(node)} (n={int(t.n_node_samples[node])})"
            out.append((node, rule))
            return
        name, threshold = names[t.feature[node]], float(t.threshold[node])
        walk(t.children_left[node], [*path, _condition(name, categorical, True, threshold)])
        walk(t.children_right[node], [*path, _condition(name, categorical, False, threshold)])

    walk(0, [])
    return out


def linear_rule(model: Any, names: list[str], outputs: list[str], task: str) -> str:
    """The fitted equation, numeric inputs in standard deviations."""
    coef = np.atleast_2d(model.coef_)
    intercept = np.atleast_1d(model.intercept_)
    lines = []
    for o in range(coef.shape[0]):
        terms = " ".join(
            f"{'+' if c >= 0 else '-'} {abs(c):.4g}*{n}"
            for c, n in sorted(zip(coef[o], names, strict=True), key=lambda t: -abs(t[0]))
            if c != 0
        )
        target = (
            "logit" if task == "classification" else (outputs[o] if o < len(outputs) else "output")
        )
        lines.append(f"{target} = {intercept[o]:.4g} {terms}".rstrip())
    return "; ".join(lines)
