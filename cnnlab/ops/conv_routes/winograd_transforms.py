"""Winograd's minimal filtering transforms F(m×m, 3×3) (Lavin & Gray 2016) and the two
compiled kernels that apply them to every tile of a batch.

F(m, 3) computes m outputs of a 3-tap correlation from α = m + 2 inputs d with α
multiplications instead of 3m:

    y = Aᵀ [ (G g) ⊙ (Bᵀ d) ]          Bᵀ (α, α), G (α, 3), Aᵀ (m, α)

and nested in 2-D, for an α×α input tile d and a 3×3 kernel g,

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        (m×m outputs from α² products; 9m² directly).

Summed over input channels, the α² products at each transformed position (μ, ν) become
one matrix product over channels, which is what makes the method fast.

Both kernels work on one channel of a range of images at once, kept images last in a
zero-padded band[row, column, image], so that every step of the transform
(``winograd_rows``) is a loop over the images with contiguous operands, which vectorises,
and tile (ti, tj) of the N images lands in N consecutive columns of out. The kernels read
and write NCHW themselves (the transpose to images last folded into the copy to the
band), and a range of images writes its own columns of out, so ranges run in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

from cnnlab.ops.conv_routes import winograd_rows as rows

# F(2×2, 3×3): α = 4, 2.25× fewer multiplications than the direct 3×3 convolution.
_F2 = {
    "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    "G": [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
    "AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
}
# F(4×4, 3×3): α = 6, 4× fewer multiplications; interpolation points 0, ±1, ±2, ∞.
_F4 = {
    "BT": [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    "G": [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    "AT": [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ],
}
TILES = {2: _F2, 4: _F4}


def matrices(tile, dtype=np.float64):
    """(Bᵀ (α, α), G (α, 3), Aᵀ (tile, α)) of F(tile×tile, 3×3) in ``dtype``."""
    found = TILES[tile]
    return tuple(np.array(found[name], dtype=dtype) for name in ("BT", "G", "AT"))


def _kron_g(tile):
    """G ⊗ G (α², 9) in float64: (G ⊗ G)[μα + ν, 3u + v] = G[μ, u] G[ν, v]."""
    _, g, _ = matrices(tile)
    return np.kron(g, g)


def weight_transform(w, tile):
    """U (α², C_out, C_in) with U[μα + ν] = (G w[o, c] Gᵀ)[μ, ν], computed in float64.

    One GEMM with G ⊗ G: einsum took 6 ms for 128 → 128 channels (F(4×4), float32)."""
    c_out, c_in = w.shape[:2]
    flat = w.reshape(c_out * c_in, 9).astype(np.float64, copy=False)
    u = _kron_g(tile) @ flat.T
    return np.ascontiguousarray(u.reshape(-1, c_out, c_in), dtype=w.dtype)


def weight_transform_adjoint(du, tile):
    """∂L/∂w (C_out, C_in, 3, 3) = Σ_{μν} G[μ, u] G[ν, v] dU[μα + ν] (the adjoint of the above)."""
    c_out, c_in = du.shape[1:]
    du64 = du.reshape(du.shape[0], c_out * c_in).astype(np.float64, copy=False)
    dw = (du64.T @ _kron_g(tile)).reshape(c_out, c_in, 3, 3)
    return dw.astype(du.dtype)


def tile_counts(out_h, out_w, tile):
    """(tiles_h, tiles_w): m×m tiles covering an output of out_h × out_w."""
    return -(-out_h // tile), -(-out_w // tile)


# kinds: the matrix a kernel applies, F(2, 3) (F(4, 3): + 4); gather: Bᵀ or A, scatter: Aᵀ or B
INPUT, DELTA, OUTPUT, INPUT_GRAD = 0, 1, 2, 3


# Images per block of the transposes below: 16 float32 values, one cache line written
# (read) at a time, from (to) 16 image planes read (written) in order. Copying image by
# image (a value per line written, a line apart) took 9.0 ms CPU time for go's 128×64×19×19
# input, 3 ns per value; in blocks, channel by channel, 6.7 ms (loaded machine; NumPy's
# copy of the same array 1.3 ms, its transpose to images last 4.4 ms).
TRANSPOSE_BLOCK = 16


@numba.njit(cache=True, nogil=True)
def _to_images_last(src, c, band, top, left, rows, cols):
    """band[top + h, left + w, n] = src[n, c, h, w] for h < rows, w < cols, every image n."""
    n_img = src.shape[0]
    for start in range(0, n_img, TRANSPOSE_BLOCK):
        stop = min(start + TRANSPOSE_BLOCK, n_img)
        for h in range(rows):
            line = band[top + h]
            for w in range(cols):
                out = line[left + w]
                for n in range(start, stop):
                    out[n] = src[n, c, h, w]


@numba.njit(cache=True, nogil=True)
def _to_nchw(band, top, left, dst, c, shift, relu, zero):
    """dst[n, c, h, w] = band[top + h, left + w, n] + shift for every pixel of dst[n, c] and
    every image n, then max(·, 0) with ``relu``: the transpose of ``_to_images_last``."""
    n_img, _, rows, cols = dst.shape
    for start in range(0, n_img, TRANSPOSE_BLOCK):
        stop = min(start + TRANSPOSE_BLOCK, n_img)
        for h in range(rows):
            line = band[top + h]
            for w in range(cols):
                values = line[left + w]
                for n in range(start, stop):
                    value = values[n] + shift
                    dst[n, c, h, w] = max(value, zero) if relu else value


# One thread per call: the route runs the kernels on ranges of images in parallel
# (``winograd``). numba's parallel loop over channels made the whole convolution slower next
# to OpenBLAS's 2 threads, forward+backward with F(4×4), median ms serial vs parallel in one
# process: 64×32×28×28 → 32 54.9 vs 64.4, 64×64×14×14 → 64 40.2 vs 65.6,
# 128×64×19×19 → 64 108 vs 140, 32×128×28×28 → 128 178 vs 218.
@numba.njit(cache=True, nogil=True)
def gather_tiles(src, kind, tile, top, left, tiles_h, tiles_w, out, t0):
    """out[μα + ν, c, t0 + t] = Σ_{a, b} X[μ, a] X[ν, b] d_t[a, b] for every tile t, X (α, r).

    src (N, C, H, W), NCHW; d_t the r×r patch of src[n, c] whose corner is pixel
    (m·ti − top, m·tj − left), zero outside src; out (α², C, ≥ t0 + tiles_h·tiles_w·N),
    tile t = (ti·tiles_w + tj)·N + n. With X = Bᵀ (r = α, kind INPUT) this is the input
    transform, with X = A (r = m, kind DELTA) the transform of δ for ∂L/∂w.

    Channel by channel, the N images are first copied into a zero-padded frame
    band[row, column, image] (the one transpose to images last), then each tile row's
    columns are transformed down (into z[μ, column, image]) and each tile across.
    """
    n_img, chans, height, width = src.shape
    alpha = tile + 2
    r = alpha if kind % 4 == INPUT else tile
    span_h = tile * tiles_h + r - tile  # the padded rows and columns the tiles read
    span_w = tile * tiles_w + r - tile
    rows_in, cols_in = min(height, span_h - top), min(width, span_w - left)
    band = np.zeros((span_h, span_w, n_img), src.dtype)  # the border stays zero
    z = np.empty((tiles_h, alpha, span_w, n_img), src.dtype)
    for c in range(chans):
        _to_images_last(src, c, band, top, left, rows_in, cols_in)
        for ti in range(tiles_h):
            rows_ti, z_ti = band[tile * ti:tile * ti + r], z[ti]
            for col in range(span_w):
                rows.down_gather(kind, rows_ti, col, z_ti)
        for mu in range(alpha):
            for ti in range(tiles_h):
                z_ti = z[ti]
                for tj in range(tiles_w):
                    t = t0 + (ti * tiles_w + tj) * n_img
                    rows.across_gather(kind, z_ti, mu, tile * tj, out, mu * alpha, c, t)


@numba.njit(cache=True, nogil=True)
def scatter_tiles(values, t0, kind, tile, top, left, tiles_h, tiles_w, dst, bias, relu):
    """The adjoint of ``gather_tiles``: dst[n, c] = the sum over tiles t of
    Σ_{μν} X[μ, a] · X[ν, b] · values[μα + ν, c, t0 + t] on the r×r patch under tile t,
    dropping what falls outside dst (N, C, H, W); every pixel of dst is written.

    ``kind`` names Xᵀ: Aᵀ (kind OUTPUT, r = m) makes the output transform Aᵀ M A (tiles do
    not overlap), then dst = · + bias[c] (bias (C,)), and max(·, 0) with ``relu``;
    B (kind INPUT_GRAD, r = α) ∂L/∂x's B dV Bᵀ, whose overlapping patches add up.
    """
    n_img, chans = dst.shape[:2]
    alpha = tile + 2
    adds = kind % 4 == INPUT_GRAD
    r = alpha if adds else tile
    span_h = tile * tiles_h + r - tile
    span_w = tile * tiles_w + r - tile
    band = np.zeros((span_h, span_w, n_img), dst.dtype)
    z = np.empty((tiles_h, alpha, span_w, n_img), dst.dtype)
    zero = np.zeros(1, dst.dtype)[0]
    for c in range(chans):
        z[:] = 0
        for mu in range(alpha):
            for ti in range(tiles_h):
                z_ti = z[ti]
                for tj in range(tiles_w):
                    t = t0 + (ti * tiles_w + tj) * n_img
                    rows.across_scatter(kind, values, mu * alpha, c, t, z_ti, mu, tile * tj)
        if adds:
            band[:] = 0
        for ti in range(tiles_h):
            rows_ti, z_ti = band[tile * ti:tile * ti + r], z[ti]
            for col in range(span_w):
                rows.down_scatter(kind, z_ti, col, rows_ti)
        _to_nchw(band, top, left, dst, c, bias[c], relu, zero)
