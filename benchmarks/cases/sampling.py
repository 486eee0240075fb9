"""grid_sample_fwdbwd: bilinear grid_sample (zeros padding, align_corners=False) of a batch of
64 1×42×42 images onto 28×28 grids from random small affine θ, forward + backward (∂x and
∂grid), the spatial transformer's sampler at the size of the RTS experiment (issue 15's
target). grid_sample_fwd: the forward alone, with no gradient wanted (inference), to show
where the time goes."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.harness import report, time_pair
from cnnlab import functional as F
from cnnlab.tensor import Tensor

TF = torch.nn.functional


def sampling_inputs(n=64, size=42, out=28, seed=0, dtype=np.float32):
    """(x (n, 1, size, size), grid (n, out, out, 2), upstream (n, 1, out, out))."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, size, size)).astype(dtype)
    theta = np.array([[1.0, 0, 0], [0, 1.0, 0]]) + rng.normal(scale=0.2, size=(n, 2, 3))
    grid = F.affine_grid(theta.astype(dtype), (n, 1, out, out)).data
    upstream = rng.standard_normal((n, 1, out, out)).astype(dtype)
    return x, grid, upstream


def grid_sample_cnnlab(x, grid, upstream):
    """(∂L/∂x, ∂L/∂grid) for L = Σ upstream · grid_sample(x, grid)."""
    tx, tgrid = Tensor(x, requires_grad=True), Tensor(grid, requires_grad=True)
    F.grid_sample(tx, tgrid).backward(upstream)
    return tx.grad, tgrid.grad


def grid_sample_torch(x, grid, upstream):
    tx, tgrid = x.detach().requires_grad_(), grid.detach().requires_grad_()
    TF.grid_sample(tx, tgrid, align_corners=False).backward(upstream)
    return tx.grad, tgrid.grad


def bench_sampling(settings):
    x, grid, upstream = sampling_inputs()
    tx, tgrid, tup = (torch.from_numpy(a) for a in (x, grid, upstream))
    report("grid_sample_fwdbwd", time_pair(lambda: grid_sample_cnnlab(x, grid, upstream),
                                           lambda: grid_sample_torch(tx, tgrid, tup), settings))

    def torch_forward():
        with torch.no_grad():
            return TF.grid_sample(tx, tgrid, align_corners=False)

    report("grid_sample_fwd", time_pair(lambda: F.grid_sample(x, grid), torch_forward, settings))
