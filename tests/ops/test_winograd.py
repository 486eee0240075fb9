"""The Winograd routes F(2×2, 3×3) and F(4×4, 3×3): the transforms, the compiled kernels,
float64 agreement with the direct route and a bound on the float32 error.

The forced grid in test_conv_routes.py runs both routes against naive loops, finite
differences and PyTorch; these tests check the pieces and the numerics."""

import numpy as np
import pytest

from cnnlab.ops.conv import RouteNotApplicableError, conv2d, conv2d_plan, conv_routes
from cnnlab.ops.conv_routes import winograd, winograd_rows, winograd_transforms
from cnnlab.tensor import Tensor

TILES = (2, 4)


def _correlate_valid(d, g):
    """The direct 2-D cross-correlation of d with g, valid part only."""
    out_h, out_w = d.shape[0] - g.shape[0] + 1, d.shape[1] - g.shape[1] + 1
    return np.array(
        [
            [np.sum(d[i : i + 3, j : j + 3] * g) for j in range(out_w)]
            for i in range(out_h)
        ]
    )


@pytest.mark.parametrize("tile", TILES)
def test_transform_matrices_compute_the_correlation_exactly(tile):
    # Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A is the m×m valid correlation of the α×α tile d with g
    bt, g_mat, at = winograd_transforms.matrices(tile)
    rng = np.random.default_rng(tile)
    for _ in range(5):
        d, g = rng.standard_normal((tile + 2, tile + 2)), rng.standard_normal((3, 3))
        y = at @ ((g_mat @ g @ g_mat.T) * (bt @ d @ bt.T)) @ at.T
        np.testing.assert_allclose(y, _correlate_valid(d, g), rtol=1e-12, atol=1e-12)


def _kind_matrix(kind):
    """The matrix that kernel code ``kind`` applies (Bᵀ, A, Aᵀ, B; F(2, 3) then F(4, 3))."""
    bt, _, at = winograd_transforms.matrices(2 if kind < 4 else 4)
    return (bt, at.T, at, bt.T)[kind % 4]


@pytest.mark.parametrize("kind", range(8))
def test_written_out_transforms_equal_their_matrices(kind):
    """down: X along one band column; across: X over one tile's window of columns (for the
    adjoint kinds, added back into the window), for every image at once."""
    matrix = _kind_matrix(kind)
    rng = np.random.default_rng(kind)
    images, channels = 5, 2
    rows_out, rows_in = matrix.shape
    gather = kind % 4 in (winograd_transforms.INPUT, winograd_transforms.DELTA)
    adds = kind % 4 == winograd_transforms.INPUT_GRAD  # overlapping tile rows add up
    # down: column 2 of a band (rows, columns, images)
    band = rng.standard_normal((rows_in, 4, images))
    shape = (rows_out, 4, images)
    z = rng.standard_normal(shape) if adds else np.full(shape, np.nan)
    expected = z.copy()
    expected[:, 2] = (expected[:, 2] if adds else 0) + matrix @ band[:, 2]
    (winograd_rows.down_gather if gather else winograd_rows.down_scatter)(
        kind, band, 2, z
    )
    np.testing.assert_allclose(z, expected, rtol=1e-13, atol=1e-13)
    if gather:  # across: columns 1..r of z's row μ = 1 → out[row 1 + ν, c 1, t 3 + n]
        z = rng.standard_normal((3, rows_in + 2, images))
        out = np.full((rows_out + 2, channels, images + 4), np.nan)
        winograd_rows.across_gather(kind, z, 1, 1, out, 1, 1, 3)
        expected = matrix @ z[1, 1 : 1 + rows_in, :]
        np.testing.assert_allclose(
            out[1 : 1 + rows_out, 1, 3 : 3 + images], expected, rtol=1e-13
        )
        assert (
            np.isnan(out[0]).all()
            and np.isnan(out[:, 0]).all()
            and np.isnan(out[:, 1, :3]).all()
        )
    else:  # across: values[row 1 + ν, c 1, t 3 + n] added to the window of columns 1..r
        values = rng.standard_normal((rows_in + 2, channels, images + 4))
        z = rng.standard_normal((3, rows_out + 2, images))
        expected = z.copy()
        expected[1, 1 : 1 + rows_out, :] += (
            matrix @ values[1 : 1 + rows_in, 1, 3 : 3 + images]
        )
        winograd_rows.across_scatter(kind, values, 1, 1, 3, z, 1, 1)
        np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("pads", [((1, 1), (1, 1)), ((0, 2), (3, 0)), ((0, 0), (0, 0))])
def test_scatter_is_the_adjoint_of_gather(tile, pads):
    # <gather(x), v> == <x, scatter(v)> for the input/∂L/∂x pair and the δ/output pair,
    # on the columns from t0 = 3 on of a wider V (a piece of the batch)
    rng = np.random.default_rng(1)
    x_shape = (3, 2, 7, 5)
    geometry = winograd.Geometry(x_shape, pads, tile)
    alpha = tile + 2
    pairs = (
        (winograd_transforms.INPUT, winograd_transforms.INPUT_GRAD, x_shape, True),
        (
            winograd_transforms.DELTA,
            winograd_transforms.OUTPUT,
            (3, 2, *geometry.out_size),
            False,
        ),
    )
    for gather_kind, scatter_kind, shape, on_input in pairs:
        src = rng.standard_normal(shape)
        values = rng.standard_normal((alpha * alpha, shape[1], geometry.count + 5))
        gathered = np.full_like(values, np.nan)
        frame = geometry.frame(on_input)
        kind = winograd._kind(tile, gather_kind)
        winograd_transforms.gather_tiles(src, kind, *frame, gathered, 3)
        assert np.isnan(gathered[:, :, :3]).all() and np.isnan(gathered[:, :, -2:]).all()
        scattered = np.full(shape, np.nan)  # every pixel is written
        kind = winograd._kind(tile, scatter_kind)
        winograd_transforms.scatter_tiles(
            values, 3, kind, *frame, scattered, np.zeros(shape[1]), False
        )
        inner = (slice(None), slice(None), slice(3, 3 + geometry.count))
        assert np.sum(gathered[inner] * values[inner]) == pytest.approx(
            np.sum(src * scattered), rel=1e-12
        )


def test_the_output_transform_adds_the_bias_and_applies_the_relu():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((3, 4, 9, 7)), rng.standard_normal((5, 4, 3, 3))
    b = rng.standard_normal(5)
    pads = ((1, 1), (1, 1))
    plain, _ = winograd.conv2d_forward(x, w, pads, 4)
    for relu in (False, True):
        y, _ = winograd.conv2d_forward(x, w, pads, 4, b, relu=relu)
        expected = plain + b.reshape(-1, 1, 1)
        expected = np.maximum(expected, 0) if relu else expected
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tile", TILES)
def test_pieces_on_threads_agree_with_the_direct_route(monkeypatch, tile):
    # three pieces of the batch (2, 2 and 3 images) on three threads: the forward's V and
    # the backward's Mδ are cut alike, whatever the thread count at the backward
    from cnnlab.ops.conv_routes import batch_threads

    monkeypatch.setattr(winograd, "MIN_PIECE_IMAGES", 2)
    monkeypatch.setattr(winograd, "cores", lambda: 3)
    monkeypatch.setattr(batch_threads, "MIN_PARALLEL_MACS", 0)
    assert winograd.pieces(7) == [0, 2, 4, 7]
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((7, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    route = f"winograd_{tile}x{tile}"
    direct = _conv_and_grads(x, w, b, 1, "im2col", "col2im")
    for threads in (3, 1):
        monkeypatch.setattr(batch_threads, "blas_threads", lambda threads=threads: threads)
        ours = _conv_and_grads(x, w, b, 1, route, route)
        for name, mine, reference in zip(("y", "x", "w", "b"), ours, direct):
            scale = np.abs(reference).max()
            np.testing.assert_allclose(
                mine, reference, rtol=1e-12, atol=1e-12 * scale, err_msg=name
            )


# (N, C_in, H, W, C_out, padding): tiles that overhang the output, inputs smaller than a
# tile, asymmetric and wide padding
SHAPES = [
    (2, 3, 7, 7, 4, 1),
    (1, 2, 5, 9, 3, 0),
    (3, 4, 6, 5, 2, (2, 0)),
    (1, 1, 1, 1, 2, 1),
    (2, 2, 3, 4, 3, 3),
    (1, 5, 10, 8, 6, "same"),
]


def _conv_and_grads(x, w, b, padding, forward, input_grad, seed=5):
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    with conv_routes(forward=forward, input_grad=input_grad):
        y = conv2d(*tensors, padding=padding)
    assert (y._ctx.plan.forward, y._ctx.plan.input_grad) == (forward, input_grad)
    y.backward(np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype))
    return [y.data] + [t.grad for t in tensors]


@pytest.mark.parametrize("route", ["winograd_2x2", "winograd_4x4"])
@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
def test_float64_agrees_with_the_direct_route(shape, route):
    n, c_in, h, width, c_out, padding = shape
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c_in, h, width))
    w, b = rng.standard_normal((c_out, c_in, 3, 3)), rng.standard_normal(c_out)
    ours = _conv_and_grads(x, w, b, padding, route, route)
    direct = _conv_and_grads(x, w, b, padding, "im2col", "col2im")
    for name, mine, reference in zip(("y", "x", "w", "b"), ours, direct):
        assert mine.dtype == np.float64
        scale = np.abs(reference).max()
        np.testing.assert_allclose(
            mine, reference, rtol=1e-12, atol=1e-12 * scale, err_msg=name
        )


# Bounds on max |float32 − float64| / max |float64 result|, for output, ∂L/∂x and ∂L/∂w.
# The direct route's float32 error here is 5–8e-7. F(2×2)'s matrices hold only 0, ±1 and
# ±½, so it rounds like the direct route (measured 2–7e-7): bound 2e-6. F(4×4)'s hold
# entries up to 8 (Aᵀ) and 5 (Bᵀ) and G has 1/24, which amplify rounding by about 20×
# (measured 1.6e-6 to 1.05e-5, worst for the output at 128 channels): bound 5e-5.
FLOAT32_BOUND = {"winograd_2x2": 2e-6, "winograd_4x4": 5e-5}


@pytest.mark.parametrize("route", ["winograd_2x2", "winograd_4x4"])
@pytest.mark.parametrize("shape", [(4, 64, 14, 64), (2, 128, 19, 128), (8, 32, 28, 32)])
def test_float32_error_is_bounded(shape, route):
    n, c_in, size, c_out = shape
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c_in, size, size))
    w = rng.standard_normal((c_out, c_in, 3, 3)) * np.sqrt(2 / (9 * c_in))  # He init
    b = rng.standard_normal(c_out) * 0.1
    exact = _conv_and_grads(x, w, b, 1, "im2col", "col2im")
    single = _conv_and_grads(
        *(a.astype(np.float32) for a in (x, w, b)), 1, route, route
    )
    for name, approx, reference in zip(("y", "x", "w"), single, exact):
        assert approx.dtype == np.float32
        error = np.abs(approx - reference).max() / np.abs(reference).max()
        assert error < FLOAT32_BOUND[route], f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("step", ["forward", "input_grad"])
@pytest.mark.parametrize(
    "w_shape, options, reason",
    [
        ((4, 4, 3, 3), {"stride": 2}, r"stride \(2, 2\)"),
        ((4, 4, 5, 5), {}, r"kernel \(5, 5\)"),
        ((4, 4, 3, 3), {"dilation": 2}, r"dilation \(2, 2\)"),
        ((4, 2, 3, 3), {"groups": 2}, "groups=2"),
    ],
)
def test_forcing_winograd_where_it_does_not_apply_raises(
    step, w_shape, options, reason
):
    for route in ("winograd_2x2", "winograd_4x4"):
        with (
            conv_routes(**{step: route}),
            pytest.raises(RouteNotApplicableError, match=reason),
        ):
            conv2d_plan((2, 4, 9, 9), w_shape, **options)


def test_the_transformed_delta_is_made_once_for_both_gradients(monkeypatch):
    calls = []
    original = winograd.transformed_delta
    monkeypatch.setattr(
        winograd, "transformed_delta", lambda *a: calls.append(a[-1]) or original(*a)
    )
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    _conv_and_grads(x, w, np.zeros(4), 1, "winograd_4x4", "winograd_4x4")
    assert calls == [4]
    calls.clear()
    _conv_and_grads(x, w, np.zeros(4), 1, "winograd_4x4", "winograd_2x2")
    assert sorted(calls) == [2, 4]
