"""Winograd's 1-D transforms F(m, 3) as explicit sums, one function per matrix and use,
written out from the matrices in ``winograd_transforms`` (and tested equal to them).

``_columns_X(s, d)``: d = X s, combining whole rows (contiguous, so the loop vectorises).
``_tiles_X``: X applied along each row of z to every tile's window z[n, m·tj : m·tj + r],
one value per tile into the (α², C, T) tile layout; ``_untiles_X`` is its adjoint, adding
each tile's values back into its window (overlapping windows add up).

Why written out: the generic loop with the matrix as data (coefficients skipped when zero)
spent 3–4× the GEMM's time in the transforms (conv_b, F(2×2): 7.4 ms against 3.1 ms);
constants fold, and multiples are sums (2s = s + s) so float32 stays float32 (numba
would promote an integer coefficient times a float32 to float64).
"""

from __future__ import annotations

import numba

@numba.njit(cache=True)
def _columns_bt2(s, d):
    """d = Bᵀ s: row k of d from the rows of s (F(2, 3))."""
    for j in range(s.shape[1]):
        s0 = s[0, j]
        s1 = s[1, j]
        s2 = s[2, j]
        s3 = s[3, j]
        d[0, j] = s0 - s2
        d[1, j] = s1 + s2
        d[2, j] = -s1 + s2
        d[3, j] = s1 - s3


@numba.njit(cache=True)
def _tiles_bt2(z, tiles_w, out, row0, c, t0):
    """out[row0 + k, c, t0 + n·tiles_w + tj] = (Bᵀ z[n, 2·tj :])[k]: one value per tile."""
    o0 = out[row0 + 0, c]
    o1 = out[row0 + 1, c]
    o2 = out[row0 + 2, c]
    o3 = out[row0 + 3, c]
    for n in range(z.shape[0]):
        t = t0 + n * tiles_w
        zn = z[n]
        for tj in range(tiles_w):
            col = 2 * tj
            s0 = zn[col + 0]
            s1 = zn[col + 1]
            s2 = zn[col + 2]
            s3 = zn[col + 3]
            o0[t + tj] = s0 - s2
            o1[t + tj] = s1 + s2
            o2[t + tj] = -s1 + s2
            o3[t + tj] = s1 - s3


@numba.njit(cache=True)
def _columns_a2(s, d):
    """d = A s: row k of d from the rows of s (F(2, 3))."""
    for j in range(s.shape[1]):
        s0 = s[0, j]
        s1 = s[1, j]
        d[0, j] = s0
        d[1, j] = s0 + s1
        d[2, j] = s0 - s1
        d[3, j] = -s1


@numba.njit(cache=True)
def _tiles_a2(z, tiles_w, out, row0, c, t0):
    """out[row0 + k, c, t0 + n·tiles_w + tj] = (A z[n, 2·tj :])[k]: one value per tile."""
    o0 = out[row0 + 0, c]
    o1 = out[row0 + 1, c]
    o2 = out[row0 + 2, c]
    o3 = out[row0 + 3, c]
    for n in range(z.shape[0]):
        t = t0 + n * tiles_w
        zn = z[n]
        for tj in range(tiles_w):
            col = 2 * tj
            s0 = zn[col + 0]
            s1 = zn[col + 1]
            o0[t + tj] = s0
            o1[t + tj] = s0 + s1
            o2[t + tj] = s0 - s1
            o3[t + tj] = -s1


@numba.njit(cache=True)
def _columns_at2(s, d):
    """d = Aᵀ s: row k of d from the rows of s (F(2, 3))."""
    for j in range(s.shape[1]):
        s0 = s[0, j]
        s1 = s[1, j]
        s2 = s[2, j]
        s3 = s[3, j]
        d[0, j] = s0 + s1 + s2
        d[1, j] = s1 - s2 - s3


@numba.njit(cache=True)
def _untiles_at2(tiles, row0, c, t0, tiles_w, z):
    """z[n, 2·tj + k] += (Aᵀ tiles[row0 :, c, tile])[k], tile = t0 + n·tiles_w + tj."""
    v0 = tiles[row0 + 0, c]
    v1 = tiles[row0 + 1, c]
    v2 = tiles[row0 + 2, c]
    v3 = tiles[row0 + 3, c]
    for n in range(z.shape[0]):
        t = t0 + n * tiles_w
        zn = z[n]
        for tj in range(tiles_w):
            col = 2 * tj
            s0 = v0[t + tj]
            s1 = v1[t + tj]
            s2 = v2[t + tj]
            s3 = v3[t + tj]
            zn[col + 0] += s0 + s1 + s2
            zn[col + 1] += s1 - s2 - s3


@numba.njit(cache=True)
def _columns_b2(s, d):
    """d = B s: row k of d from the rows of s (F(2, 3))."""
    for j in range(s.shape[1]):
        s0 = s[0, j]
        s1 = s[1, j]
        s2 = s[2, j]
        s3 = s[3, j]
        d[0, j] = s0
        d[1, j] = s1 - s2 + s3
        d[2, j] = -s0 + s1 + s2
        d[3, j] = -s3


@numba.njit(cache=True)
def _untiles_b2(tiles, row0, c, t0, tiles_w, z):
    """z[n, 2·tj + k] += (B tiles[row0 :, c, tile])[k], tile = t0 + n·tiles_w + tj."""
    v0 = tiles[row0 + 0, c]
    v1 = tiles[row0 + 1, c]
    v2 = tiles[row0 + 2, c]
    v3 = tiles[row0 + 3, c]
    for n in range(z.shape[0]):
        t = t0 + n * tiles_w
        zn = z[n]
        for tj in range(tiles_w):
            col = 2 * tj
            s0 = v0[t + tj]
            s1 = v1[t + tj]
            s2 = v2[t + tj]
            s3 = v3[t + tj]
            zn[col + 0] += s0
            zn[col + 1] += s1 - s2 + s3
            zn[col + 2] += -s0 + s1 + s2
            zn[col + 3] += -s3


@numba.njit(cache=True)
def _columns_bt4(s, d):
    """d = Bᵀ s: row k of d from the rows of s (F(4, 3))."""
    for j in range(s.shape[1]):
        s0 = s[0, j]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s1 = s[1, j]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = s[2, j]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s2x5 = s2x4 + s2
        s3 = s[3, j]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x5 = s3x4 + s3
        s4 = s[4, j]
        s5 = s[5, j]
        d[0, j] = s0x4 - s2x5 + s4
        d[1, j] = -s1x4 - s2x4 + s3 + s4
        d[2, j] = s1x4 - s2x4 - s3 + s4
        d[3, j] = -s1x2 - s2 + s3x2 + s4
        d[4, j] = s1x2 - s2 - s3x2 + s4
        d[5, j] = s1x4 - s3x5 + s5


@numba.njit(cache=True)
def _tiles_bt4(z, tiles_w, out, row0, c, t0):
    """out[row0 + k, c, t0 + n·tiles_w + tj] = (Bᵀ z[n, 4·tj :])[k]: one value per tile."""
    o0 = out[row0 + 0, c]
    o1 = out[row0 + 1, c]
    o2 = out[row0 + 2, c]
    o3 = out[row0 + 3, c]
    o4 = out[row0 + 4, c]
    o5 = out[row0 + 5, c]
    for n in range(z.shape[0]):
        t = t0 + n * tiles_w
        zn = z[n]
        for tj in range(tiles_w):
            col = 4 * tj
            s0 = zn[col + 0]
            s0x2 = s0 + s0
            s0x4 = s0x2 + s0x2
            s1 = zn[col + 1]
            s1x2 = s1 + s1
            s1x4 = s1x2 + s1x2
            s2 = zn[col + 2]
            s2x2 = s2 + s2
            s2x4 = s2x2 + s2x2
            s2x5 = s2x4 + s2
            s3 = zn[col + 3]
            s3x2 = s3 + s3
            s3x4 = s3x2 + s3x2
            s3x5 = s3x4 + s3
            s4 = zn[col + 4]
            s5 = zn[col + 5]
            o0[t + tj] = s0x4 - s2x5 + s4
            o1[t + tj] = -s1x4 - s2x4 + s3 + s4
            o2[t + tj] = s1x4 - s2x4 - s3 + s4
            o3[t + tj] = -s1x2 - s2 + s3x2 + s4
            o4[t + tj] = s1x2 - s2 - s3x2 + s4
            o5[t + tj] = s1x4 - s3x5 + s5


@numba.njit(cache=True)
def _columns_a4(s, d):
    """d = A s: row k of d from the rows of s (F(4, 3))."""
    for j in range(s.shape[1]):
        s0 = s[0, j]
        s1 = s[1, j]
        s1x2 = s1 + s1
        s2 = s[2, j]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = s[3, j]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        d[0, j] = s0
        d[1, j] = s0 + s1 + s2 + s3
        d[2, j] = s0 - s1 + s2 - s3
        d[3, j] = s0 + s1x2 + s2x4 + s3x8
        d[4, j] = s0 - s1x2 + s2x4 - s3x8
        d[5, j] = s3


@numba.njit(cache=True)
def _tiles_a4(z, tiles_w, out, row0, c, t0):
    """out[row0 + k, c, t0 + n·tiles_w + tj] = (A z[n, 4·tj :])[k]: one value per tile."""
    o0 = out[row0 + 0, c]
    o1 = out[row0 + 1, c]
    o2 = out[row0 + 2, c]
    o3 = out[row0 + 3, c]
    o4 = out[row0 + 4, c]
    o5 = out[row0 + 5, c]
    for n in range(z.shape[0]):
        t = t0 + n * tiles_w
        zn = z[n]
        for tj in range(tiles_w):
            col = 4 * tj
            s0 = zn[col + 0]
            s1 = zn[col + 1]
            s1x2 = s1 + s1
            s2 = zn[col + 2]
            s2x2 = s2 + s2
            s2x4 = s2x2 + s2x2
            s3 = zn[col + 3]
            s3x2 = s3 + s3
            s3x4 = s3x2 + s3x2
            s3x8 = s3x4 + s3x4
            o0[t + tj] = s0
            o1[t + tj] = s0 + s1 + s2 + s3
            o2[t + tj] = s0 - s1 + s2 - s3
            o3[t + tj] = s0 + s1x2 + s2x4 + s3x8
            o4[t + tj] = s0 - s1x2 + s2x4 - s3x8
            o5[t + tj] = s3


@numba.njit(cache=True)
def _columns_at4(s, d):
    """d = Aᵀ s: row k of d from the rows of s (F(4, 3))."""
    for j in range(s.shape[1]):
        s0 = s[0, j]
        s1 = s[1, j]
        s2 = s[2, j]
        s3 = s[3, j]
        s3x2 = s3 + s3
        s3x4 = s3x2 + s3x2
        s3x8 = s3x4 + s3x4
        s4 = s[4, j]
        s4x2 = s4 + s4
        s4x4 = s4x2 + s4x2
        s4x8 = s4x4 + s4x4
        s5 = s[5, j]
        d[0, j] = s0 + s1 + s2 + s3 + s4
        d[1, j] = s1 - s2 + s3x2 - s4x2
        d[2, j] = s1 + s2 + s3x4 + s4x4
        d[3, j] = s1 - s2 + s3x8 - s4x8 + s5


@numba.njit(cache=True)
def _untiles_at4(tiles, row0, c, t0, tiles_w, z):
    """z[n, 4·tj + k] += (Aᵀ tiles[row0 :, c, tile])[k], tile = t0 + n·tiles_w + tj."""
    v0 = tiles[row0 + 0, c]
    v1 = tiles[row0 + 1, c]
    v2 = tiles[row0 + 2, c]
    v3 = tiles[row0 + 3, c]
    v4 = tiles[row0 + 4, c]
    v5 = tiles[row0 + 5, c]
    for n in range(z.shape[0]):
        t = t0 + n * tiles_w
        zn = z[n]
        for tj in range(tiles_w):
            col = 4 * tj
            s0 = v0[t + tj]
            s1 = v1[t + tj]
            s2 = v2[t + tj]
            s3 = v3[t + tj]
            s3x2 = s3 + s3
            s3x4 = s3x2 + s3x2
            s3x8 = s3x4 + s3x4
            s4 = v4[t + tj]
            s4x2 = s4 + s4
            s4x4 = s4x2 + s4x2
            s4x8 = s4x4 + s4x4
            s5 = v5[t + tj]
            zn[col + 0] += s0 + s1 + s2 + s3 + s4
            zn[col + 1] += s1 - s2 + s3x2 - s4x2
            zn[col + 2] += s1 + s2 + s3x4 + s4x4
            zn[col + 3] += s1 - s2 + s3x8 - s4x8 + s5


@numba.njit(cache=True)
def _columns_b4(s, d):
    """d = B s: row k of d from the rows of s (F(4, 3))."""
    for j in range(s.shape[1]):
        s0 = s[0, j]
        s0x2 = s0 + s0
        s0x4 = s0x2 + s0x2
        s0x5 = s0x4 + s0
        s1 = s[1, j]
        s1x2 = s1 + s1
        s1x4 = s1x2 + s1x2
        s2 = s[2, j]
        s2x2 = s2 + s2
        s2x4 = s2x2 + s2x2
        s3 = s[3, j]
        s3x2 = s3 + s3
        s4 = s[4, j]
        s4x2 = s4 + s4
        s5 = s[5, j]
        s5x2 = s5 + s5
        s5x4 = s5x2 + s5x2
        s5x5 = s5x4 + s5
        d[0, j] = s0x4
        d[1, j] = -s1x4 + s2x4 - s3x2 + s4x2 + s5x4
        d[2, j] = -s0x5 - s1x4 - s2x4 - s3 - s4
        d[3, j] = s1 - s2 + s3x2 - s4x2 - s5x5
        d[4, j] = s0 + s1 + s2 + s3 + s4
        d[5, j] = s5


@numba.njit(cache=True)
def _untiles_b4(tiles, row0, c, t0, tiles_w, z):
    """z[n, 4·tj + k] += (B tiles[row0 :, c, tile])[k], tile = t0 + n·tiles_w + tj."""
    v0 = tiles[row0 + 0, c]
    v1 = tiles[row0 + 1, c]
    v2 = tiles[row0 + 2, c]
    v3 = tiles[row0 + 3, c]
    v4 = tiles[row0 + 4, c]
    v5 = tiles[row0 + 5, c]
    for n in range(z.shape[0]):
        t = t0 + n * tiles_w
        zn = z[n]
        for tj in range(tiles_w):
            col = 4 * tj
            s0 = v0[t + tj]
            s0x2 = s0 + s0
            s0x4 = s0x2 + s0x2
            s0x5 = s0x4 + s0
            s1 = v1[t + tj]
            s1x2 = s1 + s1
            s1x4 = s1x2 + s1x2
            s2 = v2[t + tj]
            s2x2 = s2 + s2
            s2x4 = s2x2 + s2x2
            s3 = v3[t + tj]
            s3x2 = s3 + s3
            s4 = v4[t + tj]
            s4x2 = s4 + s4
            s5 = v5[t + tj]
            s5x2 = s5 + s5
            s5x4 = s5x2 + s5x2
            s5x5 = s5x4 + s5
            zn[col + 0] += s0x4
            zn[col + 1] += -s1x4 + s2x4 - s3x2 + s4x2 + s5x4
            zn[col + 2] += -s0x5 - s1x4 - s2x4 - s3 - s4
            zn[col + 3] += s1 - s2 + s3x2 - s4x2 - s5x5
            zn[col + 4] += s0 + s1 + s2 + s3 + s4
            zn[col + 5] += s5


@numba.njit(cache=True)
def columns(kind, s, d):
    """d = X s for the matrix ``kind`` names: 0–3 Bᵀ, A, Aᵀ, B of F(2, 3); 4–7 of F(4, 3)."""
    if kind == 0:
        _columns_bt2(s, d)
    elif kind == 1:
        _columns_a2(s, d)
    elif kind == 2:
        _columns_at2(s, d)
    elif kind == 3:
        _columns_b2(s, d)
    elif kind == 4:
        _columns_bt4(s, d)
    elif kind == 5:
        _columns_a4(s, d)
    elif kind == 6:
        _columns_at4(s, d)
    else:
        _columns_b4(s, d)


@numba.njit(cache=True)
def tiles(kind, z, tiles_w, out, row0, c, t0):
    """``_tiles_X`` for kind 0 (Bᵀ, F(2, 3)), 1 (A), 4 (Bᵀ, F(4, 3)) or 5 (A)."""
    if kind == 0:
        _tiles_bt2(z, tiles_w, out, row0, c, t0)
    elif kind == 1:
        _tiles_a2(z, tiles_w, out, row0, c, t0)
    elif kind == 4:
        _tiles_bt4(z, tiles_w, out, row0, c, t0)
    else:
        _tiles_a4(z, tiles_w, out, row0, c, t0)


@numba.njit(cache=True)
def untiles(kind, values, row0, c, t0, tiles_w, z):
    """``_untiles_X`` for kind 2 (Aᵀ, F(2, 3)), 3 (B), 6 (Aᵀ, F(4, 3)) or 7 (B)."""
    if kind == 2:
        _untiles_at2(values, row0, c, t0, tiles_w, z)
    elif kind == 3:
        _untiles_b2(values, row0, c, t0, tiles_w, z)
    elif kind == 6:
        _untiles_at4(values, row0, c, t0, tiles_w, z)
    else:
        _untiles_b4(values, row0, c, t0, tiles_w, z)
