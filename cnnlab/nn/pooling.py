"""Pooling layers: ``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool2D``."""

from __future__ import annotations

import cnnlab.functional as F
from cnnlab.nn.arguments import as_input_shape, to_tuple
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer


class _Pool2D(Layer):
    def __init__(self, pool_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.pool_size = to_tuple(pool_size, 2, "pool_size", name, minimum=1)
        self.stride = self.pool_size if stride is None else to_tuple(stride, 2, "stride", name, minimum=1)
        self.padding = to_tuple(padding, 2, "padding", name, minimum=0)
        if any(p > k // 2 for p, k in zip(self.padding, self.pool_size)):
            raise ValueError(
                f"{name}: padding must be at most half the pool size, received padding={padding!r} "
                f"for pool_size={pool_size!r}"
            )

    def check_input_shape(self, input_shape):
        if len(input_shape) != 3:
            raise self._expect(input_shape, "(N, C, H, W)")

    def compute_output_shape(self, input_shape):
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        sizes = []
        for n, k, s, p in zip(input_shape[1:], self.pool_size, self.stride, self.padding):
            try:
                sizes.append(F.output_size(n, k, s, p))
            except ValueError as error:
                raise self._expect(input_shape, "spatially at least the pool size", str(error)) from None
        return (input_shape[0], *sizes)

    def _non_default_arguments(self):
        # stride defaults to the pool size: show it only when it differs.
        parts = super()._non_default_arguments()
        if self.stride == self.pool_size:
            parts = [p for p in parts if not p.startswith("stride=")]
        return parts


@register
class MaxPool2D(_Pool2D):
    """Max pooling over ``pool_size`` windows (padding with −∞).

    Args:
        pool_size: int or (h, w).
        stride: int or pair; None means pool_size (non-overlapping). AlexNet: 3 with stride 2.
        padding: int or pair, at most half the window.

    Shape:
        (N, C, H, W) → (N, C, OH, OW), OH = floor((H + 2p − K) / s) + 1.
    """

    def forward(self, x):
        return F.max_pool2d(x, self.pool_size, self.stride, self.padding)


@register
class AvgPool2D(_Pool2D):
    """Average pooling over ``pool_size`` windows (padded zeros count, like PyTorch's default).

    Args and shape as ``MaxPool2D``.
    """

    def forward(self, x):
        return F.avg_pool2d(x, self.pool_size, self.stride, self.padding)


@register
class GlobalAvgPool2D(Layer):
    """Mean over all spatial positions of each channel.

    Shape: (N, C, H, W) → (N, C).
    """

    def check_input_shape(self, input_shape):
        if len(input_shape) != 3:
            raise self._expect(input_shape, "(N, C, H, W)")

    def compute_output_shape(self, input_shape):
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        return (input_shape[0],)

    def forward(self, x):
        return F.global_avg_pool2d(x)
