"""cnnlab.nn.config: configs are untrusted data; declared_weights allocates nothing."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import cnnlab.limits
from cnnlab import models, nn
from cnnlab.errors import FileFormatError, LimitExceededError
from cnnlab.nn.config import (
    ConfigTypeError,
    declared_weights,
    registered,
    shape_only_from_config,
)


class Branches(nn.Module):
    """A custom module, neither a Layer nor a Sequential: its weights need a forward pass."""

    def __init__(self, width=2):
        super().__init__()
        self.width = width
        self.left = nn.Dense(width)

    def forward(self, x):
        return self.left(x)


@pytest.mark.parametrize("name", ["lecture", "lenet5", "fashion"])
def test_declared_weights_match_the_built_model_in_order(name):
    model = models.get(name)
    skeleton = shape_only_from_config(model.get_config())
    declared = declared_weights(skeleton, model.input_shape)
    assert {n: shape for n, shape, _ in declared} == {
        n: v.shape for n, v in model.state_dict().items()
    }
    assert [n for n, _, trainable in declared if trainable] == [
        n for n, _ in model.named_parameters()
    ]
    assert skeleton.parameters() == [] and skeleton.named_buffers() == []


def test_shape_only_layers_keep_their_input_size_but_allocate_nothing():
    config = nn.Sequential(nn.Dense(400_000, in_features=1250)).get_config()
    tracemalloc.start()
    skeleton = shape_only_from_config(config)
    declared = declared_weights(skeleton, None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert declared == [("dense.weight", (400_000, 1250), True), ("dense.bias", (400_000,), True)]
    assert peak < 4 * 2**20
    assert skeleton.get_config() == config


def test_declared_weights_is_none_for_a_module_that_needs_a_forward_pass():
    assert declared_weights(Branches(), (3,)) is None


def test_declared_weights_names_the_layer_when_shapes_do_not_fit():
    skeleton = shape_only_from_config(
        nn.Sequential(nn.Conv2D(2, 5), nn.Flatten(), nn.Dense(3)).get_config()
    )
    with pytest.raises(ValueError, match="Conv2D"):
        declared_weights(skeleton, (1, 3, 3))


def _nested(depth):
    config = {"class_name": "ReLU", "config": {}}
    for _ in range(depth):
        config = {"class_name": "Sequential", "config": {"layers": [config]}}
    return config


def test_sequential_2000_deep_is_a_limit_error_not_a_recursion_error():
    with pytest.raises(
        LimitExceededError, match="from_config: the config's nesting depth declares .*max_nesting"
    ):
        nn.from_config(_nested(2000))
    assert isinstance(nn.from_config(_nested(10)), nn.Sequential)
    with cnnlab.limits.override(max_nesting=4), pytest.raises(LimitExceededError):
        nn.from_config(_nested(3))


def test_too_many_modules_is_a_limit_error():
    config = {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "ReLU", "config": {}}] * 50},
    }
    with (
        cnnlab.limits.override(max_entries=20),
        pytest.raises(LimitExceededError, match="module count"),
    ):
        nn.from_config(config)


def test_eager_weights_are_bounded_before_they_are_allocated():
    config = {"class_name": "Dense", "config": {"units": 10**6, "in_features": 10**6}}
    with pytest.raises(
        LimitExceededError, match=r"Dense's weight \(1000000, 1000000\).*max_array_bytes"
    ):
        nn.from_config(config)
    with cnnlab.limits.override(max_array_bytes=100), pytest.raises(LimitExceededError):
        nn.from_config(
            {"class_name": "Conv2D", "config": {"filters": 8, "kernel_size": 3, "in_channels": 4}}
        )
    layer = nn.from_config(
        {"class_name": "Dense", "config": {"units": 3, "in_features": 4, "seed": 1}}
    )
    np.testing.assert_array_equal(
        layer.weight.data, nn.Dense(3, in_features=4, seed=1).weight.data
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("Dense", "expected a dict with keys 'class_name' and 'config'"),
        ([1, 2], "expected a dict"),
        ({"class_name": ["Dense"], "config": {}}, r"class_name must be a str"),
        ({"class_name": "Module", "config": {}}, "unknown module class 'Module'"),
        ({"class_name": "Layer", "config": {}}, "unknown module class 'Layer'"),
        ({"class_name": "Dense", "config": "units=3"}, "Dense.from_config: config must be a dict"),
        ({"class_name": "Dense", "config": {"units": "3"}}, "cannot build Dense: Dense: units"),
        ({"class_name": "Dense", "config": {"units": 3, "evil": 1}}, "cannot build Dense"),
        (
            {"class_name": "Dense", "config": {"units": 3, "activation": "os.system"}},
            "activation must be one of",
        ),
        (
            {"class_name": "Dense", "config": {"units": 3, "kernel_initializer": "eval"}},
            "kernel_initializer must be one of",
        ),
        (
            {"class_name": "Dense", "config": {"units": 3, "seed": -1}},
            "Dense: seed must be an int in",
        ),
        (
            {"class_name": "Dense", "config": {"units": 3, "in_features": 0}},
            "in_features must be an int >= 1",
        ),
        ({"class_name": "BatchNorm", "config": {"momentum": "fast"}}, "cannot build BatchNorm"),
        (
            {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [3, 3, 3]}},
            "kernel_size",
        ),
        ({"class_name": "Sequential", "config": {"layers": "relu"}}, "layers must be a list"),
        ({"class_name": "Sequential", "config": {"layers": [None]}}, "expected a dict"),
    ],
)
def test_bad_config_is_a_file_format_error_naming_the_class(config, message):
    with pytest.raises(FileFormatError, match=message):
        nn.from_config(config)


def test_only_registered_classes_can_be_named():
    names = set(registered())
    assert {"Sequential", "Dense", "Conv2D", "Dropout"} <= names
    assert not names & {"Module", "Layer", "Tensor", "system", "eval"}


def test_wrong_types_are_both_cnnlab_errors_and_type_errors():
    with pytest.raises(ConfigTypeError) as error:
        nn.from_config({"class_name": "Dense", "config": {"units": 3, "use_bias": "yes"}})
    assert isinstance(error.value, TypeError) and isinstance(error.value, FileFormatError)
    with pytest.raises(FileFormatError) as error:
        nn.from_config({"class_name": "Dense", "config": {"units": 0}})
    assert not isinstance(error.value, TypeError)
