"""Small image and sequence explanations with known answers, shared by the plot and report
tests: linear models over flat pixel / step columns, explained exactly over patches / steps."""

from __future__ import annotations

import numpy as np

import surrogate_xai as sx
from surrogate_xai import groups

IMAGE, PATCH = (6, 6), 3
STEPS, FEATURES = 5, 2


def image_explanation() -> sx.Explanation:
    names = groups.image_feature_names(IMAGE)
    weights = np.linspace(-1.0, 1.0, len(names))
    model = sx.FunctionModel(lambda A: A @ weights, names, ["score"], input_type="array")
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(12, len(names)))
    patches = groups.image_patches(IMAGE, PATCH)
    return sx.ExactSHAP().fit(model, X[:8], feature_groups=patches).explain(X[8:])


def sequence_explanation() -> sx.Explanation:
    names = groups.sequence_feature_names(STEPS, FEATURES)
    weights = np.zeros(len(names))
    weights[names.index("t1_f0")], weights[names.index("t3_f1")] = 2.0, -1.0
    model = sx.FunctionModel(lambda A: A @ weights, names, ["y"], input_type="array")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, len(names)))
    steps = groups.time_steps(STEPS, FEATURES)
    return sx.ExactSHAP().fit(model, X[:8], feature_groups=steps).explain(X[8:])
