"""Winograd's 1-D transforms F(m, 3) as explicit sums, one function per matrix and use,
written out from the matrices in ``winograd_transforms`` (and tested equal to them).

The kernels keep one channel of a range of images as band[row, column, image] (a
zero-padded frame, images last); every function here runs one loop over the images,
whose values are contiguous in both operands, so it vectorises. ``_down_X``: X along one
column (the rows of the patch); ``_across_X``: X along the columns of one tile (its
window of columns), for every image at once. For the adjoint kinds (Aᵀ, B) ``_across_X``
adds a tile's values back into its window, where neighbouring windows overlap.

Why written out: a loop with the matrix as data (coefficients skipped when zero) spent
3–4× the GEMM's time in the transforms (conv_b, F(2×2): 7.4 ms against 3.1 ms); here the
constants fold, and multiples are sums (2s = s + s), so float32 stays float32 (numba
would promote an integer coefficient times a float32 to float64). Each operand row is
taken as a 1-D view before the loop over the images: indexing the 3-D arrays inside it
left part of the loop scalar (across step of Bᵀ, F(4×4), 32–128 images: 0.95–1.04 →
0.45–0.80 ns per value written).
"""

from __future__ import annotations

import numba

from cnnlab.ops.conv_routes import winograd_rows_f4 as f4


@numba.njit(cache=True)
def _down_bt2(band, col, z):
    """z[μ, col, :] = Σ_a Bᵀ[μ, a] band[a, col, :]: the transform along a column."""
    count = band.shape[2]
    row0 = band[0, col]
    row1 = band[1, col]
    row2 = band[2, col]
    row3 = band[3, col]
    dst0 = z[0, col]
    dst1 = z[1, col]
    dst2 = z[2, col]
    dst3 = z[3, col]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s2 = row2[n]
        s3 = row3[n]
        dst0[n] = s0 - s2
        dst1[n] = s1 + s2
        dst2[n] = -s1 + s2
        dst3[n] = s1 - s3


@numba.njit(cache=True)
def _across_bt2(z, mu, col, out, row, c, t):
    """out[row + ν, c, t + n] = Σ_b Bᵀ[ν, b] z[μ, col + b, n]: one tile of every image."""
    count = z.shape[2]
    row0 = z[mu, col + 0]
    row1 = z[mu, col + 1]
    row2 = z[mu, col + 2]
    row3 = z[mu, col + 3]
    dst0 = out[row + 0, c, t:t + count]
    dst1 = out[row + 1, c, t:t + count]
    dst2 = out[row + 2, c, t:t + count]
    dst3 = out[row + 3, c, t:t + count]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s2 = row2[n]
        s3 = row3[n]
        dst0[n] = s0 - s2
        dst1[n] = s1 + s2
        dst2[n] = -s1 + s2
        dst3[n] = s1 - s3


@numba.njit(cache=True)
def _down_a2(band, col, z):
    """z[μ, col, :] = Σ_a A[μ, a] band[a, col, :]: the transform along a column."""
    count = band.shape[2]
    row0 = band[0, col]
    row1 = band[1, col]
    dst0 = z[0, col]
    dst1 = z[1, col]
    dst2 = z[2, col]
    dst3 = z[3, col]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        dst0[n] = s0
        dst1[n] = s0 + s1
        dst2[n] = s0 - s1
        dst3[n] = -s1


@numba.njit(cache=True)
def _across_a2(z, mu, col, out, row, c, t):
    """out[row + ν, c, t + n] = Σ_b A[ν, b] z[μ, col + b, n]: one tile of every image."""
    count = z.shape[2]
    row0 = z[mu, col + 0]
    row1 = z[mu, col + 1]
    dst0 = out[row + 0, c, t:t + count]
    dst1 = out[row + 1, c, t:t + count]
    dst2 = out[row + 2, c, t:t + count]
    dst3 = out[row + 3, c, t:t + count]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        dst0[n] = s0
        dst1[n] = s0 + s1
        dst2[n] = s0 - s1
        dst3[n] = -s1


@numba.njit(cache=True)
def _across_at2(values, row, c, t, z, mu, col):
    """z[μ, col+b, n] += Σ_ν Aᵀ[b, ν] values[row + ν, c, t + n]: one tile back."""
    count = z.shape[2]
    row0 = values[row + 0, c, t:t + count]
    row1 = values[row + 1, c, t:t + count]
    row2 = values[row + 2, c, t:t + count]
    row3 = values[row + 3, c, t:t + count]
    dst0 = z[mu, col + 0]
    dst1 = z[mu, col + 1]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s2 = row2[n]
        s3 = row3[n]
        dst0[n] += s0 + s1 + s2
        dst1[n] += s1 - s2 - s3


@numba.njit(cache=True)
def _down_at2(z, col, band):
    """band[a, col, :] = Σ_μ Aᵀ[a, μ] z[μ, col, :]: the transform along a column."""
    count = z.shape[2]
    row0 = z[0, col]
    row1 = z[1, col]
    row2 = z[2, col]
    row3 = z[3, col]
    dst0 = band[0, col]
    dst1 = band[1, col]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s2 = row2[n]
        s3 = row3[n]
        dst0[n] = s0 + s1 + s2
        dst1[n] = s1 - s2 - s3


@numba.njit(cache=True)
def _across_b2(values, row, c, t, z, mu, col):
    """z[μ, col+b, n] += Σ_ν B[b, ν] values[row + ν, c, t + n]: one tile back."""
    count = z.shape[2]
    row0 = values[row + 0, c, t:t + count]
    row1 = values[row + 1, c, t:t + count]
    row2 = values[row + 2, c, t:t + count]
    row3 = values[row + 3, c, t:t + count]
    dst0 = z[mu, col + 0]
    dst1 = z[mu, col + 1]
    dst2 = z[mu, col + 2]
    dst3 = z[mu, col + 3]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s2 = row2[n]
        s3 = row3[n]
        dst0[n] += s0
        dst1[n] += s1 - s2 + s3
        dst2[n] += -s0 + s1 + s2
        dst3[n] += -s3


@numba.njit(cache=True)
def _down_b2(z, col, band):
    """band[a, col, :] += Σ_μ B[a, μ] z[μ, col, :]: the transform along a column, added
    (∂L/∂x's α-row patches of neighbouring tile rows overlap)."""
    count = z.shape[2]
    row0 = z[0, col]
    row1 = z[1, col]
    row2 = z[2, col]
    row3 = z[3, col]
    dst0 = band[0, col]
    dst1 = band[1, col]
    dst2 = band[2, col]
    dst3 = band[3, col]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s2 = row2[n]
        s3 = row3[n]
        dst0[n] += s0
        dst1[n] += s1 - s2 + s3
        dst2[n] += -s0 + s1 + s2
        dst3[n] += -s3


@numba.njit(cache=True)
def down_gather(kind, band, col, z):
    """``_down_X`` for kind 0 (Bᵀ of F(2, 3)), 1 (A), 4 (Bᵀ of F(4, 3)) or 5 (A)."""
    if kind == 0:
        _down_bt2(band, col, z)
    elif kind == 1:
        _down_a2(band, col, z)
    elif kind == 4:
        f4.down_bt4(band, col, z)
    else:
        f4.down_a4(band, col, z)


@numba.njit(cache=True)
def across_gather(kind, z, mu, col, out, row, c, t):
    """``_across_X`` for kind 0, 1, 4 or 5 (as ``down_gather``)."""
    if kind == 0:
        _across_bt2(z, mu, col, out, row, c, t)
    elif kind == 1:
        _across_a2(z, mu, col, out, row, c, t)
    elif kind == 4:
        f4.across_bt4(z, mu, col, out, row, c, t)
    else:
        f4.across_a4(z, mu, col, out, row, c, t)


@numba.njit(cache=True)
def across_scatter(kind, values, row, c, t, z, mu, col):
    """``_across_X`` for kind 2 (Aᵀ of F(2, 3)), 3 (B), 6 (Aᵀ of F(4, 3)) or 7 (B)."""
    if kind == 2:
        _across_at2(values, row, c, t, z, mu, col)
    elif kind == 3:
        _across_b2(values, row, c, t, z, mu, col)
    elif kind == 6:
        f4.across_at4(values, row, c, t, z, mu, col)
    else:
        f4.across_b4(values, row, c, t, z, mu, col)


@numba.njit(cache=True)
def down_scatter(kind, z, col, band):
    """``_down_X`` for kind 2, 3, 6 or 7 (as ``across_scatter``)."""
    if kind == 2:
        _down_at2(z, col, band)
    elif kind == 3:
        _down_b2(z, col, band)
    elif kind == 6:
        f4.down_at4(z, col, band)
    else:
        f4.down_b4(z, col, band)
