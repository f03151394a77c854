"""PyTorch modules to ONNX with ``torch.onnx.export`` (dynamo), behind a parity gate.

Needs the ``torch`` extra: ``pip install 'surrogate-xai[torch]'`` (install the CPU wheel of
torch first; a plain ``torch`` resolves to a multi-GB CUDA build).

Explainers perturb one flat row of ``n_features`` floats, so the exported graph takes a flat
``(batch, n_features)`` float tensor and reshapes it to the module's input shape (e.g.
``(batch, 1, 8, 8)`` for an image, ``(batch, T, F)`` for a batch-first sequence) before
calling the module. Two traps of the exporter are handled here:

* the batch size is frozen to the example's unless a dynamic axis is declared: the batch
  axis is declared dynamic, and the export is refused if the graph still fixes it;
* weights may go to a side file ``model.onnx.data``: the graph is serialised in memory with
  every initializer inside it, and refused if any tensor still points to external data.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..exceptions import ConfigurationError, ModelError
from ..onnx_model import ONNXModel
from ..parity import check_parity

__all__ = ["predict_function", "to_onnx"]

_INPUT, _BATCH = "input", "batch"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the exporter colours its error messages
# protobuf cannot serialise a message of 2 GiB or more into one buffer.
_PROTOBUF_LIMIT = 2**31 - 1

# Warnings the exporter raises about its own internals (torch 2.13): deprecations inside
# torch.export / pytree, and the GRU/LSTM "_flat_weights ... assigned during export" notice,
# which is about how torch.nn.RNN caches its parameters, not about the user's module. None
# of them says anything about the exported graph, whose correctness the parity gate checks.
_EXPORTER_NOISE: tuple[tuple[type[Warning], str], ...] = (
    (FutureWarning, r"_check_is_size will be removed"),
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (UserWarning, r"The tensor attributes .*_flat_weights.* were assigned during export"),
)
# Logs "torchvision is not installed. Skipping torchvision::nms" etc. once per process.
_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


def _torch() -> Any:
    try:
        import onnxscript  # noqa: F401 - the dynamo exporter needs it; fail here, clearly
        import torch
    except ImportError as exc:
        raise ImportError(
            "exporting PyTorch modules needs torch and onnxscript: "
            "pip install 'surrogate-xai[torch]'"
        ) from exc
    return torch


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    logger = logging.getLogger(_REGISTRATION_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category, message in _EXPORTER_NOISE:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _eval_mode(module: Any) -> Iterator[None]:
    """Eval mode (no dropout, running batch-norm statistics) for the export, then as before."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _flat_wrapper(torch: Any, module: Any, input_shape: tuple[int, ...]) -> Any:
    class FlatInput(torch.nn.Module):
        """``(batch, n_features)`` in, the module's ``(batch, *input_shape)`` inside."""

        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, x: Any) -> Any:
            return self.module(x.reshape((x.shape[0], *input_shape)))

    wrapper = FlatInput()
    # Only the wrapper's own flag: .eval() would also switch the user's module, for good.
    wrapper.training = False
    return wrapper


def _as_tensor(torch: Any, X: Any, what: str) -> Any:
    if isinstance(X, torch.Tensor):
        t = X.detach().to(device="cpu", dtype=torch.float32)
    else:
        try:
            t = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{what} must be a tensor or a numeric array: {exc}") from exc
    if t.ndim < 2 or t.shape[0] < 1:
        raise ConfigurationError(
            f"{what} must have shape (n_samples, *input_shape) with at least one sample; "
            f"got {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ConfigurationError(f"{what} holds NaN or infinite values")
    return t


def _embedded_bytes(proto: Any) -> bytes:
    """The graph as one self-contained buffer: weights inside, no side ``.onnx.data`` file."""
    import onnx

    size = proto.ByteSize()
    if size > _PROTOBUF_LIMIT:
        raise ConfigurationError(
            f"the exported graph is {size / 2**30:.1f} GiB; one .onnx file holds less than "
            f"2 GiB (a protobuf limit), so its weights cannot be embedded"
        )
    external = [
        t.name
        for t in proto.graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data
    ]
    if external:
        raise ModelError(f"the exporter left weights in external data: {external[:5]}")
    return bytes(proto.SerializeToString())


def _check_dynamic_batch(proto: Any) -> None:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    if not dims or dims[0].HasField("dim_value"):
        fixed = dims[0].dim_value if dims else "?"
        raise ModelError(
            f"the exported graph fixes the batch size to {fixed}: the module must not depend "
            f"on the batch size (reshape with x.shape[0] or -1, not a constant)"
        )


def to_onnx(
    module: Any,
    example_input: Any,
    *,
    feature_names: Sequence[str] | None = None,
    output_name: str = "output",
    X_sample: Any = None,
    atol: float = 1e-4,
    max_flips: int = 0,
    opset_version: int | None = None,
) -> ONNXModel:
    """Export a PyTorch module to a self-contained ONNX graph and prove it equal to the module.

    Parameters
    ----------
    module : torch.nn.Module
        Returns one tensor of shape ``(batch,)`` or ``(batch, n_outputs)`` (e.g. class
        probabilities: end the module with a softmax to explain probabilities). Exported in
        eval mode; the module's own train/eval flags are restored afterwards.
    example_input : tensor or array of shape (n_samples, *input_shape)
        Inputs as the module takes them; fixes ``input_shape`` (e.g. ``(1, 8, 8)``).
        The rows are also the default parity sample.
    feature_names : sequence of str, optional
        Names of the ``prod(input_shape)`` flat columns, in C order; build them with
        :func:`surrogate_xai.groups.image_feature_names` or
        :func:`~surrogate_xai.groups.sequence_feature_names` so that the feature groups of
        :mod:`surrogate_xai.groups` match. Default ``x0, x1, ...``.
    output_name : str
        Name of the graph output. A name containing ``"prob"`` marks class probabilities.
    X_sample : tensor or array, optional
        Rows to check parity on, of shape ``(n_samples, n_features)`` (flat) or
        ``(n_samples, *input_shape)``; default ``example_input``.
    atol : float
        Largest absolute difference between module and graph outputs tolerated.
    max_flips : int
        Arg-max (or 0.5-threshold, for one output) decisions allowed to differ.
    opset_version : int, optional
        ONNX opset; the exporter's default if omitted.

    Returns
    -------
    ONNXModel
        Tensor-mode model over the flat columns, with any batch size; ``model.parity``
        holds the parity report, and ``model.model_bytes`` is the whole ``.onnx`` file, the
        column names and the report in its metadata.

    Raises
    ------
    ParityError
        The graph's outputs differ from the module's beyond ``atol`` or ``max_flips``.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ConfigurationError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    example = _as_tensor(torch, example_input, "example_input")
    input_shape = tuple(int(d) for d in example.shape[1:])
    n_features = math.prod(input_shape)
    names = [str(n) for n in feature_names] if feature_names is not None else None
    if names is not None and len(names) != n_features:
        raise ConfigurationError(
            f"feature_names has {len(names)} names but an input of shape {input_shape} has "
            f"{n_features} values"
        )
    flat = example.reshape(len(example), n_features)
    if X_sample is None:
        sample = flat
    else:
        sample = _as_tensor(torch, X_sample, "X_sample")
        if tuple(sample.shape[1:]) not in ((n_features,), input_shape):
            raise ConfigurationError(
                f"X_sample must have shape (n, {n_features}) or (n, *{input_shape}); "
                f"got {tuple(sample.shape)}"
            )
        sample = sample.reshape(len(sample), n_features)

    wrapper = _flat_wrapper(torch, module, input_shape)
    # torch.export specialises a dimension of size 1 to a constant, so trace with >= 2 rows.
    trace = flat[:2] if len(flat) >= 2 else flat.repeat(2, 1)
    with _eval_mode(module), torch.no_grad():
        out = wrapper(trace)
        if not isinstance(out, torch.Tensor) or out.ndim not in (1, 2) or out.shape[0] != 2:
            shown = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ConfigurationError(
                f"the module must return one tensor of shape (batch,) or (batch, n_outputs); "
                f"got {shown}"
            )
        try:
            with _quiet_exporter():
                program = torch.onnx.export(
                    wrapper,
                    (trace,),
                    dynamo=True,
                    input_names=[_INPUT],
                    output_names=[output_name],
                    dynamic_shapes=({0: torch.export.Dim(_BATCH)},),
                    opset_version=opset_version,
                    external_data=False,
                    verbose=False,
                    report=False,
                )
        except Exception as exc:
            first = _ANSI.sub("", str(exc)).strip().split("\n", 1)[0][:300]
            raise ModelError(
                f"torch.onnx.export failed ({type(exc).__name__}: {first}); the chained "
                f"exception holds the exporter's report"
            ) from exc
    proto = program.model_proto
    _check_dynamic_batch(proto)
    model = ONNXModel(_embedded_bytes(proto), feature_names=names)
    report = check_parity(
        predict_function(module, input_shape),
        model,
        sample.numpy(),
        atol=atol,
        max_flips=max_flips,
        raise_on_failure=True,
    )
    return model.with_export_metadata(
        report, converter=f"torch.onnx.export (dynamo) torch {torch.__version__}"
    )


def predict_function(module: Any, input_shape: Sequence[int]) -> Callable[[np.ndarray], np.ndarray]:
    """The module as ``f(X) -> array`` on flat float rows, as the exported graph sees them.

    For comparing the exported graph with the module itself, e.g. through
    ``sx.FunctionModel(predict_function(module, (1, 8, 8)), names, input_type="array")``.
    Evaluates in eval mode without gradients, in float32 like the graph.
    """
    torch = _torch()
    shape = tuple(int(d) for d in input_shape)
    wrapper = _flat_wrapper(torch, module, shape)

    def predict(X: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        with _eval_mode(module), torch.no_grad():
            return np.asarray(wrapper(x).numpy(), dtype=np.float64)

    return predict
