"""Compiled loops: max pooling (window maximum, where it was, gradient scatter) and
im2col/col2im for stride 1 without dilation.

Same functions, signatures and results as the NumPy versions in ``_im2col`` (the
readable reference, tested against these). NumPy cannot take an argmax over
strided windows without first copying every window out, nor scatter-add to the
argmax without ``np.add.at``; these loops read the input once.

When there is no padding the window size and stride are compiled in as constants
(one specialisation per (K_h, K_w, s_h, s_w), cached on disk): the loops over the
window then unroll and vectorise, 4–5× faster than with run-time bounds (measured
on 2×2/2 and 3×3/2 pooling of a (64, 32, 28, 28) batch).

im2col/col2im with stride 1 and no dilation: the element loops read and write whole
rows at constant offsets (x_padded[n, c, i + u, j + v]), which numba vectorises; 2–4×
faster than the NumPy slice copies on LeNet-sized maps (col2im of a (64, 6, 14, 14)
input from 5×5 windows: 1.35 → 0.32 ms; im2col 0.66 → 0.30 ms). With a stride or a
dilation the index arithmetic stops the vectorisation and the NumPy path, measured
as fast, is used.

Serial on purpose: on a small shared machine numba's parallel runtime costs more
in thread wake-ups than it saves on these memory-bound loops (measured).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from cnnlab.ops import _im2col


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
                            # strict '>' keeps the first maximum in row-major order, and a NaN
                            # wins once seen (PyTorch's rules)
                            if value > best or (np.isnan(value) and not np.isnan(best)):
                                best = value
                                where = r * w + q
                    out[n, c, i, j] = best
                    argmax[n, c, i, j] = where


def _fixed_window_max_pool(kh, kw, sh, sw):
    """``_max_pool_forward`` without padding, for one window size and stride known at compile time."""

    @njit(cache=True)
    def max_pool(x, out, argmax):
        w = x.shape[3]
        n_images, channels, oh, ow = out.shape
        for n in range(n_images):
            for c in range(channels):
                for i in range(oh):
                    r0 = i * sh
                    for j in range(ow):
                        q0 = j * sw
                        best = x[n, c, r0, q0]
                        where = r0 * w + q0
                        for u in range(kh):
                            for v in range(kw):
                                value = x[n, c, r0 + u, q0 + v]
                                if value > best or (np.isnan(value) and not np.isnan(best)):
                                    best = value
                                    where = (r0 + u) * w + q0 + v
                        out[n, c, i, j] = best
                        argmax[n, c, i, j] = where

    return max_pool


_specialised: dict[tuple[int, int, int, int], object] = {}


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


@njit(cache=True)
def _im2col_unit_stride(xp, col):
    channels, kh, kw, n_images, oh, ow = col.shape
    for c in range(channels):
        for u in range(kh):
            for v in range(kw):
                for n in range(n_images):
                    for i in range(oh):
                        for j in range(ow):
                            col[c, u, v, n, i, j] = xp[n, c, i + u, j + v]


@njit(cache=True)
def _col2im_unit_stride(col, dxp):
    channels, kh, kw, n_images, oh, ow = col.shape
    for n in range(n_images):
        for c in range(channels):
            for u in range(kh):
                for v in range(kw):
                    for i in range(oh):
                        for j in range(ow):
                            dxp[n, c, i + u, j + v] += col[c, u, v, n, i, j]


def im2col(x, kernel, stride, pads, dilation, out_size):
    """col (C, K_h, K_w, N, OH, OW) of x (N, C, H, W); see ``_im2col.im2col``."""
    if stride != (1, 1) or dilation != (1, 1):
        return _im2col.im2col(x, kernel, stride, pads, dilation, out_size)
    xp = np.ascontiguousarray(_im2col.pad_input(x, pads))
    col = np.empty((x.shape[1], *kernel, x.shape[0], *out_size), dtype=x.dtype)
    _im2col_unit_stride(xp, col)
    return col


def col2im(col, x_shape, stride, pads, dilation):
    """dx (N, C, H, W) with col (C, K_h, K_w, N, OH, OW) added back; see ``_im2col.col2im``."""
    if stride != (1, 1) or dilation != (1, 1):
        return _im2col.col2im(col, x_shape, stride, pads, dilation)
    (top, bottom), (left, right) = pads
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=col.dtype)
    _col2im_unit_stride(np.ascontiguousarray(col), dxp)
    return np.ascontiguousarray(dxp[:, :, top : top + h, left : left + w])


def max_pool_forward(x, kernel, stride, pads, out_size):
    """(y, argmax): window maxima and the flat H·W index of each; see ``_im2col.max_pool_forward``."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape[:2] + tuple(out_size), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int32)
    if pads == ((0, 0), (0, 0)):
        key = (*kernel, *stride)
        if key not in _specialised:
            _specialised[key] = _fixed_window_max_pool(*key)
        _specialised[key](x, out, argmax)
    else:
        _max_pool_forward(x, *kernel, *stride, pads[0][0], pads[1][0], out, argmax)
    return out, argmax


def max_pool_backward(grad, argmax, x_shape):
    """Each grad[n, c, i, j] added at its window's maximum; see ``_im2col.max_pool_backward``."""
    dx = np.zeros(x_shape, dtype=grad.dtype)
    _max_pool_backward(np.ascontiguousarray(grad), argmax, dx)
    return dx
