"""``Dropout``."""

from __future__ import annotations

import cnnlab.functional as F
from cnnlab._checks import check_number
from cnnlab.nn.arguments import check_seed
from cnnlab.nn.batch_part import current_batch_part
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer


@register
class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability ``rate`` and scale the
    rest by 1/(1 − rate); in evaluation, the identity.

    Args:
        rate: drop probability in [0, 1).
        seed: seed of the mask stream; None derives one from the model's seed.

    Shape: any → same.
    """

    generator_attributes = ("_generator",)

    def __init__(self, rate=0.5, seed=None):
        super().__init__()
        self.rate = check_number(rate, "Dropout", "rate", 0, 1, high_open=True)
        self.seed = check_seed(seed, "Dropout")
        self._generator = None

    def forward(self, x):
        if self._generator is None:
            self._generator = self._rng()
        return F.dropout(x, self.rate, self.training, self._generator, rows=current_batch_part())
