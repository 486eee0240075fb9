import numpy as np
import pytest
from scipy import signal

from cnnlab import kernels
from cnnlab.lab.apply import apply_kernel, load_image

LECTURE = {
    "sharpness": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "vertical-edge": [[0, 0, 0], [-1, 2, -1], [0, 0, 0]],
    "surround": [[1, 1, 1], [1, -9, 1], [1, 1, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "horizontal-edge": [[0, -1, 0], [0, 2, 0], [0, -1, 0]],
    "blur": [[1 / 9] * 3] * 3,
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "emboss": [[2, 0, 0], [0, -1, 0], [0, 0, -1]],
}


def test_nine_kernels_in_gallery_order():
    assert kernels.names() == list(LECTURE)


@pytest.mark.parametrize("name", list(LECTURE))
def test_kernel_values_are_the_lecture_values(name):
    values = kernels.get(name, np.float64)
    assert values.shape == (3, 3)
    np.testing.assert_array_equal(values, np.array(LECTURE[name], dtype=np.float64))
    assert kernels.get(name).dtype == np.float32


@pytest.mark.parametrize("name", list(LECTURE))
def test_each_kernel_has_a_one_line_description(name):
    text = kernels.describe(name)
    assert text.startswith(name + ": ")
    assert "\n" not in text and len(text) > len(name) + 10


def test_get_returns_a_fresh_copy_and_accepts_aliases():
    k = kernels.get("identity")
    k[1, 1] = 7
    assert kernels.get("identity")[1, 1] == 1
    np.testing.assert_array_equal(kernels.get("Sobel_X"), kernels.get("sobel-x"))
    assert kernels.canonical_name("sharpen") == "sharpness"


def test_unknown_kernel_names_the_choices():
    with pytest.raises(ValueError, match="unknown kernel 'laplace'.*sobel-x"):
        kernels.get("laplace")


@pytest.mark.parametrize("name", list(LECTURE))
def test_conv2d_of_a_real_photo_equals_correlate2d(name):
    image, _ = load_image(grayscale=True, size=40)
    ours = apply_kernel(image.astype(np.float64), name)
    reference = signal.correlate2d(image.astype(np.float64), np.array(LECTURE[name]), mode="valid")
    assert ours.shape == reference.shape == (38, 38)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)


def test_kernel_names_are_checked():
    with pytest.raises(TypeError, match="kernels: name must be a str .*, received name=3"):
        kernels.get(3)
    with pytest.raises(
        ValueError, match="kernels: unknown kernel 'nope'; expected one of sharpness"
    ):
        kernels.get("nope")
    assert kernels.canonical_name("Box_Blur") == "blur"
