"""The shifted-GEMM route: stride-1, one-group convolution as GEMMs on shifted column ranges,
im2col one cache-sized block at a time (forward, ∂L/∂w and ∂L/∂x).

Layout: the zero-padded input as X (C_in, N·Hp·Wp) — channels first, then every
pixel of every padded image in one row. For kernel offset (u, v) the input pixel
that output pixel q (in padded coordinates, q = n·Hp·Wp + i·Wp + j) reads is
q + s_uv with s_uv = d_h·u·Wp + d_w·v, so the whole convolution is

    Y[:, q] = Σ_{u,v} w[:, :, u, v] @ X[:, q + s_uv]

and the output pixels with i < OH, j < OW are the convolution; the others mix
neighbouring rows or images and are cropped. Each offset's operand is the
*contiguous* column range X[:, a + s_uv : b + s_uv], so im2col becomes K_h·K_w
plain slice copies. They are done for one block of columns at a time, into a
(K_h·K_w·C_in, block) buffer that stays in cache, followed by one GEMM with the
full inner dimension K_h·K_w·C_in — never the whole (C_in·K_h·K_w, N·OH·OW) buffer.

The backward pass is the same on δ written into padded coordinates (zeros
everywhere but the valid output pixels):

    ∂L/∂w[:, :, u, v] = Σ_q δ[:, q] X[:, q + s_uv]ᵀ
    ∂L/∂X[:, p]       = Σ_{u,v} w[:, :, u, v]ᵀ δ[:, p − s_uv]

The last line is the lecture's full convolution: with δ padded in front by the
kernel extent s_max = s_{K_h−1, K_w−1}, reading δ at p − s_uv is reading it at
p + s_u'v' in padded δ with the rotated offset (u', v') = (K_h − 1 − u, K_w − 1 − v),
i.e. a cross-correlation of padded δ with the 180°-rotated, channel-swapped kernels.
"""

from __future__ import annotations

import numpy as np

# Bytes of one block's stacked operand (K_h·K_w·C, block): about the size of an L2 cache.
BLOCK_BYTES = 1 << 20


def _stacked_blocks(src, offsets, length):
    """(start, stop, buf) for column blocks of [0, length): buf[k·C + c, j] = src[c, start + j + offsets[k]]."""
    channels = src.shape[0]
    rows = len(offsets) * channels
    step = max(128, BLOCK_BYTES // (rows * src.itemsize))
    buf = np.empty((len(offsets), channels, min(step, length)), dtype=src.dtype)
    for start in range(0, length, step):
        stop = min(start + step, length)
        view = buf[:, :, : stop - start]
        for k, offset in enumerate(offsets):
            view[k] = src[:, start + offset : stop + offset]
        yield start, stop, view.reshape(rows, stop - start)


def correlate(a, src, offsets, length, out_cols):
    """out (R, out_cols) with out[:, q] = a (R, K·C) @ [src[:, q + offsets[k]] for k] for q < length.

    Columns from ``length`` on are left unset. Both the forward pass (src = X, a = w as
    (C_out, K·C_in)) and ∂L/∂X (src = padded δ, rotated kernels) are this.
    """
    out = np.empty((a.shape[0], out_cols), dtype=src.dtype)
    for start, stop, buf in _stacked_blocks(src, offsets, length):
        np.matmul(a, buf, out=out[:, start:stop])
    return out


def weight_grad(src, delta, offsets, length):
    """dW (R, K·C) = Σ_{q < length} δ[:, q] [src[:, q + offsets[k]] for k]ᵀ; delta (R, ≥ length)."""
    dw = np.zeros((delta.shape[0], len(offsets) * src.shape[0]), dtype=src.dtype)
    part = np.empty_like(dw)
    for start, stop, buf in _stacked_blocks(src, offsets, length):
        np.matmul(delta[:, start:stop], buf.T, out=part)
        dw += part
    return dw


def frame(x_shape, w_shape, pads, dilation):
    """(padded size (Hp, Wp), output size, column shift of each kernel offset (u, v))."""
    _, _, h, width = x_shape
    _, _, kh, kw = w_shape
    (top, bottom), (left, right) = pads
    hp, wp = h + top + bottom, width + left + right
    out = (hp - dilation[0] * (kh - 1), wp - dilation[1] * (kw - 1))
    shifts = [dilation[0] * u * wp + dilation[1] * v for u in range(kh) for v in range(kw)]
    return (hp, wp), out, shifts


def conv2d_forward(x, w, pads, dilation):
    """Stride-1 forward: (y (C_out, N, OH, OW), a strided view; X (C_in, N·Hp·Wp) the padded input)."""
    n, c_in, h, width = x.shape
    c_out, _, kh, kw = w.shape
    (hp, wp), (oh, ow), shifts = frame(x.shape, w.shape, pads, dilation)
    (top, _), (left, _) = pads
    xp = np.zeros((c_in, n, hp, wp), dtype=x.dtype)
    xp[:, :, top : top + h, left : left + width] = x.transpose(1, 0, 2, 3)
    xp = xp.reshape(c_in, n * hp * wp)
    w_mat = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(c_out, kh * kw * c_in)
    y = correlate(w_mat, xp, shifts, xp.shape[1] - shifts[-1], xp.shape[1])
    return y.reshape(c_out, n, hp, wp)[:, :, :oh, :ow], xp


def padded_delta(grad, x_shape, w_shape, pads, dilation):
    """δ (N, C_out, OH, OW) in padded coordinates after s_max zero columns.

    Shape: (C_out, s_max + N·Hp·Wp).

    Zero everywhere but the valid output pixels, so the cropped-away columns of the
    forward contribute nothing.
    """
    n = x_shape[0]
    c_out = w_shape[0]
    (hp, wp), (oh, ow), shifts = frame(x_shape, w_shape, pads, dilation)
    s_max = shifts[-1]
    delta = np.zeros((c_out, s_max + n * hp * wp), dtype=grad.dtype)
    delta[:, s_max:].reshape(c_out, n, hp, wp)[:, :, :oh, :ow] = grad.transpose(1, 0, 2, 3)
    return delta


def conv2d_weight_grad(xp, delta, x_shape, w_shape, pads, dilation):
    """∂L/∂w (C_out, C_in, K_h, K_w) from the forward's X and ``padded_delta``."""
    c_out, c_in, kh, kw = w_shape
    _, _, shifts = frame(x_shape, w_shape, pads, dilation)
    s_max = shifts[-1]
    dw = weight_grad(xp, delta[:, s_max:], shifts, xp.shape[1] - s_max)
    return np.ascontiguousarray(dw.reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2))


def conv2d_input_grad(delta, w, x_shape, pads, dilation):
    """∂L/∂x (N, C_in, H, W): padded δ against the rotated kernels, (C_in, K_h·K_w·C_out)."""
    n, c_in, h, width = x_shape
    (hp, wp), _, shifts = frame(x_shape, w.shape, pads, dilation)
    m_cols = n * hp * wp
    rotated = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 2, 3, 0)).reshape(c_in, -1)
    dxp = correlate(rotated, delta, shifts, m_cols, m_cols).reshape(c_in, n, hp, wp)
    (top, _), (left, _) = pads
    return np.ascontiguousarray(
        dxp[:, :, top : top + h, left : left + width].transpose(1, 0, 2, 3)
    )
