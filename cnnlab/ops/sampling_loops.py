"""Compiled loops of ``grid_sample`` (``cnnlab.ops.sampling``): passes over each image's
output pixels, so that the backward's scatter into ∂L/∂x is a plain loop, not ``np.add.at``
(slow: it cannot vectorise over repeated indices).

Each kernel takes an image range [start, stop): images never share an output or a
gradient, so ranges run on separate threads (``nogil``) with identical results.

Bilinear, per image: a branch-free pass the compiler vectorises finds each output's 2×2
block in a zero-padded copy of the input plane (the clip keeps every point inside it, so
no read needs a mask or a branch), then the reads (scalar: there are no vector loads
through an index) fetch the block as two *pairs* of neighbours (complex numbers of the
input's dtype, built once per plane), and a vectorised pass blends them. The forward keeps
what the backward needs: ∂y/∂grid, computed from the same reads, and the taps (the block
and the fractions t, s). So the backward reads neither x nor the grid: ∂L/∂grid is one
multiplication by δ, ∂L/∂x a scatter of two pair-adds per output. Everything is computed
in the input's dtype (float32 stays float32), as PyTorch does; nearest's coordinates in
float64. Measured speeds: benchmarks/README.md, "grid_sample (issue 15)".

The formulas are in ``sampling.GridSampleFunction``'s docstring; the NumPy reference
(``sampling.grid_sample_reference`` and its backward) is tested against these.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _scale(size, align_corners):
    """(a, b) with pixel coordinate = a·g + b: a = (size − 1)/2 (align_corners) or size/2,
    b = (size − 1)/2 either way."""
    return ((size - 1) / 2.0 if align_corners else size / 2.0), (size - 1) / 2.0


@njit(cache=True, nogil=True, inline="always")
def _source(g, a, b, size, border):
    """(pixel coordinate, d coordinate / d g) of the normalised coordinate g, clipped to
    [0, size − 1] under border padding (gradient 0 there, as PyTorch)."""
    coord = g * a + b
    if border:
        if coord <= 0.0:
            return 0.0, 0.0
        if coord >= size - 1:
            return float(size - 1), 0.0
    return coord, a


@njit(cache=True, nogil=True, inline="always")
def _clamp(v, low, high):
    """v clipped to [low, high]; NaN gives low, so that a read index is always inside."""
    # written out: the comparisons, not min/max, say what NaN gives
    v = v if v > low else low  # noqa: FURB136
    return v if v < high else high  # noqa: FURB136


@njit(cache=True, nogil=True, inline="always")
def _taps(g, padded_width, axes, zeros, outside, index, fractions, slopes):
    """The taps of one image's output pixels k (g: (K, 2) normalised coordinates), in a
    zero-padded copy of the input plane (one pixel before, two after, along each axis).

    u = a_x·g_x + b_x is clipped to [low, high] (zeros: [−1, W], so that a point farther
    out still reads only padding; border: [0, W − 1]); p₀ = ⌊u⌋, t = u − p₀, likewise q₀, s
    from v. index[k]: the flat padded index of (q₀, p₀); fractions[0..1][k]: t, s;
    slopes[0..1][k]: ∂u/∂g_x, ∂v/∂g_y, 0 where the clip moved the point. Under zeros
    padding a point outside [−1, W) × [−1, H) reads only padding (value and slopes 0): its
    index is then the plane's last block, all padding, which the scatter skips. Every read
    is inside the padded plane; branch-free selects on 1-D rows: the compiler vectorises it.
    """
    (ax, bx, u_low, u_from, u_high), (ay, by, v_low, v_from, v_high) = axes
    t_row, s_row = fractions[0], fractions[1]
    slope_u_row, slope_v_row = slopes[0], slopes[1]
    real = t_row.dtype.type
    zero, one = real(0), real(1)
    flat = g.reshape(-1)
    for k in range(g.shape[0]):
        u = flat[2 * k] * ax + bx
        v = flat[2 * k + 1] * ay + by
        # 0, or NaN where the point is NaN or infinite: added to t and s, so that such a
        # point gives NaN, as in PyTorch, after the clip made its reads safe
        not_finite = (u - u) + (v - v)
        inside = (u > u_from) & (u < u_high) & (v > v_from) & (v < v_high)
        slope_u_row[k] = ax if (u > u_from) & (u < u_high) else zero
        slope_v_row[k] = ay if (v > v_from) & (v < v_high) else zero
        u = _clamp(u, u_low, u_high)
        v = _clamp(v, v_low, v_high)
        p0, q0 = np.floor(u), np.floor(v)
        t_row[k], s_row[k] = (u - p0) + not_finite, (v - q0) + not_finite
        # + 1: the padding's first column and row
        at = np.uint32(q0 + one) * np.uint32(padded_width) + np.uint32(p0 + one)
        index[k] = outside if zeros & (not inside) else at


@njit(cache=True, nogil=True, inline="always")
def _rows(count, rows, dtype):
    """``rows`` arrays of ``count`` elements, each its own allocation: rows of one 2-D array
    would alias as far as the compiler can tell, and the loops over them would not vectorise."""
    return [np.empty(count, dtype) for _ in range(rows)]


@njit(cache=True, nogil=True, inline="always")
def _outside(height, width):
    """The padded index of the plane's last 2×2 block (rows H + 1, H + 2, columns W + 1,
    W + 2): all padding, read by points outside the image under zeros padding."""
    return np.uint32((height + 1) * (width + 3) + width + 1)


@njit(cache=True, nogil=True, inline="always")
def _fill_pairs(plane, pairs, padded_width):
    """pairs[i] = (P[i], P[i + 1]) for the plane P zero-padded with one column and row before
    the image and two after: a read of one pair is a read of two neighbours, so a 2×2 block
    takes two reads. Only the image's rows are written (the caller keeps the rest 0), each
    straight from the plane (through a padded copy is slower: one more plane in the cache)."""
    height, width = plane.shape
    for r in range(height):
        src = plane[r]
        row = pairs[(r + 1) * padded_width:(r + 2) * padded_width]
        zero = src[0] - src[0]
        row[0] = complex(zero, src[0])
        for j in range(1, width):
            row[j] = complex(src[j - 1], src[j])
        row[width] = complex(src[width - 1], zero)


@njit(cache=True, nogil=True)
def bilinear_forward(x, grid, out, jacobian, kept_index, kept_fractions, axes, zeros, pair,
                     start, stop):
    """out[n, c] = the bilinear blend of each output's 2×2 block of x[n, c], images
    [start, stop); ``axes``: per axis (a, b, low, from, high) of ``_taps``, in the dtype to
    compute in; ``pair``: the complex dtype of two of those. Kept for the backward where
    given full size rather than empty: ``jacobian`` (N, C, K, 2) gets (∂y/∂g_x, ∂y/∂g_y) of
    every output, ∂y/∂u = (1 − s)(x₀₁ − x₀₀) + s(x₁₁ − x₁₀) and
    ∂y/∂v = (1 − t)(x₁₀ − x₀₀) + t(x₁₁ − x₀₁) times ∂u/∂g_x, ∂v/∂g_y; ``kept_index`` (N, K)
    and ``kept_fractions`` (t, s: 2 of (N, K)) the taps."""
    batch, channels, height, width = x.shape
    count = grid.shape[1] * grid.shape[2]
    g = grid.reshape(batch, count, 2)
    o = out.reshape(batch, channels, count)
    with_jacobian, keep_taps = jacobian.size > 0, kept_index.size > 0
    one = x.dtype.type(1)  # not the literal 1, which would turn float32 arithmetic to float64
    padded_width = width + 3
    pairs = np.zeros((height + 3) * padded_width, pair)  # the padding stays 0
    down = np.uint64(padded_width)
    outside = _outside(height, width)
    index = np.empty(count, np.uint32)
    fractions, slopes = _rows(count, 2, x.dtype), _rows(count, 2, x.dtype)
    slope_u, slope_v = slopes[0], slopes[1]
    top, bottom = np.empty(count, pair), np.empty(count, pair)
    for n in range(start, stop):
        if keep_taps:
            index = kept_index[n]
            fractions = [kept_fractions[0][n], kept_fractions[1][n]]
        _taps(g[n], padded_width, axes, zeros, outside, index, fractions, slopes)
        t, s = fractions[0], fractions[1]
        for c in range(channels):
            _fill_pairs(x[n, c], pairs, padded_width)
            for k in range(count):  # the gathers: scalar (no vector loads through an index)
                i = np.uint64(index[k])
                top[k], bottom[k] = pairs[i], pairs[i + down]
            dst = o[n, c]
            if not with_jacobian:
                for k in range(count):
                    upper = (one - t[k]) * top[k].real + t[k] * top[k].imag
                    lower = (one - t[k]) * bottom[k].real + t[k] * bottom[k].imag
                    dst[k] = (one - s[k]) * upper + s[k] * lower
                continue
            jac = jacobian[n, c].reshape(-1)
            for k in range(count):
                upper = (one - t[k]) * top[k].real + t[k] * top[k].imag
                lower = (one - t[k]) * bottom[k].real + t[k] * bottom[k].imag
                dst[k] = (one - s[k]) * upper + s[k] * lower
                jac[2 * k] = slope_u[k] * ((one - s[k]) * (top[k].imag - top[k].real)
                                           + s[k] * (bottom[k].imag - bottom[k].real))
                jac[2 * k + 1] = slope_v[k] * (lower - upper)


@njit(cache=True, nogil=True)
def bilinear_grid_backward(grad, jacobian, dgrid, start, stop):
    """dgrid[n, k] = Σ_c δ[n, c, k] · (∂y/∂g_x, ∂y/∂g_y)[n, c, k] from the forward's
    ``jacobian`` (N, C, K, 2), images [start, stop)."""
    batch, channels = grad.shape[:2]
    count = dgrid.shape[1] * dgrid.shape[2]
    delta = grad.reshape(batch, channels, count)
    dg = dgrid.reshape(batch, 2 * count)
    for n in range(start, stop):
        row = dg[n]
        if channels == 0:
            row[:] = 0
            continue
        d, jac = delta[n, 0], jacobian[n, 0].reshape(-1)
        for k in range(count):
            row[2 * k] = d[k] * jac[2 * k]
            row[2 * k + 1] = d[k] * jac[2 * k + 1]
        for c in range(1, channels):
            d, jac = delta[n, c], jacobian[n, c].reshape(-1)
            for k in range(count):
                row[2 * k] += d[k] * jac[2 * k]
                row[2 * k + 1] += d[k] * jac[2 * k + 1]


@njit(cache=True, nogil=True)
def bilinear_input_backward(grad, dx, kept_index, kept_fractions, pair, start, stop):
    """dx[n, c] = the scatter-add of δ[n, c] × each tap's weight into its 2×2 block, from the
    forward's taps, images [start, stop).

    The adds go to pairs (as in ``_fill_pairs``: pair i holds pixels i and i + 1 of the
    padded plane), two per output instead of four; then pixel i = pair i's first part +
    pair i − 1's second. Outputs whose block is all padding are skipped: they share one
    block, and their adds would queue on it."""
    batch, channels, height, width = dx.shape
    count = kept_index.shape[1]
    delta = grad.reshape(batch, channels, count)
    one = dx.dtype.type(1)
    padded_width = width + 3
    pairs = np.empty((height + 3) * padded_width, pair)
    down = np.uint64(padded_width)
    outside = _outside(height, width)
    for n in range(start, stop):
        index, t, s = kept_index[n], kept_fractions[0][n], kept_fractions[1][n]
        for c in range(channels):
            d = delta[n, c]
            pairs[:] = 0
            for k in range(count):  # blocks overlap: a scatter, in order
                if index[k] == outside:
                    continue
                i = np.uint64(index[k])
                upper, lower = d[k] * (one - s[k]), d[k] * s[k]
                pairs[i] += complex(upper * (one - t[k]), upper * t[k])
                pairs[i + down] += complex(lower * (one - t[k]), lower * t[k])
            target = dx[n, c]
            for r in range(height):
                row = pairs[(r + 1) * padded_width:(r + 2) * padded_width]
                dst = target[r]
                for j in range(width):
                    dst[j] = row[j + 1].real + row[j].imag


@njit(cache=True, nogil=True, inline="always")
def _nearest(point, ax, bx, ay, by, width, height, border):
    """(column, row, inside) of the pixel nearest to a grid point (x, y); round half to even,
    as PyTorch's nearbyint."""
    ix, _ = _source(point[0], ax, bx, width, border)
    iy, _ = _source(point[1], ay, by, height, border)
    px = round(ix)
    py = round(iy)
    return px, py, 0 <= px < width and 0 <= py < height


@njit(cache=True, nogil=True)
def nearest_forward(x, grid, out, align_corners, border, start, stop):
    _, channels, height, width = x.shape
    out_h, out_w = grid.shape[1], grid.shape[2]
    ax, bx = _scale(width, align_corners)
    ay, by = _scale(height, align_corners)
    for n in range(start, stop):
        for i in range(out_h):
            for j in range(out_w):
                px, py, inside = _nearest(grid[n, i, j], ax, bx, ay, by, width, height, border)
                for c in range(channels):
                    out[n, c, i, j] = x[n, c, py, px] if inside else 0.0


@njit(cache=True, nogil=True)
def nearest_backward(grid, grad, dx, align_corners, border, start, stop):
    """dx (zeroed by the caller) += δ at the nearest pixel; ∂L/∂grid is 0 (piecewise constant)."""
    _, channels, height, width = dx.shape
    out_h, out_w = grid.shape[1], grid.shape[2]
    ax, bx = _scale(width, align_corners)
    ay, by = _scale(height, align_corners)
    for n in range(start, stop):
        for i in range(out_h):
            for j in range(out_w):
                px, py, inside = _nearest(grid[n, i, j], ax, bx, ay, by, width, height, border)
                if inside:
                    for c in range(channels):
                        dx[n, c, py, px] += grad[n, c, i, j]
