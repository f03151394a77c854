"""Three frameworks, one credit model each, one explanation protocol: where do they disagree?

Trains a scikit-learn gradient boosting classifier, an XGBoost classifier and a small PyTorch
MLP on German Credit, exports each to ONNX through ``surrogate_xai.adapters`` (each export is
parity-checked against its original), and explains the same applicants with the identical
protocol — same background, same coalitions, same seed — with ``sx.compare``. Prints the rank
agreement between each pair of models and the features on which their attributions to
P(bad) differ most.

All three models take the same 20 numeric columns: the text columns of German Credit coded
as integers (trees split on the codes; the MLP standardises them), so the models are
comparable column for column.

Run::

    python docs/examples/compare_frameworks.py [--rows N] [--max-evals M]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split
from torch import nn
from xgboost import XGBClassifier

import surrogate_xai as sx
from surrogate_xai.adapters import sklearn as sk_adapter
from surrogate_xai.adapters import torch as torch_adapter
from surrogate_xai.adapters import xgboost as xgb_adapter
from surrogate_xai.datasets import load_german_credit


def numeric_credit() -> tuple[pd.DataFrame, np.ndarray]:
    """German Credit with text columns as integer codes (float32-exact), target 1 = bad."""
    X, y = load_german_credit()
    coded = X.copy()
    for col in X.columns:
        if not pd.api.types.is_numeric_dtype(X[col]):
            coded[col] = pd.Categorical(X[col]).codes
    return coded.astype(np.float32).astype(np.float64), (y == "bad").to_numpy(np.int64)


class CreditMLP(nn.Module):
    """Standardise, two hidden layers, [P(good), P(bad)]."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(len(mean), 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net((x - self.mean) / self.std), dim=1)


def train_mlp(X: np.ndarray, y: np.ndarray, seed: int = 0) -> CreditMLP:
    torch.manual_seed(seed)
    model = CreditMLP(X.mean(axis=0), X.std(axis=0) + 1e-6)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
    data, target = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(model(data) + 1e-9), target)
        loss.backward()
        opt.step()
    return model.eval()


def build_models(X_train: pd.DataFrame, y_train: np.ndarray) -> dict[str, sx.ONNXModel]:
    sample = X_train.iloc[:200]
    gbm = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0)
    xgb = XGBClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, n_jobs=1)
    mlp = train_mlp(X_train.to_numpy(), y_train)
    return {
        "sklearn": sk_adapter.to_onnx(gbm.fit(X_train, y_train), sample),
        "xgboost": xgb_adapter.to_onnx(xgb.fit(X_train, y_train), sample),
        "torch": torch_adapter.to_onnx(
            mlp,
            torch.tensor(sample.to_numpy(), dtype=torch.float32),
            feature_names=list(X_train.columns),
        ),
    }


def main(argv: list[str] | None = None) -> sx.Comparison:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20, help="applicants to explain")
    parser.add_argument("--max-evals", type=int, default=10_000)
    args = parser.parse_args(argv)

    X, y = numeric_credit()
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    models = build_models(X_train, y_train)
    for name, model in models.items():
        report = model.parity_report
        print(
            f"{name:8s} exported: parity max |diff| {report.max_abs_diff:.1e}, outputs {model.output_names}"
        )

    background = sx.Background.sample(X_train, 100, random_state=0)
    explainer = sx.KernelSHAP(max_evals=args.max_evals, random_state=7)
    # Each model's name for P(bad): class 1 of the tree models, column 1 of the MLP.
    bad = dict.fromkeys(models, 1)
    result = sx.compare(models, X_test.iloc[: args.rows], background, explainer, output=bad)

    print("\nRank agreement of |attributions| to P(bad), mean over applicants:")
    print(result.agreement.to_string(index=False, float_format="%.3f"))
    print("\nLargest mean |difference| per model pair:")
    top = result.differences.sort_values("mean_abs_diff", ascending=False).groupby(
        ["model_a", "model_b"]
    )
    print(top.head(3).to_string(index=False, float_format="%.4f"))
    return result


if __name__ == "__main__":
    main()
