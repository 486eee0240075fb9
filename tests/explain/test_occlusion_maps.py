"""Occlusion: the drop in the target's probability as a square covers the image."""

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.explain import probe
from cnnlab.explain.attribution import logits
from cnnlab.explain.occlusion_maps import default_patch, occlusion, patch_starts


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def linear_model(size, channels=3, seed=0):
    model = nn.Sequential(nn.Flatten(), nn.Dense(5), nn.Softmax(), seed=seed)
    return model.build((channels, size, size)).astype(np.float64)


@pytest.mark.parametrize("size, patch, stride", [(8, 3, 2), (13, 4, 3), (33, 5, 2)])
def test_covering_what_the_weights_ignore_changes_nothing(size, patch, stride):
    model = linear_model(size)
    model.dense.weight.data.reshape(5, 3, size, size)[:, :, : size // 2] = 0  # top half ignored
    x = np.random.default_rng(size).random((3, size, size))
    values = occlusion(model, x, patch=patch, stride=stride, batch_size=7)
    assert values.shape == (size, size)
    # every square over a pixel of rows < size//2 − patch + 1 lies in the ignored half
    assert not values[: size // 2 - patch + 1].any()
    assert np.abs(values[size // 2:]).max() > 1e-4


def test_one_square_over_everything_is_the_drop_to_the_baseline():
    model = linear_model(6, channels=1)
    x = np.random.default_rng(1).random((1, 6, 6))
    k = int(logits(model, x).argmax())
    covered = np.full((1, 6, 6), 0.3)
    expected = softmax(logits(model, x))[0, k] - softmax(logits(model, covered))[0, k]
    np.testing.assert_allclose(occlusion(model, x, patch=6, baseline=0.3), expected, rtol=1e-12)
    logit_drop = logits(model, x)[0, k] - logits(model, covered)[0, k]
    np.testing.assert_allclose(occlusion(model, x, patch=6, baseline=0.3, score="logit"),
                               logit_drop, rtol=1e-12)
    with pytest.raises(probe.ExplainError, match="score must be"):
        occlusion(model, x, score="loss")


def test_each_pixel_averages_the_squares_over_it():
    # hand computation on 3×3: a 2×2 square at (0, 0), (0, 1), (1, 0), (1, 1); the corner
    # pixels lie under one square, the edge middles under two, the centre under all four
    model = linear_model(3, channels=2, seed=4)
    x = np.random.default_rng(4).random((2, 3, 3))
    p = softmax(logits(model, x))[0]
    k = 2
    drops = {}
    for r in range(2):
        for c in range(2):
            covered = x.copy()
            covered[:, r:r + 2, c:c + 2] = [[[0.25]], [[0.75]]]
            drops[r, c] = p[k] - softmax(logits(model, covered))[0, k]
    expected = np.array([
        [drops[0, 0], (drops[0, 0] + drops[0, 1]) / 2, drops[0, 1]],
        [(drops[0, 0] + drops[1, 0]) / 2, sum(drops.values()) / 4,
         (drops[0, 1] + drops[1, 1]) / 2],
        [drops[1, 0], (drops[1, 0] + drops[1, 1]) / 2, drops[1, 1]],
    ])
    values = occlusion(model, x, target=k, patch=2, stride=1, baseline=[0.25, 0.75])
    np.testing.assert_allclose(values, expected, rtol=1e-10, atol=1e-15)


def test_patch_positions_cover_every_pixel():
    assert patch_starts(10, 4, 3) == [0, 3, 6]
    assert patch_starts(11, 4, 3) == [0, 3, 6, 7]
    assert default_patch(28) == (4, 2) and default_patch(224) == (32, 16)
    assert default_patch(8) == (1, 1)


def test_bad_requests_and_progress(trained_digits):
    model, images, _ = trained_digits
    with pytest.raises(probe.ExplainError, match="one image"):
        occlusion(model, images[:2])
    with pytest.raises(probe.ExplainError, match="patch must be an int from 1"):
        occlusion(model, images[0], patch=9)
    with pytest.raises(probe.ExplainError, match="baseline"):
        occlusion(model, images[0], baseline=[0.1, 0.2])
    with pytest.raises(probe.ExplainError, match="0 to 9"):
        occlusion(model, images[0], target=12)
    calls = []
    values = occlusion(model, images[0], patch=2, stride=2, batch_size=5,
                       progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (16, 16) and len(calls) == 4
    assert values.shape == (8, 8) and np.abs(values).max() > 0
