"""affine_grid and grid_sample: finite differences in float64 over a grid of cases, the
compiled loops against the NumPy reference, PyTorch as an oracle (1e-10 in float64), the
identity and a known rotation, bad input."""

import itertools

import numpy as np
import pytest
from scipy import ndimage

from cnnlab.gradcheck import gradcheck
from cnnlab.ops.sampling import (
    affine_grid,
    grid_sample,
    grid_sample_reference,
    grid_sample_reference_backward,
)
from cnnlab.tensor import Tensor

MODES = list(itertools.product(["bilinear", "nearest"], ["zeros", "border"], [False, True]))
MODE_IDS = [f"{m}-{p}-{'align' if a else 'noalign'}" for m, p, a in MODES]
# (N, C, H_in, W_in, H_out, W_out, spread of θ around the identity): outputs larger and
# smaller than the input, and θ large enough that grids run outside the image
SHAPES = [
    (1, 1, 5, 5, 5, 5, 0.2),
    (2, 3, 4, 6, 7, 5, 0.6),
    (3, 2, 8, 7, 3, 4, 0.9),
]


def _theta(rng, n, spread):
    return np.array([[1.0, 0, 0], [0, 1.0, 0]]) + rng.normal(scale=spread, size=(n, 2, 3))


def _case(seed, shape):
    n, c, h, w, oh, ow, spread = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, h, w))
    theta = _theta(rng, n, spread)
    return x, theta, (n, c, oh, ow)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode,padding,align", MODES, ids=MODE_IDS)
def test_gradients_match_finite_differences(shape, mode, padding, align):
    x, theta, size = _case(1, shape)

    def sample(x_t, theta_t):
        grid = affine_grid(theta_t, size, align_corners=align)
        return grid_sample(x_t, grid, mode, padding, align)

    errors = gradcheck(sample, [Tensor(x, requires_grad=True), Tensor(theta, requires_grad=True)])
    assert errors[0] < 1e-6
    if mode == "bilinear":
        assert errors[1] < 1e-6
    # nearest: ∂L/∂grid is 0 by convention, and finite differences agree away from the
    # rounding boundaries (gradcheck's value is then the analytic 0 against ~0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode,padding,align", MODES, ids=MODE_IDS)
def test_grid_gradient_matches_finite_differences(shape, mode, padding, align):
    x, theta, size = _case(2, shape)
    grid = affine_grid(theta, size, align_corners=align).data.copy()
    errors = gradcheck(lambda g: grid_sample(Tensor(x), g, mode, padding, align),
                       [Tensor(grid, requires_grad=True)])
    assert errors[0] < 1e-6


@pytest.mark.parametrize("mode,padding,align", MODES, ids=MODE_IDS)
def test_compiled_loops_match_numpy_reference(mode, padding, align):
    for shape in SHAPES:
        x, theta, size = _case(3, shape)
        grid = affine_grid(theta, size, align_corners=align).data
        x_t, grid_t = Tensor(x, requires_grad=True), Tensor(grid, requires_grad=True)
        y = grid_sample(x_t, grid_t, mode, padding, align)
        upstream = np.random.default_rng(4).normal(size=y.shape)
        y.backward(upstream)
        np.testing.assert_allclose(y.data, grid_sample_reference(x, grid, mode, padding, align),
                                   atol=1e-12)
        dx, dgrid = grid_sample_reference_backward(x, grid, upstream, mode, padding, align)
        np.testing.assert_allclose(x_t.grad, dx, atol=1e-12)
        np.testing.assert_allclose(grid_t.grad, dgrid, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode,padding,align", MODES, ids=MODE_IDS)
def test_matches_torch(shape, mode, padding, align):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, theta, size = _case(5, shape)
    x_t, theta_t = Tensor(x, requires_grad=True), Tensor(theta, requires_grad=True)
    grid = affine_grid(theta_t, size, align_corners=align)
    grid.retain_grad()
    y = grid_sample(x_t, grid, mode, padding, align)
    upstream = np.random.default_rng(6).normal(size=y.shape)
    y.backward(upstream)

    tx = torch.tensor(x, requires_grad=True)
    ttheta = torch.tensor(theta, requires_grad=True)
    tgrid = functional.affine_grid(ttheta, size, align_corners=align)
    tgrid.retain_grad()
    ty = functional.grid_sample(tx, tgrid, mode=mode, padding_mode=padding, align_corners=align)
    ty.backward(torch.tensor(upstream))

    for ours, theirs in [(grid.data, tgrid), (y.data, ty), (x_t.grad, tx.grad),
                         (grid.grad, tgrid.grad), (theta_t.grad, ttheta.grad)]:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-10)


def test_identity_theta_returns_the_input():
    rng = np.random.default_rng(7)
    x = rng.random((3, 2, 9, 11)).astype(np.float32)
    theta = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (3, 1, 1))
    for mode in ("bilinear", "nearest"):
        grid = affine_grid(theta, x.shape, align_corners=True)
        y = grid_sample(x, grid, mode=mode, align_corners=True)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.data, x, atol=1e-6, rtol=0)


def test_rotation_theta_rotates_like_scipy():
    # θ maps output to input coordinates. scipy turns the picture by +a counter-clockwise
    # as seen on screen (y pointing down); the output point (x, y) then reads the source
    # point (x cos a − y sin a, x sin a + y cos a): θ = [[cos, −sin, 0], [sin, cos, 0]].
    size = 33
    yy, xx = np.mgrid[:size, :size]
    image = np.sin(xx / 3.0) + np.cos(yy / 5.0) + (xx * yy) / size**2
    angle = 30.0
    a = np.deg2rad(angle)
    theta = np.array([[[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0]]])
    x = image[None, None]
    # align_corners=True: ±1 are the centres of the corner pixels, so the centre of
    # rotation is the image's centre pixel, as in scipy
    grid = affine_grid(theta, x.shape, align_corners=True)
    ours = grid_sample(x, grid, align_corners=True).data[0, 0]
    theirs = ndimage.rotate(image, angle, reshape=False, order=1)
    interior = (slice(8, -8), slice(8, -8))
    error = np.abs(ours[interior] - theirs[interior]).max()
    assert error < 1e-9  # both bilinear at the same points
    # and the opposite direction is clearly different
    wrong = ndimage.rotate(image, -angle, reshape=False, order=1)
    assert np.abs(ours[interior] - wrong[interior]).max() > 0.1


def test_bad_input_names_the_op_and_the_shapes():
    x = np.zeros((2, 1, 5, 5))
    with pytest.raises(ValueError, match=r"affine_grid.*\(N, 2, 3\).*\(2, 3, 2\)"):
        affine_grid(np.zeros((2, 3, 2)), (2, 1, 5, 5))
    with pytest.raises(ValueError, match=r"affine_grid.*\(2, 1, 5, 5\).*\(3, 2, 3\)"):
        affine_grid(np.zeros((3, 2, 3)), (2, 1, 5, 5))
    with pytest.raises(ValueError, match=r"affine_grid.*size"):
        affine_grid(np.zeros((2, 2, 3)), (2, 5, 5))
    with pytest.raises(ValueError, match=r"grid_sample.*\(3, 4, 4, 2\).*\(2, 1, 5, 5\)"):
        grid_sample(x, np.zeros((3, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"grid_sample.*\(2, 4, 4, 3\)"):
        grid_sample(x, np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"grid_sample.*\(1, 5, 5\)"):
        grid_sample(np.zeros((1, 5, 5)), np.zeros((1, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"grid_sample.*mode"):
        grid_sample(x, np.zeros((2, 4, 4, 2)), mode="bicubic")
    with pytest.raises(ValueError, match=r"grid_sample.*padding_mode"):
        grid_sample(x, np.zeros((2, 4, 4, 2)), padding_mode="reflection")


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_only_the_gradients_needed_are_computed(mode):
    x, theta, size = _case(8, SHAPES[1])
    grid = affine_grid(theta, size).data
    upstream = np.random.default_rng(9).normal(size=(size[0], size[1], *size[2:]))
    dx, dgrid = grid_sample_reference_backward(x, grid, upstream, mode)
    grid_t = Tensor(grid, requires_grad=True)
    grid_sample(Tensor(x), grid_t, mode).backward(upstream)  # images: no ∂L/∂x
    np.testing.assert_allclose(grid_t.grad, dgrid, atol=1e-12)
    x_t = Tensor(x, requires_grad=True)
    grid_sample(x_t, Tensor(grid), mode).backward(upstream)
    np.testing.assert_allclose(x_t.grad, dx, atol=1e-12)


def test_nearest_rounds_half_to_even_like_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(2 * 16, dtype=np.float64).reshape(2, 1, 4, 4)
    # source coordinates exactly between pixels: u = ((g + 1)·4 − 1)/2 = 0.5, 1.5, 2.5
    g = np.array([-0.5, 0.0, 0.5])
    grid = np.stack(np.meshgrid(g, g[::-1]), axis=-1)[None].repeat(2, axis=0)
    for align in (False, True):
        ours = grid_sample(x, grid, mode="nearest", align_corners=align).data
        theirs = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(grid),
                                                 mode="nearest", align_corners=align)
        np.testing.assert_array_equal(ours, theirs.numpy())
