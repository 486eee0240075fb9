"""The lecture's ∂L/∂x: the full convolution of the zero-inserted δ with the 180°-rotated kernels.

    ∂L/∂x = crop_p( full_conv( zero_insert_s(δ), rot180(w) with C_in and C_out swapped ) )

δ gets s − 1 zeros inserted between its rows and columns, is padded by the dilated
kernel extent d(K − 1) on every side, and is cross-correlated (stride 1, dilation d,
per group) with the rotated kernels whose input and output channels are swapped;
the result is cropped by the forward padding. The correlation itself runs through
the im2col route's forward. Its buffer is C_out·K_h·K_w × N × (the padded-input area
the forward read), so the planner picks it over col2im when C_out is well below C_in.
Rows and columns of the padded input that the forward never read (strides that do
not divide the input) get zero gradient.
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops.conv_routes import im2col


def zero_insert(grad, stride):
    """δ (N, C, OH, OW) with s − 1 zeros between its rows and columns.

    Shape: (N, C, (OH − 1)s_h + 1, (OW − 1)s_w + 1).
    """
    if stride == (1, 1):
        return grad
    n, c, oh, ow = grad.shape
    spread = np.zeros((n, c, (oh - 1) * stride[0] + 1, (ow - 1) * stride[1] + 1), grad.dtype)
    spread[:, :, :: stride[0], :: stride[1]] = grad
    return spread


def rotated_kernels(w, groups):
    """w (C_out, C_in/G, K_h, K_w) rotated 180°, in/out channels swapped per group.

    Shape: (C_in, C_out/G, K_h, K_w).
    """
    c_out, c_per_group, kh, kw = w.shape
    flipped = w[:, :, ::-1, ::-1].reshape(groups, c_out // groups, c_per_group, kh, kw)
    flipped = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4))
    return flipped.reshape(groups * c_per_group, c_out // groups, kh, kw)


def input_grad(grad, w, x_shape, stride, pads, dilation, groups, loops):
    """∂L/∂x (N, C_in, H, W) from δ = grad (N, C_out, OH, OW); ``loops`` for the im2col copies."""
    _, _, kh, kw = w.shape
    n, c_in, h, width = x_shape
    spread = zero_insert(grad, stride)
    extent = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))
    full_pads = ((extent[0], extent[0]), (extent[1], extent[1]))
    # the read area of the forward, (OH−1)s + d(K−1) + 1 per axis
    out_size = (spread.shape[2] + extent[0], spread.shape[3] + extent[1])
    used, _ = im2col.forward(
        spread, rotated_kernels(w, groups), (1, 1), full_pads, dilation, groups, out_size, loops
    )
    (top, _), (left, _) = pads
    dx = np.zeros((n, c_in, h, width), dtype=grad.dtype)
    rows = min(used.shape[2], top + h) - top
    cols = min(used.shape[3], left + width) - left
    dx[:, :, :rows, :cols] = used[:, :, top : top + rows, left : left + cols]
    return dx
