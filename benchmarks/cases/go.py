"""go_policy_step_k64 / _k128: one SGD step of AlphaGo's policy network (Silver et al. 2016).

The network is the zoo's builder (``cnnlab.models.go.alphago_policy``); torch's copy is
built here layer for layer. Batch 128 of 48×19×19 feature planes → Conv 5×5 pad 2, k filters + ReLU → 11 × (Conv 3×3
pad 1, k + ReLU) → Conv 1×1 → 1 filter, no bias → a bias per board point (361) → flatten →
softmax cross-entropy against the move played; SGD lr 0.003 (the paper's α).
"""

from __future__ import annotations

import numpy as np
import torch

import cnnlab.functional as F
from benchmarks.cases.data import he_normal
from benchmarks.harness import conv_flops, gflops, report, time_pair
from cnnlab import optim
from cnnlab.models.go import alphago_policy
from cnnlab.tensor import Tensor

LEARNING_RATE = 0.003


def policy_weights(k, planes=48, size=19, layers=13, seed=0, dtype=np.float32):
    """He-normal kernels, zero biases, zero position bias (1, size, size), in layer order."""
    rng = np.random.default_rng(seed)
    weights = [he_normal(rng, (k, planes, 5, 5), dtype), np.zeros(k, dtype)]
    for _ in range(layers - 2):
        weights += [he_normal(rng, (k, k, 3, 3), dtype), np.zeros(k, dtype)]
    weights += [he_normal(rng, (1, k, 1, 1), dtype), np.zeros((1, size, size), dtype)]
    return weights


def policy_inputs(batch=128, planes=48, size=19, seed=1, dtype=np.float32):
    """Binary feature planes (as the paper's are) and the indices of the moves played."""
    rng = np.random.default_rng(seed)
    x = (rng.random((batch, planes, size, size)) < 0.3).astype(dtype)
    return x, rng.integers(0, size * size, batch).astype(np.int64)


def step_conv_flops(batch, k, planes=48, size=19, layers=13):
    """Conv FLOPs of one step: forward, ∂L/∂w, and ∂L/∂x for all but the first layer."""
    first = conv_flops(batch, planes, k, size, size, 5, 5)
    middle = conv_flops(batch, k, k, size, size, 3, 3)
    last = conv_flops(batch, k, 1, size, size, 1, 1)
    return 2 * first + 3 * (layers - 2) * middle + 3 * last


def cnnlab_policy(weights, dtype=np.float32):
    k, planes = weights[0].shape[:2]
    model = alphago_policy(k, layers=(len(weights) - 4) // 2 + 2, planes=planes)
    if dtype != np.float32:
        model.astype(dtype)
    model.build((planes, *weights[-1].shape[1:]))
    params = model.parameters()
    shapes = [p.shape for p in params]
    assert shapes == [w.shape for w in weights], f"parameters {shapes} do not match the weights"
    for p, w in zip(params, weights):
        p.data[...] = w
    return model


class _TorchPositionalBias(torch.nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        return x + self.bias


def torch_policy(weights):
    k, planes = weights[0].shape[:2]
    layers = [torch.nn.Conv2d(planes, k, 5, padding=2), torch.nn.ReLU()]
    for _ in range((len(weights) - 4) // 2):
        layers += [torch.nn.Conv2d(k, k, 3, padding=1), torch.nn.ReLU()]
    layers += [torch.nn.Conv2d(k, 1, 1, bias=False), _TorchPositionalBias(weights[-1].shape),
               torch.nn.Flatten()]
    model = torch.nn.Sequential(*layers).to(torch.from_numpy(weights[0]).dtype)
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(w))
    return model


class CnnlabStep:
    """One SGD step of the policy net; ``model`` and ``optimizer`` persist across steps."""

    def __init__(self, weights, x, moves, lr=LEARNING_RATE):
        self.model = cnnlab_policy(weights, x.dtype)
        self.optimizer = optim.SGD(self.model.parameters(), lr=lr)
        self.x, self.moves = x, moves

    def __call__(self):
        loss = F.cross_entropy(self.model(Tensor(self.x)), self.moves)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.data)


class TorchStep:
    def __init__(self, weights, x, moves, lr=LEARNING_RATE):
        self.model = torch_policy(weights)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.x, self.moves = torch.from_numpy(x), torch.from_numpy(moves)

    def __call__(self):
        loss = torch.nn.functional.cross_entropy(self.model(self.x), self.moves)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def bench_go(settings):
    x, moves = policy_inputs()
    for k in (64, 128):
        weights = policy_weights(k)
        ours, theirs = CnnlabStep(weights, x, moves), TorchStep(weights, x, moves)
        flops = step_conv_flops(len(x), k)
        # a step takes 0.1–3 s: one warm-up step a side, long_repeat blocks a side
        result = time_pair(ours, theirs, settings, warmup=1, repeat=settings.long_repeat)
        report(f"go_policy_step_k{k}", result, cnnlab_conv_gflops=gflops(flops, result.ours_ms),
               torch_conv_gflops=gflops(flops, result.theirs_ms))
