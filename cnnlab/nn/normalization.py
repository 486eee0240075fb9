"""``BatchNorm`` and ``LocalResponseNorm``."""

from __future__ import annotations

import cnnlab.functional as F
from cnnlab._checks import check_int, check_number
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer, WeightSpec


@register
class BatchNorm(Layer):
    """Batch normalisation over the channel axis: y = γ (x − μ) / √(σ² + ε) + β.

    1-d or 2-d by input rank: (N, C) after a Dense layer, (N, C, H, W) after a
    convolution. Training uses batch statistics and updates the running mean and
    variance buffers (PyTorch's convention: running ← (1 − momentum) running +
    momentum · batch, unbiased variance); evaluation uses the running estimates.

    Args:
        momentum: weight of each new batch in the running estimates.
        eps: added to the variance.
        num_features: C, to create the weights now instead of at the first input.

    Weights: gamma (C,) ones and beta (C,) zeros (trainable); buffers running_mean
    (C,) zeros and running_var (C,) ones (non-trainable).

    In data-parallel training each process normalises its own rows of the batch, unless
    ``statistics_sum`` is set (``cnnlab.distributed.synchronize_batch_norm``): then training uses
    the whole batch's statistics, summed across the processes (``F.sync_batch_norm``).

    Shape: (N, C) → (N, C);  (N, C, H, W) → (N, C, H, W).
    """

    def __init__(self, momentum=0.1, eps=1e-5, num_features=None):
        super().__init__()
        self.momentum = check_number(momentum, "BatchNorm", "momentum", 0, 1)
        # eps > 0 keeps 1/sqrt(var + eps) finite for a constant channel.
        self.eps = check_number(eps, "BatchNorm", "eps", low=0, low_open=True)
        self.num_features = num_features
        if num_features is not None:
            self.num_features = check_int(num_features, "BatchNorm", "num_features", minimum=1)
            self._create_weights((self.num_features,))

    def _channels(self):
        return self.gamma.shape[0] if self.built else self.num_features

    def check_input_shape(self, input_shape):
        channels = self._channels()
        c = f"C={channels}" if channels else "C"
        expected = f"(N, {c}) or (N, {c}, H, W)"
        if len(input_shape) not in (1, 3):
            raise self._expect(input_shape, expected)
        if channels is not None and input_shape[0] != channels:
            raise self._expect(input_shape, expected, "channel count differs")

    def weight_specs(self, input_shape):
        c = (int(input_shape[0]),)
        return [
            WeightSpec("gamma", c, "ones"),
            WeightSpec("beta", c, "zeros"),
            WeightSpec("running_mean", c, "zeros", trainable=False),
            WeightSpec("running_var", c, "ones", trainable=False),
        ]

    def relu_fusable(self):
        return type(self).forward is BatchNorm.forward

    def forward(self, x, fused_relu=False):
        total = getattr(self, "statistics_sum", None)
        if total is not None and self.training:  # data-parallel: the whole batch's statistics
            y = F.sync_batch_norm(x, self.gamma, self.beta, self.running_mean, self.running_var,
                                  total, self.momentum, self.eps)
            return F.relu(y) if fused_relu else y
        return F.batch_norm(x, self.gamma, self.beta, self.running_mean, self.running_var,
                            self.training, self.momentum, self.eps,
                            activation="relu" if fused_relu else None)


@register
class LocalResponseNorm(Layer):
    """AlexNet's local response normalisation across channels (paper formula, α not divided by size):

    b_i = a_i / (k + α Σ_{j=max(0, i−n/2)}^{min(C−1, i+n/2)} a_j²)^β,  n = size.

    Defaults are the paper's: n = 5, α = 1e-4, β = 0.75, k = 2.

    Shape: (N, C, H, W) → same.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__()
        self.size = check_int(size, "LocalResponseNorm", "size", minimum=1)
        self.alpha = check_number(alpha, "LocalResponseNorm", "alpha")
        self.beta = check_number(beta, "LocalResponseNorm", "beta")
        # k > 0 keeps the denominator away from 0 (and its power finite) for all-zero inputs.
        self.k = check_number(k, "LocalResponseNorm", "k", low=0, low_open=True)

    def check_input_shape(self, input_shape):
        if len(input_shape) < 2:
            raise self._expect(input_shape, "(N, C, H, W)")

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
