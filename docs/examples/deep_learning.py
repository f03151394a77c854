"""Explain and visualise a CNN and an RNN through ONNX, per image patch and per time step.

Trains a small CNN on scikit-learn's bundled 8x8 digits and a small GRU on a synthetic
sequence task whose target is ``x[t=2] − x[t=5]`` (feature 0; everything else is noise),
exports both with ``surrogate_xai.adapters.torch.to_onnx`` (dynamic batch, weights inside the
one ``.onnx`` file, parity-checked), explains them with KernelSHAP over 2x2 image patches and
over time steps, and writes into the output folder:

* ``digit_<i>.png``: each explained image under the heatmap of its patches' attributions
  to the predicted class's probability (``surrogate_xai.plots.image_heatmap``);
* ``gru_time_steps.png``: mean |attribution| per time step (``plots.time_steps``);
* ``digits_cnn.onnx``, ``sequence_gru.onnx``: the exported models (self-contained).

Run::

    pip install 'surrogate-xai[torch]'   # CPU torch wheel first, see the docs
    python docs/examples/deep_learning.py [OUT] [--images N]   # OUT defaults to ./sxai-dl-example
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import surrogate_xai as sx
from surrogate_xai import groups, plots
from surrogate_xai.adapters.torch import to_onnx

IMAGE, PATCH = (8, 8), 2
T_STEPS, N_FEATURES, KEY_STEPS = 10, 3, (2, 5)


class DigitCNN(nn.Module):
    """(1, 8, 8) grey image -> probabilities of the 10 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(16 * 2 * 2, 10)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Probabilities, not logits, are explained: they are what a decision reads, and
        # their attributions are bounded and comparable between images.
        return torch.softmax(self.logits(x), dim=1)


class SequenceGRU(nn.Module):
    """(T, F) sequence -> one number, read from the last hidden state."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.gru = nn.GRU(N_FEATURES, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def train(module: nn.Module, X: torch.Tensor, loss_fn, *, epochs: int, batch: int) -> None:
    """Mini-batch Adam, shuffled by a seeded generator (no global RNG)."""
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X), batch):
            idx = order[start : start + batch]
            loss = loss_fn(module, X[idx], idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
    module.eval()


def explain_digits(out: Path, n_images: int) -> None:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, y_train, X_test = X[:1400], torch.from_numpy(y[:1400]), X[1400:]
    images = torch.from_numpy(X_train).reshape(-1, 1, *IMAGE)
    cnn = DigitCNN()
    train(
        cnn,
        images,
        lambda m, xb, idx: nn.functional.cross_entropy(m.logits(xb), y_train[idx]),
        epochs=20,
        batch=64,
    )
    names = groups.image_feature_names(IMAGE)  # "p{row}_{col}", the flat columns
    model = to_onnx(cnn, images[:64], feature_names=names, output_name="probability")
    (out / "digits_cnn.onnx").write_bytes(model.model_bytes)
    print(f"CNN exported: parity max |diff| {model.parity['max_abs_diff']:.2g} on 64 images")

    patches = groups.image_patches(IMAGE, PATCH)  # 16 groups "patch{i}_{j}"
    background = X_train[:30]
    # One pass over the background: n_background x 4 x n_groups model rows per image.
    explainer = sx.KernelSHAP(max_evals=len(background) * 4 * len(patches), random_state=0)
    exp = explainer.fit(model, background, feature_groups=patches).explain(X_test[:n_images])
    for i, k in enumerate(exp.diagnostics.predictions.argmax(axis=1)):
        # The library's heatmap: the patches' attributions over the digit, with a colour bar.
        figure = plots.image_heatmap(exp, i, output=int(k))
        figure.axes[0].set_title(
            f"predicted {k} (p = {exp.diagnostics.predictions[i, k]:.2f}), true {y[1400 + i]}"
        )
        figure.savefig(out / f"digit_{i}.png", dpi=100)
    print(f"{n_images} digit heatmaps written")


def train_gru() -> tuple[SequenceGRU, np.ndarray, np.ndarray]:
    """The GRU trained on y = x[t=2, f0] − x[t=5, f0]; returns it, training and test sequences."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2200, T_STEPS, N_FEATURES)).astype(np.float32)
    y = X[:, KEY_STEPS[0], 0] - X[:, KEY_STEPS[1], 0]
    X_train, X_test = X[:2000], X[2000:]
    target = torch.from_numpy(y[:2000])
    gru = SequenceGRU()
    train(
        gru,
        torch.from_numpy(X_train),
        lambda m, xb, idx: nn.functional.mse_loss(m(xb)[:, 0], target[idx]),
        epochs=30,
        batch=100,
    )
    return gru, X_train, X_test


def explain_sequences(out: Path) -> None:
    gru, X_train, X_test = train_gru()
    names = groups.sequence_feature_names(T_STEPS, N_FEATURES)  # "t{step}_f{feature}"
    model = to_onnx(gru, X_train[:64], feature_names=names, output_name="y")
    (out / "sequence_gru.onnx").write_bytes(model.model_bytes)
    print(f"GRU exported: parity max |diff| {model.parity['max_abs_diff']:.2g} on 64 sequences")

    steps = groups.time_steps(T_STEPS, N_FEATURES)  # 10 groups "t{step}"
    explainer = sx.KernelSHAP(max_evals=2_000, random_state=0)
    exp = explainer.fit(model, X_train[:20].reshape(20, -1), feature_groups=steps).explain(
        X_test[:50].reshape(50, -1)
    )
    # Mean |attribution| per time step over the 50 sequences, with 95% intervals.
    plots.time_steps(exp, path=out / "gru_time_steps.png")
    _, mass, _ = plots.time_step_values(exp)
    share = mass[list(KEY_STEPS)].sum() / mass.sum()
    print(f"GRU: {share:.0%} of the attribution mass on steps {KEY_STEPS}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="sxai-dl-example", help="output folder")
    parser.add_argument("--images", type=int, default=8, help="digits to explain")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)  # small models: threads cost more than they give
    start = time.perf_counter()
    explain_digits(out, args.images)
    explain_sequences(out)
    print(f"done in {time.perf_counter() - start:.1f} s; files in {out.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
