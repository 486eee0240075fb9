"""The explanations' machinery: layer names, the input space, gradients to the input."""

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import models, nn
from cnnlab.explain import probe
from cnnlab.gradcheck import numerical_gradient
from cnnlab.tensor import Tensor


def small_net(seed=0):
    model = nn.Sequential(
        nn.Conv2D(4, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(6, 3, activation="relu"), nn.Flatten(), nn.Dense(5), nn.Softmax(), seed=seed)
    return model.build((2, 8, 8)).astype(np.float64)


def test_layer_names_are_summarys_and_a_wrong_one_lists_them():
    model = small_net()
    names = probe.layer_names(model)
    assert names == ["conv2d", "relu", "max_pool2d", "conv2d_1", "flatten", "dense", "softmax"]
    for name in names:
        assert name in model.summary()
    with pytest.raises(probe.ExplainError, match="conv2d, relu, max_pool2d"):
        probe.find_layer(model, "conv9")
    assert probe.conv_layer_names(model) == ["conv2d", "conv2d_1"]
    assert probe.dense_layer_names(model) == ["dense"]


def test_forward_stops_at_the_layer_and_the_logits_skip_the_softmax():
    model = small_net()
    x = np.random.default_rng(0).random((3, 2, 8, 8))
    with probe.inspecting(model):
        logits = probe.forward(model, Tensor(x)).data
        pooled = probe.forward(model, Tensor(x), "max_pool2d").data
    probabilities = model.eval()(Tensor(x)).data
    np.testing.assert_allclose(F.softmax(Tensor(logits)).data, probabilities, atol=1e-12)
    assert pooled.shape == (3, 4, 4, 4)
    assert not np.allclose(logits.sum(axis=1), 1.0)


def test_normalization_is_applied_and_the_gradient_is_in_pixel_space():
    model = small_net()
    model.normalization = {"mean": [0.2, 0.4], "std": [0.5, 2.0]}
    x = np.random.default_rng(1).random((2, 2, 8, 8))
    _, grad = probe.input_gradient(model, x, lambda out: out[:, 3])

    def value():
        with probe.inspecting(model):
            return probe.forward(model, Tensor(x)).data[:, 3].sum()

    expected = numerical_gradient(value, x)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


def test_inspecting_freezes_weights_and_restores_mode():
    model = small_net()
    model.train()
    probe.input_gradient(model, np.zeros((1, 2, 8, 8)), lambda out: out[:, 0])
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert model.training


def test_images_are_checked_against_the_model():
    model = small_net()
    with pytest.raises(probe.ExplainError, match="2-channel"):
        probe.as_images(model, np.zeros((3, 8, 8)), "test")
    with pytest.raises(probe.ExplainError, match=r"shape \(2, 8, 8\)"):
        probe.as_images(model, np.zeros((2, 9, 9)), "test")
    conv = nn.Sequential(nn.Conv2D(3, 5), nn.MaxPool2D(2)).build((1, 16, 16))
    with pytest.raises(probe.ExplainError, match="too small"):
        probe.as_images(conv, np.zeros((1, 4, 4)), "test", size_free=True)
    assert probe.as_images(conv, np.zeros((1, 40, 30), np.uint8), "test", size_free=True).shape == (1, 1, 40, 30)


def test_redirected_relu_reaches_a_dead_unit():
    model = nn.Sequential(nn.Conv2D(1, 3, padding=1), nn.ReLU(), seed=0).build((1, 6, 6))
    model.conv2d.bias.data[:] = -100.0  # dead on every input in [0, 1]
    x = np.random.default_rng(0).random((1, 1, 6, 6)).astype(np.float32)
    _, plain = probe.input_gradient(model, x, lambda out: out.sum(axis=(1, 2, 3)))
    _, redirected = probe.input_gradient(model, x, lambda out: out.sum(axis=(1, 2, 3)), redirect=True)
    assert not plain.any()
    assert np.abs(redirected).sum() > 0


def test_redirected_relu_is_relu_where_a_gradient_passes():
    x = Tensor(np.array([[-1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]]), requires_grad=True)
    F.redirected_relu(x).backward(np.array([[1.0, 1.0, -1.0], [1.0, -1.0, 1.0]]))
    # row 0: ReLU's gradient is not all zero, so it is ReLU's; row 1 is dead: redirected,
    # except where a descent step would push x lower (grad > 0 at x < 0).
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0, -1.0], [0.0, -1.0, 0.0]])


def test_a_zoo_model_has_addressable_layers():
    model = models.get("fashion")
    names = probe.layer_names(model)
    assert probe.conv_layer_names(model)[0] in names
    images = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    values, grad = probe.input_gradient(model, images, lambda out: out[:, 1])
    assert values.shape == (2,) and grad.shape == images.shape and np.abs(grad).sum() > 0
