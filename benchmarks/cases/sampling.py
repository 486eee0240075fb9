"""grid_sample_fwdbwd: bilinear grid_sample (zeros padding, align_corners=False) of a batch of
64 1×42×42 images onto 28×28 grids from random small affine θ, forward + backward (∂x and
∂grid), the spatial transformer's sampler at the size of the RTS experiment (issue 15's
target). grid_sample_fwd: the forward alone, with no gradient wanted (inference), to show
where the time goes. grid_sample_fwdbwd_grid: forward + backward with ∂grid alone, a spatial
transformer's case (its input images need no gradient).

    python -m benchmarks.cases.sampling         # CPU time per pass, cnnlab and PyTorch
    python -m benchmarks.cases.sampling split   # each thread route, batch 16–256
"""

from __future__ import annotations

import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import cnnlab
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


def grid_sample_grid_cnnlab(x, grid, upstream):
    """∂L/∂grid alone: a spatial transformer's input images need no gradient."""
    tgrid = Tensor(grid, requires_grad=True)
    F.grid_sample(Tensor(x), tgrid).backward(upstream)
    return tgrid.grad


def grid_sample_grid_torch(x, grid, upstream):
    tgrid = grid.detach().requires_grad_()
    TF.grid_sample(x, tgrid, align_corners=False).backward(upstream)
    return tgrid.grad


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
    report("grid_sample_fwdbwd_grid", time_pair(
        lambda: grid_sample_grid_cnnlab(x, grid, upstream),
        lambda: grid_sample_grid_torch(tx, tgrid, tup), settings))


def pass_times(calls=300, rounds=9):
    """{name: (min, median) µs of CPU time of this thread per call} of each framework's
    forward (with and without gradients wanted) and forward + backward on the benchmark case,
    one thread, in this process: where the time goes, robust to other processes (CPU time,
    not wall time, though a core shared with another process still slows it). The backward
    is the difference (timed alone, after building its graphs, it would find cold caches).
    The cnnlab side keeps freed memory, as fit does."""
    cnnlab.keep_freed_memory(True)
    torch.set_num_threads(1)
    x, grid, upstream = sampling_inputs()
    tx, tgrid, tup = (torch.from_numpy(a) for a in (x, grid, upstream))

    def ours_forward():
        return F.grid_sample(Tensor(x, requires_grad=True), Tensor(grid, requires_grad=True))

    def theirs_forward():
        return TF.grid_sample(tx.detach().requires_grad_(), tgrid.detach().requires_grad_(),
                              align_corners=False)

    def timed(run):
        samples = []
        for _ in range(rounds):
            start = time.thread_time()
            for _ in range(calls):
                run()
            samples.append((time.thread_time() - start) / calls * 1e6)
        return min(samples), float(np.median(samples))

    passes = {
        "cnnlab forward, no gradient": lambda: F.grid_sample(x, grid),
        "cnnlab forward (∂x, ∂grid wanted)": ours_forward,
        "cnnlab forward + backward": lambda: grid_sample_cnnlab(x, grid, upstream),
        "cnnlab forward + backward, ∂grid only": lambda: grid_sample_grid_cnnlab(x, grid,
                                                                                upstream),
        "torch forward, no gradient": lambda: TF.grid_sample(tx, tgrid, align_corners=False),
        "torch forward (∂x, ∂grid wanted)": theirs_forward,
        "torch forward + backward": lambda: grid_sample_torch(tx, tgrid, tup),
        "torch forward + backward, ∂grid only": lambda: grid_sample_grid_torch(tx, tgrid, tup),
    }
    with threadpool_limits(1, user_api="blas"):
        for run in passes.values():  # warm-up: compile, fill the caches
            for _ in range(20):
                run()
        return {name: timed(run) for name, run in passes.items()}


def split_times(batches=(16, 64, 256), rounds=11):
    """{batch: {route: µs}}: median wall time of a cnnlab forward + backward on each of
    ``sampling_split``'s routes (two threads for the split ones), interleaved; what the
    automatic choice is set from."""
    from cnnlab.ops.sampling_split import SPLITS, openmp_available, sampling_split

    cnnlab.keep_freed_memory(True)
    routes = [r for r in SPLITS if r != "openmp" or openmp_available()[0]]
    times = {}
    with threadpool_limits(2, user_api="blas"):
        for batch in batches:
            x, grid, upstream = sampling_inputs(n=batch)
            calls = max(5, 2560 // batch)
            samples = {route: [] for route in routes}
            for i in range(rounds):
                for route in routes[i % len(routes):] + routes[:i % len(routes)]:
                    with sampling_split(route):
                        grid_sample_cnnlab(x, grid, upstream)
                        start = time.perf_counter()
                        for _ in range(calls):
                            grid_sample_cnnlab(x, grid, upstream)
                        samples[route].append((time.perf_counter() - start) / calls * 1e6)
            times[batch] = {route: float(np.median(v)) for route, v in samples.items()}
    return times


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["split"]:
        for batch, routes in split_times().items():
            caller = routes["caller"]
            print(f"batch {batch} ({batch * 784} outputs), wall µs (median): " + ", ".join(
                f"{route} {t:.0f} ({t / caller:.2f}×)" for route, t in routes.items()))
    else:
        for name, (best, median) in pass_times().items():
            print(f"{name:36s} min {best:7.1f} µs  median {median:7.1f} µs (CPU time, "
                  "one thread)")
