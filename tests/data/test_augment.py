import numpy as np
import pytest
from scipy import ndimage

from cnnlab.data.augment import (
    Augmentation,
    affine_images,
    flip_images,
    parse_augment_spec,
    resize_images,
    rotate_images,
    scale_images,
    shift_images,
)


def _random_images(shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape).astype(dtype)


@pytest.mark.parametrize("dx, dy", [(2, 1), (-3, 0), (0, -2), (1, -1)])
def test_shift_moves_a_pixel_where_expected(dx, dy):
    images = np.zeros((1, 1, 7, 9), dtype=np.float32)
    images[0, 0, 3, 4] = 1.0
    shifted = shift_images(images, dx, dy)
    expected = np.zeros_like(images)
    expected[0, 0, 3 + dy, 4 + dx] = 1.0
    np.testing.assert_array_equal(shifted, expected)


def test_shift_fills_zeros_and_matches_slicing():
    images = _random_images((3, 2, 6, 6), np.uint8)
    shifted = shift_images(images, 2, -1)
    assert shifted.dtype == np.uint8
    np.testing.assert_array_equal(shifted[:, :, :-1, 2:], images[:, :, 1:, :-2])
    assert not shifted[:, :, :, :2].any() and not shifted[:, :, -1, :].any()


def test_shift_per_image_and_out_of_frame():
    images = np.ones((2, 1, 4, 4), dtype=np.float64)
    shifted = shift_images(images, np.array([0, 10]), 0)
    np.testing.assert_array_equal(shifted[0], images[0])
    assert not shifted[1].any()


def test_fractional_shift_interpolates():
    images = np.zeros((1, 1, 1, 4), dtype=np.float64)
    images[0, 0, 0, 1] = 1.0
    shifted = shift_images(images, 0.25, 0)
    np.testing.assert_allclose(shifted[0, 0, 0], [0.0, 0.75, 0.25, 0.0])


@pytest.mark.parametrize("size", [5, 6])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_rotation_by_quarter_turns_matches_rot90(size, dtype):
    images = _random_images((3, 2, size, size), dtype)
    for degrees, turns in ((90, 1), (180, 2), (270, 3), (-90, 3), (360, 0)):
        rotated = rotate_images(images, degrees)
        assert rotated.dtype == images.dtype
        np.testing.assert_allclose(rotated, np.rot90(images, turns, axes=(2, 3)), atol=1e-6)


@pytest.mark.parametrize("degrees", [30.0, -17.5])
def test_rotation_matches_scipy_bilinear(degrees):
    images = _random_images((2, 1, 9, 9), np.float64)
    rotated = rotate_images(images, degrees)
    for i in range(2):
        reference = ndimage.rotate(images[i, 0], degrees, reshape=False, order=1, mode="grid-constant")
        np.testing.assert_allclose(rotated[i, 0], reference, atol=1e-6)


def test_scale_matches_scipy_affine_transform():
    images = _random_images((1, 1, 11, 11), np.float64)
    factor = 1.6
    center = np.array([5.0, 5.0])
    inverse = np.eye(2) / factor
    reference = ndimage.affine_transform(images[0, 0], inverse, offset=center - inverse @ center, order=1,
                                         mode="grid-constant")
    np.testing.assert_allclose(scale_images(images, factor)[0, 0], reference, atol=1e-6)


def test_scale_keeps_centre_and_size():
    images = np.zeros((1, 1, 9, 9), dtype=np.float32)
    images[0, 0, 4, 4] = 1.0
    images[0, 0, 4, 6] = 1.0
    zoomed = scale_images(images, 2.0)
    assert zoomed.shape == images.shape
    assert zoomed[0, 0, 4, 4] == 1.0
    assert zoomed[0, 0, 4, 8] == 1.0  # 2 pixels right of centre lands 4 pixels right
    np.testing.assert_array_equal(scale_images(images, 1.0), images)
    shrunk = scale_images(np.ones((1, 1, 9, 9), dtype=np.float32), 0.5)
    assert shrunk[0, 0, 0, 0] == 0.0 and shrunk[0, 0, 4, 4] == 1.0


def test_affine_identity_and_flip():
    images = _random_images((2, 3, 5, 7), np.float32)
    np.testing.assert_array_equal(affine_images(images, np.eye(2)), images)
    mirror = np.diag([-1.0, 1.0])
    np.testing.assert_allclose(affine_images(images, mirror), images[..., ::-1], atol=1e-6)
    np.testing.assert_array_equal(flip_images(images), images[..., ::-1])


def test_augmentation_is_deterministic_per_seed():
    images = _random_images((16, 1, 12, 12), np.float32)
    settings = {"shift": 2, "rotate": 15.0, "scale": 0.1, "flip": True, "noise": 0.05}
    first = Augmentation(**settings, seed=3)(images)
    second = Augmentation(**settings, seed=3)(images)
    other = Augmentation(**settings, seed=4)(images)
    assert first.dtype == np.float32 and first.shape == images.shape
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)
    np.testing.assert_array_equal(images, _random_images((16, 1, 12, 12), np.float32))  # input untouched


def test_augmentation_with_explicit_rng():
    images = _random_images((4, 1, 8, 8), np.float64)
    augmentation = Augmentation(rotate=20.0, seed=0)
    a = augmentation(images, rng=np.random.default_rng(9))
    b = augmentation(images, rng=np.random.default_rng(9))
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, b)


def test_default_augmentation_is_identity():
    images = _random_images((4, 1, 8, 8), np.float32)
    out = Augmentation()(images)
    np.testing.assert_array_equal(out, images)
    assert out is not images


def test_integer_shifts_are_exact():
    images = _random_images((32, 1, 10, 10), np.float32)
    out = Augmentation(shift=3, seed=1)(images)
    for original, shifted in zip(images, out):
        allowed = set(original.ravel().tolist()) | {0.0}
        assert set(shifted.ravel().tolist()) <= allowed
    assert any(not np.array_equal(a, b) for a, b in zip(images, out))


def test_flip_only_mirrors_some_images():
    images = _random_images((40, 1, 6, 6), np.float32)
    out = Augmentation(flip=True, seed=0)(images)
    same = [np.array_equal(o, i) for o, i in zip(out, images)]
    mirrored = [np.allclose(o, i[..., ::-1], atol=1e-6) for o, i in zip(out, images)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 5 < sum(mirrored) < 35


def test_noise_statistics():
    zeros = np.zeros((64, 1, 16, 16), dtype=np.float32)
    noisy = Augmentation(noise=0.1, seed=0)(zeros)
    assert abs(noisy.mean()) < 0.005
    assert abs(noisy.std() - 0.1) < 0.005


def test_resize_images():
    constant = np.full((2, 1, 8, 8), 200, dtype=np.uint8)
    resized = resize_images(constant, 28)
    assert resized.shape == (2, 1, 28, 28) and resized.dtype == np.uint8
    assert (resized == 200).all()
    assert resize_images(constant, (5, 12)).shape == (2, 1, 5, 12)
    with pytest.raises(ValueError, match="resize_images: expected uint8"):
        resize_images(constant.astype(np.float32), 28)


def test_errors_name_the_function():
    with pytest.raises(ValueError, match=r"rotate_images: expected images of shape \(N, C, H, W\)"):
        rotate_images(np.zeros((4, 4)), 10)
    with pytest.raises(ValueError, match=r"shift_images: dx must be a scalar or have shape \(2,\)"):
        shift_images(np.zeros((2, 1, 4, 4)), np.zeros(3), 0)
    with pytest.raises(ValueError, match="scale_images: factor must be > 0"):
        scale_images(np.zeros((1, 1, 4, 4)), 0)
    with pytest.raises(ValueError, match="Augmentation: rotate must be a finite number >= 0"):
        Augmentation(rotate=-5)
    with pytest.raises(ValueError, match=r"scale must be a finite number in \[0, 1\)"):
        Augmentation(scale=1.5)
    with pytest.raises(TypeError, match="Augmentation: seed must be an int, received seed='1'"):
        Augmentation(seed="1")


def test_augmentation_refuses_nan_and_inf():
    # NaN passed the old "value < 0" check and produced NaN images.
    for name in ("shift", "rotate", "scale", "noise"):
        for bad in (float("nan"), float("inf")):
            with pytest.raises(ValueError, match=f"Augmentation: {name} must be a finite number"):
                Augmentation(**{name: bad})


def test_parse_augment_spec_grammar():
    augmentation = parse_augment_spec("shift=2, rotate=10,scale=0.1,flip,noise=0.05", seed=7)
    assert augmentation.get_config() == {"shift": 2, "rotate": 10.0, "scale": 0.1, "flip": True,
                                         "noise": 0.05, "seed": 7}
    assert isinstance(augmentation.shift, int)
    for text in ("none", "None", " ", "", "off", "no"):
        assert parse_augment_spec(text) is None
    assert parse_augment_spec("flip=false").flip is False
    assert parse_augment_spec("FLIP=Yes,rotate=1e1").get_config()["rotate"] == 10.0
    assert parse_augment_spec("shift=0").get_config()["shift"] == 0


@pytest.mark.parametrize("spec, problem", [
    ("flip=maybe", "flip must be flip, flip=true or flip=false, received flip=maybe"),
    ("shift=2,zoom=3", "unknown option 'zoom'; the options are shift, rotate, scale, flip, noise"),
    ("shift=2,,flip", "an empty option"),
    ("shift=2,shift=3", "shift is given twice"),
    ("shift=1.5", r"shift must be a whole number of pixels in \[0, 1000\], received shift=1.5"),
    ("shift", "shift must be .* received nothing"),
    ("shift=", "shift must be .* received shift="),
    ("shift=-1", "received shift=-1"),
    ("rotate=nan", "rotate must be an angle in degrees in .* received rotate=nan"),
    ("rotate=inf", "received rotate=inf"),
    ("rotate=1e999", "received rotate=1e999"),
    ("rotate=200", "received rotate=200"),
    ("scale=1", r"scale must be a fraction in \[0.0, 1.0\), received scale=1"),
    ("noise=2", "noise must be a standard deviation"),
    ("noise=1_0", "received noise=1_0"),
    ("none,flip", "unknown option 'none'"),
])
def test_parse_augment_spec_is_strict(spec, problem):
    with pytest.raises(ValueError, match=problem) as info:
        parse_augment_spec(spec)
    message = str(info.value)
    assert message.startswith(f"augmentation spec {spec!r}: ")
    assert "--" not in message  # no CLI flags: the CLI adds '--augment:' itself


def test_parse_augment_spec_checks_the_seed_apart_from_the_spec():
    expected = "parse_augment_spec: seed must be an int >= 0, received seed=-1"
    with pytest.raises(ValueError, match=expected) as info:
        parse_augment_spec("shift=2", seed=-1)
    assert "augmentation spec" not in str(info.value)
    with pytest.raises(TypeError, match="parse_augment_spec: spec must be a str"):
        parse_augment_spec(None)


def test_flip_maybe_is_refused_not_silently_no_flip():
    with pytest.raises(ValueError, match=r"augmentation spec 'shift=2,flip=maybe': flip must be"):
        parse_augment_spec("shift=2,flip=maybe")
