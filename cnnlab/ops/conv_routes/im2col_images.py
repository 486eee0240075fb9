"""The im2col route image by image: forward and ∂L/∂w through one small column buffer per
thread, refilled for each image, instead of the batch's whole (C·K_h·K_w, N·OH·OW) buffer.

For each image n (one group, any stride and dilation):

    col_n[(c, u, v), (i, j)] = x_padded[n, c, s_h·i + d_h·u, s_w·j + d_w·v]
    y[n] = w (C_out, C·K_h·K_w) @ col_n + b          (straight into NCHW; ReLU on it)
    ∂L/∂w = Σ_n (col_n @ δ[n]ᵀ)ᵀ,  δ[n] = ∂L/∂y[n] as (C_out, OH·OW)

The forward keeps the padded input, not the columns: ∂L/∂w fills each image's columns again.
∂L/∂x is the im2col route's (col2im or the full convolution), which never reads the columns.

Why: on the Go net's 5×5 first layer (128 × 48 × 19×19 → 64) the batch buffer is 222 MB,
and writing it into fresh pages, then reading it twice from memory, cost more than the
GEMMs (one thread, CPU ms: forward 242 with the batch buffer against 117 for the copies
and GEMMs alone; ∂L/∂w 153). Per image the buffer (1.7 MB) stays in cache, and filling it
twice costs less than keeping it.

The images are split by ``batch_threads`` into one range per BLAS thread, and each
range's GEMMs run on BLAS held to one thread: OpenBLAS would otherwise split each
per-image GEMM across its threads and synchronise them on every call (see
``batch_threads.per_image_gemms``).
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops.conv_routes import batch_threads, im2col, im2col_loops

# Bounds of one thread's column buffer: images and bytes
MAX_CHUNK = 16
CHUNK_BYTES = 8 << 20


class PaddedImages:
    """What the forward keeps for ∂L/∂w: the padded input and how its columns are read."""

    def __init__(self, xp, kernel, stride, dilation, out_size, loops):
        self.xp, self.kernel, self.stride = xp, kernel, stride
        self.dilation, self.out_size, self.loops = dilation, out_size, loops

    @property
    def rows(self):
        return self.xp.shape[1] * self.kernel[0] * self.kernel[1]

    def fill(self, start, stop, buffer):
        """buffer[:rows, :stop − start] ← the columns of images [start, stop); buffer
        (≥ C·K_h·K_w, chunk, OH·OW), contiguous."""
        (kh, kw), (oh, ow) = self.kernel, self.out_size
        col = buffer[: self.rows].reshape(self.xp.shape[1], kh, kw, buffer.shape[1], oh, ow)
        images = self.xp[start:stop]
        if self.loops == "compiled":
            im2col_loops.fill_columns(images, col, self.stride, self.dilation, 0, stop - start)
            return
        images = images.transpose(1, 0, 2, 3)
        for u in range(kh):
            for v in range(kw):
                rows, cols = im2col._window(u, v, self.stride, self.dilation, (oh, ow))
                col[:, u, v, : stop - start] = images[:, :, rows, cols]

    def chunk(self, pixels, itemsize):
        """Images per buffer fill: several, so that each thread takes the GIL once per
        chunk rather than per image (with 1.5 cores of foreign load, per-image calls made
        conv_c's forward 28× slower than PyTorch: the GIL waits on descheduled threads),
        in a buffer of at most CHUNK_BYTES."""
        return max(1, min(MAX_CHUNK, CHUNK_BYTES // ((self.rows + 1) * pixels * itemsize)))


def forward(x, w, stride, pads, dilation, out_size, loops, bias=None, relu=False):
    """(y (N, C_out, OH, OW), ``PaddedImages``) for x (N, C_in, H, W), w (C_out, C_in, K_h, K_w);
    y = relu(conv + b) with ``relu``."""
    n = x.shape[0]
    c_out = w.shape[0]
    pixels = out_size[0] * out_size[1]
    xp = im2col.pad_input(x, pads)
    images = PaddedImages(
        np.ascontiguousarray(xp) if loops == "compiled" else xp,
        w.shape[2:], stride, dilation, out_size, loops,
    )
    w_mat = w.reshape(c_out, -1)
    if bias is not None:  # the bias as one more column of w against a row of ones
        w_mat = np.concatenate([w_mat, bias.reshape(-1, 1).astype(w.dtype)], axis=1)
    y = np.empty((n, c_out, pixels), dtype=x.dtype)

    chunk = images.chunk(pixels, x.itemsize)

    def work(start, stop):
        buffer = np.empty((w_mat.shape[1], chunk, pixels), dtype=x.dtype)
        buffer[images.rows :] = 1
        for i in range(start, stop, chunk):
            j = min(i + chunk, stop)
            images.fill(i, j, buffer)
            # one GEMM per image (a stacked matmul: one call, the GIL released throughout)
            np.matmul(w_mat, buffer[:, : j - i].transpose(1, 0, 2), out=y[i:j])
            if relu:
                np.maximum(y[i:j], 0, out=y[i:j])

    _each_image_range(n, work)
    return y.reshape(n, c_out, *out_size), images


def weight_grad(grad, images, w_shape):
    """∂L/∂w (C_out, C_in, K_h, K_w) = Σ_n (col_n @ δ[n]ᵀ)ᵀ, the columns filled again per image."""
    n, c_out = grad.shape[:2]
    delta = grad.reshape(n, c_out, -1)
    partials = []

    chunk = images.chunk(delta.shape[2], grad.itemsize)

    def work(start, stop):
        buffer = np.empty((images.rows, chunk, delta.shape[2]), dtype=grad.dtype)
        total = np.zeros((images.rows, c_out), dtype=grad.dtype)
        part = np.empty((chunk, images.rows, c_out), dtype=grad.dtype)
        for i in range(start, stop, chunk):
            j = min(i + chunk, stop)
            images.fill(i, j, buffer)
            # col_n @ δ[n]ᵀ: OpenBLAS runs this orientation faster than δ[n] @ col_nᵀ (one
            # thread, the Go layer's 1200 × 361 × 64: 83 against 56 GFLOP/s)
            columns = buffer[:, : j - i].transpose(1, 0, 2)
            np.matmul(columns, delta[i:j].transpose(0, 2, 1), out=part[: j - i])
            total += part[: j - i].sum(axis=0)
        partials.append(total)  # list.append is atomic

    _each_image_range(n, work)
    return np.ascontiguousarray(sum(partials).T).reshape(w_shape)


def _each_image_range(n, work):
    """work(start, stop) on one range of images per BLAS thread, each on BLAS held to one thread."""
    threads = min(batch_threads.blas_threads(), n)
    if threads <= 1:
        work(0, n)
        return
    with batch_threads.blas_one_thread():
        batch_threads.for_each_range(n, threads, work)
