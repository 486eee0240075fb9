"""Convolution (the lecture's cross-correlation) in 1-D and 2-D, with its backward pass,
and the one planner that picks how each step is computed.

Notation (NCHW): input x (N, C_in, H, W), weights w (C_out, C_in/groups, K_h, K_w),
bias b (C_out,), stride s, padding p, dilation d, output y (N, C_out, OH, OW).

``conv2d_plan`` returns a ``ConvPlan``: which route computes the forward pass, ∂L/∂w
and ∂L/∂x (the routes live in ``cnnlab.ops.conv_routes``, one file each), and whether
the im2col/col2im copies of each step run as compiled loops or as NumPy slices.
``conv_routes(...)`` forces routes (the tests run every route through it); a forced
route that does not apply to a convolution raises ``RouteNotApplicableError``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools

import numpy as np

from cnnlab._checks import check_choice, check_int
from cnnlab.errors import CnnlabError
from cnnlab.ops import conv_shapes
from cnnlab.ops.activation import relu_grad
from cnnlab.ops.conv_routes import full_convolution, im2col, shifted_gemm, winograd
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

# Winograd F(m×m, 3×3) routes by output tile size m
WINOGRAD_TILES = {"winograd_2x2": 2, "winograd_4x4": 4}
FORWARD_ROUTES = ("im2col", "shifted_gemm", *WINOGRAD_TILES)
WEIGHT_GRAD_ROUTES = FORWARD_ROUTES
INPUT_GRAD_ROUTES = ("col2im", "full_convolution", "shifted_gemm", *WINOGRAD_TILES)
LOOPS = im2col.LOOPS
# steps that make no im2col/col2im copies
WITHOUT_COPIES = ("shifted_gemm", *WINOGRAD_TILES)

# Automatic choice of the shifted-GEMM route (stride 1, one group): when the input has
# enough channels and the padded frame adds few wasted columns (Hp·Wp / (OH·OW), e.g.
# 1.15 for 28×28 with padding 1, 1.22 for 19×19, 1.31 for 14×14). Measured on the fashion
# model's layers: 28×28×32 → 32 fwd 66 → 44 ms, bwd 119 → 87 ms; at 14×14 or with few
# input channels im2col was as fast or faster. Re-measured with OpenBLAS's SkylakeX kernel
# (2026-12-02, CPU time at one thread, im2col → shifted, fwd+bwd unless said): 14×14
# (conv_b) 26.2 → 32.2 ms, 28×28×24 → 24 59.0 → 52.3, 19×19×16 → 16 36.1 → 30.4, 19×19×128
# 1149 → 780, 19×19×64 forward 101 → 70; the Go net's 5×5 layer (19×19, waste 1.47) 643 → 717.
# Hence 1.25: 19×19 with padding 1 joins, 14×14 stays on im2col.
SHIFTED_MIN_CHANNELS = 16
SHIFTED_MAX_WASTE = 1.25

# Automatic choice of Winograd F(4×4, 3×3) (3×3, stride 1, dilation 1, one group; see
# _winograd_pays). Measured 2026-12-02 on this shared 2-core machine (load 2–7, so
# interleaved in one process), forward+backward, median ms of 15, old route → F(4×4) at
# 2 BLAS threads: fashion 64×32×28×28 → 32 70.7 → 60.7, 64×64×14×14 → 64 38.8 → 41.7,
# go 128×64×19×19 → 64 180 → 131, go 128×128×19×19 → 128 1336 → 537 (fastest of 15;
# medians were swamped by load), vgg 32×128×28×28 → 128 872 → 514, conv_b 64×32×14×14 → 64
# 46.8 → 53.2, 32×128×14×14 → 128 86 → 111 and 64×128×14×14 → 128 214 → 453 (fastest of
# 15). At one thread (CPU time) F(4×4) also won at 14×14 with 64 channels (59.8 → 42.8), but
# with two BLAS threads the GEMM routes gain more than the (one-thread) transforms, and at
# 14×14 31% of the 4×4 tiles' pixels are wasted: 14×14 stays on the GEMM routes.
# F(2×2) lost to F(4×4) on every case (one thread: e.g. go128 557 vs 334, vgg 285 vs 186).
WINOGRAD_MIN_CHANNELS = 32
WINOGRAD_MAX_WASTE = 1.2


class RouteNotApplicableError(CnnlabError, ValueError):
    """A route forced through ``conv_routes``/``pool_routes`` cannot compute this case."""


@dataclasses.dataclass(frozen=True)
class ConvPlan:
    """How conv2d computes one convolution.

    forward: "im2col" (one GEMM per group over the im2col buffer), "shifted_gemm"
        (stride 1, one group: GEMMs on shifted column ranges, block by block), or
        "winograd_2x2" / "winograd_4x4" (3×3 kernels, stride 1, dilation 1, one group:
        Winograd's minimal filtering F(2×2, 3×3) or F(4×4, 3×3), one GEMM per
        transformed position, 2.25× or 4× fewer multiply-adds).
    weight_grad: ∂L/∂w from the forward's buffer (im2col's columns, the padded input,
        Winograd's transformed input), so always the forward's route.
    input_grad: ∂L/∂x by "col2im" (wᵀδ added back at each kernel offset), by
        "full_convolution" (the lecture's: zero-inserted δ against the 180°-rotated
        kernels, through im2col), by "shifted_gemm" (that full convolution as
        shifted GEMMs; stride 1, one group), or by "winograd_2x2" / "winograd_4x4"
        (that full convolution in Winograd's transformed domain; where the forward
        is Winograd with the same tile, it shares the transformed δ with ∂L/∂w).
    forward_loops, input_grad_loops: "compiled" or "numpy" for the step's im2col or
        col2im copies; None when the step's route makes none.
    """

    forward: str
    weight_grad: str
    input_grad: str
    forward_loops: str | None
    input_grad_loops: str | None


_FORCED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("conv_routes", default=None)


@contextlib.contextmanager
def conv_routes(forward=None, weight_grad=None, input_grad=None, loops=None):
    """Force conv2d's routes inside the block; None leaves a step to the planner.

    ``loops`` ("compiled" or "numpy") applies to every im2col/col2im copy of the plan.
    A forced route that does not apply to a convolution raises
    ``RouteNotApplicableError`` from conv2d, naming the reason; nothing falls back.
    Blocks nest: an inner block inherits what it does not set.

        with conv_routes(forward="im2col", input_grad="full_convolution", loops="numpy"):
            y = conv2d(x, w, stride=2)
    """
    forced = dict(_FORCED.get() or {})
    for name, value, choices in (
        ("forward", forward, FORWARD_ROUTES),
        ("weight_grad", weight_grad, WEIGHT_GRAD_ROUTES),
        ("input_grad", input_grad, INPUT_GRAD_ROUTES),
        ("loops", loops, LOOPS),
    ):
        if value is not None:
            forced[name] = check_choice(value, choices, "conv_routes", name)
    token = _FORCED.set(forced)
    try:
        yield
    finally:
        _FORCED.reset(token)


def conv2d_plan(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1) -> ConvPlan:
    """The ``ConvPlan`` conv2d follows for these shapes and arguments (as ``conv2d`` takes them),
    under the ``conv_routes`` in force. Raises ``RouteNotApplicableError`` for a forced
    route that does not apply."""
    stride = conv_shapes.pair(stride, "stride", "conv2d_plan", minimum=1)
    dilation = conv_shapes.pair(dilation, "dilation", "conv2d_plan", minimum=1)
    groups = check_int(groups, "conv2d_plan", "groups", minimum=1)
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    pads = conv_shapes.resolve_padding(
        padding, x_shape[2:], w_shape[2:], stride, dilation, "conv2d_plan"
    )
    return _plan(x_shape, w_shape, stride, pads, dilation, groups)


def _plan(x_shape, w_shape, stride, pads, dilation, groups) -> ConvPlan:
    forced = _FORCED.get()
    if not forced:
        return _automatic_plan(x_shape, w_shape, stride, pads, dilation, groups)
    return _build_plan(x_shape, w_shape, stride, pads, dilation, groups, forced)


@functools.lru_cache(maxsize=512)
def _automatic_plan(x_shape, w_shape, stride, pads, dilation, groups) -> ConvPlan:
    """Cached by shapes: the planner costs one dictionary look-up per conv2d call."""
    return _build_plan(x_shape, w_shape, stride, pads, dilation, groups, {})


def _build_plan(x_shape, w_shape, stride, pads, dilation, groups, forced) -> ConvPlan:
    shifted_applies = stride == (1, 1) and groups == 1
    why_not = {
        "shifted_gemm": None
        if shifted_applies
        else f"needs stride 1 and groups=1; this convolution has stride {stride} and "
        f"groups={groups}",
    }
    why_not.update(
        dict.fromkeys(WINOGRAD_TILES, winograd.applies(w_shape, stride, dilation, groups))
    )
    forward = forced.get("forward") or _automatic_forward(
        x_shape, w_shape, pads, dilation, shifted_applies, why_not
    )
    if why_not.get(forward):
        raise RouteNotApplicableError(f"conv2d: forward route '{forward}' {why_not[forward]}")
    weight_grad = forced.get("weight_grad") or forward
    if weight_grad != forward:
        raise RouteNotApplicableError(
            f"conv2d: weight_grad route '{weight_grad}' needs the {weight_grad} forward's saved "
            f"input, and the forward route is '{forward}'"
        )
    input_grad = forced.get("input_grad") or _automatic_input_grad(
        x_shape, w_shape, stride, pads, dilation, forward
    )
    if why_not.get(input_grad):
        raise RouteNotApplicableError(
            f"conv2d: input_grad route '{input_grad}' {why_not[input_grad]}"
        )
    loops = forced.get("loops")
    if loops and forward in WITHOUT_COPIES and input_grad in WITHOUT_COPIES:
        raise RouteNotApplicableError(
            f"conv2d: loops='{loops}' applies to im2col/col2im copies, and this plan (forward "
            f"'{forward}', input_grad '{input_grad}') makes none"
        )
    unit = stride == (1, 1) and dilation == (1, 1)
    # compiled loops where they vectorise (unit steps), NumPy slices elsewhere (measured)
    forward_loops = (
        None if forward in WITHOUT_COPIES else loops or ("compiled" if unit else "numpy")
    )
    if input_grad in WITHOUT_COPIES:
        input_grad_loops = None
    elif input_grad == "full_convolution":  # its im2col runs at stride 1
        input_grad_loops = loops or ("compiled" if dilation == (1, 1) else "numpy")
    else:
        input_grad_loops = loops or ("compiled" if unit else "numpy")
    return ConvPlan(forward, weight_grad, input_grad, forward_loops, input_grad_loops)


def _automatic_forward(x_shape, w_shape, pads, dilation, shifted_applies, why_not) -> str:
    if why_not["winograd_4x4"] is None and _winograd_pays(x_shape, w_shape, pads):
        return "winograd_4x4"
    if not shifted_applies:
        return "im2col"
    (hp, wp), (oh, ow), _ = shifted_gemm.frame(x_shape, w_shape, pads, dilation)
    wide = x_shape[1] >= SHIFTED_MIN_CHANNELS and hp * wp <= SHIFTED_MAX_WASTE * oh * ow
    return "shifted_gemm" if wide else "im2col"


def _winograd_pays(x_shape, w_shape, pads) -> bool:
    """F(4×4, 3×3) where it was measured faster than the GEMM routes: both channel counts at
    least WINOGRAD_MIN_CHANNELS and few wasted tile pixels (the 4×4 tiles' area over the
    output's, e.g. 1.0 at 28×28, 1.11 at 19×19, 1.31 at 14×14)."""
    c_out, c_in = w_shape[:2]
    if min(c_in, c_out) < WINOGRAD_MIN_CHANNELS:
        return False
    oh, ow = conv_shapes.output_shape(x_shape, w_shape, (1, 1), pads, (1, 1))
    waste = (-(-oh // 4) * 4) * (-(-ow // 4) * 4) / (oh * ow)
    return waste <= WINOGRAD_MAX_WASTE


def _automatic_input_grad(x_shape, w_shape, stride, pads, dilation, forward) -> str:
    """The shifted or Winograd forward's own ∂L/∂x, else whichever of col2im and the full
    convolution has the smaller buffer: C_in·K_h·K_w × N·OH·OW against C_out·K_h·K_w × N ×
    the read area."""
    if forward in WITHOUT_COPIES:
        return forward
    c_out, _, kh, kw = w_shape
    oh, ow = conv_shapes.output_shape(x_shape, w_shape, stride, pads, dilation)
    read_h = (oh - 1) * stride[0] + dilation[0] * (kh - 1) + 1
    read_w = (ow - 1) * stride[1] + dilation[1] * (kw - 1) + 1
    return "full_convolution" if c_out * read_h * read_w < x_shape[1] * oh * ow else "col2im"


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
                np.maximum(y, 0, out=y)
        elif plan.forward in WINOGRAD_TILES:
            y, v = winograd.conv2d_forward(x, w, pads, WINOGRAD_TILES[plan.forward], b)
            self.saved = v if keep else None
            if relu:
                np.maximum(y, 0, out=y)
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
        loops = plan.input_grad_loops
        if needs[0] and plan.input_grad in WINOGRAD_TILES:
            tile = WINOGRAD_TILES[plan.input_grad]
            dx = winograd.conv2d_input_grad(self._delta(tile, grad), w, x_shape, pads, tile)
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
