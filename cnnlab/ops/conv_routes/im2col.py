"""The im2col route: forward and ∂L/∂w as one GEMM per group over an im2col buffer,
∂L/∂x by col2im (the buffer's adjoint).

Chainer's ``im2col_cpu`` idea: loop over the kernel offsets (u, v) only; each
offset copies one strided slice of the padded input, for every image, channel
and output pixel at once, into a preallocated buffer. With ``loops="compiled"``
the copies are element loops instead (``im2col_loops``, tested equal); which one
runs is the plan's choice, passed in explicitly.

The buffer layout is (C, K_h, K_w, N, OH, OW): reshaped to (C·K_h·K_w, N·OH·OW)
it is the right operand of one GEMM for the whole batch, ``w (C_out, C·K_h·K_w) @ col``,
and channel groups are contiguous blocks of its rows. The (C_out, N·OH·OW) result
is transposed to NCHW while the bias is added.
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops.conv_routes import im2col_loops

LOOPS = ("compiled", "numpy")


def pad_input(x, pads, value=0.0):
    """x (N, C, H, W) padded by ((top, bottom), (left, right)); as is when there is none."""
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


def im2col(x, kernel, stride, pads, dilation, out_size, loops="numpy"):
    """Patches of x (N, C, H, W) as col (C, K_h, K_w, N, OH, OW).

    col[c, u, v, n, i, j] = x_padded[n, c, s_h·i + d_h·u, s_w·j + d_w·v]   (zero padding).
    ``loops``: "numpy" (one slice copy per kernel offset) or "compiled" (element loops).
    """
    col = np.empty((x.shape[1], *kernel, x.shape[0], *out_size), dtype=x.dtype)
    if loops == "compiled":
        im2col_loops.fill_columns(np.ascontiguousarray(pad_input(x, pads)), col, stride, dilation)
        return col
    xp = pad_input(x, pads).transpose(1, 0, 2, 3)
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            rows, cols = _window(u, v, stride, dilation, out_size)
            col[:, u, v] = xp[:, :, rows, cols]
    return col


def col2im(col, x_shape, stride, pads, dilation, loops="numpy"):
    """The adjoint of ``im2col``: add col (C, K_h, K_w, N, OH, OW) back onto an (N, C, H, W) input.

    dx[n, c, s_h·i + d_h·u − p_top, s_w·j + d_w·v − p_left] += col[c, u, v, n, i, j];
    contributions that land in the padding are dropped.
    """
    (top, bottom), (left, right) = pads
    n, c, h, w = x_shape
    padded = (h + top + bottom, w + left + right)
    if loops == "compiled":
        dxp = np.zeros((n, c, *padded), dtype=col.dtype)
        im2col_loops.add_columns(np.ascontiguousarray(col), dxp, stride, dilation)
        return np.ascontiguousarray(dxp[:, :, top : top + h, left : left + w])
    _, kh, kw, _, oh, ow = col.shape
    dxp = np.zeros((c, n, *padded), dtype=col.dtype)
    for u in range(kh):
        for v in range(kw):
            rows, cols = _window(u, v, stride, dilation, (oh, ow))
            dxp[:, :, rows, cols] += col[:, u, v]
    return np.ascontiguousarray(dxp[:, :, top : top + h, left : left + w].transpose(1, 0, 2, 3))


def grouped_matmul(a, b):
    """a[g] @ b[g] for each group, as 2-D products: NumPy's stacked matmul leaves BLAS
    for transposed operands (a 1000× slowdown for the ``colᵀ`` of ∂L/∂w)."""
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    for g in range(a.shape[0]):
        np.matmul(a[g], b[g], out=out[g])
    return out


def to_nchw(y, bias=None):
    """(C_out, N, OH, OW) → (N, C_out, OH, OW), adding the bias in the same pass."""
    out = np.empty((y.shape[1], y.shape[0]) + y.shape[2:], dtype=y.dtype)
    if bias is None:
        np.copyto(out, y.transpose(1, 0, 2, 3))
    else:
        np.add(y.transpose(1, 0, 2, 3), bias.reshape(-1, 1, 1), out=out)
    return out


def forward(x, w, stride, pads, dilation, groups, out_size, loops, bias=None):
    """(y (N, C_out, OH, OW), col (groups, C_in/groups·K_h·K_w, N·OH·OW)) for x (N, C_in, H, W)."""
    n = x.shape[0]
    c_out, c_per_group, kh, kw = w.shape
    col = im2col(x, (kh, kw), stride, pads, dilation, out_size, loops)
    col = col.reshape(groups, c_per_group * kh * kw, n * out_size[0] * out_size[1])
    w_mat = w.reshape(groups, c_out // groups, c_per_group * kh * kw)
    y = grouped_matmul(w_mat, col)  # (groups, C_out/groups, N·OH·OW)
    return to_nchw(y.reshape(c_out, n, *out_size), bias), col


def delta_matrix(grad, groups):
    """δ (N, C_out, OH, OW) as (groups, C_out/groups, N·OH·OW), the GEMMs' layout."""
    delta = np.ascontiguousarray(grad.transpose(1, 0, 2, 3))
    return delta.reshape(groups, grad.shape[1] // groups, -1)


def weight_grad(delta, col, w_shape):
    """∂L/∂w = δ (C_out, N·OH·OW) @ colᵀ per group: the forward's buffer, a transposed view."""
    return grouped_matmul(delta, np.swapaxes(col, -1, -2)).reshape(w_shape)


def input_grad(delta, w, x_shape, grad_shape, stride, pads, dilation, groups, loops):
    """∂L/∂x by col2im: dcol = wᵀ (C_in·K_h·K_w, C_out) @ δ per group, added back per offset."""
    c_out, c_per_group, kh, kw = w.shape
    w_mat = w.reshape(groups, c_out // groups, c_per_group * kh * kw)
    dcol = grouped_matmul(np.swapaxes(w_mat, -1, -2), delta)  # (groups, C_in/g·K_h·K_w, N·OH·OW)
    dcol = dcol.reshape(x_shape[1], kh, kw, x_shape[0], *grad_shape[2:])
    return col2im(dcol, x_shape, stride, pads, dilation, loops)
