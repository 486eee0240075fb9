"""Nearest-neighbour upsampling to a given size (NCHW), with an alignment offset.

Used to bring a pooled feature map back to the board's 19×19 (the pooling variant of
AlphaGo's policy network, ``cnnlab.models.go``).
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops.conv_shapes import pair
from cnnlab.tensor import Function, Tensor, as_tensor

__all__ = ["UpsampleNearestFunction", "source_indices", "upsample_nearest"]


def source_indices(out_size: int, in_size: int, scale: int, offset: int) -> np.ndarray:
    """For each output row i, the input row clip(⌊(i + offset) / scale⌋, 0, in_size − 1)."""
    return np.clip((np.arange(out_size) + offset) // scale, 0, in_size - 1)


def _sum_rows(grad: np.ndarray, rows: np.ndarray, in_size: int, axis: int) -> np.ndarray:
    """Σ of grad's slices along ``axis`` that share a source row; rows is non-decreasing."""
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    summed = np.add.reduceat(grad, starts, axis=axis)
    shape = list(grad.shape)
    shape[axis] = in_size
    # rows an output never reads (an output much smaller than scale × input) get no gradient
    full = np.zeros(shape, dtype=grad.dtype)
    index = [slice(None)] * grad.ndim
    index[axis] = rows[starts]
    full[tuple(index)] = summed
    return full


class UpsampleNearestFunction(Function):
    """y[n, c, i, j] = x[n, c, r(i), s(j)],  r(i) = clip(⌊(i + o_h) / S_h⌋, 0, H − 1),
    s(j) = clip(⌊(j + o_w) / S_w⌋, 0, W − 1);

    ∂L/∂x[n, c, p, q] = Σ_{i: r(i) = p} Σ_{j: s(j) = q} δ[n, c, i, j].
    """

    def forward(self, x, scale, size, offset):
        h, w = x.shape[2:]
        self.in_size = (h, w)
        self.rows = source_indices(size[0], h, scale[0], offset[0])
        self.cols = source_indices(size[1], w, scale[1], offset[1])
        return x[:, :, self.rows[:, None], self.cols[None, :]]

    def backward(self, grad):
        by_rows = _sum_rows(grad, self.rows, self.in_size[0], axis=2)
        return (_sum_rows(by_rows, self.cols, self.in_size[1], axis=3),)


def upsample_nearest(x, scale=2, size=None, offset=0) -> Tensor:
    """Repeat each input pixel ``scale`` times along each axis, then crop or pad to ``size``.

    Args:
        x: input (N, C, H, W).
        scale: int or (S_h, S_w) ≥ 1.
        size: output (OH, OW); None: (S_h·H, S_w·W). A smaller size crops, a larger one
            repeats the edge rows and columns.
        offset: int or pair ≥ 0: output row i reads input row ⌊(i + o) / S⌋. After a max
            pooling with padding p and window = stride = S, offset p puts each output point
            back over the window that covered it (AlphaGo's pooling variant: 19 → 10 → 19
            with p = 1, o = 1).

    Shape:
        (N, C, H, W) → (N, C, OH, OW).

    Example: ``upsample_nearest(max_pool2d(x, 2, padding=1), 2, (19, 19), 1)`` on 19×19 maps.
    """
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"upsample_nearest: expected input (N, C, H, W), received shape {x.shape}")
    scale = pair(scale, "scale", "upsample_nearest", minimum=1)
    offset = pair(offset, "offset", "upsample_nearest", minimum=0)
    if size is None:
        size = (scale[0] * x.shape[2], scale[1] * x.shape[3])
    size = pair(size, "size", "upsample_nearest", minimum=1)
    return UpsampleNearestFunction.apply(x, scale=scale, size=size, offset=offset)
