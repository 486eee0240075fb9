"""im2col and col2im as compiled element loops (numba): the ``loops="compiled"`` half of im2col.

Same results as the NumPy slice copies in ``im2col`` (tested equal on the whole grid).
The planner picks these loops for stride 1 without dilation only: there the element
loops read and write whole rows at constant offsets (x_padded[n, c, i + u, j + v]),
which numba vectorises, 2–4× faster than the NumPy slice copies on LeNet-sized maps
(col2im of a (64, 6, 14, 14) input from 5×5 windows: 1.35 → 0.32 ms; im2col 0.66 →
0.30 ms). With a stride or a dilation the index arithmetic stops the vectorisation:
the strided loops below are then no faster than NumPy (measured), so they run only
when a test or a user forces ``loops="compiled"`` through ``conv_routes``.

Serial on purpose: on a small shared machine numba's parallel runtime costs more
in thread wake-ups than it saves on these memory-bound loops (measured). They release
the GIL (``nogil``) and take a range of images, so that ``batch_threads`` can run
disjoint ranges of a batch on threads of its own.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def _fill_unit_stride(xp, col, start, stop):
    channels, kh, kw, _, oh, ow = col.shape
    for c in range(channels):
        for u in range(kh):
            for v in range(kw):
                for n in range(start, stop):
                    for i in range(oh):
                        for j in range(ow):
                            col[c, u, v, n, i, j] = xp[n, c, i + u, j + v]


@njit(cache=True, nogil=True)
def _fill_strided(xp, col, start, stop, sh, sw, dh, dw):
    channels, kh, kw, _, oh, ow = col.shape
    for c in range(channels):
        for u in range(kh):
            for v in range(kw):
                for n in range(start, stop):
                    for i in range(oh):
                        for j in range(ow):
                            col[c, u, v, n, i, j] = xp[n, c, sh * i + dh * u, sw * j + dw * v]


@njit(cache=True, nogil=True)
def _add_unit_stride(col, dxp, start, stop):
    channels, kh, kw, _, oh, ow = col.shape
    for n in range(start, stop):
        for c in range(channels):
            for u in range(kh):
                for v in range(kw):
                    for i in range(oh):
                        for j in range(ow):
                            dxp[n, c, i + u, j + v] += col[c, u, v, n, i, j]


@njit(cache=True, nogil=True)
def _add_strided(col, dxp, start, stop, sh, sw, dh, dw):
    channels, kh, kw, _, oh, ow = col.shape
    for n in range(start, stop):
        for c in range(channels):
            for u in range(kh):
                for v in range(kw):
                    for i in range(oh):
                        for j in range(ow):
                            dxp[n, c, sh * i + dh * u, sw * j + dw * v] += col[c, u, v, n, i, j]


def fill_columns(xp, col, stride, dilation, start=0, stop=None):
    """col[c, u, v, n, i, j] = xp[n, c, s_h·i + d_h·u, s_w·j + d_w·v] for images n in
    [start, stop) (all by default); xp (N, C, Hp, Wp)."""
    stop = xp.shape[0] if stop is None else stop
    if stride == (1, 1) and dilation == (1, 1):
        _fill_unit_stride(xp, col, start, stop)
    else:
        _fill_strided(xp, col, start, stop, *stride, *dilation)


def add_columns(col, dxp, stride, dilation, start=0, stop=None):
    """dxp[n, c, s_h·i + d_h·u, s_w·j + d_w·v] += col[c, u, v, n, i, j] for images n in
    [start, stop) (all by default); col contiguous."""
    stop = dxp.shape[0] if stop is None else stop
    if stride == (1, 1) and dilation == (1, 1):
        _add_unit_stride(col, dxp, start, stop)
    else:
        _add_strided(col, dxp, start, stop, *stride, *dilation)
