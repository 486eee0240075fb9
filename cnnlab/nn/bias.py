"""``PositionalBias``: a learned bias for every position of the input, not one per channel."""

from __future__ import annotations

import cnnlab.functional as F
from cnnlab.nn.arguments import as_input_shape, check_initializer, check_seed
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer, WeightSpec


@register
class PositionalBias(Layer):
    """y[n, c, i, j] = x[n, c, i, j] + b[c, i, j]: one learned value per channel and position.

    AlphaGo's policy network ends in a 1×1 convolution "with a different bias for each
    position" (Silver et al. 2016): ``Conv2D(1, 1, use_bias=False)`` then
    ``PositionalBias()``. The bias takes its shape from the first input (per sample),
    (C, H, W) for images; any per-sample shape works.

    Args:
        bias_initializer: name from ``cnnlab.nn.init`` (default 'zeros').
        seed: seed of the initialiser (only matters for a random initialiser).

    Backward: ∂L/∂b = Σ_n δ_n, ∂L/∂x = δ (``F.add`` with broadcasting).

    Shape: (N, C, H, W) → (N, C, H, W); the bias is (C, H, W), e.g. (1, 19, 19): 361 values.
    """

    def __init__(self, bias_initializer="zeros", seed=None):
        super().__init__()
        self.bias_initializer = check_initializer(bias_initializer, "PositionalBias",
                                                  "bias_initializer")
        self.seed = check_seed(seed, "PositionalBias")

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1:
            raise self._expect(input_shape, "(N, ...) with at least one axis after the batch axis")
        if self.built and tuple(input_shape) != self.bias.shape:
            shape = ", ".join(str(n) for n in self.bias.shape)
            raise self._expect(input_shape, f"(N, {shape})", "the bias was built for that shape")

    def compute_output_shape(self, input_shape):
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        return input_shape

    def weight_specs(self, input_shape):
        shape = tuple(int(n) for n in input_shape)
        return [WeightSpec("bias", shape, self.bias_initializer, shape[0], shape[0])]

    def forward(self, x):
        return F.add(x, self.bias)
