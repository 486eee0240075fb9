"""Convolution (the lecture's cross-correlation) in 1-D and 2-D, with its backward pass.

Notation (NCHW): input x (N, C_in, H, W), weights w (C_out, C_in/groups, K_h, K_w),
bias b (C_out,), stride s, padding p, dilation d, output y (N, C_out, OH, OW).

How each step is computed is decided in one place, ``cnnlab.ops.conv_plan``
(``conv2d_plan``, forced with ``conv_routes``), re-exported here.
"""

from __future__ import annotations

import numpy as np

from cnnlab._checks import check_choice
from cnnlab.ops import conv_shapes
from cnnlab.ops.activation import relu_grad, relu_in_place
from cnnlab.ops.conv_plan import (
    WINOGRAD_TILES,
    ConvPlan,
    RouteNotApplicableError,
    _plan,
    conv2d_plan,
    conv_routes,
)
from cnnlab.ops.conv_routes import (
    full_convolution,
    im2col,
    im2col_images,
    kn2row,
    shifted_gemm,
    winograd,
)
from cnnlab.ops.conv_shapes import output_size
from cnnlab.ops.shape import reshape
from cnnlab.tensor import Function, Tensor, as_tensor

__all__ = [
    "Conv2dFunction",
    "ConvPlan",
    "RouteNotApplicableError",
    "conv1d",
    "conv2d",
    "conv2d_plan",
    "conv_routes",
    "output_size",
]


class Conv2dFunction(Function):
    """2-D cross-correlation, as the lecture writes convolution.

    Forward (per group, with x zero-padded by p):

        y[n, o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · x[n, c, s·i + d·u, s·j + d·v]

    Backward, with δ = ∂L/∂y:

        ∂L/∂b[o] = Σ_{n, i, j} δ[n, o, i, j]
        ∂L/∂w[o, c, u, v] = Σ_{n, i, j} δ[n, o, i, j] · x[n, c, s·i + d·u, s·j + d·v]
        ∂L/∂x = crop_p( full_conv( zero_insert_s(δ), rot180(w) with C_in and C_out swapped ) )

    The last line is the lecture's formula (route "full_convolution"). Written out per
    input pixel it is a sum over kernel offsets of shifted products,

        ∂L/∂x_padded[n, c, s·i + d·u, s·j + d·v] += Σ_o w[o, c, u, v] · δ[n, o, i, j],

    which is route "col2im": dcol = wᵀ @ δ, added back at each offset. The plan
    (``conv2d_plan``) says which route computes each line; each route's file has its
    derivation. Rows and columns of the padded input that the forward never read
    (strides that do not divide the input) get zero gradient on every route.

    Output size: OH = floor((H + 2p − d(K_h − 1) − 1) / s) + 1, likewise OW.

    With ``activation="relu"`` the output is relu(y), computed in place on y, and the
    backward first masks δ by 1[relu(y) > 0] (``ops.activation.relu_grad``): one array
    and one graph node less than a separate ReLU.
    """

    def forward(self, x, w, *bias, stride, pads, dilation, groups, out_size, plan,
                activation=None):
        self.x_shape = x.shape
        self.w = w
        self.options = stride, pads, dilation, groups
        self.plan = plan
        self.deltas = None  # Winograd's transformed δ, shared by ∂L/∂w and ∂L/∂x
        self.has_bias = bool(bias)
        b = bias[0] if bias else None
        relu = activation == "relu"
        keep = self.needs_input_grad[1]  # ∂L/∂w reads the forward's buffer
        if plan.forward == "shifted_gemm":
            y, xp = shifted_gemm.conv2d_forward(x, w, pads, dilation)
            self.saved = xp if keep else None
            y = im2col.to_nchw(y, b)
            if relu:
                relu_in_place(y)
        elif plan.forward in WINOGRAD_TILES:
            y, v = winograd.conv2d_forward(
                x, w, pads, WINOGRAD_TILES[plan.forward], b, relu=relu
            )
            self.saved = v if keep else None
        elif plan.forward == "kn2row":
            y, self.saved = kn2row.conv2d_forward(x, w, pads, dilation, b, relu)
            self.saved = self.saved if keep else None
        elif plan.forward == "im2col_images":
            options = stride, pads, dilation, out_size, plan.forward_loops
            y, images = im2col_images.forward(x, w, *options, b, relu=relu)
            self.saved = images if keep else None
        else:
            loops = plan.forward_loops
            options = stride, pads, dilation, groups, out_size, loops
            y, col = im2col.forward(x, w, *options, b, relu=relu)
            self.saved = col if keep else None
        self.out = y if relu else None
        return y

    def backward(self, grad):
        stride, pads, dilation, groups = self.options
        w, plan, x_shape = self.w, self.plan, self.x_shape
        needs = self.needs_input_grad
        grad = np.asarray(grad, dtype=w.dtype)
        if self.out is not None:
            grad = relu_grad(grad, self.out)
        shifted_dw = plan.weight_grad == "shifted_gemm" and needs[1]
        shifted_dx = plan.input_grad == "shifted_gemm" and needs[0]
        im2col_dw = plan.weight_grad == "im2col" and needs[1]
        col2im_dx = plan.input_grad == "col2im" and needs[0]
        if shifted_dw or shifted_dx:
            padded_delta = shifted_gemm.padded_delta(grad, x_shape, w.shape, pads, dilation)
        kn2row_dw = plan.weight_grad == "kn2row" and needs[1]
        if kn2row_dw or (plan.input_grad == "kn2row" and needs[0]):
            dz = kn2row.shifted_delta(grad, x_shape, w.shape, pads, dilation)
        if im2col_dw or col2im_dx:
            delta = im2col.delta_matrix(grad, groups, w.shape)  # None: GEMMs per image read grad
        dx = dw = db = None
        if needs[1] and plan.weight_grad in WINOGRAD_TILES:
            tile = WINOGRAD_TILES[plan.weight_grad]
            dw = winograd.conv2d_weight_grad(self.saved, self._delta(tile, grad), w.shape, tile)
        elif shifted_dw:
            dw = shifted_gemm.conv2d_weight_grad(
                self.saved, padded_delta, x_shape, w.shape, pads, dilation
            )
        elif im2col_dw:
            dw = im2col.weight_grad(grad, delta, self.saved, w.shape)
        elif kn2row_dw:
            dw = kn2row.conv2d_weight_grad(self.saved, dz, w.shape)
        elif needs[1] and plan.weight_grad == "im2col_images":
            dw = im2col_images.weight_grad(grad, self.saved, w.shape)
        loops = plan.input_grad_loops
        if needs[0] and plan.input_grad in WINOGRAD_TILES:
            tile = WINOGRAD_TILES[plan.input_grad]
            dx = winograd.conv2d_input_grad(self._delta(tile, grad), w, x_shape, pads, tile)
        elif needs[0] and plan.input_grad == "kn2row":
            dx = kn2row.conv2d_input_grad(dz, w, x_shape, pads)
        elif shifted_dx:
            dx = shifted_gemm.conv2d_input_grad(padded_delta, w, x_shape, pads, dilation)
        elif col2im_dx:
            options = stride, pads, dilation, groups, loops
            dx = im2col.input_grad(grad, delta, w, x_shape, *options)
        elif needs[0]:
            options = stride, pads, dilation, groups, loops
            dx = full_convolution.input_grad(grad, w, x_shape, *options)
        if self.has_bias and needs[2]:
            db = grad.sum(axis=(0, 2, 3))
        self.deltas = None
        return (dx, dw, db) if self.has_bias else (dx, dw)

    def _delta(self, tile, grad):
        """Winograd's transformed δ for this tile size, made once for ∂L/∂w and ∂L/∂x."""
        if self.deltas is None or tile not in self.deltas:
            pads = self.options[1]
            transformed = winograd.transformed_delta(grad, self.x_shape, pads, tile)
            self.deltas = {**(self.deltas or {}), tile: transformed}
        return self.deltas[tile]


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None) -> Tensor:
    """2-D convolution (cross-correlation) of a batch of images.

    y[n, o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · x_padded[n, c, s·i + d·u, s·j + d·v]

    Args:
        x: input (N, C_in, H, W).
        w: weights (C_out, C_in/groups, K_h, K_w).
        b: optional bias (C_out,).
        stride: int or (s_h, s_w), >= 1.
        padding: int or (p_h, p_w) zeros on each side, or 'valid' (no padding) or
            'same' (output size ceil(H / s): TensorFlow's rule, which for stride 1
            is PyTorch's — an odd total padding puts the extra row/column after).
        dilation: int or (d_h, d_w), spacing between kernel taps.
        groups: C_in and C_out are split into this many independent groups
            (groups = C_in is a depthwise convolution).
        activation: None, or "relu" for relu(y) fused into the convolution.

    Shape:
        output (N, C_out, OH, OW), OH = floor((H + 2p_h − d_h(K_h − 1) − 1) / s_h) + 1, likewise OW.

    Example:
        >>> y = conv2d(Tensor(np.ones((1, 1, 6, 6))), Tensor(np.ones((2, 1, 3, 3))))
        >>> y.shape
        (1, 2, 4, 4)
    """
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    conv_shapes.check_inputs(
        "conv2d", x, w, b, groups, 4, ("(N, C_in, H, W)", "(C_out, C_in/groups, K_h, K_w)")
    )
    stride = conv_shapes.pair(stride, "stride", "conv2d", minimum=1)
    dilation = conv_shapes.pair(dilation, "dilation", "conv2d", minimum=1)
    kernel = w.shape[2:]
    pads = conv_shapes.resolve_padding(padding, x.shape[2:], kernel, stride, dilation, "conv2d")
    for axis, name in ((0, "height"), (1, "width")):
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        padded = x.shape[2 + axis] + sum(pads[axis])
        if extent > padded:
            raise ValueError(
                f"conv2d: kernel {name} {kernel[axis]} (dilated extent {extent}) is larger than the "
                f"padded input {name} {padded} (input shape {x.shape}, padding {padding!r}); "
                f"expected extent <= padded input"
            )
    groups = int(groups)
    if activation is not None:
        check_choice(activation, ("relu",), "conv2d", "activation")
    out_size = conv_shapes.output_shape(x.shape, w.shape, stride, pads, dilation)
    plan = _plan(x.shape, w.shape, stride, pads, dilation, groups)
    tensors = (x, w) if b is None else (x, w, b)
    return Conv2dFunction.apply(
        *tensors,
        stride=stride,
        pads=pads,
        dilation=dilation,
        groups=groups,
        out_size=out_size,
        plan=plan,
        activation=activation,
    )


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D convolution (cross-correlation): filters slide along the last axis only.

    y[n, o, i] = b[o] + Σ_{c, u} w[o, c, u] · x_padded[n, c, s·i + d·u]

    For a sentence, C_in is the embedding size, so each filter spans the whole
    embedding and slides along the words; for a spectrogram, C_in is the
    frequency bins. Computed as ``conv2d`` on an (N, C_in, 1, L) view, so the
    backward pass is conv2d's.

    Args:
        x: input (N, C_in, L).
        w: weights (C_out, C_in/groups, K).
        b: optional bias (C_out,).
        stride, dilation: int >= 1.
        padding: int >= 0, 'valid' or 'same' (see ``conv2d``).
        groups: as in ``conv2d``.

    Shape:
        output (N, C_out, OL), OL = floor((L + 2p − d(K − 1) − 1) / s) + 1.
    """
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    conv_shapes.check_inputs(
        "conv1d", x, w, b, groups, 3, ("(N, C_in, L)", "(C_out, C_in/groups, K)")
    )
    stride = conv_shapes.single(stride, "stride", "conv1d", 1)
    dilation = conv_shapes.single(dilation, "dilation", "conv1d", 1)
    if isinstance(padding, str):
        pads = conv_shapes.resolve_padding(
            padding, (1,) + x.shape[2:], (1,) + w.shape[2:], (1, stride), (1, dilation), "conv1d"
        )
    else:
        p = conv_shapes.single(padding, "padding", "conv1d", 0)
        pads = ((0, 0), (p, p))
    extent = dilation * (w.shape[2] - 1) + 1
    if extent > x.shape[2] + sum(pads[1]):
        raise ValueError(
            f"conv1d: kernel size {w.shape[2]} (dilated extent {extent}) is larger than the padded "
            f"input length {x.shape[2] + sum(pads[1])} (input shape {x.shape}, padding {padding!r})"
        )
    n, c_in, length = x.shape
    x4 = reshape(x, (n, c_in, 1, length))
    w4 = reshape(w, w.shape[:2] + (1, w.shape[2]))
    tensors = (x4, w4) if b is None else (x4, w4, b)
    stride, dilation, groups = (1, stride), (1, dilation), int(groups)
    out_size = conv_shapes.output_shape(x4.shape, w4.shape, stride, pads, dilation)
    y = Conv2dFunction.apply(
        *tensors,
        stride=stride,
        pads=pads,
        dilation=dilation,
        groups=groups,
        out_size=out_size,
        plan=_plan(x4.shape, w4.shape, stride, pads, dilation, groups),
    )
    return reshape(y, (n, w.shape[0], y.shape[3]))
