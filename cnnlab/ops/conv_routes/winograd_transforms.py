"""Winograd's minimal filtering transforms F(m×m, 3×3) (Lavin & Gray 2016) and the two
compiled kernels that apply them to every tile of a batch.

F(m, 3) computes m outputs of a 3-tap correlation from α = m + 2 inputs d with α
multiplications instead of 3m:

    y = Aᵀ [ (G g) ⊙ (Bᵀ d) ]          Bᵀ (α, α), G (α, 3), Aᵀ (m, α)

and nested in 2-D, for an α×α input tile d and a 3×3 kernel g,

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        (m×m outputs from α² products; 9m² directly).

Summed over input channels, the α² products at each transformed position (μ, ν) become
one matrix product over channels, which is what makes the method fast.

Both kernels work on one row of tiles (ti) of every image at once: the r input rows it
reads are copied into a zero-padded band[column, row, image], so that every step of the
transform (``winograd_rows``) is a loop over the images with contiguous operands, which
vectorises, and tile (ti, tj) of all N images lands in N consecutive columns of out.
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


def weight_transform(w, tile):
    """U (α², C_out, C_in) with U[μα + ν] = (G w[o, c] Gᵀ)[μ, ν], computed in float64."""
    _, g, _ = matrices(tile)
    u = np.einsum(
        "mu,nv,ocuv->mnoc", g, g, w.astype(np.float64, copy=False), optimize=True
    )
    return np.ascontiguousarray(u.reshape(-1, *w.shape[:2]), dtype=w.dtype)


def weight_transform_adjoint(du, tile):
    """∂L/∂w (C_out, C_in, 3, 3) = Σ_{μν} G[μ, u] G[ν, v] dU[μα + ν] (the adjoint of the above)."""
    _, g, _ = matrices(tile)
    alpha = g.shape[0]
    du64 = du.astype(np.float64, copy=False).reshape(alpha, alpha, *du.shape[1:])
    return np.einsum("mu,nv,mnoc->ocuv", g, g, du64, optimize=True).astype(du.dtype)


def tile_counts(out_h, out_w, tile):
    """(tiles_h, tiles_w): m×m tiles covering an output of out_h × out_w."""
    return -(-out_h // tile), -(-out_w // tile)


# kinds: the matrix a kernel applies, F(2, 3) (F(4, 3): + 4); gather: Bᵀ or A, scatter: Aᵀ or B
INPUT, DELTA, OUTPUT, INPUT_GRAD = 0, 1, 2, 3


# One thread: numba's parallel loop over channels (2 threads) made the whole convolution
# slower next to OpenBLAS's 2 threads, forward+backward with F(4×4), median ms serial vs
# parallel in one process: 64×32×28×28 → 32 54.9 vs 64.4, 64×64×14×14 → 64 40.2 vs 65.6,
# 128×64×19×19 → 64 108 vs 140, 32×128×28×28 → 128 178 vs 218.
@numba.njit(cache=True)
def gather_tiles(src, kind, tile, top, left, tiles_h, tiles_w, out):
    """out[μα + ν, c, t] = Σ_{a, b} X[μ, a] · X[ν, b] · d_t[a, b] for every tile t, X (α, r).

    src (C, H, W, N), images last; d_t the r×r patch of src[c, :, :, n] whose corner is pixel
    (m·ti − top, m·tj − left), zero outside src; out (α², C, tiles_h·tiles_w·N),
    tile t = (ti·tiles_w + tj)·N + n. With X = Bᵀ (r = α, kind INPUT) this is the input
    transform, with X = A (r = m, kind DELTA) the transform of δ for ∂L/∂w.
    """
    chans, height, width, n_img = src.shape
    alpha = tile + 2
    r = alpha if kind % 4 == INPUT else tile
    span = tile * tiles_w + r - tile  # the padded columns a row of tiles reads
    copied = min(width, span - left)
    band = np.zeros((span, r, n_img), src.dtype)  # band[column, row, image], zero-padded
    z = np.empty((span, alpha, n_img), src.dtype)
    for c in range(chans):
        for ti in range(tiles_h):
            for a in range(r):
                h = ti * tile + a - top
                if 0 <= h < height:
                    for w in range(copied):
                        band[left + w, a] = src[c, h, w]
                else:
                    band[:, a, :] = 0
            for col in range(span):
                rows.down_gather(kind, band, col, z)
            for tj in range(tiles_w):
                t = (ti * tiles_w + tj) * n_img
                for mu in range(alpha):
                    rows.across_gather(kind, z, mu, tile * tj, out, mu * alpha, c, t)


@numba.njit(cache=True)
def scatter_tiles(values, kind, tile, top, left, tiles_h, tiles_w, dst):
    """The adjoint of ``gather_tiles``: adds Σ_{μν} X[μ, a] · X[ν, b] · values[μα + ν, c, t] to
    the r×r patch of dst (C, N, H, W) under tile t, dropping what falls outside.

    ``kind`` names Xᵀ: Aᵀ (kind OUTPUT, r = m) makes the output transform Aᵀ M A (tiles do
    not overlap), B (kind INPUT_GRAD, r = α) ∂L/∂x's B dV Bᵀ, whose overlapping patches add up.
    """
    chans, n_img, height, width = dst.shape
    alpha = tile + 2
    r = alpha if kind % 4 == INPUT_GRAD else tile
    span = tile * tiles_w + r - tile
    copied = min(width, span - left)
    band = np.empty((span, r, n_img), dst.dtype)
    z = np.empty((span, alpha, n_img), dst.dtype)
    for c in range(chans):
        for ti in range(tiles_h):
            z[:] = 0
            for tj in range(tiles_w):
                t = (ti * tiles_w + tj) * n_img
                for mu in range(alpha):
                    rows.across_scatter(
                        kind, values, mu * alpha, c, t, z, mu, tile * tj
                    )
            for col in range(span):
                rows.down_scatter(kind, z, col, band)
            for a in range(r):
                h = ti * tile + a - top
                if 0 <= h < height:
                    for n in range(n_img):
                        for w in range(copied):
                            dst[c, n, h, w] += band[left + w, a, n]
