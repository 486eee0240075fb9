"""Pooling: max, average and global average over spatial windows (NCHW).

Output size along each axis: floor((H + 2p − K) / s) + 1 (``conv.output_size``).
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops import _im2col, _kernels_numba
from cnnlab.ops.conv import _pair, output_size
from cnnlab.tensor import Function, Tensor, as_tensor

# Max pooling's window loops: compiled, or the NumPy reference ``_im2col`` (the tests swap it in).
kernels = _kernels_numba


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


class MaxPool2d(Function):
    """y[n, c, i, j] = max_{u, v} x_padded[n, c, s·i + u, s·j + v]   (padding is −∞).

    Backward: each δ[n, c, i, j] goes only to the position that held the maximum
    of its window (the first one in row-major order on ties, like PyTorch);
    overlapping windows add up. The forward saves that position (argmax) per output.
    """

    def forward(self, x, kernel, stride, pads, out_size):
        y, self.argmax = kernels.max_pool_forward(x, kernel, stride, pads, out_size)
        self.x_shape = x.shape
        return y

    def backward(self, grad):
        return (kernels.max_pool_backward(grad, self.argmax, self.x_shape),)


class AvgPool2d(Function):
    """y[n, c, i, j] = (1 / K_h K_w) Σ_{u, v} x_padded[n, c, s·i + u, s·j + v]   (padding zeros count).

    Backward: each δ[n, c, i, j] / (K_h K_w) goes to every position of its window.
    Both are loops over the window offsets (u, v) only, one strided slice each.
    """

    def forward(self, x, kernel, stride, pads, out_size):
        self.options = x.shape, kernel, stride, pads, out_size
        xp = _im2col.pad_input(x, pads)
        total = np.zeros(x.shape[:2] + out_size, dtype=x.dtype)
        for u in range(kernel[0]):
            for v in range(kernel[1]):
                total += xp[:, :, _window(u, stride[0], out_size[0]), _window(v, stride[1], out_size[1])]
        return total / np.asarray(kernel[0] * kernel[1], dtype=x.dtype)

    def backward(self, grad):
        (n, c, h, w), kernel, stride, pads, out_size = self.options
        (top, bottom), (left, right) = pads
        share = grad / np.asarray(kernel[0] * kernel[1], dtype=grad.dtype)
        dxp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=grad.dtype)
        for u in range(kernel[0]):
            for v in range(kernel[1]):
                dxp[:, :, _window(u, stride[0], out_size[0]), _window(v, stride[1], out_size[1])] += share
        return (dxp[:, :, top : top + h, left : left + w],)


def _window(offset, stride, out):
    return slice(offset, offset + stride * (out - 1) + 1, stride)


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
