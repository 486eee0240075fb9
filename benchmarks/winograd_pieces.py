"""The Winograd route's batch cut into pieces on threads, against one piece (OpenBLAS's own
threads for the GEMMs) and smaller pieces: forward + backward of one 3×3 pad-1 layer,
interleaved in one process, median ms, next to PyTorch's time.

Usage: PYTHONPATH=$PWD python benchmarks/winograd_pieces.py [--threads 2] [--repeat 9]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import threadpoolctl
import torch

from cnnlab import functional as F
from cnnlab.ops.conv_routes import winograd
from cnnlab.tensor import Tensor

# name: (N, C_in, C_out, H = W)
CASES = {
    "fashion_32x28x28_b128": (128, 32, 32, 28),
    "vgg_128x28x28_b32": (32, 128, 128, 28),
    "go_64x19x19_b128": (128, 64, 64, 19),
    "go_128x19x19_b128": (128, 128, 128, 19),
}


def images_per_piece(size):
    """A ``winograd.pieces`` that cuts the batch into pieces of about ``size`` images."""
    def pieces(n):
        count = max(1, n // size)
        return [n * i // count for i in range(count + 1)]
    return pieces


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    threadpoolctl.threadpool_limits(args.threads, user_api="blas")
    torch.set_num_threads(args.threads)
    variants = {"per_core": winograd.pieces, "one": images_per_piece(1 << 30),
                "of_32": images_per_piece(32), "of_16": images_per_piece(16)}
    rng = np.random.default_rng(0)
    for name, shape in CASES.items():
        times = bench_case(shape, variants, args.repeat, rng)
        print(f"pieces case={name} " + " ".join(
            f"{key}_ms={statistics.median(v):.1f}" for key, v in times.items()), flush=True)


def bench_case(shape, variants, repeat_count, rng):
    """{variant or "torch": [ms of each timed round]} for one layer's forward + backward."""
    n, c_in, c_out, size = shape
    x = rng.standard_normal((n, c_in, size, size)).astype(np.float32)
    w = (rng.standard_normal((c_out, c_in, 3, 3)) * 0.1).astype(np.float32)
    g = rng.standard_normal((n, c_out, size, size)).astype(np.float32)
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()

    def ours():
        y = F.conv2d(Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), padding=1)
        y.backward(g)

    def theirs():
        xt.grad = wt.grad = None
        torch.nn.functional.conv2d(xt, wt, padding=1).backward(torch.from_numpy(g))

    times = {key: [] for key in [*variants, "torch"]}
    try:
        for repeat in range(repeat_count + 1):  # the first round warms up
            for key, samples in times.items():
                if key in variants:
                    winograd.pieces = variants[key]
                start = time.perf_counter()
                (theirs if key == "torch" else ours)()
                if repeat:
                    samples.append((time.perf_counter() - start) * 1e3)
    finally:
        winograd.pieces = variants["per_core"]
    return times

if __name__ == "__main__":
    main()
