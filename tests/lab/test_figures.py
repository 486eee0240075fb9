import numpy as np
import pytest
from PIL import Image

from cnnlab.lab import figures
from cnnlab.lab.apply import load_image
from cnnlab.lab.fit_kernel import recover_kernel


@pytest.fixture(scope="module")
def gray():
    return load_image(grayscale=True, size=24)[0]


@pytest.fixture(scope="module")
def rgb():
    return load_image(size=24)[0]


def _check_png(path, name):
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        assert picture.size == figures.pixel_size(figures.FIGSIZES[name])
        pixels = np.asarray(picture.convert("L"))
    assert pixels.std() > 5  # not a blank canvas


def test_gallery_png(tmp_path, gray, rgb):
    _check_png(figures.gallery(gray, tmp_path / "gallery.png"), "gallery")
    _check_png(figures.gallery(rgb, tmp_path / "sub" / "gallery_rgb.png"), "gallery")


@pytest.mark.parametrize("kernel", ["sobel-x", "blur"])
def test_four_panel_png(tmp_path, gray, kernel):
    _check_png(figures.four_panel(gray, kernel, tmp_path / "four.png"), "four_panel")


def test_four_panel_arrays_follow_the_pipeline(gray):
    arrays = figures.four_panel_arrays(gray, "sobel-x", pool=2)
    assert arrays["convolution"].shape == gray.shape
    np.testing.assert_array_equal(arrays["relu"], np.maximum(arrays["convolution"], 0))
    assert arrays["max_pool"].shape == (12, 12)
    expected = arrays["relu"].reshape(12, 2, 12, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(arrays["max_pool"], expected)


def test_other_figures(tmp_path, gray, rgb):
    _check_png(
        figures.correlation_vs_convolution(gray, "emboss", tmp_path / "c.png"), "correlation"
    )
    _check_png(figures.colour(rgb, tmp_path / "colour.png"), "colour")
    _check_png(figures.one_to_many(rgb, tmp_path / "o.png"), "one_to_many")
    _check_png(figures.many_to_one(rgb, tmp_path / "m.png"), "many_to_one")
    result = recover_kernel("sobel-y", image=gray, steps=50)
    _check_png(figures.fit_kernel_figure(result, tmp_path / "fit.png", "sobel-y"), "fit_kernel")


def test_colour_needs_rgb(tmp_path, gray):
    with pytest.raises(
        ValueError, match=r"colour: expected a \(H, W, 3\) RGB picture, received shape \(24, 24\)"
    ):
        figures.colour(gray, tmp_path / "x.png")
