"""Milliseconds per Adam training step of zoo models (batch 128, 1×28×28), cnnlab only.

Usage: python benchmarks/train_step.py [--threads 1] [--steps 10] [model ...]   (default: lecture fashion)

Prints the median and the fastest step: on a shared machine the fastest is the
least disturbed by other processes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from cnnlab import functional as F
from cnnlab import models, optim
from cnnlab.tensor import Tensor


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", default=["lecture", "fashion"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    with threadpool_limits(args.threads, user_api="blas"):
        for name in args.models:
            model = models.get(name, num_classes=10, input_shape=(1, 28, 28), seed=0)
            opt = optim.Adam(model.parameters(), lr=1e-3)
            x = rng.standard_normal((128, 1, 28, 28)).astype(np.float32)
            y = rng.integers(0, 10, 128)

            def step(model=model, opt=opt, x=x, y=y):
                loss = F.cross_entropy(model(Tensor(x)), y)
                opt.zero_grad()
                loss.backward()
                opt.step()

            for _ in range(3):
                step()
            times = []
            for _ in range(args.steps):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            print(f"train_step model={name} threads={args.threads} median_ms={1e3 * statistics.median(times):.1f} "
                  f"min_ms={1e3 * min(times):.1f}", flush=True)


if __name__ == "__main__":
    main()
