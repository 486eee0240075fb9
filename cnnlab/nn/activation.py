"""Activation layers: each calls one function of ``cnnlab.functional``."""

from __future__ import annotations

import cnnlab.functional as F
from cnnlab._checks import check_int, check_number
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer


@register
class ReLU(Layer):
    """relu(x) = max(x, 0). Shape: any → same."""

    default_name = "relu"

    def forward(self, x):
        return F.relu(x)


@register
class LeakyReLU(Layer):
    """leaky_relu(x) = x for x > 0, negative_slope · x otherwise. Shape: any → same."""

    default_name = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = check_number(negative_slope, "LeakyReLU", "negative_slope")

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)


@register
class Sigmoid(Layer):
    """sigmoid(x) = 1 / (1 + e^(−x)). Shape: any → same."""

    def forward(self, x):
        return F.sigmoid(x)


@register
class Tanh(Layer):
    """tanh(x). Shape: any → same."""

    def forward(self, x):
        return F.tanh(x)


@register
class Softmax(Layer):
    """softmax(x)_i = e^(x_i) / Σ_j e^(x_j) along ``axis``. Shape: any → same.

    Train on logits with ``cross_entropy`` (fused and stable); use this layer for probabilities.
    """

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = check_int(axis, "Softmax", "axis")

    def forward(self, x):
        return F.softmax(x, self.axis)
