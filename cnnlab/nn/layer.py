"""``Layer``: a module with no sub-modules that owns parameters and calls one op.

A layer declares its weights with ``weight_specs(input_shape)`` (name, shape,
initialiser, fans) so they can be counted from shapes alone (``summary`` of
VGG-16 without allocating 550 MB) and created by ``build``. Its
``compute_output_shape`` is pure shape logic built on ``output_size``, the one
shape helper; ``forward`` is one line of ``cnnlab.functional``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import cnnlab.functional as F
from cnnlab.nn import init
from cnnlab.nn.module import Module
from cnnlab.tensor import Tensor, as_tensor


@dataclass(frozen=True)
class WeightSpec:
    """One weight of a layer: a trainable parameter, or a buffer when ``trainable`` is False."""

    name: str
    shape: tuple[int, ...]
    initializer: str
    fan_in: int = 1
    fan_out: int = 1
    trainable: bool = True

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def to_tuple(value, n: int, name: str, layer: str, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints, each >= ``minimum``, as an ``n``-tuple (PyTorch's ``_pair``)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * n
    elif isinstance(value, (tuple, list)) and len(value) == n and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        values = tuple(int(v) for v in value)
    else:
        kind = "an int" if n == 1 else f"an int or {n} ints"
        raise ValueError(f"{layer}: {name} must be {kind}, received {name}={value!r}")
    if min(values) < minimum:
        raise ValueError(f"{layer}: {name} must be >= {minimum}, received {name}={value!r}")
    return values


def positive_int(value, name: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, received {name}={value!r}")
    return int(value)


ACTIVATIONS = {
    None: None,
    "linear": None,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "softmax": F.softmax,
}


def check_activation(activation, layer: str):
    if activation not in ACTIVATIONS:
        names = sorted(k for k in ACTIVATIONS if k)
        raise ValueError(f"{layer}: unknown activation {activation!r}; expected None or one of {names}")
    return activation


def activate(x: Tensor, activation) -> Tensor:
    fn = ACTIVATIONS[activation]
    return x if fn is None else fn(x)


class Layer(Module):
    """Base class of the built-in layers (leaf modules).

    Subclasses override ``weight_specs``, ``check_input_shape``,
    ``compute_output_shape`` and ``forward``.
    """

    def __init__(self):
        super().__init__()
        self.layer_name: str | None = None
        self._weights_created = False

    def _label(self) -> str:
        name = type(self).__name__
        return f"{name} '{self.layer_name}'" if self.layer_name else name

    # Per-sample shape logic ------------------------------------------------
    def weight_specs(self, input_shape: tuple[int, ...]) -> list[WeightSpec]:
        return []

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        """Raise ValueError naming the layer, the shape received and the shape expected."""

    def compute_output_shape(self, input_shape) -> tuple[int, ...]:
        input_shape = tuple(int(n) for n in input_shape)
        self.check_input_shape(input_shape)
        return input_shape

    def count_parameters(self, input_shape=None) -> tuple[int, int]:
        if self._weights_created or input_shape is None:
            return super().count_parameters()
        specs = self.weight_specs(tuple(input_shape))
        return (
            sum(s.size for s in specs if s.trainable),
            sum(s.size for s in specs if not s.trainable),
        )

    # Lifecycle ---------------------------------------------------------------
    def _weights_ready(self) -> bool:
        # Layers that never declare weights (activations, pooling, ...) are always ready.
        return self._weights_created or type(self).weight_specs is Layer.weight_specs

    def _create_weights(self, input_shape) -> None:
        specs = self.weight_specs(tuple(input_shape))
        if specs:
            rng = self._rng()
            for spec in specs:
                values = init.get(spec.initializer)(rng, spec.shape, spec.fan_in, spec.fan_out, self._dtype)
                if spec.trainable:
                    setattr(self, spec.name, Tensor(values, requires_grad=True, name=spec.name))
                else:
                    self.register_buffer(spec.name, values)
        self._weights_created = True

    def build(self, input_shape) -> Layer:
        """Validate ``input_shape`` (per sample) and create the weights if not done yet."""
        input_shape = tuple(int(n) for n in input_shape)
        self.compute_output_shape(input_shape)
        if not self._weights_created:
            self._create_weights(input_shape)
        self.input_shape = input_shape
        self.built = True
        return self

    def _build_on_call(self, input_shape) -> None:
        self.build(input_shape)

    def __call__(self, x, *args, **kwargs):
        x = as_tensor(x)
        if x.ndim == 0:
            raise ValueError(f"{self._label()}: expected a batch of inputs, received a scalar")
        self.check_input_shape(tuple(x.shape[1:]))
        return super().__call__(x, *args, **kwargs)

    def _expect(self, input_shape, expected: str, reason: str = "") -> ValueError:
        shape = "(N, " + ", ".join(str(n) for n in input_shape) + ")"
        why = f" ({reason})" if reason else ""
        return ValueError(f"{self._label()}: expected input {expected}, received shape {shape}{why}")
