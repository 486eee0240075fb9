"""Pooling: max, average and global average over spatial windows (NCHW).

Windows are taken with the same im2col as the convolution (loops over window
offsets only). Output size along each axis: floor((H + 2p − K) / s) + 1.
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops import _im2col
from cnnlab.ops.conv import _pair, output_size
from cnnlab.tensor import Function, Tensor, as_tensor


def _pool_options(op, x, kernel_size, stride, padding):
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input x of shape (N, C, H, W) (4-D), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise ValueError(f"{op}: x must be a floating-point tensor, got dtype {x.dtype}")
    kernel = _pair(kernel_size, "kernel_size", op, minimum=1)
    stride = kernel if stride is None else _pair(stride, "stride", op, minimum=1)
    pad = _pair(padding, "padding", op, minimum=0)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: padding must be at most half the kernel size, got padding={padding!r} "
            f"for kernel_size={kernel_size!r}"
        )
    out = []
    for axis, name in ((0, "height"), (1, "width")):
        n = x.shape[2 + axis]
        if kernel[axis] > n + 2 * pad[axis]:
            raise ValueError(
                f"{op}: kernel {name} {kernel[axis]} is larger than the padded input {name} "
                f"{n + 2 * pad[axis]} (input shape {x.shape}, padding {padding!r})"
            )
        out.append(output_size(n, kernel[axis], stride[axis], pad[axis]))
    return kernel, stride, ((pad[0], pad[0]), (pad[1], pad[1])), tuple(out)


def _scatter_windows(window_grads, x_shape, kernel, stride, pads, out_size):
    """Sum window gradients (N, C, K_h, K_w, OH, OW) back onto the input (col2im)."""
    (top, bottom), (left, right) = pads
    n, c, h, w = x_shape
    kh, kw = kernel
    sh, sw = stride
    oh, ow = out_size
    dxp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=window_grads.dtype)
    for u in range(kh):
        for v in range(kw):
            dxp[:, :, u : u + sh * (oh - 1) + 1 : sh, v : v + sw * (ow - 1) + 1 : sw] += window_grads[:, :, u, v]
    return dxp[:, :, top : top + h, left : left + w]


class MaxPool2d(Function):
    """y[n, c, i, j] = max_{u, v} x_padded[n, c, s·i + u, s·j + v]   (padding is −∞).

    Backward: each δ[n, c, i, j] goes only to the position that held the maximum
    of its window (the first one in row-major order on ties, like PyTorch);
    overlapping windows add up.
    """

    def forward(self, x, kernel, stride, pads, out_size):
        col = _im2col.im2col(x, kernel, stride, pads, (1, 1), out_size, value=-np.inf)
        n, c = x.shape[:2]
        col = col.reshape(n, c, kernel[0] * kernel[1], *out_size)
        self.argmax = col.argmax(axis=2)
        self.options = x.shape, kernel, stride, pads, out_size
        return np.take_along_axis(col, self.argmax[:, :, None], axis=2)[:, :, 0]

    def backward(self, grad):
        x_shape, kernel, stride, pads, out_size = self.options
        offsets = np.arange(kernel[0] * kernel[1]).reshape(1, 1, kernel[0], kernel[1], 1, 1)
        window_grads = np.where(offsets == self.argmax[:, :, None, None], grad[:, :, None, None], 0)
        window_grads = window_grads.astype(grad.dtype, copy=False)
        return (_scatter_windows(window_grads, x_shape, kernel, stride, pads, out_size),)


class AvgPool2d(Function):
    """y[n, c, i, j] = (1 / K_h K_w) Σ_{u, v} x_padded[n, c, s·i + u, s·j + v]   (padding zeros count).

    Backward: each δ[n, c, i, j] / (K_h K_w) goes to every position of its window.
    """

    def forward(self, x, kernel, stride, pads, out_size):
        col = _im2col.im2col(x, kernel, stride, pads, (1, 1), out_size)
        self.options = x.shape, kernel, stride, pads, out_size
        return col.mean(axis=(2, 3), dtype=x.dtype)

    def backward(self, grad):
        x_shape, kernel, stride, pads, out_size = self.options
        share = grad / np.asarray(kernel[0] * kernel[1], dtype=grad.dtype)
        window_grads = np.broadcast_to(share[:, :, None, None], x_shape[:2] + kernel + out_size)
        return (_scatter_windows(window_grads, x_shape, kernel, stride, pads, out_size),)


class GlobalAvgPool2d(Function):
    """y[n, c] = (1 / HW) Σ_{h, w} x[n, c, h, w];  ∂L/∂x[n, c, h, w] = δ[n, c] / HW."""

    def forward(self, x):
        self.shape = x.shape
        return x.mean(axis=(2, 3), dtype=x.dtype)

    def backward(self, grad):
        h, w = self.shape[2:]
        share = grad / np.asarray(h * w, dtype=grad.dtype)
        return (np.broadcast_to(share[:, :, None, None], self.shape).copy(),)


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Max pooling over K_h × K_w windows.

    Args:
        x: input (N, C, H, W).
        kernel_size: int or (K_h, K_w).
        stride: int or pair; defaults to kernel_size (non-overlapping windows).
            Smaller than the kernel gives overlapping windows (AlexNet: 3, stride 2).
        padding: int or pair, at most half the kernel; padded with −∞.

    Shape:
        output (N, C, OH, OW), OH = floor((H + 2p − K_h) / s) + 1, likewise OW.
    """
    x = as_tensor(x)
    kernel, stride, pads, out_size = _pool_options("max_pool2d", x, kernel_size, stride, padding)
    return MaxPool2d.apply(x, kernel=kernel, stride=stride, pads=pads, out_size=out_size)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Average pooling over K_h × K_w windows; padded zeros count in the average
    (PyTorch's count_include_pad=True).

    Args and shape as in ``max_pool2d``.
    """
    x = as_tensor(x)
    kernel, stride, pads, out_size = _pool_options("avg_pool2d", x, kernel_size, stride, padding)
    return AvgPool2d.apply(x, kernel=kernel, stride=stride, pads=pads, out_size=out_size)


def global_avg_pool2d(x) -> Tensor:
    """Mean over all spatial positions: (N, C, H, W) → (N, C)."""
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool2d: expected input x of shape (N, C, H, W) (4-D), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise ValueError(f"global_avg_pool2d: x must be a floating-point tensor, got dtype {x.dtype}")
    return GlobalAvgPool2d.apply(x)
