"""conv2d's planner and every route it can pick, each forced through ``conv_routes``.

The grid covers every value of every axis the engine issue named (strides 1–3, paddings
0/1/2/'same', kernels 1/3/5 and non-square, dilation 1–2, groups 1/2/depthwise, odd, even
and non-square inputs), and each route set runs on all of it: the naive-loop forward, the
naive-loop gradients and float64 finite differences. Cases a route cannot compute skip
with the planner's reason.
"""

import dataclasses

import numpy as np
import pytest

from cnnlab.ops import conv, conv_shapes
from cnnlab.ops.conv import (
    ConvPlan,
    RouteNotApplicableError,
    conv2d,
    conv2d_plan,
    conv_routes,
    output_size,
)
from cnnlab.ops.conv_routes import im2col, shifted_gemm
from cnnlab.tensor import Tensor

# (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups)
GRID = [
    # stride 1, one group: the shifted-GEMM routes apply to these
    (2, 3, 7, 7, 4, 3, 1, 0, 1, 1),
    (1, 2, 6, 6, 3, 5, 1, 2, 1, 1),
    (2, 2, 5, 7, 2, (2, 3), 1, "same", 2, 1),
    (1, 3, 6, 5, 2, 1, 1, 1, 1, 1),
    (1, 2, 8, 8, 3, 3, 1, "same", 2, 1),
    # strides 2–3, groups 2 and depthwise
    (2, 4, 7, 7, 4, 3, 2, 1, 1, 2),
    (1, 3, 8, 8, 3, 3, 3, 2, 1, 3),
    (2, 4, 9, 6, 6, (3, 1), 2, 0, 2, 2),
    (1, 2, 7, 8, 4, 5, 3, "same", 1, 2),
    (1, 4, 6, 7, 4, 1, 2, 2, 2, 4),
    (2, 2, 8, 6, 2, 3, 2, "same", 2, 1),
    (1, 3, 7, 9, 6, 5, 2, 0, 1, 3),
    # 3×3, stride 1, dilation 1: the Winograd routes apply to these (and to the first case)
    (2, 3, 5, 6, 2, 3, 1, 2, 1, 1),
    (1, 4, 9, 9, 5, 3, 1, "same", 1, 1),
]
GRID_IDS = ["n{}c{}_{}x{}_o{}_k{}_s{}_p{}_d{}_g{}".format(*case) for case in GRID]

# (forward, input_grad, loops): every route of every step, and both loops of each copying step
ROUTE_SETS = [
    ("im2col", "col2im", "numpy"),
    ("im2col", "col2im", "compiled"),
    ("im2col", "full_convolution", "numpy"),
    ("im2col", "full_convolution", "compiled"),
    ("shifted_gemm", "shifted_gemm", None),
    ("shifted_gemm", "col2im", "compiled"),
    ("shifted_gemm", "full_convolution", "numpy"),
    ("im2col", "shifted_gemm", "numpy"),
    ("winograd_2x2", "winograd_2x2", None),
    ("winograd_4x4", "winograd_4x4", None),
    ("winograd_2x2", "winograd_4x4", None),
    ("winograd_4x4", "col2im", "numpy"),
    ("im2col", "winograd_2x2", "compiled"),
    ("im2col_images", "col2im", "compiled"),
    ("im2col_images", "full_convolution", "numpy"),
    ("kn2row", "kn2row", None),
    ("im2col", "kn2row", "compiled"),
]
ROUTE_IDS = ["-".join(str(r) for r in routes) for routes in ROUTE_SETS]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def make_case(case, dtype=np.float64, seed=0):
    n, c_in, h, width, c_out, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, width)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, *_pair(kernel))).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    return x, w, b, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _assert_plan_followed(y, forward, input_grad, loops):
    """The recorded plan is the forced one: no route was swapped for another."""
    plan = y._ctx.plan
    assert (plan.forward, plan.weight_grad, plan.input_grad) == (forward, forward, input_grad)
    if loops is not None:
        assert {plan.forward_loops, plan.input_grad_loops} - {None} == {loops}


def _input_kind(case):
    h, width = case[2], case[3]
    return "non-square" if h != width else "odd" if h % 2 else "even"


def test_grid_covers_every_value_of_every_axis():
    assert {_input_kind(c) for c in GRID} == {"odd", "even", "non-square"}
    assert {c[6] for c in GRID} == {1, 2, 3}
    assert {c[7] for c in GRID} == {0, 1, 2, "same"}
    assert {c[5] for c in GRID} >= {1, 3, 5, (2, 3)}
    assert {c[8] for c in GRID} == {1, 2}
    assert {1, 2} <= {c[9] for c in GRID} and any(c[9] == c[1] > 2 for c in GRID)  # depthwise
    # the shifted-GEMM routes apply to stride 1 and one group only: those cases cover the rest
    shifted = [c for c in GRID if c[6] == 1 and c[9] == 1]
    assert {c[7] for c in shifted} == {0, 1, 2, "same"} and {c[8] for c in shifted} == {1, 2}
    assert {c[5] for c in shifted} >= {1, 3, 5, (2, 3)}
    assert {_input_kind(c) for c in shifted} == {"odd", "even", "non-square"}
    # the Winograd routes: 3×3, stride 1, dilation 1, one group
    wino = [c for c in shifted if c[5] == 3 and c[8] == 1]
    assert {c[7] for c in wino} == {0, 2, "same"} and {_input_kind(c) for c in wino} == {
        "odd",
        "non-square",
    }


@pytest.mark.parametrize("routes", ROUTE_SETS, ids=ROUTE_IDS)
@pytest.mark.parametrize("case", GRID, ids=GRID_IDS)
def test_every_route_matches_naive_loops(case, routes, forced, naive_conv2d):
    x, w, b, options = make_case(case)
    forward, input_grad, loops = routes
    with_grad = [Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), Tensor(b)]
    y = forced(
        conv_routes(forward=forward, input_grad=input_grad, loops=loops),
        lambda: conv2d(*with_grad, **options),
    )
    _assert_plan_followed(y, forward, input_grad, loops)
    np.testing.assert_allclose(y.data, naive_conv2d(x, w, b, **options), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("routes", ROUTE_SETS, ids=ROUTE_IDS)
@pytest.mark.parametrize("case", GRID, ids=GRID_IDS)
def test_every_route_gradients_match_naive_loops(case, routes, forced, naive_conv2d_grads):
    """All three gradients, the lecture's full-convolution ∂L/∂x included, without torch."""
    x, w, b, options = make_case(case)
    forward, input_grad, loops = routes
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = forced(
        conv_routes(forward=forward, input_grad=input_grad, loops=loops),
        lambda: conv2d(*tensors, **options),
    )
    delta = np.random.default_rng(4).standard_normal(y.shape)
    y.backward(delta)
    expected = naive_conv2d_grads(x, w, delta, **options)
    for name, ours, theirs in zip(("x", "w", "b"), (t.grad for t in tensors), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("routes", ROUTE_SETS, ids=ROUTE_IDS)
@pytest.mark.parametrize("case", GRID, ids=GRID_IDS)
def test_every_route_passes_finite_differences(case, routes, forced, check_gradients):
    x, w, b, options = make_case(case)
    forward, input_grad, loops = routes
    errors = forced(
        conv_routes(forward=forward, input_grad=input_grad, loops=loops),
        lambda: check_gradients(lambda x, w, b: conv2d(x, w, b, **options), x, w, b),
    )
    assert set(errors) == {0, 1, 2}


@pytest.mark.parametrize("routes", ROUTE_SETS, ids=ROUTE_IDS)
@pytest.mark.parametrize("case", GRID[::3], ids=GRID_IDS[::3])
def test_every_route_in_float32_against_torch(case, routes, forced, torch, torch_check):
    x, w, b, options = make_case(case, dtype=np.float32, seed=1)
    forward, input_grad, loops = routes
    forced(
        conv_routes(forward=forward, input_grad=input_grad, loops=loops),
        lambda: torch_check(
            lambda x, w, b: conv2d(x, w, b, **options),
            lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **options),
            x,
            w,
            b,
        ),
    )


@pytest.mark.parametrize("input_grad", ["col2im", "full_convolution"])
@pytest.mark.parametrize("case", GRID, ids=GRID_IDS)
def test_compiled_and_numpy_loops_give_the_same_results(case, input_grad):
    """Both loops really run (the plan says so) and agree: outputs and all three gradients."""
    x, w, b, options = make_case(case)
    results = {}
    for loops in ("numpy", "compiled"):
        tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
        with conv_routes(forward="im2col", input_grad=input_grad, loops=loops):
            y = conv2d(*tensors, **options)
        assert (y._ctx.plan.forward_loops, y._ctx.plan.input_grad_loops) == (loops, loops)
        y.backward(np.random.default_rng(2).standard_normal(y.shape))
        results[loops] = [y.data] + [t.grad for t in tensors]
    for compiled, numpy_ in zip(results["compiled"], results["numpy"]):
        np.testing.assert_allclose(compiled, numpy_, rtol=1e-12, atol=1e-12)


def _im2col_arguments(case):
    """(x, kernel, stride, pads, dilation, out_size) of a grid case, as conv2d resolves them."""
    x, w, _, options = make_case(case)
    kernel = w.shape[2:]
    stride, dilation = _pair(options["stride"]), _pair(options["dilation"])
    pads = conv_shapes.resolve_padding(
        options["padding"], x.shape[2:], kernel, stride, dilation, "test"
    )
    out_size = tuple(
        output_size(x.shape[2 + a], kernel[a], stride[a], pads[a], dilation[a]) for a in range(2)
    )
    return x, kernel, stride, pads, dilation, out_size


@pytest.mark.parametrize("case", GRID, ids=GRID_IDS)
def test_compiled_im2col_and_col2im_equal_the_numpy_slices(case):
    x, kernel, stride, pads, dilation, out_size = _im2col_arguments(case)
    col = im2col.im2col(x, kernel, stride, pads, dilation, out_size, loops="compiled")
    np.testing.assert_array_equal(
        col, im2col.im2col(x, kernel, stride, pads, dilation, out_size, "numpy")
    )
    c = np.random.default_rng(9).standard_normal(col.shape)
    np.testing.assert_allclose(
        im2col.col2im(c, x.shape, stride, pads, dilation, "compiled"),
        im2col.col2im(c, x.shape, stride, pads, dilation, "numpy"),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("loops", ["numpy", "compiled"])
@pytest.mark.parametrize("case", GRID, ids=GRID_IDS)
def test_col2im_is_the_adjoint_of_im2col(case, loops):
    # <im2col(x), c> == <x, col2im(c)> for every x, c: col2im is im2col's transpose
    x, kernel, stride, pads, dilation, out_size = _im2col_arguments(case)
    col = im2col.im2col(x, kernel, stride, pads, dilation, out_size, loops)
    c = np.random.default_rng(9).standard_normal(col.shape)
    dx = im2col.col2im(c, x.shape, stride, pads, dilation, loops)
    assert dx.shape == x.shape
    assert np.sum(col * c) == pytest.approx(np.sum(x * dx), rel=1e-12)


def test_shifted_gemm_over_many_column_blocks_equals_im2col(monkeypatch):
    monkeypatch.setattr(shifted_gemm, "BLOCK_BYTES", 4096)  # many blocks, a ragged last one
    x, w, b, options = make_case((3, 5, 9, 7, 4, (3, 2), 1, (2, 1), (1, 2), 1), seed=6)
    results = {}
    for route in ("shifted_gemm", "im2col"):
        tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
        with conv_routes(
            forward=route, input_grad="shifted_gemm" if route == "shifted_gemm" else "col2im"
        ):
            y = conv2d(*tensors, **options)
        y.backward(np.random.default_rng(3).standard_normal(y.shape))
        results[route] = [y.data] + [t.grad for t in tensors]
    for shifted, reference in zip(results["shifted_gemm"], results["im2col"]):
        np.testing.assert_allclose(shifted, reference, rtol=1e-12, atol=1e-12)


def test_automatic_plan_picks_shifted_gemm_for_wide_frames_only():
    # 16 output channels: below Winograd's minimum, so the GEMM routes compete
    wide = conv2d_plan((8, 32, 28, 28), (16, 32, 3, 3), padding=1)
    assert wide == ConvPlan("shifted_gemm", "shifted_gemm", "shifted_gemm", None, None)
    assert conv2d_plan((8, 1, 28, 28), (32, 1, 3, 3), padding=1).forward == "im2col"  # one channel
    assert conv2d_plan((8, 32, 14, 14), (16, 32, 3, 3), padding=1).forward == "im2col"  # 31% waste
    assert conv2d_plan((8, 32, 60, 60), (32, 32, 5, 5), padding=2).forward == "shifted_gemm"
    assert conv2d_plan((8, 16, 19, 19), (16, 16, 3, 3), padding=1).forward == "shifted_gemm"  # 1.22
    assert conv2d_plan((8, 48, 19, 19), (64, 48, 5, 5), padding=2).forward == "im2col"  # 1.47
    assert conv2d_plan((8, 32, 28, 28), (32, 32, 3, 3), stride=2, padding=1).forward == "im2col"
    assert conv2d_plan((8, 32, 28, 28), (32, 16, 3, 3), padding=1, groups=2).forward == "im2col"


def test_automatic_plan_picks_winograd_where_it_was_measured_faster():
    winograd_plan = ConvPlan("winograd_4x4", "winograd_4x4", "winograd_4x4", None, None)
    for x_shape, c_out in [
        ((64, 32, 28, 28), 32),  # the fashion net's first 3×3 block
        ((128, 64, 19, 19), 64),  # the Go policy net's 3×3 layers
        ((128, 128, 19, 19), 128),
        ((32, 128, 28, 28), 128),  # a VGG block
    ]:
        assert conv2d_plan(x_shape, (c_out, x_shape[1], 3, 3), padding=1) == winograd_plan
    # 14×14 (conv_b, the fashion net's 64-channel layer, 128 channels): 31% of the 4×4
    # tiles' pixels wasted, measured slower at 2 threads
    for c in (32, 64, 128):
        plan = conv2d_plan((64, c, 14, 14), (64 if c == 32 else c, c, 3, 3), padding=1)
        assert plan.forward == "im2col"
    assert conv2d_plan((64, 16, 28, 28), (64, 16, 3, 3), padding=1).forward != "winograd_4x4"
    for options in ({"stride": 2}, {"dilation": 2}, {"groups": 2}):
        c_in = 64 // options.get("groups", 1)
        plan = conv2d_plan((8, 64, 28, 28), (64, c_in, 3, 3), padding=1, **options)
        assert plan.forward not in ("winograd_2x2", "winograd_4x4")
    assert conv2d_plan((8, 64, 28, 28), (64, 64, 5, 5), padding=2).forward != "winograd_4x4"


def test_automatic_plan_picks_the_smaller_input_grad_buffer():
    assert conv2d_plan((2, 64, 8, 8), (8, 64, 3, 3), padding=1, groups=1).input_grad in (
        "full_convolution",
        "shifted_gemm",
    )
    # im2col forward: C_out ≪ C_in → full convolution, C_out ≫ C_in → col2im
    assert (
        conv2d_plan((2, 64, 8, 8), (8, 64, 3, 3), stride=2, padding=1).input_grad
        == "full_convolution"
    )
    assert conv2d_plan((2, 8, 8, 8), (64, 8, 3, 3), stride=2, padding=1).input_grad == "col2im"


def test_automatic_plan_compiles_loops_only_for_unit_steps():
    unit = conv2d_plan((4, 1, 28, 28), (6, 1, 5, 5), padding=2)  # LeNet's first layer
    assert (unit.forward, unit.forward_loops, unit.input_grad_loops) == (
        "im2col",
        "compiled",
        "compiled",
    )
    strided = conv2d_plan((4, 64, 9, 9), (8, 64, 3, 3), stride=2)
    assert (strided.forward_loops, strided.input_grad, strided.input_grad_loops) == (
        "numpy",
        "full_convolution",
        "compiled",
    )  # the full convolution's im2col runs at stride 1
    dilated = conv2d_plan((4, 2, 9, 9), (8, 2, 3, 3), dilation=2)
    assert (dilated.forward_loops, dilated.input_grad_loops) == ("numpy", "numpy")


def test_plan_is_cached_by_shapes():
    first = conv2d_plan((4, 3, 11, 11), (5, 3, 3, 3), padding=1)
    assert conv2d_plan((4, 3, 11, 11), (5, 3, 3, 3), padding=1) is first


def test_forcing_shifted_gemm_on_a_grouped_conv_raises_instead_of_falling_back():
    # the old module switch STRIDE1_PATH="shifted" silently ran im2col for groups and strides
    with conv_routes(forward="shifted_gemm"):
        with pytest.raises(
            RouteNotApplicableError, match="needs stride 1 and groups=1; .*groups=2"
        ):
            conv2d(np.ones((1, 4, 6, 6)), np.ones((2, 2, 3, 3)), groups=2)
        with pytest.raises(RouteNotApplicableError, match=r"stride \(2, 2\)"):
            conv2d_plan((1, 4, 6, 6), (2, 4, 3, 3), stride=2)
    with conv_routes(input_grad="shifted_gemm"), pytest.raises(RouteNotApplicableError):
        conv2d_plan((1, 4, 6, 6), (2, 4, 3, 3), stride=(1, 2))


def test_forcing_a_weight_grad_route_that_lacks_its_buffer_raises():
    with (
        conv_routes(forward="im2col", weight_grad="shifted_gemm"),
        pytest.raises(RouteNotApplicableError, match="forward route is 'im2col'"),
    ):
        conv2d_plan((1, 4, 6, 6), (2, 4, 3, 3))


def test_forcing_loops_on_a_plan_without_copies_raises():
    routes = conv_routes(forward="shifted_gemm", input_grad="shifted_gemm", loops="compiled")
    with routes, pytest.raises(RouteNotApplicableError, match="makes none"):
        conv2d_plan((1, 4, 6, 6), (2, 4, 3, 3))


def test_route_not_applicable_is_a_cnnlab_value_error():
    from cnnlab.errors import CnnlabError

    assert issubclass(RouteNotApplicableError, CnnlabError) and issubclass(
        RouteNotApplicableError, ValueError
    )


def test_unknown_route_names_are_refused():
    with (
        pytest.raises(
            ValueError,
            match="conv_routes: forward must be one of 'im2col', 'im2col_images', 'shifted_gemm', "
            "'kn2row', 'winograd_2x2', "
            "'winograd_4x4', received forward='winograd'",
        ),
        conv_routes(forward="winograd"),
    ):
        pass
    with pytest.raises(ValueError, match="conv_routes: loops must be one of"):
        conv_routes(loops="numba").__enter__()


def test_override_blocks_nest_and_end():
    shape = ((1, 4, 6, 6), (2, 4, 3, 3))
    automatic = conv2d_plan(*shape)
    with conv_routes(input_grad="full_convolution"):
        with conv_routes(loops="numpy"):
            inner = conv2d_plan(*shape)
        outer = conv2d_plan(*shape)
    assert (inner.input_grad, inner.forward_loops, inner.input_grad_loops) == (
        "full_convolution",
        "numpy",
        "numpy",
    )
    assert dataclasses.replace(outer, input_grad=automatic.input_grad) == automatic
    assert outer.input_grad == "full_convolution" != automatic.input_grad
    assert conv2d_plan(*shape) == automatic


def test_the_route_switches_are_gone():
    # the module global, the monkeypatched private method and the choice inside the loops file
    assert not hasattr(shifted_gemm, "STRIDE1_PATH") and not hasattr(
        shifted_gemm, "use_shifted_gemm"
    )
    assert not hasattr(conv.Conv2dFunction, "_full_convolution_is_smaller")
    from cnnlab.ops.conv_routes import im2col_loops

    assert not hasattr(im2col_loops, "im2col") and not hasattr(im2col_loops, "col2im")
