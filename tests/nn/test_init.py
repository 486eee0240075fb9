"""Initialisers: statistics, fans (grouped convolutions included), seeding, dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.nn import init


def test_fans_dense_conv_and_grouped_conv():
    assert init.fans((100, 1250)) == (1250, 100)
    assert init.fans((50, 25, 3, 3)) == (225, 450)
    # AlexNet conv2: 256 filters over 96 channels in 2 groups: each sees 48·25 inputs,
    # each input feeds 128·25 outputs (not 256·25).
    assert init.fans((256, 48, 5, 5), groups=2) == (1200, 3200)
    assert init.fans((7,)) == (7, 7)


@pytest.mark.parametrize(
    "name,expected_std",
    [
        ("he_normal", math.sqrt(2 / 400)),
        ("he_uniform", math.sqrt(6 / 400) / math.sqrt(3)),
        ("glorot_normal", math.sqrt(2 / (400 + 300))),
        ("glorot_uniform", math.sqrt(6 / (400 + 300)) / math.sqrt(3)),
        ("normal", 0.05),
        ("uniform", 0.05 / math.sqrt(3)),
    ],
)
def test_initialiser_statistics(name, expected_std):
    values = init.get(name)(np.random.default_rng(0), (300, 400), 400, 300)
    assert values.dtype == np.float32 and values.shape == (300, 400)
    assert abs(values.mean()) < 0.02 * expected_std * 10
    assert values.std() == pytest.approx(expected_std, rel=0.01)
    if "uniform" in name:
        assert np.abs(values).max() <= expected_std * math.sqrt(3)


def test_constant_initialisers_and_float64():
    rng = np.random.default_rng(0)
    assert not init.zeros(rng, (3,), 1, 1).any()
    assert (init.ones(rng, (3,), 1, 1) == 1).all()
    assert init.he_normal(rng, (3, 3), 3, 3, np.float64).dtype == np.float64


def test_conv_layer_uses_he_normal_with_grouped_fan_in():
    layer = nn.Conv2D(256, 5, groups=2, seed=0).build((96, 27, 27))
    assert layer.weight.shape == (256, 48, 5, 5)
    assert layer.weight.data.std() == pytest.approx(math.sqrt(2 / 1200), rel=0.01)
    assert not layer.bias.data.any()


def test_dense_layer_glorot_uniform_bound():
    layer = nn.Dense(300, kernel_initializer="glorot_uniform", seed=0).build((500,))
    limit = math.sqrt(6 / 800)
    assert np.abs(layer.weight.data).max() <= limit
    assert np.abs(layer.weight.data).max() > 0.99 * limit


def test_same_seed_same_values_and_unknown_name():
    a = init.he_normal(np.random.default_rng(5), (4, 4), 4, 4)
    b = init.he_normal(np.random.default_rng(5), (4, 4), 4, 4)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(
        ValueError, match=r"init.get: name must be one of .*, received name='kaiming'"
    ):
        init.get("kaiming")
    with pytest.raises(
        TypeError, match=r"name must be an initializer name, received name=\['he_normal'\]"
    ):
        init.get(["he_normal"])
