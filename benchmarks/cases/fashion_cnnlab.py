"""cnnlab's side of fashion_epoch; imports no PyTorch, so a memory child measures cnnlab alone."""

from __future__ import annotations

import numpy as np

import cnnlab.functional as F
from benchmarks.cases.data import (
    FASHION_BATCH_SIZE as BATCH_SIZE,
)
from benchmarks.cases.data import (
    FASHION_LEARNING_RATE as LEARNING_RATE,
)
from benchmarks.cases.data import (
    FASHION_MOMENTUM as MOMENTUM,
)
from cnnlab import models, optim
from cnnlab.tensor import Tensor


def build(seed: int = 0, dtype=np.float32):
    """The zoo's ``fashion`` net for 1×28×28, 10 classes, weights from ``seed``, in train mode."""
    model = models.get("fashion", num_classes=10, input_shape=(1, 28, 28), seed=seed)
    if dtype != np.float32:
        model.astype(dtype)
    return model.train()


def ordered_state(model) -> list[np.ndarray]:
    """Per layer in order: its parameters, then its buffers (batch norm's running statistics).

    The order fashion_torch.ordered_state lists PyTorch's tensors in, so weights copy over.
    """
    out = []
    for layer in model.children():
        out += [p.data for p in layer.parameters()] + [b for _, b in layer.named_buffers()]
    return out


def epoch(model, x, y, batch_size=BATCH_SIZE, lr=LEARNING_RATE, momentum=MOMENTUM):
    """One epoch of SGD with momentum over (x, y) in order; the last batch's loss."""
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for start in range(0, len(x), batch_size):
        batch = slice(start, start + batch_size)
        loss = F.cross_entropy(model(Tensor(x[batch])), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.data)
