"""Deep Dream: the layer's activations rise at every octave, on any image size."""

import numpy as np
import pytest

from cnnlab.explain import probe
from cnnlab.explain.dream import deep_dream
from cnnlab.explain.extractor import random_extractor
from cnnlab.tensor import Tensor


def layer_stats(model, image, layer):
    with probe.inspecting(model):
        out = probe.forward(model, Tensor(image[None].astype(model.dtype)), layer).data
    return float(out.mean()), float((out.astype(np.float64) ** 2).mean())


def photo(h=40, w=36, seed=0):
    rng = np.random.default_rng(seed)
    x = np.mgrid[0:h, 0:w][1] / max(h, w)
    return np.clip(np.stack([0.5 + 0.3 * np.sin(5 * x + c) + 0.05 * rng.standard_normal((h, w))
                             for c in range(3)]), 0, 1).astype(np.float32)


def test_the_layer_rises_at_every_octave_on_a_random_extractor():
    model = random_extractor(widths=(8, 16, 16), seed=2)
    image = photo()
    result = deep_dream(model, image, "conv2d_1", octaves=3, steps=4)
    assert result.sizes == [(21, 19), (29, 26), (40, 36)]  # each 1/1.4 of the next, rounded
    assert (result.objective[:, 1] > result.objective[:, 0]).all()
    assert (result.mean_activation[:, 1] > result.mean_activation[:, 0]).all()
    # measured independently on the full-size images
    before, after = layer_stats(model, image, "conv2d_1"), layer_stats(model, result.image, "conv2d_1")
    assert after[0] > before[0] and after[1] > before[1]
    assert result.image.shape == image.shape and 0 <= result.image.min() <= result.image.max() <= 1


def test_a_trained_net_with_a_dense_head_dreams_on_other_sizes(trained_digits):
    model, images, _ = trained_digits
    image = np.clip(np.kron(images[3], np.ones((1, 2, 2))), 0, 1)[:, :, :14]  # 1×16×14, not 8×8
    result = deep_dream(model, image, "relu_1", octaves=4, steps=5)
    assert len(result.sizes) == 4 and result.sizes[-1] == (16, 14)
    assert (result.objective[:, 1] > result.objective[:, 0]).all()
    assert layer_stats(model, result.image, "relu_1")[0] > layer_stats(model, image, "relu_1")[0]


def test_seeded_and_the_jitter_matters():
    model = random_extractor(widths=(4, 8), seed=0)
    image = photo(24, 24)
    a, b = (deep_dream(model, image, "conv2d_1", octaves=2, steps=3, jitter=64, seed=s)
            for s in (1, 1))
    c = deep_dream(model, image, "conv2d_1", octaves=2, steps=3, jitter=64, seed=2)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


def test_octaves_too_small_for_the_model_are_left_out():
    model = random_extractor(widths=(4, 4, 4), seed=0)  # needs at least 4 px
    result = deep_dream(model, photo(8, 8), "conv2d_2", octaves=6, steps=1)
    assert result.sizes == [(4, 4), (6, 6), (8, 8)]


def test_bad_requests_are_explained(trained_digits):
    model = trained_digits[0]
    with pytest.raises(probe.ExplainError, match="conv2d, relu, conv2d_1"):
        deep_dream(model, np.zeros((1, 12, 12)), "conv9")  # not "too small" for the head
    with pytest.raises(probe.ExplainError, match="1-channel"):
        deep_dream(model, photo(8, 8), "relu")
    extractor = random_extractor(widths=(4, 4, 4))
    with pytest.raises(probe.ExplainError, match="too small"):
        deep_dream(extractor, photo(3, 3), "conv2d_2")
    with pytest.raises(probe.ExplainError, match="octave_scale"):
        deep_dream(extractor, photo(8, 8), "conv2d", octave_scale=1.0)
