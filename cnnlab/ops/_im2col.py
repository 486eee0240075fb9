"""im2col: the patches of a batch of images as columns of a matrix.

Chainer's ``im2col_cpu`` idea: loop over the kernel offsets (u, v) only; each
offset copies one strided slice of the padded input, for every image, channel
and output pixel at once, into a preallocated buffer.
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


def im2col(x, kernel, stride, pads, dilation, out_size, value=0.0):
    """Patches of x (N, C, H, W) as a buffer (N, C, K_h, K_w, OH, OW).

    col[n, c, u, v, i, j] = x_padded[n, c, s_h·i + d_h·u, s_w·j + d_w·v].
    Reshaped to (N, C·K_h·K_w, OH·OW) it is what ``w (C_out, C·K_h·K_w) @ col`` wants.
    """
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    oh, ow = out_size
    xp = pad_input(x, pads, value)
    n, c = x.shape[:2]
    col = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for u in range(kh):
        top = u * dh
        for v in range(kw):
            left = v * dw
            col[:, :, u, v] = xp[:, :, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw]
    return col
