"""Differentiable image sampling: ``affine_grid`` and ``grid_sample``, the two halves of a
spatial transformer (Jaderberg et al., "Spatial Transformer Networks", NIPS 2015).

PyTorch's conventions exactly: a grid holds normalised coordinates in [−1, 1], −1 the
left/top edge, grid[..., 0] = x (along the width), grid[..., 1] = y (along the height).
``align_corners=True`` puts ±1 on the centres of the corner pixels; ``False`` (the default)
on the outer edges of the corner pixels, so that the result does not depend on the size.

``grid_sample`` runs compiled loops (``sampling_loops``), over image ranges on as many
threads as ``sampling_split.choose`` says (OpenMP regions where numba has them). Its forward
keeps ∂y/∂grid and the taps, so that the backward reads neither x nor the grid.
``grid_sample_reference`` and ``grid_sample_reference_backward`` are the vectorised NumPy
statement of the same formulas (gathers and ``np.add.at``), kept to test the loops against.
"""

from __future__ import annotations

import functools

import numpy as np

from cnnlab._checks import check_choice
from cnnlab.ops import sampling_split
from cnnlab.tensor import Function, Tensor, as_tensor

__all__ = [
    "TRANSFORMS",
    "AffineGridFunction",
    "GridSampleFunction",
    "TransformThetaFunction",
    "affine_grid",
    "base_grid",
    "grid_sample",
    "grid_sample_reference",
    "grid_sample_reference_backward",
    "identity_parameters",
    "transform_theta",
]

MODES = ("bilinear", "nearest")
#: transform families of ``transform_theta``: name → number of parameters
TRANSFORMS = {"affine": 6, "rst": 4, "translation": 2}
PADDING_MODES = ("zeros", "border")


def _linspace(size, align_corners, dtype):
    """The normalised coordinates of the pixel centres along an axis of ``size`` pixels."""
    if align_corners:
        # PyTorch puts a 1-pixel axis at 0, not at −1
        return np.linspace(-1.0, 1.0, size, dtype=dtype) if size > 1 else np.zeros(1, dtype)
    return ((2.0 * np.arange(size) + 1.0) / size - 1.0).astype(dtype)


def base_grid(height, width, align_corners=False, dtype=np.float64) -> np.ndarray:
    """(H, W, 3) homogeneous target coordinates [x_j, y_i, 1] of the output's pixel centres."""
    base = np.ones((height, width, 3), dtype=dtype)
    base[..., 0] = _linspace(width, align_corners, dtype)[None, :]
    base[..., 1] = _linspace(height, align_corners, dtype)[:, None]
    return base


class AffineGridFunction(Function):
    """The sampling grid of a batch of affine transforms θ (N, 2, 3).

    Forward:  grid[n, i, j] = θ[n] · (x_j, y_i, 1)ᵀ, the source point of output pixel (i, j),
              with x_j = (2j + 1)/W − 1 (align_corners=False) or −1 + 2j/(W − 1) (True),
              likewise y_i along the height.
    Backward: ∂L/∂θ[n, k, l] = Σ_{i, j} ∂L/∂grid[n, i, j, k] · (x_j, y_i, 1)[l]
    """

    def forward(self, theta, height, width, align_corners):
        self.base = base_grid(height, width, align_corners, theta.dtype)
        grid = np.matmul(self.base.reshape(-1, 3), theta.transpose(0, 2, 1))  # (N, HW, 2)
        return grid.reshape(theta.shape[0], height, width, 2)

    def backward(self, grad):
        n = grad.shape[0]
        flat_grad = grad.reshape(n, -1, 2)
        flat_base = self.base.reshape(-1, 3)
        return (np.matmul(flat_grad.transpose(0, 2, 1), flat_base),)


def affine_grid(theta, size, align_corners=False) -> Tensor:
    """The (N, H, W, 2) grid of source coordinates for ``grid_sample``.

    Args:
        theta: (N, 2, 3) affine matrices mapping output coordinates to input coordinates
            (normalised, as in ``torch.nn.functional.affine_grid``).
        size: the output's (N, C, H, W).
        align_corners: see the module's docstring.

    Shape:
        grid (N, H, W, 2); grid[..., 0] is x (width), grid[..., 1] is y (height).
    """
    theta = as_tensor(theta)
    size = tuple(size)
    if theta.ndim != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"affine_grid: expected theta of shape (N, 2, 3), received shape "
                         f"{theta.shape}")
    if theta.dtype.kind != "f":
        raise ValueError(f"affine_grid: theta must be floating point, received {theta.dtype}")
    if len(size) != 4 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(f"affine_grid: size must be 4 positive ints (N, C, H, W), received "
                         f"{size}")
    if size[0] != theta.shape[0]:
        raise ValueError(f"affine_grid: size {size} has batch {size[0]} but theta of shape "
                         f"{theta.shape} has batch {theta.shape[0]}")
    return AffineGridFunction.apply(theta, height=int(size[2]), width=int(size[3]),
                                    align_corners=bool(align_corners))


class GridSampleFunction(Function):
    """y[n, c, i, j] = Σ_{q, p} x[n, c, q, p] · k(u − p) · k(v − q), bilinear k(d) = max(0, 1 − |d|)

    where (u, v) is the source point of output pixel (i, j) in input pixels,
        u = (g_x + 1)(W − 1)/2 (align_corners=True) or ((g_x + 1)W − 1)/2 (False),
    likewise v from g_y and H. With p₀ = ⌊u⌋, t = u − p₀ (and q₀, s from v) only four
    pixels count: y = (1−t)(1−s)·x[q₀, p₀] + t(1−s)·x[q₀, p₀+1] + (1−t)s·x[q₀+1, p₀]
    + ts·x[q₀+1, p₀+1]. Padding "zeros": pixels outside the image are 0; "border": u, v are
    clipped to [0, W − 1], [0, H − 1] first. "nearest": y = x[n, c, round(v), round(u)].

    Backward:
        ∂L/∂x[n, c, q, p] = Σ_{i, j} δ[n, c, i, j] · (the weight of (q, p) in y[n, c, i, j])
            (a scatter-add of the bilinear weights),
        ∂L/∂g_x = (∂u/∂g_x) Σ_c δ · [(1−s)(x[q₀, p₀+1] − x[q₀, p₀]) + s(x[q₀+1, p₀+1] − x[q₀+1, p₀])],
        ∂L/∂g_y likewise with the roles of u and v swapped, ∂u/∂g_x = (W − 1)/2 or W/2, and 0
        where border padding clipped the coordinate. "nearest": ∂L/∂grid = 0 (as PyTorch).
    """

    def forward(self, x, grid, mode, padding_mode, align_corners):
        x = np.ascontiguousarray(x)
        grid = np.ascontiguousarray(grid)
        need_dx, need_dgrid = self.needs_input_grad
        border = padding_mode == "border"
        out = np.empty(x.shape[:2] + grid.shape[1:3], dtype=x.dtype)
        # one split for both passes (the results do not depend on it)
        self.split = split = sampling_split.choose(out.size)
        self.options = mode, border, align_corners, x.shape, grid.dtype
        if mode == "nearest":
            self.grid = grid if need_dx else None
            split.nearest_forward(x, grid, out, align_corners, border)
            return out
        # kept for the backward, so that it needs neither x nor the grid: ∂y/∂grid from the
        # forward's reads of x, and the taps (where and how much each output read)
        n, count = grid.shape[0], grid.shape[1] * grid.shape[2]
        jacobian = self.jacobian = np.empty(out.shape + (2,) if need_dgrid else (0, 0, 0, 0),
                                            x.dtype)
        taps = (n, count) if need_dx else (0, count)
        index = self.index = np.empty(taps, np.uint32)
        fractions = self.fractions = np.empty(taps, x.dtype), np.empty(taps, x.dtype)
        axes, pair = _constants(x.shape[2:], x.dtype, align_corners, border)
        split.bilinear_forward(x, grid, out, jacobian, index, fractions, axes, not border, pair)
        return out

    def backward(self, grad):
        mode, border, align, x_shape, grid_dtype = self.options
        grad = np.ascontiguousarray(grad)
        need_dx, need_dgrid = self.needs_input_grad
        grid_shape = grad.shape[:1] + grad.shape[2:] + (2,)
        dx = np.empty(x_shape, dtype=grad.dtype) if need_dx else None  # zeroed by the loops
        if mode == "nearest":
            if need_dx:
                dx[...] = 0.0
                self.split.nearest_backward(self.grid, grad, dx, align, border)
            return dx, (np.zeros(grid_shape, dtype=grid_dtype) if need_dgrid else None)
        dgrid = np.empty(grid_shape, dtype=grid_dtype) if need_dgrid else None
        pair = _constants(x_shape[2:], grad.dtype, align, border)[1]
        self.split.bilinear_backward(grad, dx, dgrid, self.index, self.fractions,
                                     self.jacobian, pair)
        return dx, dgrid


@functools.lru_cache(maxsize=64)
def _constants(size, dtype, align_corners, border):
    """(axes, pair) for the loops, for an input of ``size`` (H_in, W_in) and ``dtype``.

    axes: per axis (x, then y) (a, b, low, from, high) in the dtype, with the pixel
    coordinate u = a·g + b (a = (W − 1)/2 with align_corners, else W/2; b = (W − 1)/2),
    clipped to [low, high], and ∂u/∂g = a where from < u < high, else 0 (the clip moved it).
    Zeros: [−1, W], from just below −1 (at u = −1 the pixel 0 still has weight t = 0 and
    slope 1); border: [0, W − 1], from 0 (PyTorch's clip: no gradient on the edge).
    pair: the complex dtype holding two values of ``dtype`` (the loops' pixel pairs).
    """
    real = dtype.type
    axes = []
    for length in (size[1], size[0]):
        a = (length - 1) / 2.0 if align_corners else length / 2.0
        if border:
            low, start, high = 0.0, 0.0, length - 1.0
        else:
            low, start, high = -1.0, np.nextafter(real(-1), real(-2)), float(length)
        axes.append((real(a), real((length - 1) / 2.0), real(low), real(start), real(high)))
    pair = np.dtype(np.complex64) if dtype == np.float32 else np.dtype(np.complex128)
    return tuple(axes), pair


def grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False) -> Tensor:
    """Sample x at the points of ``grid`` (``torch.nn.functional.grid_sample``, 4-D).

    Args:
        x: input (N, C, H_in, W_in).
        grid: (N, H, W, 2) normalised source coordinates (x, y) in [−1, 1]; points outside
            sample the padding.
        mode: "bilinear" or "nearest".
        padding_mode: "zeros" or "border".
        align_corners: see the module's docstring.

    Shape:
        output (N, C, H, W), in x's dtype. The formulas are in ``GridSampleFunction``.
    """
    x, grid = as_tensor(x), as_tensor(grid)
    check_choice(mode, MODES, "grid_sample", "mode")
    check_choice(padding_mode, PADDING_MODES, "grid_sample", "padding_mode")
    if x.ndim != 4:
        raise ValueError(f"grid_sample: expected x of shape (N, C, H_in, W_in), received shape "
                         f"{x.shape}")
    if grid.ndim != 4 or grid.shape[3] != 2:
        raise ValueError(f"grid_sample: expected grid of shape (N, H, W, 2), received shape "
                         f"{grid.shape}")
    if grid.shape[0] != x.shape[0]:
        raise ValueError(f"grid_sample: grid of shape {grid.shape} has batch {grid.shape[0]} "
                         f"but x of shape {x.shape} has batch {x.shape[0]}")
    if 0 in x.shape[2:]:
        raise ValueError(f"grid_sample: expected x with a non-empty image, received shape "
                         f"{x.shape}")
    if x.dtype.kind != "f" or grid.dtype.kind != "f":
        raise ValueError(f"grid_sample: x and grid must be floating point, received "
                         f"{x.dtype} and {grid.dtype}")
    return GridSampleFunction.apply(x, grid, mode=mode, padding_mode=padding_mode,
                                    align_corners=bool(align_corners))


def _corners(x_shape, grid, align_corners, border):
    """Per output pixel: source coordinates (u, v), their derivatives, p₀, q₀, t, s."""
    height, width = x_shape[2:]
    coords = []
    for g, size in ((grid[..., 0], width), (grid[..., 1], height)):
        g = g.astype(np.float64)
        if align_corners:
            scale = (size - 1) / 2.0
            coord = (g + 1.0) * scale
        else:
            scale = size / 2.0
            coord = ((g + 1.0) * size - 1.0) / 2.0
        slope = np.full(g.shape, scale)
        if border:
            slope[(coord <= 0) | (coord >= size - 1)] = 0.0
            coord = np.clip(coord, 0, size - 1)
        coords.append((coord, slope))
    return coords


def _gather(x, qs, ps):
    """x[n, c, q, p] for every (n, i, j) → (N, C, H, W), 0 where (q, p) is outside."""
    height, width = x.shape[2:]
    inside = (qs >= 0) & (qs < height) & (ps >= 0) & (ps < width)
    n_index = np.arange(x.shape[0])[:, None, None]
    values = x[n_index, :, np.clip(qs, 0, height - 1), np.clip(ps, 0, width - 1)]
    return np.moveaxis(values, -1, 1) * inside[:, None], inside


def _taps(x_shape, grid, mode, align_corners, border):
    """[(q, p, weight, ∂weight/∂u, ∂weight/∂v)] of the 1 (nearest) or 4 pixels each output reads."""
    (u, du), (v, dv) = _corners(x_shape, grid, align_corners, border)
    if mode == "nearest":
        zero = np.zeros_like(u)
        return [(np.rint(v).astype(np.int64), np.rint(u).astype(np.int64), 1.0 + zero, zero,
                 zero)], du, dv
    p0, q0 = np.floor(u), np.floor(v)
    t, s = u - p0, v - q0
    p0, q0 = p0.astype(np.int64), q0.astype(np.int64)
    return [
        (q0, p0, (1 - t) * (1 - s), -(1 - s), -(1 - t)),
        (q0, p0 + 1, t * (1 - s), 1 - s, -t),
        (q0 + 1, p0, (1 - t) * s, -s, 1 - t),
        (q0 + 1, p0 + 1, t * s, s, t),
    ], du, dv


def grid_sample_reference(x, grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False) -> np.ndarray:
    """``grid_sample``'s forward in NumPy (arrays in and out): gathers of the 1 or 4 taps."""
    taps, _, _ = _taps(x.shape, grid, mode, align_corners, padding_mode == "border")
    out = np.zeros(x.shape[:2] + grid.shape[1:3])
    for q, p, weight, _, _ in taps:
        values, _ = _gather(x, q, p)
        out += values * weight[:, None]
    return out.astype(x.dtype)


def grid_sample_reference_backward(x, grid, grad, mode="bilinear", padding_mode="zeros",
                                   align_corners=False):
    """(∂L/∂x, ∂L/∂grid) of ``grid_sample`` in NumPy: the scatter is one ``np.add.at`` per tap."""
    taps, du, dv = _taps(x.shape, grid, mode, align_corners, padding_mode == "border")
    dx = np.zeros(x.shape)
    dgrid = np.zeros(grid.shape)
    n_index = np.broadcast_to(np.arange(x.shape[0])[:, None, None], grid.shape[:3])
    for q, p, weight, dw_du, dw_dv in taps:
        values, inside = _gather(x, q, p)
        weighted = np.moveaxis(grad * weight[:, None], 1, -1)  # (N, H, W, C)
        np.add.at(dx, (n_index[inside], slice(None), q[inside], p[inside]), weighted[inside])
        through = (grad * values).sum(axis=1)
        dgrid[..., 0] += through * dw_du * du
        dgrid[..., 1] += through * dw_dv * dv
    return dx.astype(x.dtype), dgrid.astype(grid.dtype)


class TransformThetaFunction(Function):
    """θ (N, 2, 3) from a transform family's parameters p (N, K).

    "affine" (K = 6): θ = [[p₀, p₁, p₂], [p₃, p₄, p₅]].
    "rst" (K = 4, p = (s, α, t_x, t_y): scale, angle in radians, translation):
        θ = [[s cos α, −s sin α, t_x], [s sin α, s cos α, t_y]].
    "translation" (K = 2): θ = [[1, 0, t_x], [0, 1, t_y]].
    Backward ("rst", with G = ∂L/∂θ): ∂L/∂s = (G₀₀ + G₁₁) cos α + (G₁₀ − G₀₁) sin α,
        ∂L/∂α = s[(G₁₀ − G₀₁) cos α − (G₀₀ + G₁₁) sin α], ∂L/∂t = (G₀₂, G₁₂);
    "affine" reshapes G, "translation" keeps (G₀₂, G₁₂).
    """

    def forward(self, params, transform):
        self.transform, self.params = transform, params
        if transform == "affine":
            return params.reshape(-1, 2, 3).copy()
        n = params.shape[0]
        theta = np.zeros((n, 2, 3), dtype=params.dtype)
        theta[:, :, 2] = params[:, -2:]
        if transform == "translation":
            theta[:, 0, 0] = theta[:, 1, 1] = 1
            return theta
        scale, angle = params[:, 0], params[:, 1]
        cos, sin = np.cos(angle), np.sin(angle)
        theta[:, 0, 0] = theta[:, 1, 1] = scale * cos
        theta[:, 0, 1] = -scale * sin
        theta[:, 1, 0] = scale * sin
        return theta

    def backward(self, grad):
        if self.transform == "affine":
            return (grad.reshape(-1, 6).copy(),)
        dparams = np.zeros_like(self.params)
        dparams[:, -2:] = grad[:, :, 2]
        if self.transform == "rst":
            scale, angle = self.params[:, 0], self.params[:, 1]
            cos, sin = np.cos(angle), np.sin(angle)
            diagonal = grad[:, 0, 0] + grad[:, 1, 1]
            skew = grad[:, 1, 0] - grad[:, 0, 1]
            dparams[:, 0] = diagonal * cos + skew * sin
            dparams[:, 1] = scale * (skew * cos - diagonal * sin)
        return (dparams,)


def identity_parameters(transform) -> np.ndarray:
    """The parameters for which ``transform_theta`` gives the identity [[1, 0, 0], [0, 1, 0]]."""
    check_choice(transform, tuple(TRANSFORMS), "identity_parameters", "transform")
    return {"affine": np.array([1.0, 0, 0, 0, 1, 0]), "rst": np.array([1.0, 0, 0, 0]),
            "translation": np.zeros(2)}[transform]


def transform_theta(params, transform="affine") -> Tensor:
    """θ (N, 2, 3) for ``affine_grid`` from (N, K) parameters of a transform family
    ("affine" K = 6, "rst" K = 4: scale, angle, t_x, t_y, "translation" K = 2); formulas in
    ``TransformThetaFunction``."""
    params = as_tensor(params)
    check_choice(transform, tuple(TRANSFORMS), "transform_theta", "transform")
    count = TRANSFORMS[transform]
    if params.ndim != 2 or params.shape[1] != count:
        raise ValueError(f"transform_theta: transform {transform!r} takes parameters of shape "
                         f"(N, {count}), received shape {params.shape}")
    if params.dtype.kind != "f":
        raise ValueError(f"transform_theta: parameters must be floating point, received "
                         f"{params.dtype}")
    return TransformThetaFunction.apply(params, transform=transform)
