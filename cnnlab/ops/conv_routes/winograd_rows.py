"""Winograd's 1-D transforms F(m, 3) as explicit sums, one function per matrix and use,
written out from the matrices in ``winograd_transforms`` (and tested equal to them).

The kernels keep a tile row's band as band[column, row, image]; every function here runs
one loop over the images, whose values are contiguous in both operands, so it vectorises.
``_down_X``: X along one column (the rows of the patch); ``_across_X``: X along the
columns of one tile (its window of band columns), for every image at once. For the
adjoint kinds (Aᵀ, B) ``_across_X`` adds a tile's values back into its window, where
neighbouring windows overlap.

Why written out: a loop with the matrix as data (coefficients skipped when zero) spent
3–4× the GEMM's time in the transforms (conv_b, F(2×2): 7.4 ms against 3.1 ms); here the
constants fold, and multiples are sums (2s = s + s), so float32 stays float32 (numba
would promote an integer coefficient times a float32 to float64).
"""

from __future__ import annotations

import numba


@numba.njit(cache=True)
def _down_bt2(band, col, z):
    """z[col, μ, :] = Σ_a Bᵀ[μ, a] band[col, a, :]: the transform along a column."""
    for n in range(band.shape[2]):
        s0 = band[col, 0, n]
        s1 = band[col, 1, n]
        s2 = band[col, 2, n]
        s3 = band[col, 3, n]
        z[col, 0, n] = s0 - s2
        z[col, 1, n] = s1 + s2
        z[col, 2, n] = -s1 + s2
        z[col, 3, n] = s1 - s3


@numba.njit(cache=True)
def _across_bt2(z, mu, col, out, row, c, t):
    """out[row + ν, c, t + n] = Σ_b Bᵀ[ν, b] z[col + b, μ, n]: one tile of every image."""
    for n in range(z.shape[2]):
        s0 = z[col + 0, mu, n]
        s1 = z[col + 1, mu, n]
        s2 = z[col + 2, mu, n]
        s3 = z[col + 3, mu, n]
        out[row + 0, c, t + n] = s0 - s2
        out[row + 1, c, t + n] = s1 + s2
        out[row + 2, c, t + n] = -s1 + s2
        out[row + 3, c, t + n] = s1 - s3


@numba.njit(cache=True)
def _down_a2(band, col, z):
    """z[col, μ, :] = Σ_a A[μ, a] band[col, a, :]: the transform along a column."""
    for n in range(band.shape[2]):
        s0 = band[col, 0, n]
        s1 = band[col, 1, n]
        z[col, 0, n] = s0
        z[col, 1, n] = s0 + s1
        z[col, 2, n] = s0 - s1
        z[col, 3, n] = -s1


@numba.njit(cache=True)
def _across_a2(z, mu, col, out, row, c, t):
    """out[row + ν, c, t + n] = Σ_b A[ν, b] z[col + b, μ, n]: one tile of every image."""
    for n in range(z.shape[2]):
        s0 = z[col + 0, mu, n]
        s1 = z[col + 1, mu, n]
        out[row + 0, c, t + n] = s0
        out[row + 1, c, t + n] = s0 + s1
        out[row + 2, c, t + n] = s0 - s1
        out[row + 3, c, t + n] = -s1


@numba.njit(cache=True)
def _across_at2(values, row, c, t, z, mu, col):
    """z[col + b, μ, n] += Σ_ν Aᵀ[b, ν] values[row + ν, c, t + n]: one tile of every image back."""
    for n in range(z.shape[2]):
        s0 = values[row + 0, c, t + n]
        s1 = values[row + 1, c, t + n]
        s2 = values[row + 2, c, t + n]
        s3 = values[row + 3, c, t + n]
        z[col + 0, mu, n] += s0 + s1 + s2
        z[col + 1, mu, n] += s1 - s2 - s3


@numba.njit(cache=True)
def _down_at2(z, col, band):
    """band[col, a, :] = Σ_μ Aᵀ[a, μ] z[col, μ, :]: the transform along a column."""
    for n in range(z.shape[2]):
        s0 = z[col, 0, n]
        s1 = z[col, 1, n]
        s2 = z[col, 2, n]
        s3 = z[col, 3, n]
        band[col, 0, n] = s0 + s1 + s2
        band[col, 1, n] = s1 - s2 - s3


@numba.njit(cache=True)
def _across_b2(values, row, c, t, z, mu, col):
    """z[col + b, μ, n] += Σ_ν B[b, ν] values[row + ν, c, t + n]: one tile of every image back."""
    for n in range(z.shape[2]):
        s0 = values[row + 0, c, t + n]
        s1 = values[row + 1, c, t + n]
        s2 = values[row + 2, c, t + n]
        s3 = values[row + 3, c, t + n]
        z[col + 0, mu, n] += s0
        z[col + 1, mu, n] += s1 - s2 + s3
        z[col + 2, mu, n] += -s0 + s1 + s2
        z[col + 3, mu, n] += -s3


@numba.njit(cache=True)
def _down_b2(z, col, band):
    """band[col, a, :] = Σ_μ B[a, μ] z[col, μ, :]: the transform along a column."""
    for n in range(z.shape[2]):
        s0 = z[col, 0, n]
        s1 = z[col, 1, n]
        s2 = z[col, 2, n]
        s3 = z[col, 3, n]
        band[col, 0, n] = s0
        band[col, 1, n] = s1 - s2 + s3
        band[col, 2, n] = -s0 + s1 + s2
        band[col, 3, n] = -s3


@numba.njit(cache=True)
def _down_bt4(band, col, z):
    """z[col, μ, :] = Σ_a Bᵀ[μ, a] band[col, a, :]: the transform along a column."""
    for n in range(band.shape[2]):
        s0 = band[col, 0, n]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s1 = band[col, 1, n]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = band[col, 2, n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s2x5 = s2x4 + s2
        s3 = band[col, 3, n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x5 = s3x4 + s3
        s4 = band[col, 4, n]
        s5 = band[col, 5, n]
        z[col, 0, n] = s0x4 - s2x5 + s4
        z[col, 1, n] = -s1x4 - s2x4 + s3 + s4
        z[col, 2, n] = s1x4 - s2x4 - s3 + s4
        z[col, 3, n] = -s1x2 - s2 + s3x2 + s4
        z[col, 4, n] = s1x2 - s2 - s3x2 + s4
        z[col, 5, n] = s1x4 - s3x5 + s5


@numba.njit(cache=True)
def _across_bt4(z, mu, col, out, row, c, t):
    """out[row + ν, c, t + n] = Σ_b Bᵀ[ν, b] z[col + b, μ, n]: one tile of every image."""
    for n in range(z.shape[2]):
        s0 = z[col + 0, mu, n]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s1 = z[col + 1, mu, n]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = z[col + 2, mu, n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s2x5 = s2x4 + s2
        s3 = z[col + 3, mu, n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x5 = s3x4 + s3
        s4 = z[col + 4, mu, n]
        s5 = z[col + 5, mu, n]
        out[row + 0, c, t + n] = s0x4 - s2x5 + s4
        out[row + 1, c, t + n] = -s1x4 - s2x4 + s3 + s4
        out[row + 2, c, t + n] = s1x4 - s2x4 - s3 + s4
        out[row + 3, c, t + n] = -s1x2 - s2 + s3x2 + s4
        out[row + 4, c, t + n] = s1x2 - s2 - s3x2 + s4
        out[row + 5, c, t + n] = s1x4 - s3x5 + s5


@numba.njit(cache=True)
def _down_a4(band, col, z):
    """z[col, μ, :] = Σ_a A[μ, a] band[col, a, :]: the transform along a column."""
    for n in range(band.shape[2]):
        s0 = band[col, 0, n]
        s1 = band[col, 1, n]
        s1x2 = s1 + s1
        s2 = band[col, 2, n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = band[col, 3, n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        z[col, 0, n] = s0
        z[col, 1, n] = s0 + s1 + s2 + s3
        z[col, 2, n] = s0 - s1 + s2 - s3
        z[col, 3, n] = s0 + s1x2 + s2x4 + s3x8
        z[col, 4, n] = s0 - s1x2 + s2x4 - s3x8
        z[col, 5, n] = s3


@numba.njit(cache=True)
def _across_a4(z, mu, col, out, row, c, t):
    """out[row + ν, c, t + n] = Σ_b A[ν, b] z[col + b, μ, n]: one tile of every image."""
    for n in range(z.shape[2]):
        s0 = z[col + 0, mu, n]
        s1 = z[col + 1, mu, n]
        s1x2 = s1 + s1
        s2 = z[col + 2, mu, n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = z[col + 3, mu, n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        out[row + 0, c, t + n] = s0
        out[row + 1, c, t + n] = s0 + s1 + s2 + s3
        out[row + 2, c, t + n] = s0 - s1 + s2 - s3
        out[row + 3, c, t + n] = s0 + s1x2 + s2x4 + s3x8
        out[row + 4, c, t + n] = s0 - s1x2 + s2x4 - s3x8
        out[row + 5, c, t + n] = s3


@numba.njit(cache=True)
def _across_at4(values, row, c, t, z, mu, col):
    """z[col + b, μ, n] += Σ_ν Aᵀ[b, ν] values[row + ν, c, t + n]: one tile of every image back."""
    for n in range(z.shape[2]):
        s0 = values[row + 0, c, t + n]
        s1 = values[row + 1, c, t + n]
        s2 = values[row + 2, c, t + n]
        s3 = values[row + 3, c, t + n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        s4 = values[row + 4, c, t + n]
        s4x2 = s4 + s4
        s4x4 = s4x2 + s4x2
        s4x8 = s4x4 + s4x4
        s5 = values[row + 5, c, t + n]
        z[col + 0, mu, n] += s0 + s1 + s2 + s3 + s4
        z[col + 1, mu, n] += s1 - s2 + s3x2 - s4x2
        z[col + 2, mu, n] += s1 + s2 + s3x4 + s4x4
        z[col + 3, mu, n] += s1 - s2 + s3x8 - s4x8 + s5


@numba.njit(cache=True)
def _down_at4(z, col, band):
    """band[col, a, :] = Σ_μ Aᵀ[a, μ] z[col, μ, :]: the transform along a column."""
    for n in range(z.shape[2]):
        s0 = z[col, 0, n]
        s1 = z[col, 1, n]
        s2 = z[col, 2, n]
        s3 = z[col, 3, n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        s4 = z[col, 4, n]
        s4x2 = s4 + s4
        s4x4 = s4x2 + s4x2
        s4x8 = s4x4 + s4x4
        s5 = z[col, 5, n]
        band[col, 0, n] = s0 + s1 + s2 + s3 + s4
        band[col, 1, n] = s1 - s2 + s3x2 - s4x2
        band[col, 2, n] = s1 + s2 + s3x4 + s4x4
        band[col, 3, n] = s1 - s2 + s3x8 - s4x8 + s5


@numba.njit(cache=True)
def _across_b4(values, row, c, t, z, mu, col):
    """z[col + b, μ, n] += Σ_ν B[b, ν] values[row + ν, c, t + n]: one tile of every image back."""
    for n in range(z.shape[2]):
        s0 = values[row + 0, c, t + n]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s0x5 = s0x4 + s0
        s1 = values[row + 1, c, t + n]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = values[row + 2, c, t + n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = values[row + 3, c, t + n]
        s3x2 = s3 + s3
        s4 = values[row + 4, c, t + n]
        s4x2 = s4 + s4
        s5 = values[row + 5, c, t + n]
        s5x2 = s5 + s5
        s5x4 = s5x2 + s5x2
        s5x5 = s5x4 + s5
        z[col + 0, mu, n] += s0x4
        z[col + 1, mu, n] += -s1x4 + s2x4 - s3x2 + s4x2 + s5x4
        z[col + 2, mu, n] += -s0x5 - s1x4 - s2x4 - s3 - s4
        z[col + 3, mu, n] += s1 - s2 + s3x2 - s4x2 - s5x5
        z[col + 4, mu, n] += s0 + s1 + s2 + s3 + s4
        z[col + 5, mu, n] += s5


@numba.njit(cache=True)
def _down_b4(z, col, band):
    """band[col, a, :] = Σ_μ B[a, μ] z[col, μ, :]: the transform along a column."""
    for n in range(z.shape[2]):
        s0 = z[col, 0, n]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s0x5 = s0x4 + s0
        s1 = z[col, 1, n]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = z[col, 2, n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = z[col, 3, n]
        s3x2 = s3 + s3
        s4 = z[col, 4, n]
        s4x2 = s4 + s4
        s5 = z[col, 5, n]
        s5x2 = s5 + s5
        s5x4 = s5x2 + s5x2
        s5x5 = s5x4 + s5
        band[col, 0, n] = s0x4
        band[col, 1, n] = -s1x4 + s2x4 - s3x2 + s4x2 + s5x4
        band[col, 2, n] = -s0x5 - s1x4 - s2x4 - s3 - s4
        band[col, 3, n] = s1 - s2 + s3x2 - s4x2 - s5x5
        band[col, 4, n] = s0 + s1 + s2 + s3 + s4
        band[col, 5, n] = s5


@numba.njit(cache=True)
def down_gather(kind, band, col, z):
    """``_down_X`` for kind 0 (Bᵀ of F(2, 3)), 1 (A), 4 (Bᵀ of F(4, 3)) or 5 (A)."""
    if kind == 0:
        _down_bt2(band, col, z)
    elif kind == 1:
        _down_a2(band, col, z)
    elif kind == 4:
        _down_bt4(band, col, z)
    else:
        _down_a4(band, col, z)


@numba.njit(cache=True)
def across_gather(kind, z, mu, col, out, row, c, t):
    """``_across_X`` for kind 0, 1, 4 or 5 (as ``down_gather``)."""
    if kind == 0:
        _across_bt2(z, mu, col, out, row, c, t)
    elif kind == 1:
        _across_a2(z, mu, col, out, row, c, t)
    elif kind == 4:
        _across_bt4(z, mu, col, out, row, c, t)
    else:
        _across_a4(z, mu, col, out, row, c, t)


@numba.njit(cache=True)
def across_scatter(kind, values, row, c, t, z, mu, col):
    """``_across_X`` for kind 2 (Aᵀ of F(2, 3)), 3 (B), 6 (Aᵀ of F(4, 3)) or 7 (B)."""
    if kind == 2:
        _across_at2(values, row, c, t, z, mu, col)
    elif kind == 3:
        _across_b2(values, row, c, t, z, mu, col)
    elif kind == 6:
        _across_at4(values, row, c, t, z, mu, col)
    else:
        _across_b4(values, row, c, t, z, mu, col)


@numba.njit(cache=True)
def down_scatter(kind, z, col, band):
    """``_down_X`` for kind 2, 3, 6 or 7 (as ``across_scatter``)."""
    if kind == 2:
        _down_at2(z, col, band)
    elif kind == 3:
        _down_b2(z, col, band)
    elif kind == 6:
        _down_at4(z, col, band)
    else:
        _down_b4(z, col, band)
