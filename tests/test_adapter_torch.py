"""PyTorch through ONNX: a small CNN on digits and a GRU on a sequence task, trained here,
exported, checked for parity and explained per image patch and per time step."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from torch import nn  # noqa: E402 - only once torch is known to be installed

import surrogate_xai as sx  # noqa: E402
from surrogate_xai import groups  # noqa: E402
from surrogate_xai.adapters.torch import predict_function, to_onnx  # noqa: E402
from surrogate_xai.exceptions import ConfigurationError, ModelError, ParityError  # noqa: E402

T_STEPS, N_FEATURES, KEY_STEPS = 10, 3, (2, 5)


def _load_example():
    """The documented example's models and training loop: the tests train the same ones."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "deep_learning.py"
    spec = importlib.util.spec_from_file_location("deep_learning_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_example = _load_example()
DigitCNN, SequenceGRU, _train = _example.DigitCNN, _example.SequenceGRU, _example.train


@pytest.fixture(scope="module")
def digits_cnn():
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)  # exact in float32: both sides see the same inputs
    X_train, y_train, X_test = X[:1400], torch.from_numpy(y[:1400]), X[1400:]
    images = torch.from_numpy(X_train).reshape(-1, 1, 8, 8)
    cnn = DigitCNN()
    _train(
        cnn,
        images,
        lambda m, xb, idx: nn.functional.cross_entropy(m.logits(xb), y_train[idx]),
        epochs=20,
        batch=64,
    )
    accuracy = float(
        np.mean(cnn(torch.from_numpy(X_test).reshape(-1, 1, 8, 8)).argmax(1).numpy() == y[1400:])
    )
    assert accuracy > 0.9
    names = groups.image_feature_names((8, 8))
    model = to_onnx(cnn, images[:64], feature_names=names, output_name="probability")
    return cnn, model, X_train, X_test


@pytest.fixture(scope="module")
def sequence_gru():
    """y = x[t=2, f0] − x[t=5, f0]; every other value is noise the model must ignore."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gru, X_train, X_test = _example.train_gru()
    y = X_test[:, KEY_STEPS[0], 0] - X_test[:, KEY_STEPS[1], 0]
    with torch.no_grad():
        mse = float(np.mean((gru(torch.from_numpy(X_test))[:, 0].numpy() - y) ** 2))
    assert mse < 0.1 * float(np.var(y))
    names = groups.sequence_feature_names(T_STEPS, N_FEATURES)
    model = to_onnx(gru, X_train[:64], feature_names=names, output_name="y")
    return gru, model, X_train, X_test


# -- export ------------------------------------------------------------------------------------
def test_export_is_flat_dynamic_and_proven_equal(digits_cnn):
    cnn, model, _, X_test = digits_cnn
    assert model.feature_names == groups.image_feature_names((8, 8))
    assert model.output_names == [f"probability[{k}]" for k in range(10)]
    assert model.parity["passed"]
    assert model.parity["rows_checked"] == 64
    assert model.parity["max_abs_diff"] < 1e-5
    assert model.describe()["parity"] == model.parity
    # One graph serves every batch size: the exporter would freeze it to the example's 64.
    for n in (1, 37):
        with torch.no_grad():
            native = cnn(torch.from_numpy(X_test[:n]).reshape(n, 1, 8, 8)).numpy()
        np.testing.assert_allclose(model.predict(X_test[:n]), native, atol=1e-6)


def test_the_onnx_file_alone_carries_the_weights(digits_cnn, tmp_path):
    import onnx

    cnn, model, _, X_test = digits_cnn
    alone = tmp_path / "shipped"
    alone.mkdir()
    path = alone / "cnn.onnx"
    path.write_bytes(model.model_bytes)
    proto = onnx.load(str(path), load_external_data=False)
    assert all(not t.external_data for t in proto.graph.initializer)
    stored = sum(onnx.numpy_helper.to_array(t).size for t in proto.graph.initializer)
    assert stored >= sum(p.numel() for p in cnn.parameters())
    reloaded = sx.ONNXModel(path)  # no model.onnx.data next to it, nothing else in the folder
    assert [p.name for p in alone.iterdir()] == ["cnn.onnx"]
    assert reloaded.identity == model.identity
    np.testing.assert_array_equal(reloaded.predict(X_test[:5]), model.predict(X_test[:5]))


def test_train_mode_is_restored_and_export_uses_eval_mode():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2))
    net.train()
    X = np.random.default_rng(1).normal(size=(9, 6)).astype(np.float32)
    model = to_onnx(net, X)  # dropout active in the graph would fail the parity gate
    assert all(m.training for m in net.modules())
    assert model.feature_names == [f"x{j}" for j in range(6)]
    net.eval()
    with torch.no_grad():
        np.testing.assert_allclose(model.predict(X), net(torch.from_numpy(X)).numpy(), atol=1e-6)


def test_one_example_row_and_shaped_or_flat_parity_samples(sequence_gru):
    gru, model, X_train, X_test = sequence_gru
    # torch.export turns a batch of 1 into a constant for the GRU (measured), so the
    # adapter traces with two rows; the graph must still take any batch size.
    one = to_onnx(gru, X_train[:1], X_sample=X_test[:20])
    assert one.parity["rows_checked"] == 20
    flat = X_test[:37].reshape(37, -1)
    np.testing.assert_allclose(one.predict(flat), model.predict(flat), atol=1e-6)

    torch.manual_seed(2)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.Softmax(dim=1))
    X = np.random.default_rng(2).normal(size=(20, 3, 4)).astype(np.float32)
    model = to_onnx(net, torch.from_numpy(X[:3]), X_sample=X.reshape(20, 12))
    assert model.parity["rows_checked"] == 20


class _Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x):
        return self.linear(x) + torch.rand_like(x[:, :2])  # the graph draws other numbers


class _FixedBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x):
        return self.linear(x.reshape(2, 4))


class _TwoOutputs(nn.Module):
    def forward(self, x):
        return x, x


def test_refusals():
    X = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    with pytest.raises(ParityError, match="beyond tolerance"):
        to_onnx(_Noisy(), X)
    with pytest.raises(ModelError, match="fixes the batch size to 2"):
        to_onnx(_FixedBatch(), X)
    with pytest.raises(ConfigurationError, match="one tensor"):
        to_onnx(_TwoOutputs(), X)
    with pytest.raises(ConfigurationError, match="feature_names has 3 names"):
        to_onnx(nn.Linear(4, 1), X, feature_names=["a", "b", "c"])
    with pytest.raises(ConfigurationError, match="X_sample"):
        to_onnx(nn.Linear(4, 1), X, X_sample=X[:, :3])
    with pytest.raises(ConfigurationError, match="NaN"):
        to_onnx(nn.Linear(4, 1), np.full((2, 4), np.nan, dtype=np.float32))
    with pytest.raises(ConfigurationError, match=r"torch\.nn\.Module"):
        to_onnx(lambda x: x, X)


def test_import_is_lazy_and_a_missing_torch_names_the_extra(monkeypatch):
    code = "import sys, surrogate_xai.adapters.torch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` sees when absent
    with pytest.raises(ImportError, match=r"pip install 'surrogate-xai\[torch\]'"):
        to_onnx(object(), np.zeros((2, 3)))


# -- explanation -------------------------------------------------------------------------------
def _same_attributions(onnx_exp, native_exp) -> None:
    """Equal to 1e-5 of the attributions' scale; both models compute in float32."""
    scale = float(np.abs(native_exp.values).max())
    np.testing.assert_allclose(onnx_exp.values, native_exp.values, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(
        onnx_exp.base_values, native_exp.base_values, rtol=1e-5, atol=1e-5 * scale
    )


def test_cnn_attributions_sit_on_the_ink(digits_cnn):
    cnn, model, X_train, X_test = digits_cnn
    patches = groups.image_patches((8, 8), 2)
    background, X = X_train[:30], X_test[:20]
    # 30 background rows x 4 x 16 patches: one pass over the background per image.
    explainer = sx.KernelSHAP(max_evals=30 * 4 * 16, random_state=0)
    exp = explainer.fit(model, background, feature_groups=patches).explain(X)
    assert exp.values.shape == (20, 16, 10)

    native = sx.FunctionModel(
        predict_function(cnn, (1, 8, 8)),
        model.feature_names,
        model.output_names,
        input_type="array",
    )
    native_exp = sx.KernelSHAP(max_evals=30 * 4 * 16, random_state=0)
    _same_attributions(exp, native_exp.fit(native, background, feature_groups=patches).explain(X))

    # Probabilities are explained: the predicted class's attributions answer "why this
    # digit", and they are bounded, so one confident image cannot dominate the average.
    ink_mass, blank_mass = [], []
    for i, predicted in enumerate(exp.diagnostics.predictions.argmax(axis=1)):
        grid = groups.patch_grid(exp.values[i, :, predicted], exp.feature_names, (8, 8), 2)
        ink = X[i].reshape(4, 2, 4, 2).sum(axis=(1, 3)) > 0
        positive = np.maximum(grid, 0.0)
        ink_mass.append(positive[ink].mean())
        if (~ink).any():
            blank_mass.append(positive[~ink].mean())
    assert len(blank_mass) >= 10
    assert np.mean(ink_mass) > 2 * np.mean(blank_mass)


def test_gru_attributions_sit_on_the_steps_that_set_the_target(sequence_gru):
    gru, model, X_train, X_test = sequence_gru
    steps = groups.time_steps(T_STEPS, N_FEATURES)
    background = X_train[:20].reshape(20, -1)
    X = X_test[:20].reshape(20, -1)
    explainer = sx.KernelSHAP(max_evals=2_000, random_state=0)
    exp = explainer.fit(model, background, feature_groups=steps).explain(X)
    assert exp.feature_names == [f"t{s}" for s in range(T_STEPS)]

    native = sx.FunctionModel(
        predict_function(gru, (T_STEPS, N_FEATURES)),
        model.feature_names,
        model.output_names,
        input_type="array",
    )
    native_exp = sx.KernelSHAP(max_evals=2_000, random_state=0)
    _same_attributions(exp, native_exp.fit(native, background, feature_groups=steps).explain(X))

    mass = np.abs(exp.values[:, :, 0]).mean(axis=0)
    assert mass[list(KEY_STEPS)].sum() / mass.sum() > 0.8
    assert mass[list(KEY_STEPS)].min() > 5 * np.delete(mass, KEY_STEPS).max()


@pytest.mark.slow
def test_docs_example_writes_heatmaps_and_a_step_chart(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "deep_learning.py"
    out = tmp_path / "figs"
    run = subprocess.run(
        [sys.executable, str(example), str(out), "--images", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    written = sorted(p.name for p in out.iterdir())
    assert written == [
        "digit_0.png",
        "digit_1.png",
        "digits_cnn.onnx",
        "gru_time_steps.png",
        "sequence_gru.onnx",
    ]
    pngs = [name for name in written if name.endswith(".png")]
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in pngs)
    assert "of the attribution mass on steps (2, 5)" in run.stdout
