"""max_pool2d / avg_pool2d / global_avg_pool2d: naive loops, finite differences, PyTorch oracle;
max pooling's planner and each of its routes, forced through ``pool_routes``."""

import numpy as np
import pytest

from cnnlab.ops.conv import RouteNotApplicableError
from cnnlab.ops.pool import (
    MAX_POOL_ROUTES,
    PoolPlan,
    _pool_options,
    avg_pool2d,
    global_avg_pool2d,
    max_pool2d,
    max_pool2d_plan,
    pool_routes,
)
from cnnlab.ops.pool_routes import window_loops, window_slices
from cnnlab.tensor import Tensor

# (N, C, H, W, kernel, stride, padding)
CASES = [
    (1, 1, 4, 4, 2, None, 0),
    (2, 3, 7, 7, 3, 2, 1),
    (2, 2, 6, 5, (2, 3), (1, 2), (1, 1)),
    (1, 2, 7, 6, 2, 2, 0),
    (2, 2, 5, 5, 3, 1, 0),
    (1, 1, 8, 8, 3, 3, 1),
    (2, 3, 9, 9, 3, 2, 0),
]
CASE_IDS = [f"case{i}" for i in range(len(CASES))]
POOLS = {"max": max_pool2d, "avg": avg_pool2d}


def make_case(case, dtype=np.float64, seed=0):
    n, c, h, w, kernel, stride, padding = case
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)
    return x, {"kernel_size": kernel, "stride": stride, "padding": padding}


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_naive_loops(case, kind, naive_pool):
    x, options = make_case(case)
    y = POOLS[kind](Tensor(x), **options)
    np.testing.assert_allclose(y.data, naive_pool(x, kind=kind, **options), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradcheck(case, kind, check_gradients):
    x, options = make_case(case)
    assert set(check_gradients(lambda t: POOLS[kind](t, **options), x)) == {0}


def test_max_pool_gradient_goes_to_the_maximum_only():
    x = Tensor(np.array([[[[1.0, 5.0], [3.0, 2.0]]]]), requires_grad=True)
    max_pool2d(x, 2).backward(np.array([[[[7.0]]]]))
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 7], [0, 0]])


def test_max_pool_ties_go_to_the_first_maximum():
    x = Tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(
        x.grad[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    )


def test_overlapping_windows_add_up():
    # 3×3 windows with stride 2 share the middle row/column (AlexNet's pooling)
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0  # the maximum of all four windows
    t = Tensor(x, requires_grad=True)
    max_pool2d(t, 3, stride=2).sum().backward()
    assert t.grad[0, 0, 2, 2] == 4 and t.grad.sum() == 4
    t.grad = None
    avg_pool2d(t, 3, stride=2).sum().backward()
    assert t.grad[0, 0, 2, 2] == pytest.approx(4 / 9) and t.grad[0, 0, 0, 0] == pytest.approx(
        1 / 9
    )


def test_rows_never_read_get_zero_gradient():
    x = Tensor(np.random.default_rng(1).standard_normal((1, 1, 7, 6)), requires_grad=True)
    avg_pool2d(x, 2).sum().backward()
    assert np.all(x.grad[0, 0, 6] == 0) and np.all(x.grad[0, 0, :6] == 0.25)


def test_global_avg_pool(check_gradients):
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    y = global_avg_pool2d(Tensor(x))
    assert y.shape == (2, 3)
    np.testing.assert_allclose(y.data, x.mean(axis=(2, 3)))
    assert set(check_gradients(global_avg_pool2d, x)) == {0}


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_float32_stays_float32(kind):
    x, options = make_case(CASES[1], dtype=np.float32)
    t = Tensor(x, requires_grad=True)
    y = POOLS[kind](t, **options)
    y.sum().backward()
    assert y.dtype == np.float32 and t.grad.dtype == np.float32
    g = global_avg_pool2d(t)
    assert g.dtype == np.float32


TORCH_POOLS = {"max": "max_pool2d", "avg": "avg_pool2d"}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(
    "case",
    CASES + [(4, 8, 28, 28, 2, None, 0), (4, 8, 28, 28, 3, 2, 0)],
    ids=CASE_IDS + ["big2", "big3s2"],
)
def test_against_torch(case, kind, dtype, torch, torch_check):
    x, options = make_case(case, dtype=dtype)
    theirs = getattr(torch.nn.functional, TORCH_POOLS[kind])
    torch_check(lambda t: POOLS[kind](t, **options), lambda t: theirs(t, **options), x, seed=3)


def test_max_pool_ties_against_torch(torch):
    x = np.random.default_rng(4).integers(0, 3, size=(2, 2, 7, 7)).astype(np.float32)
    for options in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}):
        tx = torch.tensor(x, requires_grad=True)
        torch.nn.functional.max_pool2d(tx, **options).sum().backward()
        t = Tensor(x, requires_grad=True)
        max_pool2d(t, **options).sum().backward()
        np.testing.assert_array_equal(t.grad, tx.grad.numpy())


def _t(*shape, dtype=np.float32):
    return Tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: max_pool2d(_t(3, 8, 8), 2),
            r"max_pool2d: expected input x of shape \(N, C, H, W\).*received shape \(3, 8, 8\)",
        ),
        (
            lambda: avg_pool2d(_t(1, 3, 4, 4), 5),
            r"avg_pool2d: kernel height 5 is larger than the padded input height 4",
        ),
        (
            lambda: max_pool2d(_t(1, 3, 8, 8), 0),
            r"max_pool2d: kernel_size must be an int >= 1, received kernel_size=0",
        ),
        (
            lambda: max_pool2d(_t(1, 3, 8, 8), 2, stride=0),
            r"max_pool2d: stride must be an int >= 1, received stride=0",
        ),
        (
            lambda: max_pool2d(_t(1, 3, 8, 8), 2, padding=2),
            r"max_pool2d: padding must be at most half the kernel size",
        ),
        (
            lambda: avg_pool2d(_t(1, 3, 8, 8), 2, padding=-1),
            r"avg_pool2d: padding must be an int >= 0, received padding=-1",
        ),
        (
            lambda: global_avg_pool2d(_t(3, 8)),
            r"global_avg_pool2d: expected input x of shape \(N, C, H, W\)",
        ),
        (
            lambda: max_pool2d(_t(1, 3, 8, 8, dtype=np.int64), 2),
            r"max_pool2d: x must be a floating-point",
        ),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: max_pool2d(_t(1, 3, 8, 8), "2"),
            r"max_pool2d: kernel_size must be an int, received kernel_size='2'",
        ),
        (
            lambda: max_pool2d(_t(1, 3, 8, 8), 2, stride=1.5),
            r"max_pool2d: stride must be an int, received stride=1.5",
        ),
    ],
)
def test_wrong_argument_types_raise_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        call()


# (N, C, H, W, kernel, stride, padding): kernels 1/2/3/non-square, strides 1–3, default and
# non-square; padding 0, 1 and per axis; odd, even and non-square inputs
POOL_GRID = [
    (1, 2, 4, 4, 2, None, 0),
    (2, 3, 7, 7, 3, 2, 1),
    (2, 2, 6, 5, (2, 3), (1, 2), (1, 1)),
    (1, 2, 7, 6, 2, 2, 0),
    (2, 2, 5, 5, 3, 1, 0),
    (1, 1, 8, 8, 3, 3, 1),
    (2, 3, 9, 9, 3, 2, 0),
    (1, 2, 9, 8, (2, 3), (3, 1), 0),
    (1, 2, 6, 6, 1, 1, 0),
    (1, 2, 7, 8, (3, 2), 2, (1, 0)),
    (2, 3, 7, 6, 2, 1, 0),
]
POOL_GRID_IDS = ["n{}c{}_{}x{}_k{}_s{}_p{}".format(*case) for case in POOL_GRID]


@pytest.mark.parametrize("route", MAX_POOL_ROUTES)
@pytest.mark.parametrize("case", POOL_GRID, ids=POOL_GRID_IDS)
def test_every_max_pool_route_matches_naive_loops(case, route, forced, naive_pool):
    x, options = make_case(case)
    y = forced(
        pool_routes(max_pool=route), lambda: max_pool2d(Tensor(x, requires_grad=True), **options)
    )
    assert y._ctx.route == route
    np.testing.assert_array_equal(y.data, naive_pool(x, kind="max", **options))


@pytest.mark.parametrize("route", MAX_POOL_ROUTES)
@pytest.mark.parametrize("case", POOL_GRID, ids=POOL_GRID_IDS)
def test_every_max_pool_route_passes_finite_differences(case, route, forced, check_gradients):
    x, options = make_case(case)
    errors = forced(
        pool_routes(max_pool=route), lambda: check_gradients(lambda t: max_pool2d(t, **options), x)
    )
    assert set(errors) == {0}


@pytest.mark.parametrize("route", ["compiled_fixed_window", "compiled_generic"])
@pytest.mark.parametrize(
    "case",
    [*POOL_GRID, (2, 2, 4, 4, 2, None, 0), (2, 3, 6, 6, 3, 2, 1)],
    ids=[*POOL_GRID_IDS, "ties", "ties_padded"],
)
def test_compiled_max_pool_equals_numpy_slices(case, route):
    """Values, argmax (first maximum on ties) and the scattered gradient, where both run."""
    x, options = make_case(case)
    if case in ((2, 2, 4, 4, 2, None, 0), (2, 3, 6, 6, 3, 2, 1)):
        x = np.round(x)  # many ties
    kernel, stride, pads, out_size = _pool_options("test", x.shape, **options)
    if route == "compiled_fixed_window" and pads != ((0, 0), (0, 0)):
        pytest.skip("route does not apply: 'compiled_fixed_window' needs padding 0")
    if route == "compiled_fixed_window" and (*kernel, *stride) not in window_loops.FIXED_WINDOWS:
        pytest.skip("route does not apply: no loop with this window compiled in")
    y, argmax = window_loops.max_pool_forward(
        x, kernel, stride, pads, out_size, fixed_window=route == "compiled_fixed_window"
    )
    y_ref, argmax_ref = window_slices.max_pool_forward(x, kernel, stride, pads, out_size)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    grad = np.random.default_rng(8).standard_normal(y.shape)
    np.testing.assert_allclose(
        window_loops.max_pool_backward(grad, argmax, x.shape),
        window_slices.max_pool_backward(grad, argmax_ref, x.shape),
        rtol=1e-12,
        atol=1e-12,
    )


def test_automatic_max_pool_plan_compiles_the_window_in_when_unpadded():
    assert max_pool2d_plan((64, 32, 28, 28), 2) == PoolPlan("compiled_fixed_window")
    assert max_pool2d_plan((64, 32, 28, 28), 3, stride=2) == PoolPlan("compiled_fixed_window")
    assert max_pool2d_plan((64, 32, 28, 28), 3, stride=2, padding=1) == PoolPlan(
        "compiled_generic"
    )
    assert max_pool2d_plan((4, 1, 9, 9), 3) is max_pool2d_plan((4, 1, 9, 9), 3)  # cached


def test_forcing_the_fixed_window_route_on_padded_pooling_raises_instead_of_falling_back():
    with pool_routes(max_pool="compiled_fixed_window"):
        with pytest.raises(RouteNotApplicableError, match="needs padding 0"):
            max_pool2d(np.ones((1, 1, 6, 6)), 3, stride=2, padding=1)
        assert max_pool2d_plan((1, 1, 6, 6), 2) == PoolPlan("compiled_fixed_window")
    with pool_routes(max_pool="numpy"):
        assert max_pool2d_plan((1, 1, 6, 6), 3, padding=1) == PoolPlan("numpy")
        with pool_routes():
            assert max_pool2d_plan((1, 1, 6, 6), 2) == PoolPlan("numpy")  # inherited
    assert max_pool2d_plan((1, 1, 6, 6), 3, padding=1) == PoolPlan("compiled_generic")


def test_unknown_max_pool_route_is_refused():
    with pytest.raises(
        ValueError,
        match="pool_routes: max_pool must be one of 'compiled_fixed_window', "
        "'compiled_generic', 'numpy', received max_pool='reshape'",
    ), pool_routes(max_pool="reshape"):
        pass


def test_max_pool_no_longer_lives_in_the_im2col_file():
    from cnnlab.ops.conv_routes import im2col

    assert not hasattr(im2col, "max_pool_forward") and not hasattr(im2col, "max_pool_backward")


def test_every_compiled_in_window_is_in_the_forced_grid():
    """Each specialisation of 'compiled_fixed_window' runs in the grids above."""
    grid_windows = set()
    for case in POOL_GRID:
        kernel, stride, pads, _ = _pool_options("test", case[:4], *case[4:])
        if pads == ((0, 0), (0, 0)):
            grid_windows.add((*kernel, *stride))
    assert set(window_loops.FIXED_WINDOWS) <= grid_windows


def test_compiled_in_windows_are_module_level_and_cached_on_disk():
    """A closure compiled per window is recompiled in every new process (numba caches
    module-level functions only): each specialisation is a module attribute with a disk cache."""
    from numba.core.caching import NullCache

    for key, loop in window_loops.FIXED_WINDOWS.items():
        assert getattr(window_loops, loop.__name__) is loop, key
        assert not isinstance(loop._cache, NullCache), key


def _with_nans(x, seed):
    rng = np.random.default_rng(seed)
    x = x.copy()
    x.reshape(-1)[rng.choice(x.size, size=x.size // 7, replace=False)] = np.nan
    return x


@pytest.mark.parametrize("route", MAX_POOL_ROUTES)
@pytest.mark.parametrize("case", POOL_GRID, ids=POOL_GRID_IDS)
def test_nan_is_the_maximum_on_every_route(case, route, forced):
    """The fast loops skip NaN checks and hand a batch holding NaN to the generic loop:
    every route gives the same values and the same argmax (the first NaN of a window)."""
    x, options = make_case(case)
    x = _with_nans(x, seed=5)
    with pool_routes(max_pool="numpy"):
        expected = max_pool2d(Tensor(x, requires_grad=True), **options)
    t = Tensor(x, requires_grad=True)
    y = forced(pool_routes(max_pool=route), lambda: max_pool2d(t, **options))
    np.testing.assert_array_equal(y.data, expected.data)  # NaN where expected has NaN
    np.testing.assert_array_equal(y._ctx.argmax, expected._ctx.argmax)
    assert np.isnan(y.data).any()


@pytest.mark.parametrize("route", MAX_POOL_ROUTES)
def test_a_nan_in_a_window_takes_the_gradient_as_in_torch(route, forced, torch):
    x = np.random.default_rng(6).standard_normal((2, 3, 8, 8))
    x[0, 1, 2, 3] = x[1, 2, 5, 4] = x[1, 0, 0, 0] = np.nan  # one NaN per window at most
    for options in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2}):
        t = Tensor(x, requires_grad=True)
        y = forced(
            pool_routes(max_pool=route), lambda t=t, options=options: max_pool2d(t, **options)
        )
        y.backward(np.ones(y.shape))
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.max_pool2d(tx, **options)
        ty.backward(torch.ones_like(ty))
        np.testing.assert_array_equal(t.grad, tx.grad.numpy())


def test_a_window_without_a_compiled_in_loop_takes_the_generic_loops():
    assert max_pool2d_plan((2, 3, 12, 12), 4) == PoolPlan("compiled_generic")
    assert max_pool2d_plan((2, 3, 12, 12), 3, stride=3) == PoolPlan("compiled_generic")
    message = r"2x2/2x2, 3x3/2x2.*kernel \(4, 4\)"
    with pool_routes(max_pool="compiled_fixed_window"), pytest.raises(
        RouteNotApplicableError, match=message
    ):
        max_pool2d(np.ones((1, 1, 8, 8)), 4)
