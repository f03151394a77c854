"""Explaining several models of the same inputs with one identical protocol, side by side."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from .background import Background
from .exceptions import ConfigurationError
from .explainers import KernelSHAP
from .explainers.base import BaseExplainer
from .explanation import Explanation
from .model import Model

OutputChoice = int | str


@dataclass(frozen=True)
class Comparison:
    """Explanations of several models on the same rows, and how they agree.

    Attributes
    ----------
    explanations : dict of str to Explanation
        One per model, all made with the same explainer parameters, seed and background.
    attributions : DataFrame
        Long format: ``model, row, feature, value, stderr`` for the compared output.
    differences : DataFrame
        Per model pair and feature: mean absolute difference of the attributions over rows,
        and the largest.
    agreement : DataFrame
        Per model pair: mean Spearman rank correlation of |attributions| across rows, and the
        mean share of common features among the top ``top_k``.
    """

    explanations: dict[str, Explanation]
    attributions: pd.DataFrame
    differences: pd.DataFrame
    agreement: pd.DataFrame


def _output_index(name: str, exp: Explanation, choice: OutputChoice) -> int:
    if isinstance(choice, str):
        if choice not in exp.output_names:
            raise ConfigurationError(
                f"model {name!r} has no output {choice!r}; outputs: {exp.output_names}"
            )
        return exp.output_names.index(choice)
    k = len(exp.output_names)
    if not -k <= choice < k:
        raise ConfigurationError(
            f"model {name!r} has {k} output(s); output={choice} is out of range"
        )
    return choice % k


def _ranks(a: np.ndarray) -> np.ndarray:
    """Ranks along the last axis (ties broken by position: attributions rarely tie)."""
    return np.argsort(np.argsort(a, axis=-1), axis=-1).astype(np.float64)


def compare(
    models: Mapping[str, Model],
    X: pd.DataFrame | np.ndarray,
    background: pd.DataFrame | np.ndarray | Background,
    explainer: BaseExplainer | None = None,
    *,
    output: OutputChoice | Mapping[str, OutputChoice] = 0,
    feature_groups: Mapping[str, Sequence[str]] | None = None,
    top_k: int = 5,
) -> Comparison:
    """Explain every model with the identical protocol and compare the attributions.

    Parameters
    ----------
    models : mapping of name to Model
        Models of the same raw inputs (same feature names), e.g. the sklearn, XGBoost and
        torch versions of one credit model.
    X : DataFrame or array of shape (n_samples, n_features)
    background : the reference population, shared by all models
    explainer : an unfitted explainer, optional
        Its parameters (including ``random_state``, which must be fixed so that every model
        gets the same design) are used for every model; default
        ``KernelSHAP(max_evals=20_000, random_state=0)``.
    output : int, str, or mapping of model name to int or str
        Which output of each model to compare (models may name their classes differently).
    feature_groups : optional groups, as for ``fit``.
    top_k : int
        Size of the top sets compared in ``agreement``.
    """
    if len(models) < 2:
        raise ConfigurationError("compare needs at least two models")
    template = explainer if explainer is not None else KernelSHAP(max_evals=20_000, random_state=0)
    if hasattr(template, "random_state") and template.random_state is None:
        raise ConfigurationError(
            "compare needs a fixed random_state so that every model gets the same design"
        )
    names = list(models)
    first = models[names[0]].feature_names
    for name in names[1:]:
        if models[name].feature_names != first:
            raise ConfigurationError(
                f"model {name!r} takes columns {models[name].feature_names[:5]}..., model "
                f"{names[0]!r} takes {first[:5]}...; compared models need the same inputs"
            )
    explanations: dict[str, Explanation] = {}
    for name in names:
        fitted = copy.deepcopy(template).fit(models[name], background, feature_groups)
        explanations[name] = fitted.explain(X)

    chosen: dict[str, np.ndarray] = {}
    errors: dict[str, np.ndarray] = {}
    rows: list[pd.DataFrame] = []
    for name, exp in explanations.items():
        pick = output[name] if isinstance(output, Mapping) else output
        j = _output_index(name, exp, pick)
        chosen[name] = exp.values[:, :, j]
        errors[name] = exp.stderr[:, :, j]
        n, d = chosen[name].shape
        rows.append(
            pd.DataFrame(
                {
                    "model": name,
                    "row": np.repeat(np.arange(n), d),
                    "feature": np.tile(np.asarray(exp.feature_names, dtype=object), n),
                    "value": chosen[name].ravel(),
                    "stderr": errors[name].ravel(),
                }
            )
        )
    features = explanations[names[0]].feature_names
    diff_rows: list[dict[str, Any]] = []
    agree_rows: list[dict[str, Any]] = []
    k = min(top_k, len(features))
    for a, b in combinations(names, 2):
        gap = np.abs(chosen[a] - chosen[b])
        for j, feature in enumerate(features):
            diff_rows.append(
                {
                    "model_a": a,
                    "model_b": b,
                    "feature": feature,
                    "mean_abs_diff": float(gap[:, j].mean()),
                    "max_abs_diff": float(gap[:, j].max()),
                }
            )
        ra, rb = _ranks(np.abs(chosen[a])), _ranks(np.abs(chosen[b]))
        d = ra.shape[1]
        spearman = (
            1 - 6 * ((ra - rb) ** 2).sum(axis=1) / (d * (d**2 - 1)) if d > 1 else np.ones(len(ra))
        )
        top_a = np.argsort(-np.abs(chosen[a]), axis=1)[:, :k]
        top_b = np.argsort(-np.abs(chosen[b]), axis=1)[:, :k]
        overlap = [len(set(x) & set(y)) / k for x, y in zip(top_a, top_b, strict=True)]
        agree_rows.append(
            {
                "model_a": a,
                "model_b": b,
                "spearman_mean": float(np.mean(spearman)),
                f"top{k}_overlap_mean": float(np.mean(overlap)),
            }
        )
    return Comparison(
        explanations=explanations,
        attributions=pd.concat(rows, ignore_index=True),
        differences=pd.DataFrame(diff_rows),
        agreement=pd.DataFrame(agree_rows),
    )
