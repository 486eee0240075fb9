"""Convolution layers: ``Conv2D`` (images) and ``Conv1D`` (sequences)."""

from __future__ import annotations

import cnnlab.functional as F
from cnnlab._checks import check_int, check_type
from cnnlab.nn import init
from cnnlab.nn.arguments import as_input_shape, check_initializer, check_seed, to_tuple
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer, WeightSpec, activate, check_activation
from cnnlab.nn.seeding import CONV_STREAM, next_eager_seed


class _Conv(Layer):
    rank = 2

    def __init__(self, filters, kernel_size, stride, padding, dilation, groups, use_bias,
                 in_channels, kernel_initializer, activation, seed):
        super().__init__()
        name, n = type(self).__name__, self.rank
        self.filters = check_int(filters, name, "filters", minimum=1)
        self.kernel_size = to_tuple(kernel_size, n, "kernel_size", name, minimum=1)
        self.stride = to_tuple(stride, n, "stride", name, minimum=1)
        self.dilation = to_tuple(dilation, n, "dilation", name, minimum=1)
        self.groups = check_int(groups, name, "groups", minimum=1)
        if self.filters % self.groups:
            raise ValueError(
                f"{name}: filters must be divisible by groups, received filters={filters}, groups={groups}"
            )
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"{name}: padding must be an int, 'same' or 'valid', "
                    f"received padding={padding!r}"
                )
            self.padding = padding
        else:
            self.padding = to_tuple(padding, n, "padding", name, minimum=0)
        # Resolved once: numbers where they are symmetric, else 'same' is left to the op.
        extents = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
        if self.padding == "valid":
            self._padding = (0,) * n
        elif self.padding == "same" and all(s == 1 for s in self.stride) and all(e % 2 == 0 for e in extents):
            self._padding = tuple(e // 2 for e in extents)
        else:
            self._padding = self.padding
        self.use_bias = check_type(use_bias, bool, name, "use_bias", "True or False")
        self.kernel_initializer = check_initializer(kernel_initializer, name)
        self.activation = check_activation(activation, name)
        self.seed = check_seed(seed, name)
        self.in_channels = in_channels
        if in_channels is not None:
            self.in_channels = check_int(in_channels, name, "in_channels", minimum=1)
            if self.in_channels % self.groups:
                raise ValueError(
                    f"{name}: in_channels must be divisible by groups, "
                    f"received in_channels={in_channels}, groups={groups}"
                )
            if seed is None:
                self._derived_seed = next_eager_seed(CONV_STREAM)
            self._create_weights((self.in_channels,))

    def _channels(self) -> int | None:
        if self.built:
            return self.weight.shape[1] * self.groups
        return self.in_channels

    def check_input_shape(self, input_shape):
        letters = "(N, C_in, H, W)" if self.rank == 2 else "(N, C_in, L)"
        if len(input_shape) != self.rank + 1:
            raise self._expect(input_shape, letters)
        channels = self._channels()
        if channels is not None and input_shape[0] != channels:
            expected = letters.replace("C_in", f"C_in={channels}")
            raise self._expect(input_shape, expected, "channel count differs")
        if input_shape[0] % self.groups:
            raise self._expect(input_shape, letters, f"C_in must be divisible by groups={self.groups}")

    def compute_output_shape(self, input_shape):
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        sizes = []
        for i, n in enumerate(input_shape[1:]):
            k, s, d = self.kernel_size[i], self.stride[i], self.dilation[i]
            if self._padding == "same":
                sizes.append(-(-n // s))
                continue
            try:
                sizes.append(F.output_size(n, k, s, self._padding[i], d))
            except ValueError as error:
                raise self._expect(input_shape, "spatially larger than the kernel", str(error)) from None
        return (self.filters, *sizes)

    def weight_specs(self, input_shape):
        shape = (self.filters, input_shape[0] // self.groups, *self.kernel_size)
        fan_in, fan_out = init.fans(shape, self.groups)
        specs = [WeightSpec("weight", shape, self.kernel_initializer, fan_in, fan_out)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), "zeros", fan_in, fan_out))
        return specs

    def _bias(self):
        return self.bias if self.use_bias else None


@register
class Conv2D(_Conv):
    """2-D convolution layer: ``filters`` kernels of ``kernel_size`` slide over (N, C_in, H, W) images.

    y = activation(conv2d(x, W, b)),  W of shape (filters, C_in/groups, K_h, K_w), b of shape (filters,).

    Args:
        filters: number of output channels C_out.
        kernel_size, stride, dilation: int or (h, w) pair.
        padding: int, (h, w), 'valid' (no padding) or 'same' (output size ceil(H / stride)).
        groups: split channels into independent groups (AlexNet's two GPUs: groups=2).
        use_bias: add a per-filter bias.
        in_channels: create the weights now instead of at the first input.
        kernel_initializer: name from ``cnnlab.nn.init`` (default he_normal, for ReLU nets).
        activation: None or 'relu', 'leaky_relu', 'sigmoid', 'tanh', 'softmax' (Keras style).
        seed: seed of the initialiser; None derives one from the model's seed.

    Shape:
        (N, C_in, H, W) → (N, filters, OH, OW), OH = floor((H + 2p − d(K − 1) − 1) / s) + 1.

    Example:
        >>> layer = Conv2D(25, 3, activation="relu")
        >>> layer.compute_output_shape((1, 28, 28))
        (25, 26, 26)
    """

    rank = 2

    def __init__(self, filters, kernel_size, stride=1, padding=0, dilation=1, groups=1, use_bias=True,
                 in_channels=None, kernel_initializer="he_normal", activation=None, seed=None):
        super().__init__(filters, kernel_size, stride, padding, dilation, groups, use_bias,
                         in_channels, kernel_initializer, activation, seed)

    def relu_fusable(self):
        return self.activation is None and type(self).forward is Conv2D.forward

    def forward(self, x, fused_relu=False):
        options = self.stride, self._padding, self.dilation, self.groups
        if self.activation == "relu" or fused_relu:  # in the op: one array, one node less
            return F.conv2d(x, self.weight, self._bias(), *options, activation="relu")
        return activate(F.conv2d(x, self.weight, self._bias(), *options), self.activation)


@register
class Conv1D(_Conv):
    """1-D convolution layer over (N, C_in, L) sequences (a sentence: C_in = embedding size).

    y = activation(conv1d(x, W, b)),  W of shape (filters, C_in/groups, K).

    Args: as ``Conv2D`` with ints instead of pairs.

    Shape:
        (N, C_in, L) → (N, filters, OL), OL = floor((L + 2p − d(K − 1) − 1) / s) + 1.
    """

    rank = 1

    def __init__(self, filters, kernel_size, stride=1, padding=0, dilation=1, groups=1, use_bias=True,
                 in_channels=None, kernel_initializer="he_normal", activation=None, seed=None):
        super().__init__(filters, kernel_size, stride, padding, dilation, groups, use_bias,
                         in_channels, kernel_initializer, activation, seed)

    def forward(self, x):
        padding = self._padding if isinstance(self._padding, str) else self._padding[0]
        y = F.conv1d(x, self.weight, self._bias(), self.stride[0], padding, self.dilation[0], self.groups)
        return activate(y, self.activation)
