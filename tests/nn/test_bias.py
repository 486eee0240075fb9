"""nn.PositionalBias: one learned value per (channel, row, column), AlphaGo's output bias."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.io import load_model, save_model
from cnnlab.nn.config import declared_weights


def test_bias_takes_the_input_shape_and_adds_per_position():
    layer = nn.PositionalBias(bias_initializer="normal", seed=0)
    x = np.random.default_rng(1).standard_normal((3, 2, 4, 5)).astype(np.float32)
    out = layer(x)
    assert layer.bias.shape == (2, 4, 5) and layer.num_parameters() == 40
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out.data, x + layer.bias.data[None])


def test_default_bias_is_zero_and_shape_is_checked_after_build():
    layer = nn.PositionalBias()
    layer.build((1, 19, 19))
    assert layer.bias.shape == (1, 19, 19) and not layer.bias.data.any()
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 19, 19\)"):
        layer(np.zeros((2, 1, 9, 9), dtype=np.float32))


def test_gradients_match_finite_differences(check_gradients):
    rng = np.random.default_rng(2)
    x, bias = rng.standard_normal((3, 2, 3, 4)), rng.standard_normal((2, 3, 4))
    layer = nn.PositionalBias().build((2, 3, 4))
    layer.astype(np.float64)

    def forward(inputs, b):
        layer.bias = b
        return layer(inputs)

    check_gradients(forward, x, bias)


def test_gradients_match_torch(torch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 1, 5, 5))
    layer = nn.PositionalBias().build((1, 5, 5)).astype(np.float64)
    layer.bias.data[...] = rng.standard_normal((1, 5, 5))
    upstream = rng.standard_normal(x.shape)
    layer(x).backward(upstream)
    tb = torch.tensor(layer.bias.data.copy(), requires_grad=True)
    (torch.from_numpy(x) + tb).backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(layer.bias.grad, tb.grad.numpy(), rtol=1e-12)


def test_alphago_style_head_saves_loads_and_declares_its_weights(tmp_path):
    model = nn.Sequential(nn.Conv2D(1, 1, use_bias=False, seed=0), nn.PositionalBias(),
                          nn.Flatten(), nn.Softmax())
    model.build((8, 19, 19))
    assert declared_weights(model, (8, 19, 19)) == [
        ("conv2d.weight", (1, 8, 1, 1), True), ("positional_bias.bias", (1, 19, 19), True)]
    assert "Total params: 369" in model.summary()
    model.layers[1].bias.data[...] = np.random.default_rng(4).standard_normal((1, 19, 19))
    path = tmp_path / "policy_head.npz"
    save_model(model, path)
    loaded = load_model(path)
    x = np.random.default_rng(5).standard_normal((2, 8, 19, 19)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    assert nn.from_config(model.get_config()).get_config() == model.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="bias_initializer"):
        nn.PositionalBias(bias_initializer="magic")
    with pytest.raises(ValueError, match="seed"):
        nn.PositionalBias(seed=-1)
