"""The im2col route: forward and ∂L/∂w as one GEMM per group over an im2col buffer,
∂L/∂x by col2im (the buffer's adjoint).

Chainer's ``im2col_cpu`` idea: loop over the kernel offsets (u, v) only; each
offset copies one strided slice of the padded input, for every image, channel
and output pixel at once, into a preallocated buffer. With ``loops="compiled"``
the copies are element loops instead (``im2col_loops``, tested equal); which one
runs is the plan's choice, passed in explicitly.

The buffer layout is (C, K_h, K_w, N, OH, OW): reshaped to (C·K_h·K_w, N·OH·OW)
it is the right operand of one GEMM for the whole batch, ``w (C_out, C·K_h·K_w) @ col``,
and channel groups are contiguous blocks of its rows; its columns of one image are a
strided (C·K_h·K_w, OH·OW) matrix. Where BLAS runs such a per-image GEMM on one thread,
the GEMMs go image by image, straight into NCHW (the forward, and ∂L/∂w and ∂L/∂x where
``delta_matrix`` says so), on ``batch_threads``'s ranges of the batch; otherwise one
GEMM per group covers the batch and its (C_out, N·OH·OW) result is transposed to NCHW
while the bias is added.
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops.conv_routes import batch_threads, im2col_loops

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
    _filler(x, col, stride, pads, dilation, loops)(0, x.shape[0])
    return col


def _filler(x, col, stride, pads, dilation, loops):
    """fill(start, stop): ``im2col`` of x's images [start, stop) into its part of
    col (C, K_h, K_w, N, OH, OW)."""
    if loops == "compiled":
        xp = np.ascontiguousarray(pad_input(x, pads))
        return lambda start, stop: im2col_loops.fill_columns(xp, col, stride, dilation, start, stop)
    xp = pad_input(x, pads)
    _, kh, kw, _, oh, ow = col.shape

    def fill(start, stop):
        images = xp[start:stop].transpose(1, 0, 2, 3)
        for u in range(kh):
            for v in range(kw):
                rows, cols = _window(u, v, stride, dilation, (oh, ow))
                col[:, u, v, start:stop] = images[:, :, rows, cols]

    return fill


def col2im(col, x_shape, stride, pads, dilation, loops="numpy"):
    """The adjoint of ``im2col``: add col (C, K_h, K_w, N, OH, OW) back onto an (N, C, H, W) input.

    dx[n, c, s_h·i + d_h·u − p_top, s_w·j + d_w·v − p_left] += col[c, u, v, n, i, j];
    contributions that land in the padding are dropped.
    """
    add, dx = _adder(col, x_shape, stride, pads, dilation, loops)
    add(0, x_shape[0])
    return dx


def _adder(col, x_shape, stride, pads, dilation, loops):
    """(add(start, stop), dx): ``col2im`` of images [start, stop) into dx (N, C, H, W), which
    holds the result once every image has been added."""
    (top, bottom), (left, right) = pads
    n, c, h, w = x_shape
    padded = (h + top + bottom, w + left + right)
    _, kh, kw, _, oh, ow = col.shape
    crop = (slice(top, top + h), slice(left, left + w))
    dx = np.empty(x_shape, dtype=col.dtype)
    if loops == "compiled":
        col = np.ascontiguousarray(col)
        unpadded = padded == (h, w)
        dxp = dx if unpadded else np.empty((n, c, *padded), dtype=col.dtype)

        def add(start, stop):
            dxp[start:stop] = 0
            im2col_loops.add_columns(col, dxp, stride, dilation, start, stop)
            if not unpadded:
                dx[start:stop] = dxp[start:stop, :, crop[0], crop[1]]

        return add, dx
    dxp = np.empty((c, n, *padded), dtype=col.dtype)

    def add_slices(start, stop):
        dxp[:, start:stop] = 0
        for u in range(kh):
            for v in range(kw):
                rows, cols = _window(u, v, stride, dilation, (oh, ow))
                dxp[:, start:stop, rows, cols] += col[:, u, v, start:stop]
        dx[start:stop] = dxp[:, start:stop, crop[0], crop[1]].transpose(1, 0, 2, 3)

    return add_slices, dx


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


def forward(x, w, stride, pads, dilation, groups, out_size, loops, bias=None, relu=False):
    """(y (N, C_out, OH, OW), col (groups, C_in/groups·K_h·K_w, N·OH·OW)) for x (N, C_in, H, W);
    y = relu(conv + b) with ``relu``.

    Image by image: the im2col copies, one GEMM per group, the bias and the ReLU (on
    what the GEMM has just written), on ``batch_threads``'s ranges of images. Where BLAS
    would split each image's GEMM over its threads, one GEMM per group for the batch.
    """
    n = x.shape[0]
    c_out, c_per_group, kh, kw = w.shape
    rows, pixels = c_per_group * kh * kw, out_size[0] * out_size[1]
    per_image = batch_threads.per_image_gemms(c_out // groups * rows * pixels)
    # One group: the bias as one more GEMM column of w against a row of ones under the
    # buffer, instead of a pass over y (conv_a, one thread: GEMM and bias 1.50 → 0.68 ms).
    fold = per_image and bias is not None and groups == 1
    store = np.empty((groups * rows + fold, n * pixels), dtype=x.dtype)
    fill = _filler(x, store[: groups * rows].reshape(x.shape[1], kh, kw, n, *out_size),
                   stride, pads, dilation, loops)
    col = store[: groups * rows].reshape(groups, rows, n * pixels)
    w_mat = w.reshape(groups, c_out // groups, rows)
    if not per_image:
        fill(0, n)
        y = to_nchw(grouped_matmul(w_mat, col).reshape(c_out, n, *out_size), bias)
        if relu:
            np.maximum(y, 0, out=y)
        return y, col
    if fold:
        w_mat = np.concatenate([w_mat[0], bias.reshape(-1, 1).astype(w.dtype)], axis=1)[None]
    y = np.empty((n, groups, c_out // groups, pixels), dtype=x.dtype)

    def images(start, stop):
        fill(start, stop)
        if fold:
            store[-1, start * pixels : stop * pixels] = 1
        for g in range(groups):
            columns = _per_image(store if fold else col[g], n)[start:stop]
            np.matmul(w_mat[g], columns, out=y[start:stop, g])
        if bias is not None and not fold:
            y[start:stop] += bias.reshape(groups, -1, 1)
        if relu:
            np.maximum(y[start:stop], 0, out=y[start:stop])

    _run(images, n, c_out // groups * rows * pixels, groups)
    return y.reshape(n, c_out, *out_size), col


def _run(images, n, gemm_macs, gemms_per_image):
    """images(start, stop) over the batch, split by ``batch_threads`` for GEMMs of this size."""
    chunks = batch_threads.chunk_count(n, gemm_macs, n * gemm_macs * gemms_per_image)
    batch_threads.for_each_range(n, chunks, images)


def _per_image(matrix, n):
    """A (rows, N·OH·OW) matrix as N strided (rows, OH·OW) matrices: (N, rows, OH·OW), a view.

    The GEMMs run one per image on these views (NumPy's stacked matmul calls BLAS on each
    strided slice), so that results land in NCHW, where one GEMM for the whole batch
    writes (C_out, N·OH·OW) and needs a transposing copy. One thread, GEMM and layout
    only: conv_a's forward (64, 1→32, 28×28, 3×3) 1.9 → 1.0 ms, LeNet's first layer
    0.92 → 0.53 ms, its second 0.66 → 0.51 ms.
    """
    return matrix.reshape(matrix.shape[0], n, -1).transpose(1, 0, 2)


def delta_matrix(grad, groups, w_shape):
    """δ (N, C_out, OH, OW) as (groups, C_out/groups, N·OH·OW), the batch GEMMs' layout (a copy),
    or None where ∂L/∂w and ∂L/∂x take their GEMMs per image, on δ as it is.

    Per image when a column of the buffer is at most half an image's output,
    C_in/groups·K_h·K_w ≤ OH·OW / 2: the per-image partial products of ∂L/∂w are then
    well below the copy of δ they replace, and the per-image GEMMs large enough; and
    when BLAS runs each of them on one thread (``batch_threads.per_image_gemms``). One
    thread, ∂L/∂w and ∂L/∂x: conv_a (9 rows, 26×26) 2.3 → 1.0 and 2.0 → 0.9 ms, LeNet's
    first layer (25 rows, 28×28) 1.6 → 0.4 ms (∂L/∂w). By one GEMM: LeNet's second
    layer (150 rows, 10×10) ∂L/∂x 1.5 against 1.6–2.1 ms per image, AlexNet's grouped
    5×5 (600 rows, 27×27) 36 against 44 ms.
    """
    c_out, c_per_group, kh, kw = w_shape
    rows, pixels = c_per_group * kh * kw, grad[0, 0].size
    if 2 * rows <= pixels and batch_threads.per_image_gemms(c_out // groups * rows * pixels):
        return None
    delta = np.ascontiguousarray(grad.transpose(1, 0, 2, 3))
    return delta.reshape(groups, grad.shape[1] // groups, -1)


def weight_grad(grad, delta, col, w_shape):
    """∂L/∂w = Σ_n δ[n] (C_out, OH·OW) @ col[:, n]ᵀ per group, δ = grad (N, C_out, OH, OW);
    one GEMM per group over the batch on ``delta`` (``delta_matrix``) unless it is None."""
    if delta is not None:
        # as (col @ δᵀ)ᵀ: OpenBLAS runs this orientation faster (one thread: LeNet's second
        # layer 1.11 → 0.65 ms, its first 1.26 → 0.82, the lecture net's second 1.19 → 0.99,
        # AlexNet's grouped 5×5 24.7 → 21.6 ms)
        transposed = grouped_matmul(col, np.swapaxes(delta, -1, -2))
        return np.ascontiguousarray(np.swapaxes(transposed, -1, -2)).reshape(w_shape)
    n, c_out = grad.shape[:2]
    groups, rows = col.shape[:2]
    per_image = grad.reshape(n, groups, c_out // groups, -1)
    partial = np.empty((n, groups, c_out // groups, rows), dtype=grad.dtype)

    def images(start, stop):
        for g in range(groups):
            columns = _per_image(col[g], n)[start:stop].transpose(0, 2, 1)
            np.matmul(per_image[start:stop, g], columns, out=partial[start:stop, g])

    _run(images, n, c_out // groups * rows * per_image.shape[-1], groups)
    return partial.sum(axis=0).reshape(w_shape)


def input_grad(grad, delta, w, x_shape, stride, pads, dilation, groups, loops):
    """∂L/∂x by col2im: dcol = wᵀ (C_in·K_h·K_w, C_out) @ δ per group, per image unless
    ``delta`` (``delta_matrix``) is given, then added back at each kernel offset."""
    c_out, c_per_group, kh, kw = w.shape
    n, pixels = x_shape[0], grad[0, 0].size
    rows = c_per_group * kh * kw
    w_mat = w.reshape(groups, c_out // groups, rows)
    if delta is not None:
        dcol = grouped_matmul(np.swapaxes(w_mat, -1, -2), delta)
    else:
        dcol = np.empty((groups, rows, n * pixels), dtype=grad.dtype)
    add, dx = _adder(dcol.reshape(x_shape[1], kh, kw, n, *grad.shape[2:]), x_shape, stride,
                     pads, dilation, loops)
    per_image = grad.reshape(n, groups, c_out // groups, pixels)

    def images(start, stop):
        if delta is None:
            for g in range(groups):
                dcol_g = _per_image(dcol[g], n)[start:stop]
                np.matmul(w_mat[g].T, per_image[start:stop, g], out=dcol_g)
        add(start, stop)

    _run(images, n, c_out // groups * rows * pixels, groups)
    return dx
