"""im2col, col2im and max-pool windows in plain NumPy: the readable reference.

Chainer's ``im2col_cpu`` idea: loop over the kernel offsets (u, v) only; each
offset copies one strided slice of the padded input, for every image, channel
and output pixel at once, into a preallocated buffer. ``_kernels_numba`` has the
same functions compiled (what the ops run); the tests check one against the other.

The buffer layout is (C, K_h, K_w, N, OH, OW): reshaped to (C·K_h·K_w, N·OH·OW)
it is the right operand of one GEMM for the whole batch, ``w (C_out, C·K_h·K_w) @ col``,
and channel groups are contiguous blocks of its rows.
"""

from __future__ import annotations

import numpy as np


def pad_input(x, pads, value=0.0):
    """x (N, C, H, W) padded by ((top, bottom), (left, right)); returned as is when there is none."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    padded = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    padded[:, :, top : top + h, left : left + w] = x
    return padded


def _window(u, v, stride, dilation, out_size):
    """The slice of the padded input that kernel offset (u, v) sees for every output pixel."""
    top, left = u * dilation[0], v * dilation[1]
    return (
        slice(top, top + stride[0] * (out_size[0] - 1) + 1, stride[0]),
        slice(left, left + stride[1] * (out_size[1] - 1) + 1, stride[1]),
    )


def im2col(x, kernel, stride, pads, dilation, out_size):
    """Patches of x (N, C, H, W) as col (C, K_h, K_w, N, OH, OW).

    col[c, u, v, n, i, j] = x_padded[n, c, s_h·i + d_h·u, s_w·j + d_w·v]   (zero padding).
    """
    xp = pad_input(x, pads).transpose(1, 0, 2, 3)
    col = np.empty((x.shape[1], *kernel, x.shape[0], *out_size), dtype=x.dtype)
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            rows, cols = _window(u, v, stride, dilation, out_size)
            col[:, u, v] = xp[:, :, rows, cols]
    return col


def col2im(col, x_shape, stride, pads, dilation):
    """The adjoint of ``im2col``: add col (C, K_h, K_w, N, OH, OW) back onto an (N, C, H, W) input.

    dx[n, c, s_h·i + d_h·u − p_top, s_w·j + d_w·v − p_left] += col[c, u, v, n, i, j];
    contributions that land in the padding are dropped.
    """
    (top, bottom), (left, right) = pads
    n, c, h, w = x_shape
    _, kh, kw, _, oh, ow = col.shape
    dxp = np.zeros((c, n, h + top + bottom, w + left + right), dtype=col.dtype)
    for u in range(kh):
        for v in range(kw):
            rows, cols = _window(u, v, stride, dilation, (oh, ow))
            dxp[:, :, rows, cols] += col[:, u, v]
    return np.ascontiguousarray(dxp[:, :, top : top + h, left : left + w].transpose(1, 0, 2, 3))


def max_pool_forward(x, kernel, stride, pads, out_size):
    """(y, argmax): y[n, c, i, j] = max of the window (−∞ padding); argmax its flat index r·W + q in x.

    The first maximum in row-major window order wins ties, as in PyTorch.
    """
    n, c, _, w = x.shape
    xp = pad_input(x, pads, value=-np.inf)
    windows = np.empty((kernel[0] * kernel[1], n, c, *out_size), dtype=x.dtype)
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            rows, cols = _window(u, v, stride, (1, 1), out_size)
            windows[u * kernel[1] + v] = xp[:, :, rows, cols]
    offset = windows.argmax(axis=0)
    y = np.take_along_axis(windows, offset[None], axis=0)[0]
    # window offset → flat index in the unpadded input
    i = np.arange(out_size[0]).reshape(-1, 1)
    j = np.arange(out_size[1]).reshape(1, -1)
    rows = i * stride[0] - pads[0][0] + offset // kernel[1]
    cols = j * stride[1] - pads[1][0] + offset % kernel[1]
    return y, (rows * w + cols).astype(np.int32)


def max_pool_backward(grad, argmax, x_shape):
    """dx[n, c, argmax[n, c, i, j]] += grad[n, c, i, j] (overlapping windows add up)."""
    n, c, h, w = x_shape
    dx = np.zeros((n * c, h * w), dtype=grad.dtype)
    planes = np.repeat(np.arange(n * c), argmax[0, 0].size)
    np.add.at(dx, (planes, argmax.reshape(-1)), grad.reshape(-1))
    return dx.reshape(x_shape)
