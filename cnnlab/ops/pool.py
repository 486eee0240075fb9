"""Pooling: max, average and global average over spatial windows (NCHW).

Output size along each axis: floor((H + 2p − K) / s) + 1 (``conv_shapes.output_size``).

Max pooling has three routes (``cnnlab.ops.pool_routes``): "compiled_fixed_window"
(compiled loops with the window and stride as constants: no padding, and a window in
``window_loops.FIXED_WINDOWS``),
"compiled_generic" (compiled loops, any window and padding) and "numpy" (one
strided slice per window offset, the readable reference). ``max_pool2d_plan``
picks one; ``pool_routes(max_pool=...)`` forces one (the tests run each), and a
forced route that does not apply raises ``RouteNotApplicableError``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools

import numpy as np

from cnnlab._checks import check_choice
from cnnlab.ops.conv import RouteNotApplicableError
from cnnlab.ops.conv_routes.im2col import pad_input
from cnnlab.ops.conv_shapes import output_size, pair
from cnnlab.ops.pool_routes import window_loops, window_slices
from cnnlab.tensor import Function, Tensor, as_tensor

__all__ = [
    "AvgPool2dFunction",
    "GlobalAvgPool2dFunction",
    "MaxPool2dFunction",
    "PoolPlan",
    "avg_pool2d",
    "global_avg_pool2d",
    "max_pool2d",
    "max_pool2d_plan",
    "pool_routes",
]

MAX_POOL_ROUTES = ("compiled_fixed_window", "compiled_generic", "numpy")


@dataclasses.dataclass(frozen=True)
class PoolPlan:
    """How max_pool2d computes one pooling: ``max_pool`` is one of ``MAX_POOL_ROUTES``
    (the backward pass scatters with the same kind of loop)."""

    max_pool: str


_FORCED: contextvars.ContextVar[str | None] = contextvars.ContextVar("pool_routes", default=None)


@contextlib.contextmanager
def pool_routes(max_pool=None):
    """Force max pooling's route inside the block (None: the planner's choice).

        with pool_routes(max_pool="numpy"):
            y = max_pool2d(x, 2)
    """
    if max_pool is not None:
        check_choice(max_pool, MAX_POOL_ROUTES, "pool_routes", "max_pool")
    token = _FORCED.set(max_pool or _FORCED.get())
    try:
        yield
    finally:
        _FORCED.reset(token)


def max_pool2d_plan(x_shape, kernel_size, stride=None, padding=0) -> PoolPlan:
    """The ``PoolPlan`` max_pool2d follows for these arguments (as ``max_pool2d`` takes them),
    under the ``pool_routes`` in force."""
    x_shape = tuple(x_shape)
    kernel, stride, pads, _ = _pool_options(
        "max_pool2d_plan", x_shape, kernel_size, stride, padding
    )
    return _plan(kernel, stride, pads)


def _plan(kernel, stride, pads) -> PoolPlan:
    padded = pads != ((0, 0), (0, 0))
    compiled_in = (*kernel, *stride) in window_loops.FIXED_WINDOWS
    forced = _FORCED.get()
    if forced == "compiled_fixed_window" and padded:
        raise RouteNotApplicableError(
            f"max_pool2d: route 'compiled_fixed_window' needs padding 0 (its windows never "
            f"cross the border); this pooling has padding {pads}"
        )
    if forced == "compiled_fixed_window" and not compiled_in:
        windows = ", ".join("{}x{}/{}x{}".format(*key) for key in window_loops.FIXED_WINDOWS)
        raise RouteNotApplicableError(
            f"max_pool2d: route 'compiled_fixed_window' has the windows {windows} "
            f"(kernel/stride) compiled in; this pooling has kernel {kernel}, stride {stride}"
        )
    return _forced_plan(forced) if forced else _automatic_plan(padded or not compiled_in)


@functools.cache
def _forced_plan(route) -> PoolPlan:
    return PoolPlan(route)


@functools.cache
def _automatic_plan(generic) -> PoolPlan:
    """Compiled loops always (they read the input once, where NumPy first copies every
    window out), with the window compiled in where there is a loop for it and no padding."""
    return PoolPlan("compiled_generic" if generic else "compiled_fixed_window")


def _check_input(op, x):
    if x.ndim != 4:
        raise ValueError(
            f"{op}: expected input x of shape (N, C, H, W) (4-D), received shape {x.shape}"
        )
    if x.dtype.kind != "f":
        raise ValueError(f"{op}: x must be a floating-point tensor, received dtype {x.dtype}")


def _pool_options(op, x_shape, kernel_size, stride, padding):
    """(kernel, stride, pads ((top, bottom), (left, right)), out_size) for an (N, C, H, W) x."""
    kernel = pair(kernel_size, "kernel_size", op, minimum=1)
    stride = kernel if stride is None else pair(stride, "stride", op, minimum=1)
    pad = pair(padding, "padding", op, minimum=0)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: padding must be at most half the kernel size, received padding={padding!r} "
            f"for kernel_size={kernel_size!r}"
        )
    out = []
    for axis, name in ((0, "height"), (1, "width")):
        n = x_shape[2 + axis]
        if kernel[axis] > n + 2 * pad[axis]:
            raise ValueError(
                f"{op}: kernel {name} {kernel[axis]} is larger than the padded input {name} "
                f"{n + 2 * pad[axis]} (input shape {x_shape}, padding {padding!r})"
            )
        out.append(output_size(n, kernel[axis], stride[axis], pad[axis]))
    return kernel, stride, ((pad[0], pad[0]), (pad[1], pad[1])), tuple(out)


class MaxPool2dFunction(Function):
    """y[n, c, i, j] = max_{u, v} x_padded[n, c, s·i + u, s·j + v]   (padding is −∞).

    Backward: each δ[n, c, i, j] goes only to the position that held the maximum
    of its window (the first one in row-major order on ties, like PyTorch);
    overlapping windows add up. The forward saves that position (argmax) per output.
    """

    def forward(self, x, kernel, stride, pads, out_size, plan):
        self.x_shape = x.shape
        self.route = plan.max_pool
        if self.route == "numpy":
            y, self.argmax = window_slices.max_pool_forward(x, kernel, stride, pads, out_size)
        else:
            fixed = self.route == "compiled_fixed_window"
            y, self.argmax = window_loops.max_pool_forward(
                x, kernel, stride, pads, out_size, fixed
            )
        return y

    def backward(self, grad):
        routes = window_slices if self.route == "numpy" else window_loops
        return (routes.max_pool_backward(grad, self.argmax, self.x_shape),)


class AvgPool2dFunction(Function):
    """y[n, c, i, j] = (1 / K_h K_w) Σ_{u, v} x_padded[n, c, s·i + u, s·j + v]   (padding zeros count).

    Backward: each δ[n, c, i, j] / (K_h K_w) goes to every position of its window.
    Both are loops over the window offsets (u, v) only, one strided slice each.
    """

    def forward(self, x, kernel, stride, pads, out_size):
        self.options = x.shape, kernel, stride, pads, out_size
        xp = pad_input(x, pads)
        total = np.zeros(x.shape[:2] + out_size, dtype=x.dtype)
        for u in range(kernel[0]):
            for v in range(kernel[1]):
                total += xp[
                    :, :, _window(u, stride[0], out_size[0]), _window(v, stride[1], out_size[1])
                ]
        return total / np.asarray(kernel[0] * kernel[1], dtype=x.dtype)

    def backward(self, grad):
        (n, c, h, w), kernel, stride, pads, out_size = self.options
        (top, bottom), (left, right) = pads
        share = grad / np.asarray(kernel[0] * kernel[1], dtype=grad.dtype)
        dxp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=grad.dtype)
        for u in range(kernel[0]):
            for v in range(kernel[1]):
                dxp[
                    :, :, _window(u, stride[0], out_size[0]), _window(v, stride[1], out_size[1])
                ] += share
        return (dxp[:, :, top : top + h, left : left + w],)


def _window(offset, stride, out):
    return slice(offset, offset + stride * (out - 1) + 1, stride)


class GlobalAvgPool2dFunction(Function):
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
    _check_input("max_pool2d", x)
    kernel, stride, pads, out_size = _pool_options(
        "max_pool2d", x.shape, kernel_size, stride, padding
    )
    return MaxPool2dFunction.apply(
        x, kernel=kernel, stride=stride, pads=pads, out_size=out_size,
        plan=_plan(kernel, stride, pads),
    )


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Average pooling over K_h × K_w windows; padded zeros count in the average
    (PyTorch's count_include_pad=True).

    Args and shape as in ``max_pool2d``.
    """
    x = as_tensor(x)
    _check_input("avg_pool2d", x)
    kernel, stride, pads, out_size = _pool_options(
        "avg_pool2d", x.shape, kernel_size, stride, padding
    )
    return AvgPool2dFunction.apply(x, kernel=kernel, stride=stride, pads=pads, out_size=out_size)


def global_avg_pool2d(x) -> Tensor:
    """Mean over all spatial positions: (N, C, H, W) → (N, C)."""
    x = as_tensor(x)
    _check_input("global_avg_pool2d", x)
    return GlobalAvgPool2dFunction.apply(x)
