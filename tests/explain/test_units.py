"""Filters as pictures and feature maps, checked against the weights and a forward by hand."""

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.explain import units
from cnnlab.explain.probe import ExplainError


def _scaled(w):
    return 0.5 + 0.5 * w / np.abs(w).max()


def test_first_layer_filters_are_the_weights_one_tile_each():
    model = nn.Sequential(nn.Conv2D(5, 3), nn.ReLU(), nn.Conv2D(2, 2), seed=1).build((1, 9, 9))
    grid = units.filters(model)
    w = model.conv2d.weight.data.astype(np.float64)
    assert grid.shape == (1, 3, 5 * 4 - 1)  # 5 filters: one full row rather than 3 + 2
    for k in range(5):
        r, c = divmod(k, 5)
        np.testing.assert_allclose(grid[0, 4 * r: 4 * r + 3, 4 * c: 4 * c + 3], _scaled(w[k, 0]))
    np.testing.assert_array_equal(units.kernels(model), w)


def test_a_colour_first_layer_is_rgb_and_a_deeper_one_has_a_row_per_filter():
    model = nn.Sequential(nn.Conv2D(4, 3), nn.Conv2D(3, 2), seed=2).build((3, 8, 8))
    rgb = units.filters(model, "conv2d")
    w = model.conv2d.weight.data.astype(np.float64)
    assert rgb.shape == (3, 7, 7)  # 4 filters: 2 × 2
    np.testing.assert_allclose(rgb[:, 4:7, 0:3], _scaled(w[2]))  # filter 2: row 1, column 0
    deeper = units.filters(model, "conv2d_1")
    w1 = model.conv2d_1.weight.data.astype(np.float64)  # (3 filters, 4 inputs, 2, 2)
    assert deeper.shape == (1, 3 * 3 - 1, 4 * 3 - 1)
    for k in range(3):
        for c in range(4):
            expected = 0.5 + 0.5 * w1[k, c] / np.abs(w1[k]).max()
            np.testing.assert_allclose(deeper[0, 3 * k: 3 * k + 2, 3 * c: 3 * c + 2], expected)


def test_a_layer_that_is_not_conv_names_the_conv_layers(trained_digits):
    model = trained_digits[0]
    with pytest.raises(ExplainError, match="not a conv layer; the conv layers are: conv2d, conv2d_1"):
        units.filters(model, "dense")
    with pytest.raises(ExplainError, match="unknown layer 'conv9'"):
        units.filters(model, "conv9")


def _conv_by_hand(x, w, b, padding):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, wd = x.shape
    k = w.shape[2]
    out = np.zeros((n, w.shape[0], h - k + 1, wd - k + 1))
    for u in range(k):
        for v in range(k):
            patch = x[:, :, u: u + out.shape[2], v: v + out.shape[3]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, u, v])
    return out + b[None, :, None, None]


def test_feature_maps_equal_the_layers_computed_by_hand(trained_digits):
    model, images, _ = trained_digits
    stats = model.normalization or {"mean": 0.0, "std": 1.0}
    x = (images[:5].astype(np.float64) - stats["mean"]) / stats["std"]  # as the model sees them
    p = {name: np.asarray(t, np.float64) for name, t in model.state_dict().items()}
    a1 = _conv_by_hand(x, p["conv2d.weight"], p["conv2d.bias"], 1)
    r1 = np.maximum(a1, 0)
    a2 = _conv_by_hand(r1, p["conv2d_1.weight"], p["conv2d_1.bias"], 1)
    pooled = np.maximum(a2, 0).reshape(5, 16, 4, 2, 4, 2).max(axis=(3, 5))
    dense = pooled.reshape(5, -1) @ p["dense.weight"].T + p["dense.bias"]
    for layer, expected in [("conv2d", a1), ("relu", r1), ("conv2d_1", a2),
                            ("max_pool2d", pooled), ("dense", dense)]:
        got = units.feature_maps(model, layer, images[:5])
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert units.feature_maps(model, "conv2d", images[0]).shape == (1, 8, 8, 8)


def test_feature_maps_check_the_image(trained_digits):
    model = trained_digits[0]
    with pytest.raises(ExplainError, match="1-channel images, received 3 channels"):
        units.feature_maps(model, "conv2d", np.zeros((3, 8, 8)))


def test_map_grid_shows_a_dead_channel_black():
    maps = np.stack([np.zeros((3, 3)), np.arange(9.0).reshape(3, 3), -np.ones((3, 3))])
    grid = units.map_grid(maps)
    assert grid.shape == (1, 3, 11)  # one row of 3 tiles
    assert not grid[0, :, :3].any()
    np.testing.assert_allclose(grid[0, :, 4:7], np.arange(9.0).reshape(3, 3) / 8)
    assert not grid[0, :, 8:].any()  # all −1: constant, shown black
