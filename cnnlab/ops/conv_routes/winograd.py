"""The Winograd route: 3×3, stride-1, one-group convolution by minimal filtering
F(m×m, 3×3), m = 2 or 4 (Lavin & Gray 2016), forward, ∂L/∂w and ∂L/∂x.

The output is cut into m×m tiles t; tile t reads the α×α input patch d_t (α = m + 2) and

    Y_t[o] = Aᵀ [ Σ_c U[o, c] ⊙ V_t[c] ] A,   U[o, c] = G w[o, c] Gᵀ,   V_t[c] = Bᵀ d_t[c] B.

At each of the α² transformed positions p = (μ, ν) the sum over channels is a matrix
product over every tile of the batch at once,

    M[p] (C_out, T) = U[p] (C_out, C_in) @ V[p] (C_in, T),

so the work is α² GEMMs with (m/α)²·9 = 9/4 (m = 2) or 4 (m = 4) times fewer multiply-adds
than the direct convolution, plus the transforms (``winograd_transforms``).

The forward is a bilinear map of (w, x), exact in exact arithmetic, so its gradients are
its adjoints, each again α² GEMMs between transforms. With Mδ_t = A δ_t Aᵀ (δ = ∂L/∂y,
zero beyond the output):

    ∂L/∂w[o, c] = Gᵀ [ Σ_t Mδ_t[o] ⊙ V_t[c] ] G        dU[p] = Mδ[p] @ V[p]ᵀ   (the forward's V)
    ∂L/∂x = Σ_t scatter_t( B [ Σ_o U[o, c] ⊙ Mδ_t[o] ] Bᵀ )   dV[p] = U[p]ᵀ @ Mδ[p]

The last line is the lecture's ∂L/∂x = full_conv(δ, rot180(w)) with C_in and C_out
swapped, computed in the transformed domain: the full convolution sends each output's δ
back to the 3×3 input pixels it read, with the kernel's weights, and the adjoint of the
forward's tile algorithm does exactly that, tile by tile (the α×α patches overlap by 2
and add up). ∂L/∂w is the correlation of x with δ (Lavin's F(3×3, m×m)) with the
forward's input transform, so it reuses the forward's V.
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops.conv_routes import im2col
from cnnlab.ops.conv_routes import winograd_transforms as transforms

TILE_SIZES = (2, 4)


def applies(w_shape, stride, dilation, groups):
    """None if the route can compute this convolution, else the reason it cannot."""
    if (
        tuple(w_shape[2:]) == (3, 3)
        and stride == (1, 1)
        and dilation == (1, 1)
        and groups == 1
    ):
        return None
    return (
        f"needs a 3×3 kernel, stride 1, dilation 1 and groups=1; this convolution has kernel "
        f"{tuple(w_shape[2:])}, stride {stride}, dilation {dilation} and groups={groups}"
    )


class Geometry:
    """The tiling of one convolution of x (N, C, H, W): pads ((top, bottom), (left, right)),
    output tile m×m; T = tiles_h · N · tiles_w tiles."""

    def __init__(self, x_shape, pads, tile):
        (top, bottom), (left, right) = pads
        _, _, height, width = x_shape
        self.tile, self.top, self.left = tile, top, left
        self.out_size = (height + top + bottom - 2, width + left + right - 2)
        self.tiles_h, self.tiles_w = transforms.tile_counts(*self.out_size, tile)
        self.count = self.tiles_h * x_shape[0] * self.tiles_w

    def frame(self, on_input):
        """The kernels' tiling arguments for the input's side (padded) or the output's."""
        top, left = (self.top, self.left) if on_input else (0, 0)
        return self.tile, top, left, self.tiles_h, self.tiles_w


def _kind(tile, matrix):
    """The kernels' code for one of the four matrices of F(tile×tile, 3×3)."""
    return matrix + (0 if tile == 2 else 4)


def _stacked_matmul(a, b):
    """a[p] @ b[p] for every position p, 2-D products (BLAS for either operand transposed)."""
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    for p in range(a.shape[0]):
        np.matmul(a[p], b[p], out=out[p])
    return out


def _images_last(a):
    """(N, C, H, W) → a contiguous (C, H, W, N): the input transform copies each row of every
    image into its band at once (go 128×64×19×19, F(4×4): 20 → 13 ms CPU time with the
    transpose at 2.9 ms)."""
    return np.ascontiguousarray(a.transpose(1, 2, 3, 0))


def _channels_first(a):
    """(N, C, H, W) → a contiguous (C, N, H, W): the kernels read one channel of every image
    at a time, and in NCHW those rows lie a whole image apart (conv_b, F(2×2): output
    transform 4.2 → 2.8 ms CPU time with the transposes at 0.3–0.5 ms each)."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3))


def conv2d_forward(x, w, pads, tile, bias=None):
    """(y (N, C_out, OH, OW), V (α², C_in, T) the transformed input, kept for ∂L/∂w)."""
    geometry = Geometry(x.shape, pads, tile)
    alpha = tile + 2
    v = np.empty((alpha * alpha, x.shape[1], geometry.count), dtype=x.dtype)
    kind = _kind(tile, transforms.INPUT)
    transforms.gather_tiles(_images_last(x), kind, *geometry.frame(True), v)
    m = _stacked_matmul(transforms.weight_transform(w, tile), v)
    y = np.zeros((w.shape[0], x.shape[0], *geometry.out_size), dtype=x.dtype)
    transforms.scatter_tiles(
        m, _kind(tile, transforms.OUTPUT), *geometry.frame(False), y
    )
    return im2col.to_nchw(y, bias), v


def transformed_delta(grad, x_shape, pads, tile):
    """Mδ (α², C_out, T): A δ_t Aᵀ for every tile, δ (N, C_out, OH, OW) zero beyond the output."""
    geometry = Geometry(x_shape, pads, tile)
    alpha = tile + 2
    out = np.empty((alpha * alpha, grad.shape[1], geometry.count), dtype=grad.dtype)
    kind = _kind(tile, transforms.DELTA)
    transforms.gather_tiles(_images_last(grad), kind, *geometry.frame(False), out)
    return out


def conv2d_weight_grad(v, delta_t, w_shape, tile):
    """∂L/∂w (C_out, C_in, 3, 3) from the forward's V and ``transformed_delta``."""
    du = _stacked_matmul(delta_t, np.swapaxes(v, 1, 2))
    return transforms.weight_transform_adjoint(du, tile).reshape(w_shape)


def conv2d_input_grad(delta_t, w, x_shape, pads, tile):
    """∂L/∂x (N, C_in, H, W): dV = Uᵀ Mδ per position, then B dV Bᵀ added back per tile."""
    geometry = Geometry(x_shape, pads, tile)
    u_t = np.ascontiguousarray(np.swapaxes(transforms.weight_transform(w, tile), 1, 2))
    dv = _stacked_matmul(u_t, delta_t)
    n, c_in, height, width = x_shape
    dx = np.zeros((c_in, n, height, width), dtype=w.dtype)
    transforms.scatter_tiles(
        dv, _kind(tile, transforms.INPUT_GRAD), *geometry.frame(True), dx
    )
    return _channels_first(dx)
