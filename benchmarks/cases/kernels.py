"""Single operations: the three conv shapes, the two max pools, the dense layer, and vgg_block.

In fwd+bwd cases both frameworks compute the gradients of the input, the weights and the
biases; forward-only cases run without graph recording in both.
"""

from __future__ import annotations

import numpy as np
import torch

import cnnlab.functional as F
from benchmarks.cases.data import he_normal
from benchmarks.harness import conv_flops, gflops, report, time_pair
from cnnlab.tensor import Tensor, no_grad

TF = torch.nn.functional

# name: (N, C_in, H, W, C_out, K, padding)
CONV_CASES = {
    "conv_a": (64, 1, 28, 28, 32, 3, 0),
    "conv_b": (64, 32, 14, 14, 64, 3, 1),
    "conv_c": (128, 3, 32, 32, 64, 5, 2),
}


def conv_inputs(n, c_in, h, w, c_out, k, padding, seed=0, dtype=np.float32):
    """x, weight, bias and an upstream gradient for one convolution, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w)).astype(dtype)
    weight = he_normal(rng, (c_out, c_in, k, k), dtype)
    bias = (rng.standard_normal(c_out) * 0.1).astype(dtype)
    out_h, out_w = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    upstream = rng.standard_normal((n, c_out, out_h, out_w)).astype(dtype)
    return x, weight, bias, upstream


def bench_conv(settings):
    for name, shape in CONV_CASES.items():
        bench_conv_case(name, *conv_inputs(*shape), padding=shape[-1], settings=settings)


def bench_conv_case(name, x, weight, bias, upstream, padding, settings):
    flops = conv_flops(x.shape[0], x.shape[1], weight.shape[0], *upstream.shape[2:],
                       *weight.shape[2:])
    tx, tw, tb, tup = (torch.from_numpy(a) for a in (x, weight, bias, upstream))

    def ours_fwd():
        with no_grad():
            F.conv2d(Tensor(x), Tensor(weight), Tensor(bias), padding=padding)

    def torch_fwd():
        with torch.no_grad():
            TF.conv2d(tx, tw, tb, padding=padding)

    result = time_pair(ours_fwd, torch_fwd, settings)
    report(f"{name}_fwd", result, cnnlab_gflops=gflops(flops, result.ours_ms),
           torch_gflops=gflops(flops, result.theirs_ms))

    def ours_fwdbwd():
        inputs = [Tensor(a, requires_grad=True) for a in (x, weight, bias)]
        F.conv2d(*inputs, padding=padding).backward(upstream)

    def torch_fwdbwd():
        inputs = [t.detach().requires_grad_() for t in (tx, tw, tb)]
        TF.conv2d(*inputs, padding=padding).backward(tup)

    result = time_pair(ours_fwdbwd, torch_fwdbwd, settings)
    # the backward pass computes dX and dW, each as many multiply-adds as the forward
    report(f"{name}_fwdbwd", result, cnnlab_gflops=gflops(3 * flops, result.ours_ms),
           torch_gflops=gflops(3 * flops, result.theirs_ms))


def bench_pool(settings):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 32, 28, 28), dtype=np.float32)
    for name, kernel, stride in (("maxpool2_fwdbwd", 2, 2), ("maxpool3s2_fwdbwd", 3, 2)):
        out = (28 - kernel) // stride + 1
        upstream = rng.standard_normal((64, 32, out, out), dtype=np.float32)
        bench_pool_case(name, x, kernel, stride, upstream, settings)


def bench_pool_case(name, x, kernel, stride, upstream, settings):
    tx, tup = torch.from_numpy(x), torch.from_numpy(upstream)

    def ours():
        t = Tensor(x, requires_grad=True)
        F.max_pool2d(t, kernel, stride).backward(upstream)

    def theirs():
        t = tx.detach().requires_grad_()
        TF.max_pool2d(t, kernel, stride).backward(tup)

    report(name, time_pair(ours, theirs, settings))


def bench_dense(settings):
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

    report("dense_fwdbwd", time_pair(ours, theirs, settings))


def vgg_block_inputs(n=32, channels=128, size=28, seed=4, dtype=np.float32):
    """x, (w1, b1, w2, b2) and the upstream gradient of two 3×3 pad-1 convolutions."""
    x, w1, b1, upstream = conv_inputs(n, channels, size, size, channels, 3, 1, seed, dtype)
    rng = np.random.default_rng(seed + 1)
    w2 = he_normal(rng, w1.shape, dtype)
    b2 = (rng.standard_normal(channels) * 0.1).astype(dtype)
    return x, (w1, b1, w2, b2), upstream


def vgg_block_cnnlab(x, params, upstream):
    """conv 3×3 pad 1 → ReLU → conv 3×3 pad 1, forward and backward; the gradients (x first)."""
    x = Tensor(x, requires_grad=True)
    w1, b1, w2, b2 = (Tensor(p, requires_grad=True) for p in params)
    F.conv2d(F.relu(F.conv2d(x, w1, b1, padding=1)), w2, b2, padding=1).backward(upstream)
    return [t.grad for t in (x, w1, b1, w2, b2)]


def vgg_block_torch(x, params, upstream):
    x = x.detach().requires_grad_()
    w1, b1, w2, b2 = (p.detach().requires_grad_() for p in params)
    TF.conv2d(TF.relu(TF.conv2d(x, w1, b1, padding=1)), w2, b2, padding=1).backward(upstream)
    return [t.grad for t in (x, w1, b1, w2, b2)]


def bench_vgg(settings):
    x, params, upstream = vgg_block_inputs()
    tx, tup = torch.from_numpy(x), torch.from_numpy(upstream)
    tparams = [torch.from_numpy(p) for p in params]
    n, c, h, w = x.shape
    flops = 2 * 3 * conv_flops(n, c, c, h, w, 3, 3)  # two convs, each forward + dX + dW
    result = time_pair(lambda: vgg_block_cnnlab(x, params, upstream),
                       lambda: vgg_block_torch(tx, tparams, tup), settings)
    report("vgg_block", result, cnnlab_gflops=gflops(flops, result.ours_ms),
           torch_gflops=gflops(flops, result.theirs_ms))
