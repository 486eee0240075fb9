"""lenet_epoch: LeNet-5 (6@5×5 pad 2, pool, 16@5×5, pool, 120, 84, 10), SGD lr 0.01, batch 64,
one epoch over the first 10,000 Fashion-MNIST images, from the same initial weights in both."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.cases import fashion_cnnlab
from benchmarks.cases.data import fashion_mnist, he_normal
from benchmarks.harness import report, time_pair
from cnnlab import nn

TF = torch.nn.functional


def lenet_weights(seed=0):
    """He-normal weights and zero biases, in the layers' order."""
    rng = np.random.default_rng(seed)
    weights = []
    for shape in [(6, 1, 5, 5), (16, 6, 5, 5), (120, 400), (84, 120), (10, 84)]:
        weights += [he_normal(rng, shape), np.zeros(shape[0], dtype=np.float32)]
    return weights


def cnnlab_lenet(weights):
    model = nn.Sequential(
        nn.Conv2D(6, 5, padding=2, in_channels=1), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(16, 5, in_channels=6), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(120, in_features=400), nn.ReLU(),
        nn.Dense(84, in_features=120), nn.ReLU(), nn.Dense(10, in_features=84),
    )
    model.astype(weights[0].dtype)
    names = [name for name, _ in model.named_parameters()]
    model.load_state_dict({name: w.copy() for name, w in zip(names, weights)})
    return model


def torch_lenet(weights):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
        torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10),
    ).to(torch.from_numpy(weights[0]).dtype)
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(w))
    return model


def lenet_epoch_cnnlab(x, y, weights, batch_size=64, lr=0.01):
    """One epoch of plain SGD; the last batch's loss."""
    return fashion_cnnlab.epoch(cnnlab_lenet(weights), x, y, batch_size, lr, momentum=0.0)


def lenet_epoch_torch(x, y, weights, batch_size=64, lr=0.01):
    model = torch_lenet(weights)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for start in range(0, len(x), batch_size):
        batch = slice(start, start + batch_size)
        loss = TF.cross_entropy(model(tx[batch]), ty[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def bench_lenet(settings):
    x, y, source = fashion_mnist()
    weights = lenet_weights()
    losses = {}

    def ours():
        losses["cnnlab"] = lenet_epoch_cnnlab(x, y, weights)

    def theirs():
        losses["torch"] = lenet_epoch_torch(x, y, weights)

    # an epoch lasts about a second: the block-sizing epoch is the warm-up
    result = time_pair(ours, theirs, settings, warmup=0, repeat=settings.long_repeat)
    report("lenet_epoch", result,
           cnnlab_img_s=f"{len(x) / result.ours_ms * 1e3:.0f}",
           torch_img_s=f"{len(x) / result.theirs_ms * 1e3:.0f}",
           data=source, final_loss_cnnlab=f"{losses['cnnlab']:.4f}",
           final_loss_torch=f"{losses['torch']:.4f}")
