"""``Dense`` (fully connected) and ``Flatten``."""

from __future__ import annotations

import itertools
import math

import cnnlab.functional as F
from cnnlab.nn import init
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer, WeightSpec, activate, check_activation, positive_int

_eager_streams = itertools.count()


@register
class Dense(Layer):
    """Fully connected layer: y = activation(x Wᵀ + b), W of shape (units, in_features) as in PyTorch.

    Args:
        units: number of outputs.
        in_features: create the weights now instead of at the first input.
        use_bias: add a bias of shape (units,).
        kernel_initializer: name from ``cnnlab.nn.init`` (default he_normal).
        activation: None or 'relu', 'leaky_relu', 'sigmoid', 'tanh', 'softmax'.
        seed: seed of the initialiser; None derives one from the model's seed.

    Shape: (N, in_features) → (N, units).

    Example:
        >>> Dense(100, activation="relu").compute_output_shape((1250,))
        (100,)
    """

    def __init__(self, units, in_features=None, use_bias=True, kernel_initializer="he_normal",
                 activation=None, seed=None):
        super().__init__()
        self.units = positive_int(units, "units", "Dense")
        self.use_bias = bool(use_bias)
        init.get(kernel_initializer)
        self.kernel_initializer = kernel_initializer
        self.activation = check_activation(activation, "Dense")
        self.seed = seed
        self.in_features = None if in_features is None else positive_int(in_features, "in_features", "Dense")
        if self.in_features is not None:
            if seed is None:
                self._derived_seed = (0, 2, next(_eager_streams))
            self._create_weights((self.in_features,))

    def _features(self):
        return self.weight.shape[1] if self._weights_created else self.in_features

    def check_input_shape(self, input_shape):
        features = self._features()
        expected = f"(N, in_features={features})" if features else "(N, in_features)"
        if len(input_shape) != 1:
            reason = "add a Flatten layer before Dense" if len(input_shape) > 1 else ""
            raise self._expect(input_shape, expected, reason)
        if features is not None and input_shape[0] != features:
            raise self._expect(input_shape, expected, "feature count differs")

    def compute_output_shape(self, input_shape):
        self.check_input_shape(tuple(input_shape))
        return (self.units,)

    def weight_specs(self, input_shape):
        shape = (self.units, int(input_shape[-1]))
        fan_in, fan_out = init.fans(shape)
        specs = [WeightSpec("weight", shape, self.kernel_initializer, fan_in, fan_out)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.units,), "zeros", fan_in, fan_out))
        return specs

    def forward(self, x):
        return activate(F.linear(x, self.weight, self.bias if self.use_bias else None), self.activation)


@register
class Flatten(Layer):
    """Flatten every axis but the batch axis.

    Shape: (N, C, H, W) → (N, C·H·W).
    """

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1:
            raise self._expect(input_shape, "(N, ...) with at least one axis after the batch axis")

    def compute_output_shape(self, input_shape):
        self.check_input_shape(tuple(input_shape))
        return (math.prod(int(n) for n in input_shape),)

    def forward(self, x):
        return F.flatten(x, 1)
