"""PyTorch's side of fashion_epoch: the zoo's ``fashion`` net rebuilt layer for layer.

Imports no cnnlab, so that a memory child measures PyTorch alone.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.cases.data import (
    FASHION_BATCH_SIZE as BATCH_SIZE,
)
from benchmarks.cases.data import (
    FASHION_LEARNING_RATE as LEARNING_RATE,
)
from benchmarks.cases.data import (
    FASHION_MOMENTUM as MOMENTUM,
)

nn = torch.nn


def build(state: list[np.ndarray] | None = None):
    """[Conv 32 → BN → ReLU] ×2 → pool → dropout .25 → [Conv 64 → BN → ReLU] ×2 → pool →
    dropout .25 → Dense 256 (no bias) → BN → ReLU → dropout .5 → Dense 10, in train mode.

    ``state``: the tensors of ``ordered_state`` in order (weights, then BN statistics per
    layer); None keeps PyTorch's own initialisation (enough for measuring memory).
    """
    def conv_block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    model = nn.Sequential(
        *conv_block(1, 32), *conv_block(32, 32), nn.MaxPool2d(2), nn.Dropout(0.25),
        *conv_block(32, 64), *conv_block(64, 64), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(3136, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(256, 10),
    )
    if state is not None:
        targets = ordered_state(model)
        assert [t.shape for t in targets] == [a.shape for a in state], "layer order changed"
        model = model.to(torch.from_numpy(state[0]).dtype)
        with torch.no_grad():
            for target, array in zip(ordered_state(model), state):
                target.copy_(torch.from_numpy(array))
    return model.train()


def ordered_state(model) -> list[torch.Tensor]:
    """Per layer in order: weight, bias, and for batch norm running_mean, running_var."""
    out = []
    for layer in model:
        out += [getattr(layer, name) for name in ("weight", "bias")
                if getattr(layer, name, None) is not None]
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            out += [layer.running_mean, layer.running_var]
    return out


def epoch(model, x, y, batch_size=BATCH_SIZE, lr=LEARNING_RATE, momentum=MOMENTUM):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for start in range(0, len(x), batch_size):
        batch = slice(start, start + batch_size)
        loss = nn.functional.cross_entropy(model(tx[batch]), ty[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())
