"""The model zoo: names, building, forward shapes, seeds, class names, errors."""

from __future__ import annotations

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import models, nn


def test_available_names():
    assert models.available() == ["lecture", "lenet5", "lenet32", "alexnet", "vgg16", "vgg19",
                                  "fashion", "st-cnn", "stn-plain", "alphago-policy"]


@pytest.mark.parametrize("name", ["lecture", "lenet5", "lenet32", "fashion", "st-cnn",
                                  "stn-plain"])
def test_small_models_build_and_run(name):
    model = models.get(name, seed=0)
    shape = models.default_input_shape(name)
    assert model.input_shape == shape
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    out = model(x)
    assert out.shape == (2, 10) and out.dtype == np.float32
    loss = F.cross_entropy(out, np.array([1, 2]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_seed_determinism():
    a, b, c = (
        models.get("lenet5", seed=3),
        models.get("lenet5", seed=3),
        models.get("lenet5", seed=4),
    )
    for (name, p), (_, q), (_, r) in zip(
        a.named_parameters(), b.named_parameters(), c.named_parameters()
    ):
        np.testing.assert_array_equal(p.data, q.data)
        if name.endswith("weight"):
            assert not np.array_equal(p.data, r.data), name


def test_num_classes_input_shape_and_class_names():
    model = models.get("lenet32", num_classes=3, input_shape=(3, 32, 32))
    assert model(np.zeros((1, 3, 32, 32), dtype=np.float32)).shape == (1, 3)
    named = models.get("lecture", class_names=["cat", "dog"])
    assert named.class_names == ["cat", "dog"]
    assert named.dense_1.weight.shape == (2, 100)
    vgg_small = models.vgg16(num_classes=10)
    assert vgg_small.compute_output_shape((3, 32, 32)) == (10,)


def test_alexnet_structure():
    model = models.alexnet()
    groups = [layer.groups for layer in model if isinstance(layer, nn.Conv2D)]
    assert groups == [1, 2, 1, 2, 2]
    assert sum(isinstance(layer, nn.LocalResponseNorm) for layer in model) == 2
    assert [layer.stride for layer in model if isinstance(layer, nn.MaxPool2D)] == [(2, 2)] * 3
    assert model.compute_output_shape((3, 227, 227)) == (1000,)


def test_bad_values_raise_value_error():
    with pytest.raises(
        ValueError, match=r"models.get: name must be one of .*received name='resnet'"
    ):
        models.get("resnet")
    with pytest.raises(
        ValueError, match=r"num_classes must be an int >= 1, received num_classes=0"
    ):
        models.get("lecture", num_classes=0)
    with pytest.raises(ValueError, match=r"must be \(C, H, W\), received input_shape=\(28, 28\)"):
        models.get("lecture", input_shape=(28, 28))
    with pytest.raises(ValueError, match=r"input_shape must be a tuple of ints >= 1"):
        models.get("lecture", input_shape=(1, 0, 28))
    with pytest.raises(
        ValueError, match=r"models.get: seed must be an int >= 0, received seed=-1"
    ):
        models.get("lecture", seed=-1)
    with pytest.raises(ValueError, match="3 class_names for num_classes=5"):
        models.get("lecture", num_classes=5, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="spatially"):
        models.get("alexnet", input_shape=(3, 32, 32))


def test_arguments_of_the_wrong_type_raise_type_error():
    with pytest.raises(
        TypeError, match=r"models.get: name must be a model name, received name=None"
    ):
        models.get(None)
    with pytest.raises(TypeError, match=r"num_classes must be an int, received num_classes=10.0"):
        models.get("lecture", num_classes=10.0)
    with pytest.raises(TypeError, match=r"seed must be an int, received seed='1'"):
        models.get("lecture", seed="1")
    with pytest.raises(TypeError, match=r"class_names must be a list of names"):
        models.get("lecture", class_names="abc")
    with pytest.raises(TypeError, match=r"input_shape must be a tuple of ints"):
        models.get("lecture", input_shape=(1, 28.5, 28))


@pytest.mark.parametrize("size", [28, 42])
def test_st_cnn_shares_the_plain_classifier(size):
    st, plain = (models.get(name, input_shape=(1, size, size)) for name in ("st-cnn", "stn-plain"))
    assert isinstance(st[0], nn.SpatialTransformer)
    assert [type(layer) for layer in st.layers[1:]] == [type(layer) for layer in plain.layers]
    plain_shapes = [p.shape for p in plain.parameters()]
    assert [p.shape for p in st.parameters()][-len(plain_shapes):] == plain_shapes
    # the transformer starts as the identity: the classifier sees the input unchanged
    x = np.random.default_rng(0).random((2, 1, size, size)).astype(np.float32)
    np.testing.assert_allclose(st[0](x).data, x, atol=1e-6)
