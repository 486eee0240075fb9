"""Compiled loops for the data movement around the convolution GEMM and for max pooling.

Same functions, signatures and results as the NumPy versions in ``_im2col`` (the
readable reference, tested against these). NumPy expresses im2col as strided slice
copies whose innermost runs are only OW elements long, and col2im / max-pool
argmax-scatter not at all without temporaries; these loops write each buffer
once, sequentially, and handle padding by bounds instead of a padded copy.

Serial on purpose: on a small shared machine numba's parallel runtime costs more
in thread wake-ups than it saves on these memory-bound loops (measured), and the
GEMMs around them already use every core through BLAS.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _valid_range(pad, offset, stride, out, size):
    """Output indices j in [0, out) with 0 <= j·stride + offset − pad < size."""
    start = pad - offset
    lo = 0 if start <= 0 else (start + stride - 1) // stride
    hi = (size + pad - offset + stride - 1) // stride
    hi = min(max(hi, 0), out)
    return min(lo, hi), hi


@njit(cache=True)
def _im2col(x, kh, kw, sh, sw, dh, dw, pt, pl, col):
    n_images, channels, h, w = x.shape
    oh, ow = col.shape[4], col.shape[5]
    for c in range(channels):
        for u in range(kh):
            i_lo, i_hi = _valid_range(pt, u * dh, sh, oh, h)
            for v in range(kw):
                j_lo, j_hi = _valid_range(pl, v * dw, sw, ow, w)
                for n in range(n_images):
                    for i in range(oh):
                        if i < i_lo or i >= i_hi:
                            for j in range(ow):
                                col[c, u, v, n, i, j] = 0
                            continue
                        r = i * sh + u * dh - pt
                        for j in range(j_lo):
                            col[c, u, v, n, i, j] = 0
                        q = j_lo * sw + v * dw - pl
                        for j in range(j_lo, j_hi):
                            col[c, u, v, n, i, j] = x[n, c, r, q]
                            q += sw
                        for j in range(j_hi, ow):
                            col[c, u, v, n, i, j] = 0


@njit(cache=True)
def _col2im(col, sh, sw, dh, dw, pt, pl, dx):
    channels, kh, kw, n_images, oh, ow = col.shape
    h, w = dx.shape[2], dx.shape[3]
    for c in range(channels):
        for n in range(n_images):
            for u in range(kh):
                i_lo, i_hi = _valid_range(pt, u * dh, sh, oh, h)
                for v in range(kw):
                    j_lo, j_hi = _valid_range(pl, v * dw, sw, ow, w)
                    for i in range(i_lo, i_hi):
                        r = i * sh + u * dh - pt
                        q = j_lo * sw + v * dw - pl
                        for j in range(j_lo, j_hi):
                            dx[n, c, r, q] += col[c, u, v, n, i, j]
                            q += sw


@njit(cache=True)
def _max_pool_forward(x, kh, kw, sh, sw, pt, pl, out, argmax):
    n_images, channels, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for n in range(n_images):
        for c in range(channels):
            for i in range(oh):
                r0 = i * sh - pt
                for j in range(ow):
                    q0 = j * sw - pl
                    best = -np.inf
                    where = max(r0, 0) * w + max(q0, 0)
                    for r in range(max(r0, 0), min(r0 + kh, h)):
                        for q in range(max(q0, 0), min(q0 + kw, w)):
                            value = x[n, c, r, q]
                            # strict '>' keeps the first maximum in row-major order (PyTorch's rule)
                            if value > best or np.isnan(value):
                                best = value
                                where = r * w + q
                    out[n, c, i, j] = best
                    argmax[n, c, i, j] = where


@njit(cache=True)
def _max_pool_backward(grad, argmax, dx):
    n_images, channels, oh, ow = grad.shape
    w = dx.shape[3]
    for n in range(n_images):
        for c in range(channels):
            for i in range(oh):
                for j in range(ow):
                    where = argmax[n, c, i, j]
                    dx[n, c, where // w, where % w] += grad[n, c, i, j]


def im2col(x, kernel, stride, pads, dilation, out_size):
    """Patches of x (N, C, H, W) as col (C, K_h, K_w, N, OH, OW); see ``_im2col.im2col``."""
    x = np.ascontiguousarray(x)
    col = np.empty((x.shape[1], *kernel, x.shape[0], *out_size), dtype=x.dtype)
    _im2col(x, *kernel, *stride, *dilation, pads[0][0], pads[1][0], col)
    return col


def col2im(col, x_shape, stride, pads, dilation):
    """Sum col (C, K_h, K_w, N, OH, OW) back onto an (N, C, H, W) input; see ``_im2col.col2im``."""
    dx = np.zeros(x_shape, dtype=col.dtype)
    _col2im(np.ascontiguousarray(col), *stride, *dilation, pads[0][0], pads[1][0], dx)
    return dx


def max_pool_forward(x, kernel, stride, pads, out_size):
    """(y, argmax): window maxima and the flat H·W index of each; see ``_im2col.max_pool_forward``."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape[:2] + tuple(out_size), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int32)
    _max_pool_forward(x, *kernel, *stride, pads[0][0], pads[1][0], out, argmax)
    return out, argmax


def max_pool_backward(grad, argmax, x_shape):
    """Each grad[n, c, i, j] added at its window's maximum; see ``_im2col.max_pool_backward``."""
    dx = np.zeros(x_shape, dtype=grad.dtype)
    _max_pool_backward(np.ascontiguousarray(grad), argmax, dx)
    return dx
