"""The random multi-scale extractor and the default style/content layers."""

import numpy as np
import pytest

from cnnlab import models
from cnnlab.explain import probe
from cnnlab.explain.extractor import (
    content_layer_name,
    random_extractor,
    style_layer_names,
)
from cnnlab.tensor import Tensor

from .conftest import digits_net


def test_layers_are_named_seeded_and_size_free():
    model = random_extractor(widths=(4, 8, 8), seed=1)
    assert probe.layer_names(model) == ["conv2d", "avg_pool2d", "conv2d_1", "avg_pool2d_1",
                                        "conv2d_2"]
    again, other = random_extractor(widths=(4, 8, 8), seed=1), random_extractor(widths=(4, 8, 8), seed=2)
    np.testing.assert_array_equal(model.conv2d.weight.data, again.conv2d.weight.data)
    assert not np.array_equal(model.conv2d.weight.data, other.conv2d.weight.data)
    assert model.conv2d.weight.shape == (4, 3, 5, 5) and model.conv2d_1.weight.shape == (8, 4, 3, 3)
    with probe.inspecting(model):
        out = probe.forward(model, Tensor(np.random.default_rng(0).random((1, 3, 20, 36), np.float32)))
    assert out.shape == (1, 8, 5, 9) and (out.data >= 0).all()
    assert isinstance(random_extractor(pool="max", widths=(4, 4)).layers[1], models.imagenet.MaxPool2D)


def test_default_layers_follow_gatys():
    vgg19 = models.vgg19()  # unbuilt: names only
    assert style_layer_names(vgg19) == ["conv2d", "conv2d_2", "conv2d_4", "conv2d_8", "conv2d_12"]
    assert content_layer_name(vgg19) == "conv2d_9"  # conv4_2
    extractor = random_extractor()
    assert style_layer_names(extractor) == ["conv2d", "conv2d_1", "conv2d_2", "conv2d_3"]
    # separate ReLU layers: the rectified outputs; no pooling between convs: every conv
    assert style_layer_names(digits_net()) == ["relu", "relu_1"]
    assert content_layer_name(digits_net()) == "relu_1"
    fashion = models.fashion()  # conv → batch norm → ReLU: the ReLU's output
    assert style_layer_names(fashion) == ["relu", "relu_1", "relu_2", "relu_3"]
    assert content_layer_name(fashion) == "relu_2"


def test_a_model_without_convolutions_is_refused():
    from cnnlab import nn
    dense = nn.Sequential(nn.Flatten(), nn.Dense(3)).build((1, 4, 4))
    with pytest.raises(probe.ExplainError, match="no convolution"):
        style_layer_names(dense)
    with pytest.raises(ValueError, match="pool"):
        random_extractor(pool="median")
