"""cnnlab against PyTorch (CPU) on the same inputs, in the same process.

Usage:
    python benchmarks/run.py                 # every part
    python benchmarks/run.py conv pool       # some parts: conv, pool, dense, lenet
    python benchmarks/run.py --threads 2 --repeat 7

Each case runs cnnlab and PyTorch alternately after a warm-up and prints one line:
    bench case=<name> cnnlab_ms=<median> torch_ms=<median> ratio=<cnnlab/torch>
In fwd+bwd cases both frameworks compute the gradients of the input, the weight and
the bias. Forward-only cases run without graph recording in both.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import cnnlab
import cnnlab.functional as F
from cnnlab.tensor import Tensor, no_grad

TF = torch.nn.functional
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
FASHION_MNIST_LABELS = Path("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz")

# name: (N, C_in, H, W, C_out, K, padding)
CONV_CASES = {
    "conv_a": (64, 1, 28, 28, 32, 3, 0),
    "conv_b": (64, 32, 14, 14, 64, 3, 1),
    "conv_c": (128, 3, 32, 32, 64, 5, 2),
}


def time_pair(run_ours, run_torch, repeat, warmup=2):
    """Median milliseconds of each callable, run alternately after a warm-up."""
    for _ in range(warmup):
        run_ours()
        run_torch()
    ours, theirs = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        run_ours()
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        run_torch()
        theirs.append(time.perf_counter() - start)
    return 1e3 * statistics.median(ours), 1e3 * statistics.median(theirs)


def report(name, ours_ms, torch_ms, **extra):
    fields = "".join(f" {key}={value}" for key, value in extra.items())
    print(
        f"bench case={name} cnnlab_ms={ours_ms:.2f} torch_ms={torch_ms:.2f} ratio={ours_ms / torch_ms:.2f}{fields}",
        flush=True,
    )


def sgemm_gflops(size=1024, repeat=10):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def bench_conv(repeat):
    rng = np.random.default_rng(0)
    for name, (n, c_in, h, w, c_out, k, padding) in CONV_CASES.items():
        x = rng.standard_normal((n, c_in, h, w), dtype=np.float32)
        weight = rng.standard_normal((c_out, c_in, k, k), dtype=np.float32) * np.float32(np.sqrt(2 / (c_in * k * k)))
        bias = rng.standard_normal(c_out, dtype=np.float32) * np.float32(0.1)
        out = (h + 2 * padding - k) + 1
        upstream = rng.standard_normal((n, c_out, out, out), dtype=np.float32)
        _bench_conv_case(name, x, weight, bias, padding, upstream, repeat)


def _bench_conv_case(name, x, weight, bias, padding, upstream, repeat):
    n, c_in = x.shape[:2]
    c_out, _, k, _ = weight.shape
    forward_flops = 2 * n * c_out * upstream.shape[2] * upstream.shape[3] * c_in * k * k
    tx, tw, tb, tup = (torch.from_numpy(a) for a in (x, weight, bias, upstream))

    def ours_fwd():
        with no_grad():
            F.conv2d(Tensor(x), Tensor(weight), Tensor(bias), padding=padding)

    def torch_fwd():
        with torch.no_grad():
            TF.conv2d(tx, tw, tb, padding=padding)

    ours_ms, torch_ms = time_pair(ours_fwd, torch_fwd, repeat)
    report(f"{name}_fwd", ours_ms, torch_ms, cnnlab_gflops=f"{forward_flops / ours_ms / 1e6:.1f}")

    def ours_fwdbwd():
        inputs = [Tensor(a, requires_grad=True) for a in (x, weight, bias)]
        F.conv2d(*inputs, padding=padding).backward(upstream)

    def torch_fwdbwd():
        inputs = [t.detach().requires_grad_() for t in (tx, tw, tb)]
        TF.conv2d(*inputs, padding=padding).backward(tup)

    ours_ms, torch_ms = time_pair(ours_fwdbwd, torch_fwdbwd, repeat)
    # the backward pass computes dX and dW, each as many multiply-adds as the forward
    report(f"{name}_fwdbwd", ours_ms, torch_ms, cnnlab_gflops=f"{3 * forward_flops / ours_ms / 1e6:.1f}")


def bench_pool(repeat):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 32, 28, 28), dtype=np.float32)
    for name, kernel, stride in (("maxpool2_fwdbwd", 2, 2), ("maxpool3s2_fwdbwd", 3, 2)):
        out = (28 - kernel) // stride + 1
        upstream = rng.standard_normal((64, 32, out, out), dtype=np.float32)
        _bench_pool_case(name, x, kernel, stride, upstream, repeat)


def _bench_pool_case(name, x, kernel, stride, upstream, repeat):
    tx, tup = torch.from_numpy(x), torch.from_numpy(upstream)

    def ours():
        t = Tensor(x, requires_grad=True)
        F.max_pool2d(t, kernel, stride).backward(upstream)

    def theirs():
        t = tx.detach().requires_grad_()
        TF.max_pool2d(t, kernel, stride).backward(tup)

    report(name, *time_pair(ours, theirs, repeat))


def bench_dense(repeat):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((128, 1250), dtype=np.float32)
    weight = rng.standard_normal((100, 1250), dtype=np.float32) * np.float32(0.03)
    bias = np.zeros(100, dtype=np.float32)
    upstream = rng.standard_normal((128, 100), dtype=np.float32)
    tensors = [torch.from_numpy(a) for a in (x, weight, bias, upstream)]

    def ours():
        inputs = [Tensor(a, requires_grad=True) for a in (x, weight, bias)]
        F.linear(*inputs).backward(upstream)

    def theirs():
        inputs = [t.detach().requires_grad_() for t in tensors[:3]]
        TF.linear(*inputs).backward(tensors[3])

    report("dense_fwdbwd", *time_pair(ours, theirs, repeat * 5))


def lenet_data(count=10_000):
    """The first ``count`` Fashion-MNIST training images (random ones if it is not installed)."""
    if FASHION_MNIST.exists() and FASHION_MNIST_LABELS.exists():
        with gzip.open(FASHION_MNIST) as f:
            images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)[:count]
        with gzip.open(FASHION_MNIST_LABELS) as f:
            labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:count].astype(np.int64)
        source = "fashion-mnist"
    else:
        rng = np.random.default_rng(3)
        images = rng.integers(0, 256, size=(count, 1, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count).astype(np.int64)
        source = "random"
    x = images.astype(np.float32) / np.float32(255)
    x = (x - x.mean()) / x.std()
    return x.astype(np.float32), labels, source


def lenet_weights(seed=0):
    """He-normal LeNet-5 weights: 6@5×5 pad 2, pool, 16@5×5, pool, 120, 84, 10."""
    rng = np.random.default_rng(seed)
    shapes = [(6, 1, 5, 5), (16, 6, 5, 5), (120, 400), (84, 120), (10, 84)]
    weights = []
    for shape in shapes:
        fan_in = int(np.prod(shape[1:]))
        weights.append((rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32))
        weights.append(np.zeros(shape[0], dtype=np.float32))
    return weights


def lenet_forward(ops, params, x, pad2d):
    c1, b1, c2, b2, w3, b3, w4, b4, w5, b5 = params
    h = ops.max_pool2d(ops.relu(ops.conv2d(x, c1, b1, padding=2)), 2)
    h = ops.max_pool2d(ops.relu(ops.conv2d(h, c2, b2)), 2)
    h = h.reshape(h.shape[0], -1)
    h = ops.relu(ops.linear(h, w3, b3))
    h = ops.relu(ops.linear(h, w4, b4))
    return ops.linear(h, w5, b5)


class _TorchOps:
    conv2d = staticmethod(TF.conv2d)
    max_pool2d = staticmethod(TF.max_pool2d)
    relu = staticmethod(TF.relu)
    linear = staticmethod(TF.linear)


def cnnlab_lenet(weights):
    """LeNet-5 with cnnlab.nn layers when that package is there, else with cnnlab.functional ops.

    Returns (forward(x) -> logits, parameters, implementation name).
    """
    try:
        from cnnlab import nn
    except ImportError:
        params = [Tensor(w.copy(), requires_grad=True) for w in weights]
        return (lambda x: lenet_forward(F, params, x, None)), params, "functional"
    model = nn.Sequential(
        nn.Conv2D(6, 5, padding=2, in_channels=1), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(16, 5, in_channels=6), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(120, in_features=400), nn.ReLU(),
        nn.Dense(84, in_features=120), nn.ReLU(), nn.Dense(10, in_features=84),
    )
    names = [name for name, _ in model.named_parameters()]
    model.load_state_dict({name: w.copy() for name, w in zip(names, weights)})
    return model, model.parameters(), "nn"


def lenet_epoch_cnnlab(x, y, weights, batch_size=64, lr=0.01):
    forward, params, _ = cnnlab_lenet(weights)
    try:
        from cnnlab.optim import SGD
    except ImportError:
        SGD = None
    optimizer = SGD(params, lr=lr) if SGD is not None else None
    for start in range(0, len(x), batch_size):
        loss = F.cross_entropy(forward(Tensor(x[start : start + batch_size])), y[start : start + batch_size])
        for p in params:
            p.grad = None
        loss.backward()
        if optimizer is not None:
            optimizer.step()
        else:
            with no_grad():
                for p in params:
                    p.data -= np.float32(lr) * p.grad
    return float(loss.data)


def lenet_epoch_torch(x, y, weights, batch_size=64, lr=0.01):
    params = [torch.tensor(w, requires_grad=True) for w in weights]
    optimizer = torch.optim.SGD(params, lr=lr)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for start in range(0, len(x), batch_size):
        logits = lenet_forward(_TorchOps, params, tx[start : start + batch_size], None)
        loss = TF.cross_entropy(logits, ty[start : start + batch_size])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def bench_lenet(repeat):
    x, y, source = lenet_data()
    weights = lenet_weights()
    losses = {}

    def ours():
        losses["cnnlab"] = lenet_epoch_cnnlab(x, y, weights)

    def theirs():
        losses["torch"] = lenet_epoch_torch(x, y, weights)

    ours_ms, torch_ms = time_pair(ours, theirs, max(repeat // 2, 1), warmup=1)
    report(
        "lenet_epoch",
        ours_ms,
        torch_ms,
        cnnlab_img_s=f"{len(x) / ours_ms * 1e3:.0f}",
        torch_img_s=f"{len(x) / torch_ms * 1e3:.0f}",
        data=source,
        impl=cnnlab_lenet(weights)[2],
        final_loss_cnnlab=f"{losses['cnnlab']:.4f}",
        final_loss_torch=f"{losses['torch']:.4f}",
    )


PARTS = {"conv": bench_conv, "pool": bench_pool, "dense": bench_dense, "lenet": bench_lenet}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help="parts to run (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and NumPy's BLAS")
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions per case")
    args = parser.parse_args(argv)
    # What fit and `cnnlab train` switch on: freed buffers stay in the process between batches.
    cnnlab.keep_freed_memory(True)
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # NumPy's BLAS then keeps its own default
        threadpool_limits = None
    limits = threadpool_limits(args.threads, user_api="blas") if threadpool_limits else contextlib.nullcontext()
    with limits:
        print(
            f"# cnnlab vs torch {torch.__version__}, numpy {np.__version__}, threads {args.threads} "
            f"(torch and {'NumPy BLAS' if threadpool_limits else 'torch only'}), cpus {os.cpu_count()}, "
            f"load average {os.getloadavg()[0]:.2f}, sgemm_gflops={sgemm_gflops():.1f}",
            flush=True,
        )
        for part in args.parts or PARTS:
            PARTS[part](args.repeat)


if __name__ == "__main__":
    sys.exit(main())
