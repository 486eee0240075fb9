"""Image parameterisations, random views and penalties: each backward against finite
differences in float64, and the views' sampling against exact cases."""

import numpy as np
import pytest

from cnnlab.explain import param
from cnnlab.gradcheck import numerical_gradient


@pytest.mark.parametrize("shape", [(1, 1, 4, 6), (1, 1, 5, 5), (2, 3, 4, 5)])
def test_fourier_image_backward_is_its_gradient(shape):
    image = param.FourierImage(shape, np.random.default_rng(0), sd=0.5)
    weights = np.random.default_rng(1).normal(size=shape)
    expected = numerical_gradient(lambda: (image.image() * weights).sum(), image.params)
    np.testing.assert_allclose(image.backward(weights), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(1, 1, 6, 6), (2, 3, 7, 4)])
def test_fourier_image_round_trip(shape):
    image = param.FourierImage(shape, np.random.default_rng(0))
    target = np.random.default_rng(2).uniform(0.05, 0.95, size=shape)
    image.set_image(target)
    np.testing.assert_allclose(image.image(), target, atol=1e-12)


def test_fourier_noise_is_an_image_with_a_falling_spectrum():
    image = param.FourierImage((8, 1, 32, 32), np.random.default_rng(0), sd=0.01)
    centred = image.image() - 0.5
    power = (np.abs(np.fft.rfft2(centred)) ** 2).mean(axis=(0, 1))
    low, high = power[1:4, 1:4].mean(), power[12:17, 12:17].mean()
    assert low > 20 * high  # s(f) = 1/|f|: white noise in p, 1/f² power in the image


def test_pixel_image_backward_and_round_trip():
    image = param.PixelImage((2, 1, 3, 3), np.random.default_rng(0), sd=1.0)
    weights = np.random.default_rng(1).normal(size=(2, 1, 3, 3))
    expected = numerical_gradient(lambda: (image.image() * weights).sum(), image.params)
    np.testing.assert_allclose(image.backward(weights), expected, rtol=1e-6, atol=1e-9)
    target = np.random.default_rng(2).uniform(0.1, 0.9, size=(2, 1, 3, 3))
    image.set_image(target)
    np.testing.assert_allclose(image.image(), target, atol=1e-12)


def test_sampling_is_exact_for_identity_shift_and_quarter_turn():
    x = np.random.default_rng(0).random((5, 5))
    np.testing.assert_allclose(param.sampling_matrix(5, 5).toarray(), np.eye(25), atol=1e-12)
    shifted = (param.sampling_matrix(5, 5, shift=(1, -2)) @ x.ravel()).reshape(5, 5)
    np.testing.assert_allclose(shifted[1:, :3], x[:-1, 2:], atol=1e-12)
    assert not shifted[0].any() and not shifted[:, 3:].any()  # uncovered: nothing read
    turned = (param.sampling_matrix(5, 5, angle=90) @ x.ravel()).reshape(5, 5)
    np.testing.assert_allclose(turned, np.rot90(x), atol=1e-12)


def test_a_random_view_backward_is_its_adjoint():
    rng = np.random.default_rng(3)
    view = param.random_transform(rng, (7, 9), fill=[0.3, 0.6], pad=2, jitter=1, scale=0.1,
                                  rotate=10)
    x = rng.random((2, 2, 7, 9))
    weights = rng.normal(size=(2, 2, 7, 9))
    expected = numerical_gradient(lambda: (view.apply(x) * weights).sum(), x)
    np.testing.assert_allclose(view.adjoint(weights), expected, rtol=1e-6, atol=1e-8)
    # the fill appears exactly where the view uncovers the frame
    blank = view.apply(np.zeros_like(x))
    np.testing.assert_allclose(blank[:, 1] * 0.3, blank[:, 0] * 0.6, atol=1e-12)


def test_robustness_magnitudes_scale_with_the_image():
    assert param.default_robustness(224) == {"pad": 12, "jitter": 8, "scale": 0.1, "rotate": 10.0}
    assert param.default_robustness(28)["pad"] == 2 and param.default_robustness(28)["jitter"] == 1
    assert param.default_robustness(8)["pad"] == 0 and param.default_robustness(8)["jitter"] == 0


def test_penalties_gradient_and_l1_centre():
    rng = np.random.default_rng(4)
    x = rng.random((2, 3, 4, 5))
    mean, std = [0.2, 0.5, 0.7], [0.5, 0.25, 1.0]
    value, grad = param.penalties(x, mean, std, l1=0.3, l2=0.2, tv=0.7)
    expected = numerical_gradient(lambda: param.penalties(x, mean, std, 0.3, 0.2, 0.7)[0].sum(), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)
    neutral = np.broadcast_to(np.reshape(mean, (1, 3, 1, 1)), x.shape)
    assert param.penalties(neutral, mean, std, l1=1.0, l2=1.0)[0] == pytest.approx([0, 0])
    assert value.shape == (2,) and (value > 0).all()


def test_blur_keeps_a_constant_and_smooths_noise():
    noise = np.random.default_rng(5).random((1, 1, 16, 16))
    assert param.blur(np.full((1, 2, 5, 5), 0.4), 1.0) == pytest.approx(np.full((1, 2, 5, 5), 0.4))
    assert param.blur(noise, 1.0).std() < 0.5 * noise.std()
