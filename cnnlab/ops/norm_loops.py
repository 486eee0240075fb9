"""Batch norm's and dropout's passes over memory as compiled loops (numba).

NumPy spends one pass over the whole array per operation (x − μ, its square, the sum,
× 1/σ, × γ, + β: six for batch norm's forward alone) and a temporary for most. These
loops fuse them: batch norm reads a channel (the N·H·W values of one c, a few hundred KB
at the fashion net's shapes, so the second read comes from cache) for its statistics and
once more to write y; the backward pass reads δ and x for the two sums and once more to
write ∂L/∂x. x̂ is never stored: it is recomputed from x, μ and 1/σ. Per-channel scalars
(C values) are computed in NumPy by the caller; only the loops over N·H·W live here.

Arrays are (N, C, L) views (L = H·W, or 1 for (N, C) input). Sums accumulate in float64
whatever the dtype; ``fastmath={"reassoc"}`` lets LLVM split a sum over several vector
registers (an ordered float sum cannot vectorise), nothing else: NaN and infinity behave
as without it. Measured, (64, 32, 28, 28) float32, 2 threads, interleaved medians:
training forward+backward 14.0 → 3.0 ms (PyTorch 4.0 ms), evaluation forward
4.5 → 0.9 ms (PyTorch 0.6 ms).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath={"reassoc"})
def channel_mean_var(x, mean, var):
    """mean[c], var[c] = the mean and the biased variance of x[:, c, :] (two passes, float64)."""
    n_images, channels, length = x.shape
    count = n_images * length
    for c in range(channels):
        total = 0.0
        for n in range(n_images):
            for i in range(length):
                total += np.float64(x[n, c, i])
        mu = total / count
        squares = 0.0
        for n in range(n_images):
            for i in range(length):
                d = np.float64(x[n, c, i]) - mu
                squares += d * d
        mean[c] = mu
        var[c] = squares / count


@njit(cache=True)
def affine(x, center, scale, shift, out):
    """out[n, c, i] = (x[n, c, i] − center[c]) · scale[c] + shift[c], in x's dtype.

    x − μ first, then the scale: x·a + (β − μ·a) would cancel digits when |μ| ≫ σ."""
    n_images, channels, length = x.shape
    for c in range(channels):
        m = x.dtype.type(center[c])
        a = x.dtype.type(scale[c])
        b = x.dtype.type(shift[c])
        for n in range(n_images):
            for i in range(length):
                out[n, c, i] = (x[n, c, i] - m) * a + b


@njit(cache=True, fastmath={"reassoc"})
def channel_grad_sums(grad, x, mean, sum_grad, sum_grad_centered):
    """sum_grad[c] = Σ δ,  sum_grad_centered[c] = Σ δ (x − μ), over x[:, c, :] (float64)."""
    n_images, channels, length = x.shape
    for c in range(channels):
        mu = mean[c]
        total = 0.0
        weighted = 0.0
        for n in range(n_images):
            for i in range(length):
                g = np.float64(grad[n, c, i])
                total += g
                weighted += g * (np.float64(x[n, c, i]) - mu)
        sum_grad[c] = total
        sum_grad_centered[c] = weighted


@njit(cache=True)
def combine(grad, x, center, a, b, d, out):
    """out[n, c, i] = a[c] · δ[n, c, i] + b[c] · (x[n, c, i] − center[c]) + d[c], in x's dtype."""
    n_images, channels, length = x.shape
    for c in range(channels):
        m = x.dtype.type(center[c])
        ac = x.dtype.type(a[c])
        bc = x.dtype.type(b[c])
        dc = x.dtype.type(d[c])
        for n in range(n_images):
            for i in range(length):
                out[n, c, i] = ac * grad[n, c, i] + bc * (x[n, c, i] - m) + dc


@njit(cache=True)
def scale_kept(x, keep, scale, out):
    """out = x · scale where keep, x · 0 elsewhere (a NaN stays NaN, as x ⊙ m / (1 − p) does);
    flat arrays of the same size, scale in x's dtype."""
    zero = x.dtype.type(0)
    for i in range(x.size):
        out[i] = x[i] * (scale if keep[i] else zero)
