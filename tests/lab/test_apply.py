import numpy as np
import pytest
from scipy import signal

from cnnlab import functional as F
from cnnlab import kernels
from cnnlab.lab import apply as lab


@pytest.fixture(scope="module")
def rgb():
    image, name = lab.load_image(size=32)
    assert name == "astronaut"
    return image


@pytest.fixture(scope="module")
def gray():
    image, name = lab.load_image(grayscale=True, size=32)
    assert name == "camera"
    return image


def test_default_photos_are_real_and_in_unit_range(rgb, gray):
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.float32
    assert gray.shape == (32, 32) and gray.dtype == np.float32
    for image in (rgb, gray):
        assert 0.0 <= image.min() < 0.2 and 0.8 < image.max() <= 1.0
        assert image.std() > 0.1


@pytest.mark.parametrize("name", kernels.names())
def test_rgb_is_filtered_channel_by_channel_like_correlate2d(rgb, name):
    image = rgb.astype(np.float64)
    ours = lab.apply_kernel(image, name)
    assert ours.shape == (30, 30, 3) and ours.dtype == np.float64
    for c in range(3):
        reference = signal.correlate2d(image[..., c], kernels.get(name, np.float64), mode="valid")
        np.testing.assert_allclose(ours[..., c], reference, atol=1e-12)


def test_float32_stays_float32(rgb):
    assert lab.apply_kernel(rgb, "blur").dtype == np.float32
    assert lab.apply_colour_kernel(rgb, np.ones((3, 3, 3))).dtype == np.float32


@pytest.mark.parametrize("name", kernels.names())
def test_convolve_flips_the_kernel_like_convolve2d(gray, name):
    image = gray.astype(np.float64)
    reference = signal.convolve2d(image, kernels.get(name, np.float64), mode="valid")
    np.testing.assert_allclose(lab.convolve(image, name), reference, atol=1e-12)


def test_convolution_and_correlation_differ_exactly_by_the_flip(gray):
    image = gray.astype(np.float64)
    # Sobel-X flipped by 180° is −Sobel-X: convolution negates the correlation.
    np.testing.assert_allclose(
        lab.convolve(image, "sobel-x"), -lab.apply_kernel(image, "sobel-x"), atol=1e-12
    )
    # A 180°-symmetric kernel gives the same result both ways.
    np.testing.assert_allclose(
        lab.convolve(image, "sharpness"), lab.apply_kernel(image, "sharpness"), atol=1e-12
    )
    # Emboss is not symmetric: the two differ.
    assert np.abs(lab.convolve(image, "emboss") - lab.apply_kernel(image, "emboss")).max() > 0.1


def test_same_padding_and_stride(gray):
    image = gray.astype(np.float64)
    same = lab.apply_kernel(image, "sobel-y", padding="same")
    assert same.shape == image.shape
    reference = signal.correlate2d(
        image, kernels.get("sobel-y", np.float64), mode="same", boundary="fill"
    )
    np.testing.assert_allclose(same, reference, atol=1e-12)
    strided = lab.apply_kernel(image, "sobel-y", stride=2)
    np.testing.assert_allclose(strided, lab.apply_kernel(image, "sobel-y")[::2, ::2], atol=1e-12)


def test_colour_kernel_sums_three_sub_kernel_results(rgb):
    image = rgb.astype(np.float64)
    k = np.stack(
        [
            kernels.get("sobel-x", np.float64),
            kernels.get("emboss", np.float64),
            np.full((3, 3), 0.5),
        ]
    )
    out = lab.apply_colour_kernel(image, k, bias=0.25)
    expected = sum(signal.correlate2d(image[..., c], k[c], mode="valid") for c in range(3)) + 0.25
    assert out.shape == (30, 30)
    np.testing.assert_allclose(out, expected, atol=1e-12)
    parts = lab.colour_contributions(image, k)
    assert parts.shape == (3, 30, 30)
    np.testing.assert_allclose(parts.sum(axis=0) + 0.25, out, atol=1e-12)


def test_one_input_to_many_outputs(gray):
    image = gray.astype(np.float64)
    names = ["sobel-x", "sobel-y", "blur"]
    maps = lab.one_to_many(image, names)
    assert maps.shape == (3, 30, 30)
    for feature, name in zip(maps, names):
        np.testing.assert_allclose(feature, lab.apply_kernel(image, name), atol=1e-12)


def test_many_inputs_to_one_output(rgb):
    maps = rgb.astype(np.float64).transpose(2, 0, 1)
    k = np.random.default_rng(0).standard_normal((3, 3, 3))
    out = lab.many_to_one(maps, k, bias=-1.0)
    expected = sum(signal.correlate2d(maps[c], k[c], mode="valid") for c in range(3)) - 1.0
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_output_size_table_uses_the_shape_helper():
    rows = lab.output_size_table(28, kernel=3, strides=(1, 2), paddings=(0, 1))
    assert [(r.stride, r.padding, r.output) for r in rows] == [
        (1, 0, 26),
        (1, 1, 28),
        (2, 0, 13),
        (2, 1, 14),
    ]
    for r in rows:
        assert r.output == F.output_size(28, 3, stride=r.stride, padding=r.padding)
    text = lab.format_output_size_table(rows)
    assert text.splitlines()[0].startswith("| input | kernel | stride | padding | output |")
    assert "| 28 | 3 | 2 | 1 | 14 |" in text


def test_errors_name_the_operation_and_the_shapes(rgb, gray):
    with pytest.raises(ValueError, match=r"apply_kernel: .*received shape \(2, 2, 2, 2\)"):
        lab.apply_kernel(np.zeros((2, 2, 2, 2)), "blur")
    with pytest.raises(ValueError, match=r"apply_kernel: the kernel must be 2-D"):
        lab.apply_kernel(gray, np.ones((3, 3, 3)))
    with pytest.raises(
        ValueError, match=r"apply_colour_kernel: expected a kernel of shape \(3, K_h, K_w\)"
    ):
        lab.apply_colour_kernel(rgb, np.ones((2, 3, 3)))
    with pytest.raises(
        ValueError, match=r"many_to_one: expected a kernel of shape \(3, K_h, K_w\)"
    ):
        lab.many_to_one(np.zeros((3, 8, 8)), np.ones((1, 3, 3)))


def test_load_image_errors_name_the_file(tmp_path):
    from PIL import Image

    from cnnlab.errors import FileFormatError, LimitExceededError
    from cnnlab.limits import override

    with pytest.raises(FileNotFoundError, match="/nonexistent/picture.png"):
        lab.load_image("/nonexistent/picture.png")
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(FileFormatError, match="text.png"):
        lab.load_image(tmp_path / "text.png")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "big.png")
    with override(max_image_pixels=599), pytest.raises(LimitExceededError, match="big.png"):
        lab.load_image(tmp_path / "big.png")


def test_load_image_reads_16_bit_pictures_in_full_range(tmp_path):
    from PIL import Image

    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    image, _ = lab.load_image(tmp_path / "deep.png", grayscale=True)
    np.testing.assert_allclose(image, ramp / 65535.0, atol=1e-6)


def test_load_image_from_a_file(tmp_path):
    from PIL import Image

    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    Image.fromarray(pixels).save(tmp_path / "tiny.png")
    image, name = lab.load_image(tmp_path / "tiny.png")
    assert name == "tiny"
    np.testing.assert_allclose(image, pixels / 255.0, atol=1e-7)
    gray, _ = lab.load_image(tmp_path / "tiny.png", grayscale=True)
    assert gray.shape == (4, 4)


def test_output_size_table_checks_its_arguments():
    with pytest.raises(
        ValueError, match="output_size_table: size must be an int >= 1, received size=0"
    ):
        lab.output_size_table(0)
    with pytest.raises(
        TypeError, match="output_size_table: kernel must be an int, received kernel=3.0"
    ):
        lab.output_size_table(8, 3.0)
