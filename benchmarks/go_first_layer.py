"""The Go policy net's 5×5 first layer (48 → k planes on 19×19, batch 128), forward and ∂L/∂w
(its input needs no gradient), on each applicable cnnlab route against PyTorch.

Usage: python benchmarks/go_first_layer.py [--repeat 5] [--threads 2]
Prints the automatic plan and the median ms of each route, interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import cnnlab
import cnnlab.functional as F
from cnnlab.tensor import Tensor

# every route that computes this layer's forward and ∂L/∂w (kn2row would write 25·k columns
# per input pixel: not a contender at 5×5)
ROUTES = ("im2col", "im2col_images", "shifted_gemm")


def _cnnlab_step(x, w, b, upstream, route):
    def step():
        weight, bias = Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        if route is None:
            y = F.conv2d(Tensor(x), weight, bias, padding=2)
        else:
            with F.conv_routes(forward=route):
                y = F.conv2d(Tensor(x), weight, bias, padding=2)
        y.backward(upstream)

    return step


def _torch_step(x, w, b, upstream):
    tx, tup = torch.from_numpy(x), torch.from_numpy(upstream)

    def step():
        weight = torch.from_numpy(w).requires_grad_()
        bias = torch.from_numpy(b).requires_grad_()
        torch.nn.functional.conv2d(tx, weight, bias, padding=2).backward(tup)

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    cnnlab.keep_freed_memory(True)  # as fit does
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = (rng.random((128, 48, 19, 19)) < 0.3).astype(np.float32)
    with threadpool_limits(args.threads, user_api="blas"):
        for k in (64, 128):
            w = (rng.standard_normal((k, 48, 5, 5)) * 0.03).astype(np.float32)
            b = np.zeros(k, np.float32)
            upstream = rng.standard_normal((128, k, 19, 19)).astype(np.float32)
            steps = {"auto": _cnnlab_step(x, w, b, upstream, None)}
            for route in ROUTES:
                steps[route] = _cnnlab_step(x, w, b, upstream, route)
            steps["torch"] = _torch_step(x, w, b, upstream)
            times = {name: [] for name in steps}
            for step in steps.values():
                step()
            for _ in range(args.repeat):
                for name, step in steps.items():
                    start = time.perf_counter()
                    step()
                    times[name].append(time.perf_counter() - start)
            plan = F.conv2d_plan(x.shape, w.shape, padding=2)
            medians = " ".join(f"{name}_ms={1e3 * statistics.median(t):.1f}"
                               for name, t in times.items())
            print(f"k={k} forward={plan.forward} {medians}", flush=True)


if __name__ == "__main__":
    main()
