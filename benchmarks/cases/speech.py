"""fsdd_2d_epoch: one training epoch of the speech app's ``2d`` model on the FSDD standard split.

2,700 log-mel spectrograms (1, 40, 64) (the recordings of ../shared/datasets/fsdd; random
spectrograms of the same shape when it is missing, said in the report), batch 32, SGD
momentum 0.9 (lr 0.01), train mode (batch norm, dropout 0.3), the same initial weights in
both frameworks. Three stages of Conv 3×3 (16, 32, 64) → BN → ReLU → MaxPool 2, then
Flatten 2,560 → Dropout → Dense 64 ReLU → Dropout → Dense 10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmarks.cases import fashion_cnnlab, fashion_torch
from benchmarks.harness import conv_flops, gflops, report, time_pair

nn = torch.nn
BATCH_SIZE = 32
LEARNING_RATE = 0.01
DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def spectrograms(limit: int | None = None):
    """(x (N, 1, 40, 64) float32, y (N,) int64, source): the standard split's training half."""
    if (DATASETS / "fsdd" / "recordings").is_dir():
        from cnnlab.apps.speech.fsdd import load_fsdd

        data = load_fsdd(DATASETS, takes=range(5, 50))
        x, y, source = data.x, data.digits, "fsdd"
    else:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2700, 1, 40, 64), dtype=np.float32)
        y = rng.integers(0, 10, 2700)
        source = "random (FSDD missing)"
    return x[:limit], y[:limit], source


def build_cnnlab(seed: int = 0, dropout: float = 0.3, dtype=np.float32):
    from cnnlab.apps.speech.models import two_d_model

    model = two_d_model((1, 40, 64), seed=seed, dropout=dropout)
    if dtype != np.float32:
        model.astype(dtype)
    return model.train()


def build_torch(state, dropout: float = 0.3):
    """The ``2d`` model layer for layer in PyTorch, with ``state`` (fashion_cnnlab.ordered_state)."""
    layers = []
    for c_in, c_out in ((1, 16), (16, 32), (32, 64)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                   nn.MaxPool2d(2)]
    model = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(dropout), nn.Linear(2560, 64),
                          nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, 10))
    targets = fashion_torch.ordered_state(model)
    assert [tuple(t.shape) for t in targets] == [a.shape for a in state], "layer order changed"
    model = model.to(torch.from_numpy(state[0]).dtype)
    with torch.no_grad():
        for target, array in zip(fashion_torch.ordered_state(model), state):
            target.copy_(torch.from_numpy(np.ascontiguousarray(array)))
    return model.train()


def epoch_cnnlab(model, x, y, batch_size=BATCH_SIZE):
    return fashion_cnnlab.epoch(model, x, y, batch_size=batch_size, lr=LEARNING_RATE, momentum=0.9)


def epoch_torch(model, x, y, batch_size=BATCH_SIZE):
    return fashion_torch.epoch(model, x, y, batch_size=batch_size, lr=LEARNING_RATE, momentum=0.9)


def epoch_conv_flops(images):
    """Conv FLOPs of an epoch: forward, ∂L/∂w, and ∂L/∂x for all but the first layer."""
    layers = [(1, 16, 40, 64), (16, 32, 20, 32), (32, 64, 10, 16)]
    per_image = [conv_flops(1, c_in, c_out, h, w, 3, 3) for c_in, c_out, h, w in layers]
    return images * (2 * per_image[0] + 3 * sum(per_image[1:]))


def bench_speech(settings):
    x, y, source = spectrograms()
    state = fashion_cnnlab.ordered_state(build_cnnlab())
    losses = {}

    def ours():
        losses["cnnlab"] = epoch_cnnlab(build_cnnlab(), x, y)

    def theirs():
        losses["torch"] = epoch_torch(build_torch(state), x, y)

    few = slice(0, 3 * BATCH_SIZE)
    result = time_pair(ours, theirs, settings, warmup=1, repeat=settings.long_repeat,
                       warmup_ours=lambda: epoch_cnnlab(build_cnnlab(), x[few], y[few]),
                       warmup_theirs=lambda: epoch_torch(build_torch(state), x[few], y[few]))
    flops = epoch_conv_flops(len(x))
    report("fsdd_2d_epoch", result, cnnlab_img_s=f"{len(x) / result.ours_ms * 1e3:.0f}",
           torch_img_s=f"{len(x) / result.theirs_ms * 1e3:.0f}",
           cnnlab_conv_gflops=gflops(flops, result.ours_ms),
           torch_conv_gflops=gflops(flops, result.theirs_ms), data=source,
           final_loss_cnnlab=f"{losses['cnnlab']:.4f}", final_loss_torch=f"{losses['torch']:.4f}")
