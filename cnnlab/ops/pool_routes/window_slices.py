"""Max pooling in NumPy, one strided slice per window offset: the ``"numpy"`` route and
the readable reference the compiled loops are tested against."""

from __future__ import annotations

import numpy as np

from cnnlab.ops.conv_routes.im2col import pad_input


def _window(offset, stride, out):
    return slice(offset, offset + stride * (out - 1) + 1, stride)


def max_pool_forward(x, kernel, stride, pads, out_size):
    """(y, argmax): y[n, c, i, j] = max of the window (−∞ padding), argmax its flat index r·W + q.

    The first maximum in row-major window order wins ties, as in PyTorch.
    """
    n, c, _, w = x.shape
    xp = pad_input(x, pads, value=-np.inf)
    windows = np.empty((kernel[0] * kernel[1], n, c, *out_size), dtype=x.dtype)
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            rows, cols = _window(u, stride[0], out_size[0]), _window(v, stride[1], out_size[1])
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
