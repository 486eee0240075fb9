"""The paper's distorted datasets: shapes, determinism, identity settings, known transforms."""

import numpy as np
import pytest
from scipy import ndimage

from cnnlab.data import ArrayDataset, Splits
from cnnlab.data.distort import (
    KINDS,
    affine_place,
    distort_images,
    distort_splits,
    elastic_warp,
    projective_warp,
    random_parameters,
    tps_warp,
    undoing_theta,
)


def _blobs(count=6, size=28, seed=0):
    """uint8 images of a bright, off-centre, asymmetric blob (mass well inside the frame)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 1, size, size), dtype=np.uint8)
    for i in range(count):
        r, c = rng.integers(9, size - 12, 2)
        images[i, 0, r:r + 6, c:c + 3] = 255
        images[i, 0, r:r + 2, c:c + 6] = 200
    return images


def _splits(size=28):
    images = _blobs(12, size)
    labels = np.arange(12) % 3
    train = ArrayDataset(images[:8], labels[:8], ["a", "b", "c"], "blobs")
    test = ArrayDataset(images[8:], labels[8:], ["a", "b", "c"], "blobs")
    return Splits(train, test)


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_dtype_and_determinism(kind):
    images = _blobs()
    out = distort_images(images, kind, seed=3)
    side = 42 if kind == "RTS" else 28
    assert out.shape == (6, 1, side, side) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, distort_images(images, kind, seed=3))
    assert not np.array_equal(out, distort_images(images, kind, seed=4))
    # Chunking must not change the result: the parameters are drawn for all images at once.
    np.testing.assert_array_equal(out[2:], distort_images(images, kind, seed=3)[2:])


@pytest.mark.parametrize("kind", KINDS)
def test_distort_splits_names_labels_and_normalisation(kind):
    splits = _splits()
    train, test = distort_splits(splits, kind, seed=1)
    assert train.name == f"blobs ({kind})" and test.name == f"blobs ({kind})"
    np.testing.assert_array_equal(train.labels, splits.train.labels)
    assert train.class_names == ["a", "b", "c"]
    # Statistics of the distorted training split, handed to the test split.
    assert train.mean == pytest.approx(train.images.mean() / 255, rel=1e-9)
    assert (test.mean, test.std) == (train.mean, train.std)
    # Train and test are drawn from different streams.
    assert not np.array_equal(train.images[:4], distort_images(splits.test.images, kind, [1, 0]))


def test_rotation_by_quarter_turns_is_exact():
    images = _blobs()
    np.testing.assert_array_equal(affine_place(images, 90.0, 1.0, (0, 0)),
                                  np.rot90(images, 1, axes=(2, 3)))
    np.testing.assert_array_equal(affine_place(images, -90.0, 1.0, (0, 0)),
                                  np.rot90(images, -1, axes=(2, 3)))


def test_rotation_matches_scipy_at_an_odd_angle():
    images = _blobs(2).astype(np.float64)
    ours = affine_place(images, 30.0, 1.0, (0, 0))
    # scipy's positive angle also turns counter-clockwise as displayed (row 0 at the top).
    for i in range(2):
        theirs = ndimage.rotate(images[i, 0], 30.0, reshape=False, order=1, mode="constant")
        # The sampler snaps coordinates to 6 decimals (exact quarter turns): 1e-4 of 255.
        np.testing.assert_allclose(ours[i, 0], theirs, atol=1e-3)


def test_identity_settings_return_the_input():
    images = _blobs()
    np.testing.assert_array_equal(affine_place(images, 0.0, 1.0, (0, 0)), images)
    np.testing.assert_array_equal(projective_warp(images, 1.0, np.zeros((4, 2))), images)
    np.testing.assert_array_equal(tps_warp(images, 1.0, np.zeros((16, 2))), images)
    np.testing.assert_array_equal(elastic_warp(images, alpha=0.0), images)


def test_pure_scaling_agrees_across_warps():
    images = _blobs()
    shrunk = affine_place(images, 0.0, 0.8, (0, 0))
    np.testing.assert_array_equal(projective_warp(images, 0.8, np.zeros((4, 2))), shrunk)
    np.testing.assert_array_equal(tps_warp(images, 0.8, np.zeros((16, 2))), shrunk)


def test_rts_places_the_frame_on_the_canvas_at_the_offset():
    images = _blobs(1)
    placed = affine_place(images, 0.0, 1.0, (-7, -7), canvas=(42, 42))
    assert placed.shape == (1, 1, 42, 42)
    np.testing.assert_array_equal(placed[0, 0, :28, :28], images[0, 0])
    assert placed[0, 0, 28:].sum() == 0 and placed[0, 0, :, 28:].sum() == 0


def test_rotation_keeps_the_pixel_mass():
    images = _blobs(20)
    out = distort_images(images, "R", seed=0)
    mass_in = images.reshape(20, -1).sum(1).astype(float)
    mass_out = out.reshape(20, -1).sum(1).astype(float)
    np.testing.assert_allclose(mass_out, mass_in, rtol=0.05)


def test_rts_scales_the_mass_by_the_area_factor():
    images = _blobs(20)
    out, params = distort_images(images, "RTS", seed=0, return_parameters=True)
    ratio = out.reshape(20, -1).sum(1) / images.reshape(20, -1).sum(1)
    np.testing.assert_allclose(ratio, params["scale"] ** 2, rtol=0.1)


def test_random_parameters_follow_the_paper():
    rng = np.random.default_rng(0)
    r = random_parameters("R", 5000, rng)["degrees"]
    assert -90 <= r.min() < -85 and 85 < r.max() <= 90
    rts = random_parameters("RTS", 5000, rng)
    assert np.abs(rts["degrees"]).max() <= 45 and 0.7 <= rts["scale"].min()
    assert rts["scale"].max() <= 1.2
    # The scaled 28×28 frame stays on the 42×42 canvas.
    room = (42 - 28 * rts["scale"]) / 2
    assert np.all(np.abs(rts["offset"]) <= room[:, None] + 1e-12)
    p = random_parameters("P", 5000, rng)
    assert p["corner_shift"].std() == pytest.approx(5.0, rel=0.05)
    assert 0.75 <= p["scale"].min() and p["scale"].max() <= 1.0
    e = random_parameters("E", 5000, rng)
    assert e["control_shift"].shape == (5000, 16, 2)
    assert e["control_shift"].std() == pytest.approx(1.5, rel=0.05)


def test_projective_warp_moves_a_corner_where_asked():
    # A single bright pixel at the top-left corner follows the corner's displacement.
    images = np.zeros((1, 1, 28, 28), dtype=np.float64)
    images[0, 0, 0, 0] = 1.0
    shift = np.zeros((4, 2))
    shift[0] = (3.0, 2.0)
    out = projective_warp(images, 1.0, shift)
    assert np.unravel_index(out[0, 0].argmax(), (28, 28)) == (2, 3)


def test_tps_control_shift_is_interpolated_at_the_control_points():
    # Shift every control point by (2, 0): the spline is a pure translation, s = d + (2, 0),
    # so the output is the input moved 2 px left.
    images = _blobs(2)
    out = tps_warp(images, 1.0, np.tile([2.0, 0.0], (16, 1)))
    np.testing.assert_array_equal(out[..., :-2], images[..., 2:])


def test_bad_arguments_name_the_function():
    with pytest.raises(ValueError, match="distort_images"):
        distort_images(_blobs(), "Q")
    with pytest.raises(ValueError, match="corner_shift"):
        projective_warp(_blobs(), 1.0, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="affine_place"):
        affine_place(_blobs(), 0.0, 0.0, (0, 0))


@pytest.mark.parametrize("kind", KINDS)
def test_undoing_theta_straightens_the_distorted_images(kind):
    from cnnlab import functional as F

    clean = ndimage.gaussian_filter(_blobs(8).astype(np.float64), (0, 0, 1, 1))
    distorted, params = distort_images(clean, kind, seed=3, return_parameters=True)
    theta = undoing_theta(kind, params, (28, 28))
    grid = F.affine_grid(theta, distorted.shape)
    undone = F.grid_sample(distorted, grid).data
    target = clean if kind != "RTS" else affine_place(clean, 0.0, 1.0, (0, 0), canvas=(42, 42))
    error = np.linalg.norm(undone - target) / np.linalg.norm(target)
    unaided = np.linalg.norm(distorted - target) / np.linalg.norm(target)
    # R and RTS are undone up to interpolation; the best affine leaves part of P and E
    assert error < (0.12 if kind in ("R", "RTS") else 0.7 * unaided), (error, unaided)
    if kind in ("R", "RTS"):
        angle = np.degrees(np.arctan2(theta[:, 1, 0], theta[:, 0, 0]))
        np.testing.assert_allclose(angle, -params["degrees"], atol=1e-9)


def test_the_least_squares_undoing_is_exact_for_an_affine_warp():
    from cnnlab.data.distort import _affine_source, _fitted_undoing

    _, params = distort_images(np.zeros((5, 1, 28, 28)), "R", seed=1, return_parameters=True)
    src = _affine_source(np.deg2rad(params["degrees"]), np.ones(5), np.zeros((5, 2)),
                         (28, 28), (28, 28))
    np.testing.assert_allclose(_fitted_undoing(src, 28, 28), undoing_theta("R", params, (28, 28)),
                               atol=1e-10)


def test_a_fit_with_no_pixel_inside_the_frame_falls_back_to_the_identity():
    from cnnlab.data.distort import _fitted_undoing

    src = np.full((2, 28 * 28, 2), -50.0)      # every source point outside the frame
    src[1, :2] = [[3.0, 4.0], [10.0, 4.0]]      # two points: an affine is not fixed by them
    theta = _fitted_undoing(src, 28, 28)
    assert np.isfinite(theta).all()
    np.testing.assert_allclose(theta[0], [[1, 0, 0], [0, 1, 0]], atol=1e-12)
