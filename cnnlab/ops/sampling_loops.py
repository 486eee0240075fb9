"""Compiled loops of ``grid_sample`` (``cnnlab.ops.sampling``): one pass over the output
pixels per image, the channels innermost, so that the backward's scatter into ∂L/∂x needs
no ``np.add.at`` (which is slow: it cannot vectorise over repeated indices).

Each kernel takes an image range [start, stop): images never share an output or a
gradient, so ranges run on separate threads (``nogil``) with identical results.
Coordinates are computed in float64 whatever the dtype, as PyTorch's float64 kernel does.
The formulas are in ``sampling.GridSampleFunction``'s docstring; the NumPy reference
(``sampling.grid_sample_reference`` and its backward) is tested against these.
"""

from __future__ import annotations

import math

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


@njit(cache=True, nogil=True)
def bilinear_forward(x, grid, out, align_corners, border, start, stop):
    _, channels, height, width = x.shape
    out_h, out_w = grid.shape[1], grid.shape[2]
    ax, bx = _scale(width, align_corners)
    ay, by = _scale(height, align_corners)
    for n in range(start, stop):
        for i in range(out_h):
            for j in range(out_w):
                ix, _ = _source(grid[n, i, j, 0], ax, bx, width, border)
                iy, _ = _source(grid[n, i, j, 1], ay, by, height, border)
                x0 = math.floor(ix)
                y0 = math.floor(iy)
                tx = ix - x0
                ty = iy - y0
                in_x0 = 0 <= x0 < width
                in_x1 = 0 <= x0 + 1 < width
                in_y0 = 0 <= y0 < height
                in_y1 = 0 <= y0 + 1 < height
                if in_x0 and in_x1 and in_y0 and in_y1:  # the common case: no checks per tap
                    for c in range(channels):
                        out[n, c, i, j] = (
                            (x[n, c, y0, x0] * (1.0 - tx) + x[n, c, y0, x0 + 1] * tx) * (1.0 - ty)
                            + (x[n, c, y0 + 1, x0] * (1.0 - tx) + x[n, c, y0 + 1, x0 + 1] * tx) * ty
                        )
                    continue
                for c in range(channels):
                    value = 0.0
                    if in_y0 and in_x0:
                        value += x[n, c, y0, x0] * (1.0 - tx) * (1.0 - ty)
                    if in_y0 and in_x1:
                        value += x[n, c, y0, x0 + 1] * tx * (1.0 - ty)
                    if in_y1 and in_x0:
                        value += x[n, c, y0 + 1, x0] * (1.0 - tx) * ty
                    if in_y1 and in_x1:
                        value += x[n, c, y0 + 1, x0 + 1] * tx * ty
                    out[n, c, i, j] = value


@njit(cache=True, nogil=True)
def bilinear_backward(x, grid, grad, dx, dgrid, need_dx, align_corners, border, start, stop):
    """dx (zeroed by the caller) += the bilinear weights × δ (if ``need_dx``: a spatial
    transformer's input images need none); dgrid = δ · ∂y/∂grid."""
    _, channels, height, width = x.shape
    out_h, out_w = grid.shape[1], grid.shape[2]
    ax, bx = _scale(width, align_corners)
    ay, by = _scale(height, align_corners)
    for n in range(start, stop):
        for i in range(out_h):
            for j in range(out_w):
                ix, sx = _source(grid[n, i, j, 0], ax, bx, width, border)
                iy, sy = _source(grid[n, i, j, 1], ay, by, height, border)
                x0 = math.floor(ix)
                y0 = math.floor(iy)
                tx = ix - x0
                ty = iy - y0
                in_x0 = 0 <= x0 < width
                in_x1 = 0 <= x0 + 1 < width
                in_y0 = 0 <= y0 < height
                in_y1 = 0 <= y0 + 1 < height
                gx = 0.0
                gy = 0.0
                if in_x0 and in_x1 and in_y0 and in_y1:  # the common case: no checks per tap
                    for c in range(channels):
                        g = grad[n, c, i, j]
                        v00, v01 = x[n, c, y0, x0], x[n, c, y0, x0 + 1]
                        v10, v11 = x[n, c, y0 + 1, x0], x[n, c, y0 + 1, x0 + 1]
                        if need_dx:
                            dx[n, c, y0, x0] += (1.0 - tx) * (1.0 - ty) * g
                            dx[n, c, y0, x0 + 1] += tx * (1.0 - ty) * g
                            dx[n, c, y0 + 1, x0] += (1.0 - tx) * ty * g
                            dx[n, c, y0 + 1, x0 + 1] += tx * ty * g
                        gx += ((v01 - v00) * (1.0 - ty) + (v11 - v10) * ty) * g
                        gy += ((v10 - v00) * (1.0 - tx) + (v11 - v01) * tx) * g
                    dgrid[n, i, j, 0] = gx * sx
                    dgrid[n, i, j, 1] = gy * sy
                    continue
                for c in range(channels):
                    g = grad[n, c, i, j]
                    if in_y0 and in_x0:
                        v = x[n, c, y0, x0]
                        if need_dx:
                            dx[n, c, y0, x0] += (1.0 - tx) * (1.0 - ty) * g
                        gx -= v * (1.0 - ty) * g
                        gy -= v * (1.0 - tx) * g
                    if in_y0 and in_x1:
                        v = x[n, c, y0, x0 + 1]
                        if need_dx:
                            dx[n, c, y0, x0 + 1] += tx * (1.0 - ty) * g
                        gx += v * (1.0 - ty) * g
                        gy -= v * tx * g
                    if in_y1 and in_x0:
                        v = x[n, c, y0 + 1, x0]
                        if need_dx:
                            dx[n, c, y0 + 1, x0] += (1.0 - tx) * ty * g
                        gx -= v * ty * g
                        gy += v * (1.0 - tx) * g
                    if in_y1 and in_x1:
                        v = x[n, c, y0 + 1, x0 + 1]
                        if need_dx:
                            dx[n, c, y0 + 1, x0 + 1] += tx * ty * g
                        gx += v * ty * g
                        gy += v * tx * g
                dgrid[n, i, j, 0] = gx * sx
                dgrid[n, i, j, 1] = gy * sy


@njit(cache=True, nogil=True)
def nearest_forward(x, grid, out, align_corners, border, start, stop):
    _, channels, height, width = x.shape
    out_h, out_w = grid.shape[1], grid.shape[2]
    ax, bx = _scale(width, align_corners)
    ay, by = _scale(height, align_corners)
    for n in range(start, stop):
        for i in range(out_h):
            for j in range(out_w):
                ix, _ = _source(grid[n, i, j, 0], ax, bx, width, border)
                iy, _ = _source(grid[n, i, j, 1], ay, by, height, border)
                # round half to even, as PyTorch's nearbyint
                px = round(ix)
                py = round(iy)
                inside = 0 <= px < width and 0 <= py < height
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
                ix, _ = _source(grid[n, i, j, 0], ax, bx, width, border)
                iy, _ = _source(grid[n, i, j, 1], ay, by, height, border)
                px = round(ix)
                py = round(iy)
                if 0 <= px < width and 0 <= py < height:
                    for c in range(channels):
                        dx[n, c, py, px] += grad[n, c, i, j]
