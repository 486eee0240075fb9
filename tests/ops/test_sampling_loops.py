"""grid_sample's compiled loops at their edges: image ranges and threads, one-pixel axes,
points exactly on the clip bounds, far away or not finite, float32, and what the forward
keeps for the backward."""

import itertools

import numpy as np
import pytest

from cnnlab.ops import sampling, sampling_loops
from cnnlab.ops.sampling import (
    affine_grid,
    grid_sample,
    grid_sample_reference,
    grid_sample_reference_backward,
)
from cnnlab.tensor import Tensor

PADDINGS = ["zeros", "border"]


def _sample(x, grid, padding="zeros", align=False, upstream_seed=1, mode="bilinear"):
    """(y, ∂L/∂x, ∂L/∂grid) of L = Σ upstream · grid_sample(x, grid), upstream seeded."""
    x_t, grid_t = Tensor(x, requires_grad=True), Tensor(grid, requires_grad=True)
    y = grid_sample(x_t, grid_t, mode, padding, align)
    upstream = np.random.default_rng(upstream_seed).normal(size=y.shape).astype(x.dtype)
    y.backward(upstream)
    return y.data, x_t.grad, grid_t.grad, upstream


def _inputs(seed, n=5, c=2, size=(6, 7), out=(4, 5), spread=0.6, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, *size)).astype(dtype)
    theta = np.array([[1.0, 0, 0], [0, 1.0, 0]]) + rng.normal(scale=spread, size=(n, 2, 3))
    grid = affine_grid(theta, (n, c, *out)).data.astype(dtype)
    return x, grid


def _torch_sample(x, grid, upstream, padding, align):
    torch = pytest.importorskip("torch")
    x_t = torch.tensor(x, requires_grad=True)
    grid_t = torch.tensor(grid, requires_grad=True)
    y = torch.nn.functional.grid_sample(x_t, grid_t, padding_mode=padding, align_corners=align)
    y.backward(torch.tensor(upstream))
    return y.detach().numpy(), x_t.grad.numpy(), grid_t.grad.numpy()


def test_image_ranges_are_independent():
    # each range of images is computed alone: the pieces of a split give the same bits
    x, grid = _inputs(1, n=6, spread=0.9)
    axes, pair = sampling._constants(x.shape[2:], x.dtype, False, False)
    outputs = []
    for bounds in ([0, 6], [0, 1, 4, 6]):
        out = np.full((6, 2, 4, 5), np.nan)
        jacobian = np.full(out.shape + (2,), np.nan)
        index = np.zeros((6, 20), np.uint32)
        fractions = np.zeros((6, 20)), np.zeros((6, 20))
        for start, stop in itertools.pairwise(bounds):
            sampling_loops.bilinear_forward(x, grid, out, jacobian, index, fractions, axes,
                                            True, pair, start, stop)
        outputs.append((out, jacobian, index, *fractions))
    for a, b in zip(*outputs):
        np.testing.assert_array_equal(a, b)
    assert not np.isnan(outputs[0][0]).any()


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("size", [(1, 5), (4, 1), (1, 1)], ids=["one-row", "one-column",
                                                                 "one-pixel"])
def test_one_pixel_axes_match_the_reference_and_torch(padding, align, size):
    x, grid = _inputs(2, size=size, spread=0.8)
    y, dx, dgrid, upstream = _sample(x, grid, padding, align)
    np.testing.assert_allclose(y, grid_sample_reference(x, grid, "bilinear", padding, align),
                               atol=1e-12)
    ref_dx, ref_dgrid = grid_sample_reference_backward(x, grid, upstream, "bilinear", padding,
                                                       align)
    np.testing.assert_allclose(dx, ref_dx, atol=1e-12)
    np.testing.assert_allclose(dgrid, ref_dgrid, atol=1e-12)
    for ours, theirs in zip((y, dx, dgrid), _torch_sample(x, grid, upstream, padding, align)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("padding", PADDINGS)
def test_points_on_the_clip_bounds_and_far_away_match_torch(padding):
    # align_corners=True on 4×5: u = 2 g_x + 2, v = 1.5 g_y + 1.5, exactly. g_x = −1.5, −1,
    # 1, 1.5 put u on −1, 0, W − 1, W (the bounds of both paddings' clips), ±1.25 between,
    # ±1e6 far outside; likewise for v
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4, 5))
    g_x = np.array([-1.5, -1.25, -1.0, 0.3, 1.0, 1.25, 1.5, 1e6, -1e6])
    g_y = np.array([-5 / 3, -1.0, -0.4, 0.2, 1.0, 5 / 3, 1e6, -1e6])
    grid = np.stack(np.meshgrid(g_x, g_y), axis=-1)[None].repeat(2, axis=0)
    y, dx, dgrid, upstream = _sample(x, grid, padding, align=True)
    for ours, theirs in zip((y, dx, dgrid), _torch_sample(x, grid, upstream, padding, True)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    assert np.abs(dgrid).max() > 0


@pytest.mark.parametrize("padding", PADDINGS)
def test_points_that_are_not_finite_give_nan_and_read_nothing_outside(padding):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 2, 4, 5))
    grid = rng.uniform(-1, 1, size=(1, 3, 4, 2))
    grid[0, 0, 1, 0] = np.nan
    grid[0, 1, 2, 1] = np.inf
    grid[0, 2, 3, 0] = -np.inf
    bad = ~np.isfinite(grid).all(axis=-1)
    y, dx, dgrid, upstream = _sample(x, grid, padding)
    np.testing.assert_array_equal(np.isnan(y), np.broadcast_to(bad[:, None], y.shape))
    np.testing.assert_array_equal(np.isnan(dgrid).any(axis=-1), bad)
    good = _sample(x, np.where(bad[..., None], 0.0, grid), padding)
    np.testing.assert_array_equal(y[~np.isnan(y)], good[0][~np.isnan(y)])
    if padding == "zeros":
        # the bad points read only padding: ∂L/∂x is that of the good points alone, as in
        # PyTorch (whose border padding crashes on NaN, so it is not asked here)
        mask = np.broadcast_to(~bad[:, None], y.shape)
        ref_dx, _ = grid_sample_reference_backward(x, np.where(bad[..., None], 5.0, grid),
                                                   upstream * mask)
        np.testing.assert_allclose(dx, ref_dx, atol=1e-12)
        torch_y = _torch_sample(x, grid, upstream, padding, False)[0]
        np.testing.assert_array_equal(np.isnan(y), np.isnan(torch_y))


@pytest.mark.parametrize("padding", PADDINGS)
def test_float32_is_computed_in_float32_close_to_float64(padding):
    x, grid = _inputs(5, spread=0.7)
    y, dx, dgrid, _ = _sample(x, grid, padding)
    y32, dx32, dgrid32, _ = _sample(x.astype(np.float32), grid.astype(np.float32), padding)
    assert (y32.dtype, dx32.dtype, dgrid32.dtype) == (np.float32,) * 3
    np.testing.assert_allclose(y32, y, atol=1e-5)
    np.testing.assert_allclose(dx32, dx, atol=1e-5)
    np.testing.assert_allclose(dgrid32, dgrid, atol=1e-4)


def test_the_forward_keeps_only_what_the_backward_needs():
    x, grid = _inputs(6)
    images = grid_sample(Tensor(x), Tensor(grid, requires_grad=True))  # an STN's input
    assert images._ctx.index.size == 0 and images._ctx.jacobian.size > 0
    fixed_grid = grid_sample(Tensor(x, requires_grad=True), Tensor(grid))
    assert fixed_grid._ctx.index.size > 0 and fixed_grid._ctx.jacobian.size == 0


def test_backward_twice_accumulates_twice():
    x, grid = _inputs(7)
    x_t, grid_t = Tensor(x, requires_grad=True), Tensor(grid, requires_grad=True)
    y = grid_sample(x_t, grid_t)
    upstream = np.random.default_rng(8).normal(size=y.shape)
    y.backward(upstream)
    once = x_t.grad.copy(), grid_t.grad.copy()
    y.backward(upstream)
    np.testing.assert_allclose(x_t.grad, 2 * once[0], atol=1e-12)
    np.testing.assert_allclose(grid_t.grad, 2 * once[1], atol=1e-12)


def test_empty_batches_channels_and_grids_work_and_an_empty_image_is_refused():
    x, grid = _inputs(9, n=2, c=2)
    for x_part, grid_part in [(x[:0], grid[:0]), (x[:, :0], grid), (x, grid[:, :0])]:
        y, dx, dgrid, _ = _sample(x_part, grid_part)
        assert y.shape == x_part.shape[:2] + grid_part.shape[1:3]
        assert dx.shape == x_part.shape and not dx.any()
        assert dgrid.shape == grid_part.shape and not dgrid.any()
    with pytest.raises(ValueError, match=r"grid_sample.*non-empty.*\(2, 2, 0, 7\)"):
        grid_sample(x[:, :, :0], grid)
