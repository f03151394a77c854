"""Explain a CNN and an LSTM that someone else exported with plain ``torch.onnx.export``.

An auditor gets ``.onnx`` files, not our exporter's: an image model taking ``[N, 1, 8, 8]``
and a sequence model taking ``[N, T, F]``, one with a free batch axis and one with the batch
frozen to the example's size (the exporter's default). Both load with ``sx.ONNXModel(path)``
and nothing else: the inputs become flat columns named like
``surrogate_xai.groups.image_feature_names`` / ``sequence_feature_names``, reshaped for the
graph on every call; a frozen batch is evaluated in chunks of its size. The model's
``input_shapes`` give the shapes to build patches and time steps from.

Writes into the output folder:

* ``digits_cnn.onnx`` (dynamic batch, TorchScript exporter) and ``sequence_lstm.onnx``
  (batch frozen to 4, dynamo exporter), as a third party would ship them;
* ``digit_heatmap.png`` and ``lstm_time_steps.png``: the library's plots;
* ``digit_report.html`` and ``sequence_report.html``: per-decision reports with the figures.

Run::

    pip install 'surrogate-xai[torch]'   # CPU torch wheel first, see docs/adapters.md
    python docs/examples/plain_torch_export.py [OUT]   # OUT defaults to ./sxai-plain-export
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import surrogate_xai as sx
from surrogate_xai import groups, plots
from surrogate_xai.report import decision_report, write_html

T_STEPS, N_FEATURES, KEY_STEP = 8, 2, 3


class DigitCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return torch.softmax(self.head(h.flatten(1)), dim=1)


class SequenceLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_FEATURES, 12, batch_first=True)
        self.head = nn.Linear(12, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def fit(module: nn.Module, X: torch.Tensor, loss, epochs: int) -> None:
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(epochs):
        for idx in torch.randperm(len(X), generator=gen).split(64):
            opt.zero_grad()
            loss(module, X[idx], idx).backward()
            opt.step()
    module.eval()


@contextlib.contextmanager
def quiet():
    """The exporters print progress, warn about their own internals and log that
    torchvision is not installed; none of it is about the exported graph."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def digits(out: Path) -> None:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    images = torch.from_numpy(X).reshape(-1, 1, 8, 8)
    target = torch.from_numpy(y)
    cnn = DigitCNN()
    fit(cnn, images[:1400], lambda m, xb, i: nn.functional.nll_loss(m(xb).log(), target[i]), 8)
    path = out / "digits_cnn.onnx"
    with quiet():  # the third party's export: TorchScript exporter, batch axis declared free
        torch.onnx.export(
            cnn, (images[:4],), str(path), dynamo=False, input_names=["image"],
            dynamic_axes={"image": {0: "batch"}},
        )  # fmt: skip

    model = sx.ONNXModel(path)  # nothing else: shapes, names and output come from the file
    shape = model.input_shapes["image"]  # (1, 8, 8)
    print(f"CNN: input {shape}, {len(model.feature_names)} columns, output: {model.output_reason}")
    patches = groups.image_patches(shape, 2)  # 16 patches of 2x2 pixels
    background, rows = X[:30], X[1400:1403]
    exp = (
        sx.KernelSHAP(max_evals=len(background) * 4 * len(patches), random_state=0)
        .fit(model, background, feature_groups=patches)
        .explain(rows)
    )
    k = int(exp.diagnostics.predictions[0].argmax())
    plots.image_heatmap(exp, 0, output=k, path=out / "digit_heatmap.png")
    write_html(out / "digit_report.html", decision_report(exp, 0, output=k))
    print(f"CNN: digit {y[1400]} predicted as {k}; heatmap and report written")


def sequences(out: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, T_STEPS, N_FEATURES)).astype(np.float32)
    y = torch.from_numpy(2 * X[:, KEY_STEP, 0])
    lstm = SequenceLSTM()
    fit(lstm, torch.from_numpy(X), lambda m, xb, i: nn.functional.mse_loss(m(xb)[:, 0], y[i]), 15)
    path = out / "sequence_lstm.onnx"
    with quiet():  # dynamo exporter without dynamic shapes: the batch is frozen to 4
        torch.onnx.export(
            lstm, (torch.from_numpy(X[:4]),), str(path), dynamo=True, input_names=["x"],
            external_data=False,
        )  # fmt: skip

    model = sx.ONNXModel(path)
    print(f"LSTM: input {model.input_shapes['x']}, frozen batch {model.batch_size}")
    steps = groups.time_steps(*model.input_shapes["x"])  # "t0" ... "t7"
    flat = X.reshape(len(X), -1)
    exp = (
        sx.KernelSHAP(max_evals=2_000, random_state=0)
        .fit(model, flat[:20], feature_groups=steps)
        .explain(flat[1000:1030])  # 30 rows: evaluated in calls of exactly 4
    )
    plots.time_steps(exp, path=out / "lstm_time_steps.png")
    write_html(out / "sequence_report.html", decision_report(exp, 0))
    _, mass, _ = plots.time_step_values(exp)
    print(f"LSTM: {mass[KEY_STEP] / mass.sum():.0%} of the attribution mass on step {KEY_STEP}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="sxai-plain-export", help="output folder")
    out = Path(parser.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    start = time.perf_counter()
    digits(out)
    sequences(out)
    print(f"done in {time.perf_counter() - start:.1f} s; files in {out.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
