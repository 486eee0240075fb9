"""The written-out 1-D transforms of F(4, 3) (``winograd_rows`` has F(2, 3), the layout and
the reasons; split off to keep each module a readable size)."""

from __future__ import annotations

import numba


@numba.njit(cache=True)
def down_bt4(band, col, z):
    """z[μ, col, :] = Σ_a Bᵀ[μ, a] band[a, col, :]: the transform along a column."""
    count = band.shape[2]
    row0 = band[0, col]
    row1 = band[1, col]
    row2 = band[2, col]
    row3 = band[3, col]
    row4 = band[4, col]
    row5 = band[5, col]
    dst0 = z[0, col]
    dst1 = z[1, col]
    dst2 = z[2, col]
    dst3 = z[3, col]
    dst4 = z[4, col]
    dst5 = z[5, col]
    for n in range(count):
        s0 = row0[n]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s1 = row1[n]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = row2[n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s2x5 = s2x4 + s2
        s3 = row3[n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x5 = s3x4 + s3
        s4 = row4[n]
        s5 = row5[n]
        dst0[n] = s0x4 - s2x5 + s4
        dst1[n] = -s1x4 - s2x4 + s3 + s4
        dst2[n] = s1x4 - s2x4 - s3 + s4
        dst3[n] = -s1x2 - s2 + s3x2 + s4
        dst4[n] = s1x2 - s2 - s3x2 + s4
        dst5[n] = s1x4 - s3x5 + s5


@numba.njit(cache=True)
def across_bt4(z, mu, col, out, row, c, t):
    """out[row + ν, c, t + n] = Σ_b Bᵀ[ν, b] z[μ, col + b, n]: one tile of every image."""
    count = z.shape[2]
    row0 = z[mu, col + 0]
    row1 = z[mu, col + 1]
    row2 = z[mu, col + 2]
    row3 = z[mu, col + 3]
    row4 = z[mu, col + 4]
    row5 = z[mu, col + 5]
    dst0 = out[row + 0, c, t:t + count]
    dst1 = out[row + 1, c, t:t + count]
    dst2 = out[row + 2, c, t:t + count]
    dst3 = out[row + 3, c, t:t + count]
    dst4 = out[row + 4, c, t:t + count]
    dst5 = out[row + 5, c, t:t + count]
    for n in range(count):
        s0 = row0[n]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s1 = row1[n]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = row2[n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s2x5 = s2x4 + s2
        s3 = row3[n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x5 = s3x4 + s3
        s4 = row4[n]
        s5 = row5[n]
        dst0[n] = s0x4 - s2x5 + s4
        dst1[n] = -s1x4 - s2x4 + s3 + s4
        dst2[n] = s1x4 - s2x4 - s3 + s4
        dst3[n] = -s1x2 - s2 + s3x2 + s4
        dst4[n] = s1x2 - s2 - s3x2 + s4
        dst5[n] = s1x4 - s3x5 + s5


@numba.njit(cache=True)
def down_a4(band, col, z):
    """z[μ, col, :] = Σ_a A[μ, a] band[a, col, :]: the transform along a column."""
    count = band.shape[2]
    row0 = band[0, col]
    row1 = band[1, col]
    row2 = band[2, col]
    row3 = band[3, col]
    dst0 = z[0, col]
    dst1 = z[1, col]
    dst2 = z[2, col]
    dst3 = z[3, col]
    dst4 = z[4, col]
    dst5 = z[5, col]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s1x2 = s1 + s1
        s2 = row2[n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = row3[n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        dst0[n] = s0
        dst1[n] = s0 + s1 + s2 + s3
        dst2[n] = s0 - s1 + s2 - s3
        dst3[n] = s0 + s1x2 + s2x4 + s3x8
        dst4[n] = s0 - s1x2 + s2x4 - s3x8
        dst5[n] = s3


@numba.njit(cache=True)
def across_a4(z, mu, col, out, row, c, t):
    """out[row + ν, c, t + n] = Σ_b A[ν, b] z[μ, col + b, n]: one tile of every image."""
    count = z.shape[2]
    row0 = z[mu, col + 0]
    row1 = z[mu, col + 1]
    row2 = z[mu, col + 2]
    row3 = z[mu, col + 3]
    dst0 = out[row + 0, c, t:t + count]
    dst1 = out[row + 1, c, t:t + count]
    dst2 = out[row + 2, c, t:t + count]
    dst3 = out[row + 3, c, t:t + count]
    dst4 = out[row + 4, c, t:t + count]
    dst5 = out[row + 5, c, t:t + count]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s1x2 = s1 + s1
        s2 = row2[n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = row3[n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        dst0[n] = s0
        dst1[n] = s0 + s1 + s2 + s3
        dst2[n] = s0 - s1 + s2 - s3
        dst3[n] = s0 + s1x2 + s2x4 + s3x8
        dst4[n] = s0 - s1x2 + s2x4 - s3x8
        dst5[n] = s3


@numba.njit(cache=True)
def across_at4(values, row, c, t, z, mu, col):
    """z[μ, col+b, n] += Σ_ν Aᵀ[b, ν] values[row + ν, c, t + n]: one tile back."""
    count = z.shape[2]
    row0 = values[row + 0, c, t:t + count]
    row1 = values[row + 1, c, t:t + count]
    row2 = values[row + 2, c, t:t + count]
    row3 = values[row + 3, c, t:t + count]
    row4 = values[row + 4, c, t:t + count]
    row5 = values[row + 5, c, t:t + count]
    dst0 = z[mu, col + 0]
    dst1 = z[mu, col + 1]
    dst2 = z[mu, col + 2]
    dst3 = z[mu, col + 3]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s2 = row2[n]
        s3 = row3[n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        s4 = row4[n]
        s4x2 = s4 + s4
        s4x4 = s4x2 + s4x2
        s4x8 = s4x4 + s4x4
        s5 = row5[n]
        dst0[n] += s0 + s1 + s2 + s3 + s4
        dst1[n] += s1 - s2 + s3x2 - s4x2
        dst2[n] += s1 + s2 + s3x4 + s4x4
        dst3[n] += s1 - s2 + s3x8 - s4x8 + s5


@numba.njit(cache=True)
def down_at4(z, col, band):
    """band[a, col, :] = Σ_μ Aᵀ[a, μ] z[μ, col, :]: the transform along a column."""
    count = z.shape[2]
    row0 = z[0, col]
    row1 = z[1, col]
    row2 = z[2, col]
    row3 = z[3, col]
    row4 = z[4, col]
    row5 = z[5, col]
    dst0 = band[0, col]
    dst1 = band[1, col]
    dst2 = band[2, col]
    dst3 = band[3, col]
    for n in range(count):
        s0 = row0[n]
        s1 = row1[n]
        s2 = row2[n]
        s3 = row3[n]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        s4 = row4[n]
        s4x2 = s4 + s4
        s4x4 = s4x2 + s4x2
        s4x8 = s4x4 + s4x4
        s5 = row5[n]
        dst0[n] = s0 + s1 + s2 + s3 + s4
        dst1[n] = s1 - s2 + s3x2 - s4x2
        dst2[n] = s1 + s2 + s3x4 + s4x4
        dst3[n] = s1 - s2 + s3x8 - s4x8 + s5


@numba.njit(cache=True)
def across_b4(values, row, c, t, z, mu, col):
    """z[μ, col+b, n] += Σ_ν B[b, ν] values[row + ν, c, t + n]: one tile back."""
    count = z.shape[2]
    row0 = values[row + 0, c, t:t + count]
    row1 = values[row + 1, c, t:t + count]
    row2 = values[row + 2, c, t:t + count]
    row3 = values[row + 3, c, t:t + count]
    row4 = values[row + 4, c, t:t + count]
    row5 = values[row + 5, c, t:t + count]
    dst0 = z[mu, col + 0]
    dst1 = z[mu, col + 1]
    dst2 = z[mu, col + 2]
    dst3 = z[mu, col + 3]
    dst4 = z[mu, col + 4]
    dst5 = z[mu, col + 5]
    for n in range(count):
        s0 = row0[n]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s0x5 = s0x4 + s0
        s1 = row1[n]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = row2[n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = row3[n]
        s3x2 = s3 + s3
        s4 = row4[n]
        s4x2 = s4 + s4
        s5 = row5[n]
        s5x2 = s5 + s5
        s5x4 = s5x2 + s5x2
        s5x5 = s5x4 + s5
        dst0[n] += s0x4
        dst1[n] += -s1x4 + s2x4 - s3x2 + s4x2 + s5x4
        dst2[n] += -s0x5 - s1x4 - s2x4 - s3 - s4
        dst3[n] += s1 - s2 + s3x2 - s4x2 - s5x5
        dst4[n] += s0 + s1 + s2 + s3 + s4
        dst5[n] += s5


@numba.njit(cache=True)
def down_b4(z, col, band):
    """band[a, col, :] += Σ_μ B[a, μ] z[μ, col, :]: the transform along a column, added
    (∂L/∂x's α-row patches of neighbouring tile rows overlap)."""
    count = z.shape[2]
    row0 = z[0, col]
    row1 = z[1, col]
    row2 = z[2, col]
    row3 = z[3, col]
    row4 = z[4, col]
    row5 = z[5, col]
    dst0 = band[0, col]
    dst1 = band[1, col]
    dst2 = band[2, col]
    dst3 = band[3, col]
    dst4 = band[4, col]
    dst5 = band[5, col]
    for n in range(count):
        s0 = row0[n]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s0x5 = s0x4 + s0
        s1 = row1[n]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = row2[n]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = row3[n]
        s3x2 = s3 + s3
        s4 = row4[n]
        s4x2 = s4 + s4
        s5 = row5[n]
        s5x2 = s5 + s5
        s5x4 = s5x2 + s5x2
        s5x5 = s5x4 + s5
        dst0[n] += s0x4
        dst1[n] += -s1x4 + s2x4 - s3x2 + s4x2 + s5x4
        dst2[n] += -s0x5 - s1x4 - s2x4 - s3 - s4
        dst3[n] += s1 - s2 + s3x2 - s4x2 - s5x5
        dst4[n] += s0 + s1 + s2 + s3 + s4
        dst5[n] += s5
