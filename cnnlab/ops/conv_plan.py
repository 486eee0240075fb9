"""The one planner of 2-D convolution: which route computes each step, and the one override.

``conv2d_plan`` returns a ``ConvPlan``: which route computes the forward pass, ∂L/∂w
and ∂L/∂x (the routes live in ``cnnlab.ops.conv_routes``, one file each), and whether
the im2col/col2im copies of each step run as compiled loops or as NumPy slices.
``conv_routes(...)`` forces routes (the tests run every route through it); a forced
route that does not apply to a convolution raises ``RouteNotApplicableError``.
Apart from ``cnnlab.ops.conv`` (the op itself) so that each stays a readable size;
``cnnlab.ops.conv`` re-exports every public name here.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools

from cnnlab._checks import check_choice, check_int
from cnnlab.errors import CnnlabError
from cnnlab.ops import conv_shapes
from cnnlab.ops.conv_routes import im2col, shifted_gemm, winograd

__all__ = ["ConvPlan", "RouteNotApplicableError", "conv2d_plan", "conv_routes"]

# Winograd F(m×m, 3×3) routes by output tile size m
WINOGRAD_TILES = {"winograd_2x2": 2, "winograd_4x4": 4}
FORWARD_ROUTES = ("im2col", "im2col_images", "shifted_gemm", "kn2row", *WINOGRAD_TILES)
WEIGHT_GRAD_ROUTES = FORWARD_ROUTES
INPUT_GRAD_ROUTES = ("col2im", "full_convolution", "shifted_gemm", "kn2row", *WINOGRAD_TILES)
LOOPS = im2col.LOOPS
# steps that make no im2col/col2im copies
WITHOUT_COPIES = ("shifted_gemm", "kn2row", *WINOGRAD_TILES)

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
# Re-measured with the pieces-on-threads Winograd route (issue 17, second round; three
# other processes running, so interleaved, ratio to PyTorch forward / forward+backward,
# 2 threads then 1 thread CPU time) at 14×14 and 7×7, GEMM route vs F(4×4) vs F(2×2):
# conv_b 0.85/0.59 vs 1.33/0.88 vs 0.89/0.40 (another run 0.93/0.86, 1.21/0.98, 0.85/0.61),
# 2.13/2.48 vs 2.67/2.46 vs 2.65/2.73; 64×64×14×14 → 64 0.85/0.81 vs 1.10/0.97 vs
# 1.05/0.93, 2.52/2.28 vs 2.53/1.93 vs 2.50/2.19; 64×128×7×7 → 128 0.93/0.81 vs 1.19/1.04
# vs 1.00/0.97, 2.47/2.23 vs 2.38/1.94 vs 2.37/2.31. No Winograd route won both counts
# there: 14×14 and 7×7 stay on the GEMM routes.
WINOGRAD_MIN_CHANNELS = 32
WINOGRAD_MAX_WASTE = 1.2

# Automatic choice of im2col image by image (one group) over the batch's im2col buffer: when
# that buffer would be large and each image's GEMM wide enough to run well on one core.
# Measured 2026-12-02 with a training run holding one of the 2 cores (interleaved medians,
# im2col → im2col_images, PyTorch in brackets): one thread, CPU ms, the Go net's 5×5 layer
# (128 × 48 × 19×19) fwd+∂w k=64 368 → 274 (156), k=128 610 → 453 (307), conv_c fwd 33.6 →
# 23.0 (34.3); two threads, wall ms, Go k=64 905 → 508 (329), k=128 658 → 528 (332), conv_c
# fwd 92 → 43 (72), fwd+bwd 404 → 274 (418). The pixel minimum keeps narrow images (the text
# CNN's 46-wide rows, LeNet's 10×10) on the batch GEMMs, which were not measured slower.
IMAGES_MIN_BUFFER_BYTES = 16 << 20
IMAGES_MIN_PIXELS = 256


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
    why_not = dict.fromkeys(
        ("shifted_gemm", "kn2row"),
        None
        if shifted_applies
        else f"needs stride 1 and groups=1; this convolution has stride {stride} and "
        f"groups={groups}",
    )
    why_not.update(
        dict.fromkeys(WINOGRAD_TILES, winograd.applies(w_shape, stride, dilation, groups))
    )
    why_not["im2col_images"] = None if groups == 1 else f"needs groups=1; this has {groups}"
    forward = forced.get("forward") or _automatic_forward(
        x_shape, w_shape, stride, pads, dilation, shifted_applies, why_not
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


def _automatic_forward(x_shape, w_shape, stride, pads, dilation, shifted_applies, why_not):
    if why_not["winograd_4x4"] is None and _winograd_pays(x_shape, w_shape, pads):
        return "winograd_4x4"
    if shifted_applies:
        (hp, wp), (oh, ow), _ = shifted_gemm.frame(x_shape, w_shape, pads, dilation)
        # 1-D convolutions (conv1d's (N, C, 1, L)) on kn2row: the text CNN's step (widths
        # 3/4/5 × 100 over 300 channels) against the shifted GEMMs, interleaved medians
        # 2026-12-02 on a loaded machine: one thread, CPU ms, 98 vs 121 (PyTorch 121); two
        # threads, wall ms, 326 vs 746 (PyTorch 548)
        if hp == 1:
            return "kn2row"
        if x_shape[1] >= SHIFTED_MIN_CHANNELS and hp * wp <= SHIFTED_MAX_WASTE * oh * ow:
            return "shifted_gemm"
    if why_not["im2col_images"] is None and _images_pay(x_shape, w_shape, stride, pads, dilation):
        return "im2col_images"
    return "im2col"


def _images_pay(x_shape, w_shape, stride, pads, dilation) -> bool:
    """im2col image by image where the batch's buffer would take at least
    IMAGES_MIN_BUFFER_BYTES (at 4 bytes an element) and an image has IMAGES_MIN_PIXELS
    output pixels or more."""
    oh, ow = conv_shapes.output_shape(x_shape, w_shape, stride, pads, dilation)
    rows = w_shape[1] * w_shape[2] * w_shape[3]
    return oh * ow >= IMAGES_MIN_PIXELS and 4 * rows * x_shape[0] * oh * ow >= (
        IMAGES_MIN_BUFFER_BYTES
    )


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
