"""``Upsample2D``: nearest-neighbour upsampling to a fixed size (``F.upsample_nearest``)."""

from __future__ import annotations

import cnnlab.functional as F
from cnnlab.nn.arguments import as_input_shape, to_tuple
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer


@register
class Upsample2D(Layer):
    """Repeat each pixel ``scale`` times along each axis, then crop or pad to ``size``.

    y[n, c, i, j] = x[n, c, clip(⌊(i + o_h) / S_h⌋, 0, H − 1), clip(⌊(j + o_w) / S_w⌋, 0, W − 1)].

    Args:
        scale: int or (S_h, S_w) ≥ 1 (default 2).
        size: output (OH, OW); None: (S_h·H, S_w·W). Smaller crops, larger repeats the edge.
        offset: int or pair ≥ 0; after ``MaxPool2D(S, padding=p)`` use offset p so each
            output point lies over the window it came from.

    Shape:
        (N, C, H, W) → (N, C, OH, OW). No parameters.

    Example: ``MaxPool2D(2, padding=1)`` takes 19×19 to 10×10, ``Upsample2D(2, 19, 1)``
    back to 19×19 (AlphaGo's pooling variant, ``cnnlab.models.go``).
    """

    def __init__(self, scale=2, size=None, offset=0):
        super().__init__()
        self.scale = to_tuple(scale, 2, "scale", "Upsample2D", minimum=1)
        self.size = None if size is None else to_tuple(size, 2, "size", "Upsample2D", minimum=1)
        self.offset = to_tuple(offset, 2, "offset", "Upsample2D", minimum=0)

    def check_input_shape(self, input_shape):
        if len(input_shape) != 3:
            raise self._expect(input_shape, "(N, C, H, W)")

    def compute_output_shape(self, input_shape):
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        if self.size is not None:
            return (input_shape[0], *self.size)
        return (input_shape[0], input_shape[1] * self.scale[0], input_shape[2] * self.scale[1])

    def forward(self, x):
        return F.upsample_nearest(x, self.scale, self.size, self.offset)
