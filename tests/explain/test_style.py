"""Style transfer: the Gram matrix and its loss (against loops and finite differences), and
an optimisation that lowers the loss and moves the Gram matrices toward the style's."""

import numpy as np
import pytest

from cnnlab.explain import probe
from cnnlab.explain.extractor import random_extractor
from cnnlab.explain.style import (
    gram,
    layer_outputs,
    style_loss,
    style_transfer,
    tv_loss,
)
from cnnlab.gradcheck import numerical_gradient
from cnnlab.tensor import Tensor


def pictures(size=32, seed=0):
    """A smooth content picture (blobs) and a striped style picture, RGB in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    content = np.stack([0.5 + 0.4 * np.sin(3 * x + c) * np.cos(2 * y - c) for c in range(3)])
    stripes = 0.5 + 0.5 * np.sign(np.sin(25 * (x + 0.5 * y)))
    style = np.stack([stripes, 1 - stripes, 0.3 + 0.1 * rng.random((size, size))])
    return content.astype(np.float32), style.astype(np.float32)


def test_gram_is_f_ft_over_the_layer_size():
    f = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    g = gram(Tensor(f)).data
    for n in range(2):
        for i in range(3):
            for j in range(3):
                expected = sum(f[n, i, a, b] * f[n, j, a, b] for a in range(4) for b in range(5))
                assert g[n, i, j] == pytest.approx(expected / (3 * 4 * 5), rel=1e-12)


def test_style_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    f1, f2 = rng.standard_normal((1, 3, 4, 5)), rng.standard_normal((1, 2, 3, 3))
    targets = [rng.standard_normal((3, 3)), rng.standard_normal((2, 2))]

    def loss():
        return float(style_loss([gram(Tensor(f1)), gram(Tensor(f2))], targets).data)

    a, b = Tensor(f1, requires_grad=True), Tensor(f2, requires_grad=True)
    style_loss([gram(a), gram(b)], targets).backward()
    np.testing.assert_allclose(a.grad, numerical_gradient(loss, f1), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b.grad, numerical_gradient(loss, f2), rtol=1e-6, atol=1e-9)
    # each layer weighs 1/L; the loss is the sum of squared Gram differences
    g1 = gram(Tensor(f1)).data[0]
    g2 = gram(Tensor(f2)).data[0]
    expected = 0.5 * (((g1 - targets[0]) ** 2).sum() + ((g2 - targets[1]) ** 2).sum())
    assert loss() == pytest.approx(expected, rel=1e-12)


def test_tv_loss_gradient_matches_finite_differences():
    x = np.random.default_rng(2).random((1, 2, 5, 4))
    t = Tensor(x, requires_grad=True)
    tv_loss(t).backward()
    np.testing.assert_allclose(t.grad, numerical_gradient(lambda: float(tv_loss(Tensor(x)).data), x),
                               rtol=1e-6, atol=1e-9)


def grams_distance(model, image, style, layers):
    with probe.inspecting(model):
        a = layer_outputs(model, Tensor(image[None]), layers)
        b = layer_outputs(model, Tensor(style[None]), layers)
    return sum(((gram(a[n]).data - gram(b[n]).data) ** 2).sum() for n in layers)


@pytest.fixture(scope="module")
def small_extractor():
    return random_extractor(widths=(8, 16, 16), seed=3)


def test_style_transfer_lowers_the_loss_tenfold_and_moves_the_grams(small_extractor):
    content, style = pictures()
    result = style_transfer(content, style, features=small_extractor, steps=25, style_weight=1e3)
    assert result.losses[0] / result.losses[-1] >= 10
    assert result.image.shape == content.shape and 0 <= result.image.min() <= result.image.max() <= 1
    before = grams_distance(small_extractor, content, style, result.style_layers)
    after = grams_distance(small_extractor, result.image, style, result.style_layers)
    assert after < 0.1 * before
    # and with layers the optimisation didn't see, the result is nearer the style too
    judge = random_extractor(widths=(12, 12, 24), seed=11, pool="max")
    layers = ["conv2d", "conv2d_1", "conv2d_2"]
    assert grams_distance(judge, result.image, style, layers) < grams_distance(judge, content, style, layers)


def test_adam_from_noise_is_seeded_and_lowers_the_loss(small_extractor):
    content, style = pictures(24)
    style = style[:, :20, :]  # the style's size needn't be the content's
    runs = [style_transfer(content, style, features=small_extractor, steps=15, optimizer="adam",
                           init="noise", seed=s, lr=0.05) for s in (4, 4, 5)]
    np.testing.assert_array_equal(runs[0].image, runs[1].image)
    assert not np.array_equal(runs[0].image, runs[2].image)
    assert runs[0].losses[-1] < 0.5 * runs[0].losses[0]
    assert len(runs[0].losses) == 16 and set(runs[0].terms) == {"content", "style", "tv"}


def test_size_scales_the_result(small_extractor):
    content, style = pictures(32)
    result = style_transfer(content[:, :, :24], style, features=small_extractor, steps=2, size=16)
    assert result.image.shape == (3, 16, 12)  # 32×24 → longer side 16
    assert len(result.losses) == 3  # the start and each step asked for


def test_small_pictures_take_the_default_layers_they_fit(small_extractor):
    content, style = pictures(16)
    # a 2×2 style image has no map after the second pooling: conv2d_2 is left out
    result = style_transfer(content, style[:, :2, :2], features=small_extractor, steps=1)
    assert result.style_layers == ["conv2d", "conv2d_1"]
    tiny = style_transfer(content[:, :2, :2], style, features=small_extractor, steps=1)
    assert tiny.content_layer == "conv2d_1" and tiny.image.shape == (3, 2, 2)


def test_bad_requests_are_explained(small_extractor):
    content, style = pictures(16)
    with pytest.raises(probe.ExplainError, match="3-channel"):
        style_transfer(content[:1], style, features=small_extractor, steps=1)
    with pytest.raises(probe.ExplainError, match="conv2d, avg_pool2d"):
        style_transfer(content, style, features=small_extractor, steps=1, style_layers=["conv7"])
    with pytest.raises(probe.ExplainError, match="style: an image of shape .3, 2, 2. is too small"):
        style_transfer(content, style[:, :2, :2], features=small_extractor, steps=1,
                       style_layers=["conv2d_2"])
    with pytest.raises(ValueError, match="optimizer"):
        style_transfer(content, style, features=small_extractor, optimizer="sgd")
