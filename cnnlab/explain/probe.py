"""What every explanation needs from a model: its layers by name, its input space, and the
gradient of something inside it with respect to the input image.

Explanations work in the space of the image a person sees: float pixels in [0, 1], NCHW,
as ``cnnlab.data.read_image`` and ``prepare_image`` give them. ``forward`` applies the
model's stored normalisation itself, so a gradient is with respect to those pixels.

Layer names are those ``summary()`` prints (a ``Sequential``'s "conv2d_1", "dense", ...);
a layer inside a nested container is reached by its dotted name ("block.conv2d").
Everything runs in evaluation mode (batch norm on running statistics, no dropout), with
the weights frozen so that a backward pass computes input gradients only.
"""

from __future__ import annotations

import contextlib

import numpy as np

import cnnlab.functional as F
from cnnlab.errors import CnnlabError
from cnnlab.nn.activation import ReLU, Softmax
from cnnlab.nn.container import ModuleList, Sequential
from cnnlab.nn.conv import Conv2D
from cnnlab.nn.dense import Dense
from cnnlab.nn.module import Module, eval_mode, record_calls
from cnnlab.tensor import Tensor, enable_grad

__all__ = [
    "ExplainError",
    "as_images",
    "conv_layer_names",
    "dense_layer_names",
    "find_layer",
    "forward",
    "input_gradient",
    "inspecting",
    "layer_gradient",
    "layer_names",
]


class ExplainError(CnnlabError, ValueError):
    """A request an explanation can't satisfy (unknown layer or unit, wrong image); the message
    says what was received and what would be valid."""


def layer_names(model: Module) -> list[str]:
    """Every addressable layer, in order: a ``Sequential``'s own names, then dotted names inside
    nested containers; for another module, every sub-module's dotted name."""
    if isinstance(model, Sequential):
        names = []
        for name, layer in model.named_layers():
            names.append(name)
            if isinstance(layer, (Sequential, ModuleList)) or layer.children():
                names += [f"{name}.{inner}" for inner, _ in layer.named_modules() if inner]
        return names
    return [name for name, m in model.named_modules() if name and not isinstance(m, ModuleList)]


def find_layer(model: Module, name: str) -> Module:
    """The sub-module called ``name``; ExplainError listing the valid names otherwise."""
    modules = dict(model.named_modules())
    if not isinstance(name, str) or name not in modules or not name:
        raise ExplainError(
            f"unknown layer {name!r}; the model's layers are: {', '.join(layer_names(model))}"
        )
    return modules[name]


def conv_layer_names(model: Module) -> list[str]:
    """Names of the 2-D convolution layers, in order."""
    return [n for n in layer_names(model) if isinstance(find_layer(model, n), Conv2D)]


def dense_layer_names(model: Module) -> list[str]:
    """Names of the dense layers, in order (the last is usually the output)."""
    return [n for n in layer_names(model) if isinstance(find_layer(model, n), Dense)]


def as_images(model: Module, images, owner: str, size_free: bool = False) -> np.ndarray:
    """``images`` as a float (N, C, H, W) array of the model's dtype, checked against the model.

    Accepts (C, H, W) or (N, C, H, W), float in [0, 1] or uint8 (divided by 255). The number of
    channels must be the model's; so must the size, unless ``size_free`` (a fully convolutional
    use: Deep Dream, style features), where the image must only be large enough for the model.
    """
    array = np.asarray(images)
    if array.dtype == np.uint8:
        array = array / 255.0
    if array.dtype.kind not in "fiu" or array.ndim not in (3, 4):
        raise ExplainError(
            f"{owner}: expected images (C, H, W) or (N, C, H, W), received {array.dtype} of "
            f"shape {array.shape}"
        )
    if array.ndim == 3:
        array = array[None]
    if not np.isfinite(array).all():
        raise ExplainError(f"{owner}: the images hold NaN or infinite values")
    expected = tuple(model.input_shape) if model.input_shape is not None else None
    if expected is not None:
        if array.shape[1] != expected[0]:
            raise ExplainError(
                f"{owner}: the model takes {expected[0]}-channel images, received "
                f"{array.shape[1]} channels (shape {array.shape[1:]})"
            )
        if not size_free and tuple(array.shape[1:]) != expected:
            raise ExplainError(
                f"{owner}: the model takes images of shape {expected}, received "
                f"{tuple(array.shape[1:])}; resize them first (cnnlab.data.prepare_image)"
            )
    if size_free:
        check_large_enough(model, array.shape[1:], owner)
    return np.ascontiguousarray(array, dtype=model.dtype)


def check_large_enough(model: Module, shape, owner: str) -> None:
    """ExplainError when an image of per-sample ``shape`` is smaller than the model can take."""
    try:
        model.compute_output_shape(tuple(int(n) for n in shape))
    except ValueError as error:
        raise ExplainError(
            f"{owner}: an image of shape {tuple(shape)} is too small for this model "
            f"(smaller than its receptive field): {error}"
        ) from None


@contextlib.contextmanager
def inspecting(model: Module):
    """Evaluation mode with every parameter frozen (no weight gradients), restored after."""
    params = model.parameters()
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad = False
        with eval_mode(model), enable_grad():
            yield model
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag


def normalize(model: Module, x: Tensor) -> Tensor:
    """(x − mean) / std with the model's stored normalisation (scalar or one per channel)."""
    stats = getattr(model, "normalization", None)
    if not stats:
        return x
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1) + (1,) * (x.ndim - 2)
    mean = np.asarray(stats["mean"], dtype=x.dtype).reshape(shape if np.ndim(stats["mean"]) else ())
    std = np.asarray(stats["std"], dtype=x.dtype).reshape(shape if np.ndim(stats["std"]) else ())
    return (x - mean) * (1.0 / std).astype(x.dtype)


def _call(layer: Module, x: Tensor, redirect: bool) -> Tensor:
    """One layer's output; with ``redirect``, its ReLU (a layer or a fused one) redirected."""
    if not redirect:
        return layer(x)
    if isinstance(layer, ReLU):
        return F.redirected_relu(x)
    if getattr(layer, "activation", None) == "relu":
        with _activation(layer, None):
            return F.redirected_relu(layer(x))
    if isinstance(layer, Sequential):
        for inner in layer.layers:
            x = _call(inner, x, redirect)
        return x
    return layer(x)


@contextlib.contextmanager
def _activation(layer: Module, activation):
    previous = layer.activation
    layer.activation = activation
    try:
        yield
    finally:
        layer.activation = previous


def _logits_end(model: Sequential) -> tuple[int, bool]:
    """(number of layers to run, whether the last one's softmax activation is dropped)."""
    layers = model.layers
    if layers and isinstance(layers[-1], Softmax):
        return len(layers) - 1, False
    if layers and getattr(layers[-1], "activation", None) == "softmax":
        return len(layers), True
    return len(layers), False


def forward(model: Module, x: Tensor, layer: str | None = None, redirect: bool = False) -> Tensor:
    """The output of ``layer`` (None: the logits) for images ``x`` in [0, 1], with a graph.

    The logits are the model's output before a final ``Softmax`` layer or softmax activation
    ("on the logit, not the softmax"). ``redirect`` swaps each ReLU of a ``Sequential`` for
    ``F.redirected_relu``, so units dead at a random start still get a gradient.
    Call inside ``inspecting(model)``.
    """
    x = normalize(model, x)
    target = None if layer is None else find_layer(model, layer)
    if isinstance(model, Sequential) and (layer is None or layer in model._order):
        layers = model.layers
        count, drop_softmax = _logits_end(model) if layer is None else (len(layers), False)
        for i, module in enumerate(layers[:count]):
            if drop_softmax and i == count - 1:
                with _activation(module, None):
                    x = _call(module, x, redirect)
            else:
                x = _call(module, x, redirect)
            if module is target:
                return x
        return x
    with record_calls() as calls:
        out = model(x)
    if target is None:
        return out
    for module, output in calls:
        if module is target:
            return output
    raise ExplainError(f"layer {layer!r} is not called by the model's forward")


def input_gradient(model: Module, images: np.ndarray, objective, layer: str | None = None,
                   redirect: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(objective per image (N,), ∂objective/∂images (N, C, H, W)).

    ``objective(output)`` maps ``layer``'s output Tensor (None: the logits) to a Tensor of
    shape (N,), one value per image; the images don't interact, so the gradient of the sum is
    each image's own. ``images``: float (N, C, H, W) in [0, 1] (``as_images``).

    The objective is taken as one to maximise: the backward runs on the loss −objective (which
    a redirected ReLU needs to know which way is "lower"), and the gradient is negated back.
    """
    with inspecting(model):
        x = Tensor(np.ascontiguousarray(images, dtype=model.dtype), requires_grad=True)
        values = objective(forward(model, x, layer, redirect))
        (-values.sum()).backward()
    grad = -x.grad if x.grad is not None else np.zeros_like(x.data)
    return np.array(values.data, copy=True), grad


def layer_gradient(model: Module, images: np.ndarray, objective,
                   layer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(objective per image (N,), ``layer``'s output A, ∂objective/∂A), as ``input_gradient``
    but with respect to an inner layer's output (Grad-CAM's ∂y_c/∂A^k).

    ``objective(logits)`` maps the logits to a Tensor (N,). The layer's output is the one the
    forward pass records for it; a layer called more than once is ambiguous and refused.
    """
    target = find_layer(model, layer)
    with inspecting(model):
        with record_calls() as calls:
            x = Tensor(np.ascontiguousarray(images, dtype=model.dtype), requires_grad=True)
            values = objective(forward(model, x))
        outputs = [out for module, out in calls if module is target]
        if len(outputs) != 1:
            raise ExplainError(
                f"layer {layer!r} is called {len(outputs)} times by the model's forward; "
                "a layer gradient needs exactly one call"
            )
        activation = outputs[0].retain_grad()
        (-values.sum()).backward()
    grad = -activation.grad if activation.grad is not None else np.zeros_like(activation.data)
    return np.array(values.data, copy=True), np.array(activation.data, copy=True), grad
