"""The kn2row route: a stride-1, one-group convolution as ONE GEMM against every kernel
offset at once, then shifted sums of its output (forward, ∂L/∂w and ∂L/∂x).

Layout: the zero-padded input channels-last, X (N·Hp·Wp, C_in), one row per pixel of
every padded image; q = n·Hp·Wp + i·Wp + j. Kernel offset k = (u, v) reads the pixel
s_k = d_h·u·Wp + d_w·v rows further on, so with W_k = w[:, :, u, v]ᵀ (C_in, C_out):

    Z = X @ [W_0 | W_1 | … | W_{K−1}]        (N·Hp·Wp, K·C_out), one GEMM
    Y[q] = b + Σ_k Z[q + s_k, block k]        (the "shifted sums")

and the rows q with i < OH, j < OW are the convolution (the others are cropped, as in
the shifted-GEMM route, which shifts the input where this shifts the output: Vasudevan,
Anderson & Gregg 2017, "kn2row"). Backward, with Δ = δ written at those rows (zero
elsewhere) and dZ[q + s_k, block k] = Δ[q], the adjoint of the shifted sums:

    ∂L/∂w (as [W_k]) = Xᵀ @ dZ,    ∂L/∂X = dZ @ [W_k]ᵀ     (one GEMM each)

cropped back to the input. No im2col copies: the GEMMs read the input once and write
K·C_out columns, so the route pays where K is small and C_in large: the text CNN's 1-D
convolutions over a 300-d embedding (K = 3–5, C_out = 100; its input arrives
channels-last, so X costs no copy at all).
"""

from __future__ import annotations

import numpy as np

# the padded frame and each kernel offset's shift along the flattened rows: the same as the
# shifted GEMMs'
from cnnlab.ops.conv_routes.shifted_gemm import frame


def channels_last(x, pads):
    """X (N·Hp·Wp, C): x (N, C, H, W) padded and channels-last; a view where x already is."""
    n, c, h, width = x.shape
    (top, bottom), (left, right) = pads
    nhwc = x.transpose(0, 2, 3, 1)
    if top == bottom == left == right == 0:
        return np.ascontiguousarray(nhwc).reshape(-1, c)
    xp = np.zeros((n, h + top + bottom, width + left + right, c), dtype=x.dtype)
    xp[:, top : top + h, left : left + width] = nhwc
    return xp.reshape(-1, c)


def stacked_kernels(w):
    """[W_0 | … | W_{K−1}] (C_in, K·C_out): column k·C_out + o is w[o, :, u, v], k = u·K_w + v."""
    return np.ascontiguousarray(w.transpose(1, 2, 3, 0)).reshape(w.shape[1], -1)


def conv2d_forward(x, w, pads, dilation, bias=None, relu=False):
    """(y (N, C_out, OH, OW) = relu?(conv + b), X the channels-last input for ∂L/∂w)."""
    n = x.shape[0]
    c_out = w.shape[0]
    (hp, wp), (oh, ow), shifts = frame(x.shape, w.shape, pads, dilation)
    xm = channels_last(x, pads)
    z = xm @ stacked_kernels(w)
    rows = xm.shape[0] - shifts[-1]  # rows q whose every shifted read stays inside X
    y = np.empty((xm.shape[0], c_out), dtype=x.dtype)
    np.copyto(y[:rows], z[: rows, :c_out])
    for k, shift in enumerate(shifts[1:], start=1):
        y[:rows] += z[shift : shift + rows, k * c_out : (k + 1) * c_out]
    # every valid output row lies below ``rows``: the rest of y is cropped unread
    valid = y.reshape(n, hp, wp, c_out)[:, :oh, :ow].transpose(0, 3, 1, 2)
    out = np.empty((n, c_out, oh, ow), dtype=x.dtype)
    if bias is None:
        np.copyto(out, valid)
    else:
        np.add(valid, bias.reshape(-1, 1, 1).astype(x.dtype, copy=False), out=out)
    if relu:
        np.maximum(out, 0, out=out)
    return out, xm


def shifted_delta(grad, x_shape, w_shape, pads, dilation):
    """dZ (N·Hp·Wp, K·C_out): dZ[q + s_k, block k] = Δ[q], Δ = δ (N, C_out, OH, OW) at its rows."""
    n, c_out = grad.shape[:2]
    (hp, wp), (oh, ow), shifts = frame(x_shape, w_shape, pads, dilation)
    m = n * hp * wp
    delta = np.zeros((n, hp, wp, c_out), dtype=grad.dtype)
    delta[:, :oh, :ow] = grad.transpose(0, 2, 3, 1)
    delta = delta.reshape(m, c_out)
    rows = m - shifts[-1]
    dz = np.empty((m, len(shifts) * c_out), dtype=grad.dtype)
    for k, shift in enumerate(shifts):
        block = dz[:, k * c_out : (k + 1) * c_out]
        block[:shift] = 0
        block[shift : shift + rows] = delta[:rows]
        block[shift + rows :] = 0
    return dz


def conv2d_weight_grad(xm, dz, w_shape):
    """∂L/∂w (C_out, C_in, K_h, K_w) = Xᵀ @ dZ, unstacked."""
    c_out, c_in, kh, kw = w_shape
    stacked = xm.T @ dz  # (C_in, K·C_out)
    return np.ascontiguousarray(stacked.reshape(c_in, kh, kw, c_out).transpose(3, 0, 1, 2))


def conv2d_input_grad(dz, w, x_shape, pads):
    """∂L/∂x (N, C_in, H, W) = dZ @ [W_k]ᵀ, cropped; a channels-last view, not a copy."""
    n, c_in, h, width = x_shape
    (top, bottom), (left, right) = pads
    dxm = dz @ stacked_kernels(w).T  # (N·Hp·Wp, C_in)
    dxp = dxm.reshape(n, h + top + bottom, width + left + right, c_in)
    return dxp[:, top : top + h, left : left + width].transpose(0, 3, 1, 2)
