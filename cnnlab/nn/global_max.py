"""``GlobalMaxPool1D``: max over time, one value per feature map of a sequence."""

from __future__ import annotations

import cnnlab.functional as F
from cnnlab.nn.arguments import as_input_shape
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer


@register
class GlobalMaxPool1D(Layer):
    """The maximum over the last axis of each channel (Kim 2014's max-over-time pooling).

    The gradient goes to the first maximum only, as in PyTorch.

    Shape: (N, C, L) → (N, C).
    """

    def check_input_shape(self, input_shape):
        if len(input_shape) != 2:
            raise self._expect(input_shape, "(N, C, L)")

    def compute_output_shape(self, input_shape):
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        return (input_shape[0],)

    def forward(self, x):
        return F.global_max_pool1d(x)
