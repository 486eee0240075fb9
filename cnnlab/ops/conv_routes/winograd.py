"""The Winograd route: 3×3, stride-1, one-group convolution by minimal filtering
F(m×m, 3×3), m = 2 or 4 (Lavin & Gray 2016), forward, ∂L/∂w and ∂L/∂x.

The output is cut into m×m tiles t; tile t reads the α×α input patch d_t (α = m + 2) and

    Y_t[o] = Aᵀ [ Σ_c U[o, c] ⊙ V_t[c] ] A,   U[o, c] = G w[o, c] Gᵀ,   V_t[c] = Bᵀ d_t[c] B.

At each of the α² transformed positions p = (μ, ν) the sum over channels is a matrix
product over every tile of the batch at once,

    M[p] (C_out, T) = U[p] (C_out, C_in) @ V[p] (C_in, T),

so the work is α² GEMMs with (m/α)²·9 = 9/4 (m = 2) or 4 (m = 4) times fewer multiply-adds
than the direct convolution, plus the transforms (``winograd_transforms``).

The forward is a bilinear map of (w, x), exact in exact arithmetic, so its gradients are
its adjoints, each again α² GEMMs between transforms. With Mδ_t = A δ_t Aᵀ (δ = ∂L/∂y,
zero beyond the output):

    ∂L/∂w[o, c] = Gᵀ [ Σ_t Mδ_t[o] ⊙ V_t[c] ] G        dU[p] = Mδ[p] @ V[p]ᵀ   (the forward's V)
    ∂L/∂x = Σ_t scatter_t( B [ Σ_o U[o, c] ⊙ Mδ_t[o] ] Bᵀ )   dV[p] = U[p]ᵀ @ Mδ[p]

The last line is the lecture's ∂L/∂x = full_conv(δ, rot180(w)) with C_in and C_out
swapped, computed in the transformed domain: the full convolution sends each output's δ
back to the 3×3 input pixels it read, with the kernel's weights, and the adjoint of the
forward's tile algorithm does exactly that, tile by tile (the α×α patches overlap by 2
and add up). ∂L/∂w is the correlation of x with δ (Lavin's F(3×3, m×m)) with the
forward's input transform, so it reuses the forward's V.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from cnnlab.ops.conv_routes import batch_threads
from cnnlab.ops.conv_routes import winograd_transforms as transforms

TILE_SIZES = (2, 4)


def applies(w_shape, stride, dilation, groups):
    """None if the route can compute this convolution, else the reason it cannot."""
    if (
        tuple(w_shape[2:]) == (3, 3)
        and stride == (1, 1)
        and dilation == (1, 1)
        and groups == 1
    ):
        return None
    return (
        f"needs a 3×3 kernel, stride 1, dilation 1 and groups=1; this convolution has kernel "
        f"{tuple(w_shape[2:])}, stride {stride}, dilation {dilation} and groups={groups}"
    )


class Geometry:
    """The tiling of one convolution of x (N, C, H, W): pads ((top, bottom), (left, right)),
    output tile m×m; T = tiles_h · N · tiles_w tiles."""

    def __init__(self, x_shape, pads, tile):
        (top, bottom), (left, right) = pads
        _, _, height, width = x_shape
        self.tile, self.top, self.left = tile, top, left
        self.out_size = (height + top + bottom - 2, width + left + right - 2)
        self.tiles_h, self.tiles_w = transforms.tile_counts(*self.out_size, tile)
        self.count = self.tiles_h * x_shape[0] * self.tiles_w

    def frame(self, on_input):
        """The kernels' tiling arguments for the input's side (padded) or the output's."""
        top, left = (self.top, self.left) if on_input else (0, 0)
        return self.tile, top, left, self.tiles_h, self.tiles_w


def _kind(tile, matrix):
    """The kernels' code for one of the four matrices of F(tile×tile, 3×3)."""
    return matrix + (0 if tile == 2 else 4)


# Images per piece at least this many: the kernels' inner loops run over a piece's images.
MIN_PIECE_IMAGES = 16


def cores():
    """The machine's core count (a function, so that tests can pretend more)."""
    return os.cpu_count() or 1


def pieces(n_images):
    """The image ranges' bounds [0, …, n_images] that every step cuts the batch into: one per
    core (at most), so that each core runs its own range's transforms and GEMMs.

    A function of the batch size and the machine alone, never of the thread count in force:
    tile t's column in V and Mδ is (ti·tiles_w + tj)·n + image within its range, so the
    forward's V and the backward's Mδ must be cut alike for ∂L/∂w = Σ_t Mδ_t V_tᵀ."""
    count = max(1, min(cores(), n_images // MIN_PIECE_IMAGES))
    return [n_images * i // count for i in range(count + 1)]


def _run_pieces(bounds, macs, work):
    """work(start, stop) for every piece: on as many threads as BLAS may use, with BLAS at one
    thread inside each, unless there is too little work to hand over (then in turn, BLAS as
    set).

    Each core runs its piece's transforms and GEMMs back to back, where before the
    transforms ran on one core and the GEMMs on OpenBLAS's two threads. Measured at 2
    threads on this machine with two other processes running (load 3–5, so interleaved in
    one process, median ms of 7; old route → pieces, forward and forward+backward): conv_b
    F(4×4) 75 → 57 and 278 → 132, go 128×64×19×19 → 64 605 → 180 and 1111 → 487, vgg
    32×128×28×28 → 128 1447 → 278 and 5604 → 629 (∂L/∂w on OpenBLAS's threads instead:
    2906 → 748, 6503 → 3912 and 5803 → 3336: its spinning threads crawl under load)."""
    threads = min(batch_threads.blas_threads(), len(bounds) - 1)
    if threads <= 1 or macs < batch_threads.MIN_PARALLEL_MACS:
        batch_threads.for_each_piece(bounds, 1, work)
        return
    with batch_threads.blas_one_thread():
        batch_threads.for_each_piece(bounds, threads, work)


_scratch_buffers = threading.local()


def _scratch(shape, dtype):
    """An uninitialised array of ``shape`` in this thread's reused buffer: each piece's
    transformed-domain product (M, dV) is used and dropped within the piece, and a fresh
    array's first touch costs page faults (conv_b forward, F(4×4), one thread, CPU time:
    input transform, GEMMs and output transform 10.2 ms when timed apart, the route 20.4 ms
    with a new M per piece, 8.0 ms with this buffer). The buffer is kept for the thread's
    life: the largest M or dV of a piece (e.g. 7 MiB for the fashion net's 28×28 layer)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = getattr(_scratch_buffers, "bytes", None)
    if buffer is None or buffer.size < size:
        buffer = _scratch_buffers.bytes = np.empty(size, dtype=np.uint8)
    return buffer[:size].view(dtype).reshape(shape)


def conv2d_forward(x, w, pads, tile, bias=None, relu=False):
    """(y (N, C_out, OH, OW), V (α², C_in, T) the transformed input, kept for ∂L/∂w);
    y = conv + bias, max(·, 0) with ``relu``.

    Piece by piece of the batch (``pieces``), on ``_run_pieces``'s threads: the input
    transform into the piece's columns of V, the α² GEMMs M[p] = U[p] V[p] on those
    columns, and the output transform (with the bias and the ReLU) into the piece's
    images of y, in NCHW."""
    x = np.ascontiguousarray(x)
    geometry = Geometry(x.shape, pads, tile)
    alpha, (n, c_in), c_out = tile + 2, x.shape[:2], w.shape[0]
    per_image = geometry.count // n
    v = np.empty((alpha * alpha, c_in, geometry.count), dtype=x.dtype)
    y = np.empty((n, c_out, *geometry.out_size), dtype=x.dtype)
    u = transforms.weight_transform(w, tile)
    shift = np.zeros(c_out, x.dtype) if bias is None else np.asarray(bias, x.dtype)

    def piece(start, stop):
        first, last = start * per_image, stop * per_image
        transforms.gather_tiles(
            x[start:stop], _kind(tile, transforms.INPUT), *geometry.frame(True), v, first
        )
        m = _scratch((alpha * alpha, c_out, last - first), x.dtype)
        for p in range(alpha * alpha):
            np.matmul(u[p], v[p, :, first:last], out=m[p])
        transforms.scatter_tiles(
            m, 0, _kind(tile, transforms.OUTPUT), *geometry.frame(False), y[start:stop],
            shift, relu,
        )

    _run_pieces(pieces(n), u.size * geometry.count, piece)
    return y, v


def transformed_delta(grad, x_shape, pads, tile):
    """Mδ (α², C_out, T): A δ_t Aᵀ for every tile, δ (N, C_out, OH, OW) zero beyond the output."""
    grad = np.ascontiguousarray(grad)
    geometry = Geometry(x_shape, pads, tile)
    alpha, n = tile + 2, grad.shape[0]
    per_image = geometry.count // n
    out = np.empty((alpha * alpha, grad.shape[1], geometry.count), dtype=grad.dtype)

    def piece(start, stop):
        transforms.gather_tiles(
            grad[start:stop], _kind(tile, transforms.DELTA), *geometry.frame(False), out,
            start * per_image,
        )

    _run_pieces(pieces(n), out.size * x_shape[1], piece)
    return out


def conv2d_weight_grad(v, delta_t, w_shape, tile):
    """∂L/∂w (C_out, C_in, 3, 3) from the forward's V and ``transformed_delta``: dU[p] =
    Mδ[p] V[p]ᵀ, a sum over the tiles, so over any cut of the columns: one range of
    columns per thread (BLAS at one thread in each), the ranges' sums added."""
    alpha2, c_out, count = delta_t.shape
    parts = max(1, min(batch_threads.blas_threads(), count // MIN_PIECE_IMAGES))
    bounds = [count * i // parts for i in range(parts + 1)]
    partial = np.empty((parts, alpha2, c_out, v.shape[1]), dtype=v.dtype)

    def piece(first, last):
        out = partial[bounds.index(first)]
        for p in range(alpha2):
            np.matmul(delta_t[p, :, first:last], v[p, :, first:last].T, out=out[p])

    _run_pieces(bounds, partial[0].size * count, piece)
    du = partial[0] if parts == 1 else partial.sum(axis=0)
    return transforms.weight_transform_adjoint(du, tile).reshape(w_shape)


def conv2d_input_grad(delta_t, w, x_shape, pads, tile):
    """∂L/∂x (N, C_in, H, W): dV = Uᵀ Mδ per position, then B dV Bᵀ added back per tile,
    piece by piece of the batch as in the forward."""
    geometry = Geometry(x_shape, pads, tile)
    alpha, (n, c_in) = tile + 2, x_shape[:2]
    per_image = geometry.count // n
    u_t = np.ascontiguousarray(np.swapaxes(transforms.weight_transform(w, tile), 1, 2))
    dx = np.empty(x_shape, dtype=w.dtype)
    no_bias = np.zeros(c_in, dtype=w.dtype)

    def piece(start, stop):
        first, last = start * per_image, stop * per_image
        dv = _scratch((alpha * alpha, c_in, last - first), w.dtype)
        for p in range(alpha * alpha):
            np.matmul(u_t[p], delta_t[p, :, first:last], out=dv[p])
        transforms.scatter_tiles(
            dv, 0, _kind(tile, transforms.INPUT_GRAD), *geometry.frame(True), dx[start:stop],
            no_bias, False,
        )

    _run_pieces(pieces(n), u_t.size * geometry.count, piece)
    return dx
