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

import cnnlab.functional as F
from cnnlab._checks import check_choice, check_type
from cnnlab.nn import init
from cnnlab.nn.arguments import as_input_shape
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


ACTIVATIONS = {
    None: None,
    "linear": None,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "softmax": F.softmax,
}


def check_activation(activation, owner: str):
    """``activation`` if it is None or a name in ``ACTIVATIONS``."""
    if activation is not None:
        check_type(activation, str, owner, "activation", "None or a name")
    return check_choice(activation, list(ACTIVATIONS), owner, "activation")


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

    def weight_specs(self, input_shape: tuple[int, ...]) -> list[WeightSpec]:
        return []

    def relu_fusable(self) -> bool:
        """Whether ``self(x, fused_relu=True)`` computes relu(self(x)) in one op (``Sequential``
        then runs a following ``ReLU`` layer that way)."""
        return False

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        """Raise ValueError naming the layer, the shape received and the shape expected."""

    def compute_output_shape(self, input_shape) -> tuple[int, ...]:
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        return input_shape

    def count_parameters(self, input_shape=None) -> tuple[int, int]:
        if self.built or input_shape is None:
            return super().count_parameters()
        specs = self.weight_specs(tuple(input_shape))
        return (
            sum(s.size for s in specs if s.trainable),
            sum(s.size for s in specs if not s.trainable),
        )

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
        input_shape = as_input_shape(input_shape, self._label())
        self.compute_output_shape(input_shape)
        if not self.built:
            self._create_weights(input_shape)
        self.input_shape = input_shape
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
