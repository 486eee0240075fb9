"""``Dense`` (fully connected) and ``Flatten``."""

from __future__ import annotations

import math

import cnnlab.functional as F
from cnnlab._checks import check_int, check_type
from cnnlab.nn import init
from cnnlab.nn.arguments import as_input_shape, check_initializer, check_seed
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer, WeightSpec, activate, check_activation
from cnnlab.nn.seeding import DENSE_STREAM, next_eager_seed


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
        self.units = check_int(units, "Dense", "units", minimum=1)
        self.use_bias = check_type(use_bias, bool, "Dense", "use_bias", "True or False")
        self.kernel_initializer = check_initializer(kernel_initializer, "Dense")
        self.activation = check_activation(activation, "Dense")
        self.seed = check_seed(seed, "Dense")
        self.in_features = in_features
        if in_features is not None:
            self.in_features = check_int(in_features, "Dense", "in_features", minimum=1)
            if seed is None:
                self._derived_seed = next_eager_seed(DENSE_STREAM)
            self._create_weights((self.in_features,))

    def _features(self):
        return self.weight.shape[1] if self.built else self.in_features

    def check_input_shape(self, input_shape):
        features = self._features()
        expected = f"(N, in_features={features})" if features else "(N, in_features)"
        if len(input_shape) != 1:
            reason = "add a Flatten layer before Dense" if len(input_shape) > 1 else ""
            raise self._expect(input_shape, expected, reason)
        if features is not None and input_shape[0] != features:
            raise self._expect(input_shape, expected, "feature count differs")

    def compute_output_shape(self, input_shape):
        self.check_input_shape(as_input_shape(input_shape, self._label()))
        return (self.units,)

    def weight_specs(self, input_shape):
        shape = (self.units, int(input_shape[-1]))
        fan_in, fan_out = init.fans(shape)
        specs = [WeightSpec("weight", shape, self.kernel_initializer, fan_in, fan_out)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.units,), "zeros", fan_in, fan_out))
        return specs

    def relu_fusable(self):
        return self.activation is None and type(self).forward is Dense.forward

    def forward(self, x, fused_relu=False):
        bias = self.bias if self.use_bias else None
        if self.activation == "relu" or fused_relu:  # in the op: one array, one node less
            return F.linear(x, self.weight, bias, activation="relu")
        return activate(F.linear(x, self.weight, bias), self.activation)


@register
class Flatten(Layer):
    """Flatten every axis but the batch axis.

    Shape: (N, C, H, W) → (N, C·H·W).
    """

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1:
            raise self._expect(input_shape, "(N, ...) with at least one axis after the batch axis")

    def compute_output_shape(self, input_shape):
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        return (math.prod(input_shape),)

    def forward(self, x):
        return F.flatten(x, 1)
