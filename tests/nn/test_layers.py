"""Built-in layers: output shapes (shape logic vs a forward), the op each calls, errors, torch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import nn
from cnnlab.tensor import Tensor


def _x(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


CONV_GRID = list(
    itertools.product(
        [1, 2, 3],  # stride
        [0, 1, "same", "valid"],  # padding
        [1, 2],  # dilation
        [1, 2],  # groups
        [True, False],  # bias
    )
)


@pytest.mark.parametrize("stride,padding,dilation,groups,bias", CONV_GRID)
def test_conv2d_output_shape_matches_forward(stride, padding, dilation, groups, bias):
    layer = nn.Conv2D(
        4,
        (3, 2),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        use_bias=bias,
        seed=0,
    )
    x = _x(2, 4, 9, 8)
    expected = layer.compute_output_shape((4, 9, 8))
    out = layer(x)
    assert out.shape == (2, *expected)
    reference = F.conv2d(
        Tensor(x), layer.weight, layer.bias if bias else None, stride, padding, dilation, groups
    )
    np.testing.assert_array_equal(out.data, reference.data)
    assert ("bias" in dict(layer.named_parameters())) == bias
    assert layer.weight.shape == (4, 4 // groups, 3, 2)


@pytest.mark.parametrize(
    "stride,padding", [(1, 0), (2, 1), (1, "same"), (3, "valid"), (2, "same")]
)
def test_conv1d_output_shape_matches_forward(stride, padding):
    layer = nn.Conv1D(5, 3, stride=stride, padding=padding, activation="relu", seed=0)
    x = _x(2, 3, 11)
    out = layer(x)
    assert out.shape == (2, *layer.compute_output_shape((3, 11)))
    expected = F.relu(F.conv1d(Tensor(x), layer.weight, layer.bias, stride, padding))
    np.testing.assert_array_equal(out.data, expected.data)


@pytest.mark.parametrize(
    "layer_cls,kwargs,op",
    [
        (nn.MaxPool2D, {"pool_size": 2}, lambda x: F.max_pool2d(x, 2)),
        (nn.MaxPool2D, {"pool_size": 3, "stride": 2}, lambda x: F.max_pool2d(x, 3, 2)),
        (
            nn.AvgPool2D,
            {"pool_size": 3, "stride": 2, "padding": 1},
            lambda x: F.avg_pool2d(x, 3, 2, 1),
        ),
        (nn.GlobalAvgPool2D, {}, F.global_avg_pool2d),
        (nn.Flatten, {}, lambda x: F.flatten(x, 1)),
        (nn.ReLU, {}, F.relu),
        (nn.LeakyReLU, {"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
        (nn.Sigmoid, {}, F.sigmoid),
        (nn.Tanh, {}, F.tanh),
        (nn.Softmax, {"axis": 1}, lambda x: F.softmax(x, 1)),
        (nn.LocalResponseNorm, {"size": 3}, lambda x: F.local_response_norm(x, 3)),
    ],
)
def test_parameter_free_layers_call_their_op(layer_cls, kwargs, op):
    layer = layer_cls(**kwargs)
    x = _x(2, 6, 7, 7)
    out = layer(x)
    np.testing.assert_array_equal(out.data, op(Tensor(x)).data)
    assert out.shape[1:] == layer.compute_output_shape((6, 7, 7))
    assert layer.parameters() == []
    assert out.dtype == np.float32


def test_dense_and_activation():
    layer = nn.Dense(3, activation="tanh", seed=1)
    x = _x(4, 5)
    out = layer(x)
    np.testing.assert_allclose(
        out.data, np.tanh(x @ layer.weight.data.T + layer.bias.data), rtol=1e-6
    )
    assert layer.weight.shape == (3, 5) and layer.compute_output_shape((5,)) == (3,)


def test_dense_float64_after_astype():
    layer = nn.Dense(3, in_features=2, seed=0).astype(np.float64)
    assert layer(np.ones((1, 2))).dtype == np.float64


def test_dropout_training_and_eval():
    layer = nn.Dropout(0.5, seed=3)
    x = np.ones((200, 50), dtype=np.float32)
    out = layer(x).data
    assert set(np.unique(out)) == {0.0, 2.0}
    assert 0.45 < (out == 0).mean() < 0.55
    again = nn.Dropout(0.5, seed=3)(x).data
    np.testing.assert_array_equal(out, again)  # seeded
    assert not np.array_equal(out, layer(x).data)  # the stream advances
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x)


def test_batchnorm_2d_and_1d_update_running_statistics():
    for shape in [(8, 3, 4, 4), (8, 3)]:
        layer = nn.BatchNorm(momentum=0.5)
        x = _x(*shape) * 2 + 1
        out = layer(x)
        axes = (0, 2, 3) if len(shape) == 4 else (0,)
        np.testing.assert_allclose(out.data.mean(axis=axes), 0, atol=1e-5)
        count = x.size // 3
        np.testing.assert_allclose(layer.running_mean, 0.5 * x.mean(axis=axes), rtol=1e-5)
        np.testing.assert_allclose(
            layer.running_var, 0.5 + 0.5 * x.var(axis=axes) * count / (count - 1), rtol=1e-5
        )
        layer.eval()
        expected = (x - layer.running_mean.reshape((1, 3) + (1,) * (len(shape) - 2))) / np.sqrt(
            layer.running_var.reshape((1, 3) + (1,) * (len(shape) - 2)) + 1e-5
        )
        np.testing.assert_allclose(layer(x).data, expected, rtol=1e-4, atol=1e-5)
        assert [n for n, _ in layer.named_parameters()] == ["gamma", "beta"]
        assert [n for n, _ in layer.named_buffers()] == ["running_mean", "running_var"]


def test_layers_built_at_construction():
    conv = nn.Conv2D(6, 3, in_channels=4, groups=2, seed=0)
    assert conv.weight.shape == (6, 2, 3, 3)
    dense = nn.Dense(7, in_features=3)
    assert dense.weight.shape == (7, 3)
    bn = nn.BatchNorm(num_features=5)
    assert bn.gamma.shape == (5,)


@pytest.mark.parametrize(
    "layer,x_shape,pattern",
    [
        (
            nn.Conv2D(4, 3, in_channels=3),
            (2, 5, 8, 8),
            r"Conv2D: expected input \(N, C_in=3, H, W\), received shape \(N, 5, 8, 8\)",
        ),
        (
            nn.Conv2D(4, 3),
            (2, 8, 8),
            r"Conv2D: expected input \(N, C_in, H, W\), received shape \(N, 8, 8\)",
        ),
        (
            nn.Conv2D(4, 5),
            (2, 1, 3, 3),
            r"Conv2D: expected input spatially larger than the kernel",
        ),
        (nn.Conv2D(4, 3, groups=2), (2, 3, 8, 8), r"divisible by groups=2"),
        (nn.Conv1D(4, 3), (2, 3, 8, 8), r"Conv1D: expected input \(N, C_in, L\)"),
        (
            nn.Dense(4, in_features=10),
            (2, 9),
            r"Dense: expected input \(N, in_features=10\), received shape \(N, 9\)",
        ),
        (nn.Dense(4), (2, 3, 4, 4), r"add a Flatten layer before Dense"),
        (
            nn.MaxPool2D(2),
            (2, 3, 4),
            r"MaxPool2D: expected input \(N, C, H, W\), received shape \(N, 3, 4\)",
        ),
        (
            nn.MaxPool2D(5),
            (2, 3, 4, 4),
            r"MaxPool2D: expected input spatially at least the pool size",
        ),
        (
            nn.BatchNorm(num_features=3),
            (2, 4),
            r"BatchNorm: expected input \(N, C=3\) or \(N, C=3, H, W\)",
        ),
        (nn.GlobalAvgPool2D(), (2, 3), r"GlobalAvgPool2D: expected input \(N, C, H, W\)"),
    ],
)
def test_wrong_input_shapes_name_layer_received_and_expected(layer, x_shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer(np.zeros(x_shape, dtype=np.float32))


def test_wrong_input_in_a_sequential_names_the_layer():
    model = nn.Sequential(nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(2)).build((1, 8, 8))
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d': expected input \(N, C_in=1, H, W\)"):
        model(np.zeros((1, 3, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Dense 'dense': expected input \(N, in_features=144\)"):
        model(np.zeros((1, 1, 9, 9), dtype=np.float32))


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda: nn.Conv2D(0, 3), r"Conv2D: filters must be an int >= 1, received filters=0"),
        (
            lambda: nn.Conv2D(4, (3, 3, 3)),
            r"kernel_size must be an int or 2 ints >= 1, received kernel_size=\(3, 3, 3\)",
        ),
        (
            lambda: nn.Conv2D(4, 3, stride=0),
            r"stride must be an int or 2 ints >= 1, received stride=0",
        ),
        (lambda: nn.Conv2D(4, 3, stride=(1, 0)), r"received stride=\(1, 0\)"),
        (
            lambda: nn.Conv2D(4, 3, padding="full"),
            r"padding must be an int, 'same' or 'valid', received padding='full'",
        ),
        (lambda: nn.Conv2D(5, 3, groups=2), r"filters must be divisible by groups"),
        (
            lambda: nn.Conv2D(4, 3, in_channels=3, groups=2),
            r"in_channels must be divisible by groups",
        ),
        (
            lambda: nn.Conv2D(4, 3, activation="gelu"),
            r"activation must be one of .*received activation='gelu'",
        ),
        (
            lambda: nn.Conv2D(4, 3, kernel_initializer="xavier"),
            r"kernel_initializer must be one of .*, received kernel_initializer='xavier'",
        ),
        (lambda: nn.Conv2D(4, 3, seed=-1), r"Conv2D: seed must be an int >= 0, received seed=-1"),
        (lambda: nn.Dense(-1), r"Dense: units must be an int >= 1, received units=-1"),
        (
            lambda: nn.Dropout(1.0),
            r"Dropout: rate must be a finite number in \[0, 1\), received rate=1.0",
        ),
        (lambda: nn.MaxPool2D(2, padding=2), r"padding must be at most half the pool size"),
        (
            lambda: nn.BatchNorm(momentum=2),
            r"momentum must be a finite number in \[0, 1\], received momentum=2",
        ),
        (
            lambda: nn.BatchNorm(eps=0),
            r"BatchNorm: eps must be a finite number > 0, received eps=0",
        ),
        (lambda: nn.LocalResponseNorm(k=0), r"LocalResponseNorm: k must be a finite number > 0"),
    ],
)
def test_bad_hyperparameter_values_raise_value_error(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda: nn.Conv2D(4.0, 3), r"Conv2D: filters must be an int, received filters=4.0"),
        (
            lambda: nn.Conv2D(4, "3"),
            r"kernel_size must be an int or 2 ints >= 1, received kernel_size='3'",
        ),
        (lambda: nn.Conv2D(4, (3, 2.5)), r"received kernel_size=\(3, 2.5\)"),
        (lambda: nn.Conv2D(4, 3, padding=None), r"padding must be an int or 2 ints >= 0"),
        (
            lambda: nn.Conv2D(4, 3, use_bias="no"),
            r"use_bias must be True or False, received use_bias='no'",
        ),
        (lambda: nn.Conv2D(4, 3, activation=len), r"activation must be None or a name"),
        (lambda: nn.Dense(3, kernel_initializer=None), r"kernel_initializer must be a name"),
        (lambda: nn.Dense(True), r"Dense: units must be an int, received units=True"),
        (lambda: nn.Dense(3, in_features="4"), r"in_features must be an int"),
        (lambda: nn.Dense(3, seed="0"), r"Dense: seed must be an int, received seed='0'"),
        (lambda: nn.Dropout("half"), r"Dropout: rate must be a number"),
        (lambda: nn.BatchNorm(eps="1e-5"), r"BatchNorm: eps must be a number"),
        (lambda: nn.LeakyReLU(None), r"LeakyReLU: negative_slope must be a number"),
        (lambda: nn.Softmax(axis=1.0), r"Softmax: axis must be an int"),
        (lambda: nn.Sequential(nn.ReLU(), seed=1.5), r"Sequential: seed must be an int"),
        (
            lambda: nn.Sequential("relu"),
            r"Sequential: layer must be a Module, received layer='relu'",
        ),
    ],
)
def test_hyperparameters_of_the_wrong_type_raise_type_error(make, pattern):
    with pytest.raises(TypeError, match=pattern):
        make()


@pytest.mark.parametrize(
    "shape,error",
    [
        ((1, 0, 8), ValueError),
        ((1, -3, 8), ValueError),
        ((1, 8.0, 8), TypeError),
        ((1, float("inf"), 8), TypeError),
        ("1x8x8", TypeError),
    ],
)
def test_bad_input_shapes_in_build_are_rejected_with_the_checks_wording(shape, error):
    with pytest.raises(error, match=r"input_shape must be a tuple of ints >= 1"):
        nn.Sequential(nn.Conv2D(2, 3)).build(shape)
    with pytest.raises(error, match=r"Conv2D: input_shape must be"):
        nn.Conv2D(2, 3).compute_output_shape(shape)


def test_conv2d_and_dense_layers_against_torch(torch):
    conv = nn.Conv2D(6, 3, stride=2, padding=1, groups=3, seed=0).astype(np.float64)
    x = _x(2, 3, 9, 9, dtype=np.float64)
    ours = conv(Tensor(x, requires_grad=True))
    ref = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(conv.weight.data))
        ref.bias.copy_(torch.from_numpy(conv.bias.data))
    theirs = ref(torch.from_numpy(x))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(conv.weight.grad, ref.weight.grad.numpy(), rtol=1e-10, atol=1e-12)

    dense = nn.Dense(4, in_features=5, seed=0)
    ref_dense = torch.nn.Linear(5, 4)
    with torch.no_grad():
        ref_dense.weight.copy_(torch.from_numpy(dense.weight.data))
        ref_dense.bias.copy_(torch.from_numpy(dense.bias.data))
    x = _x(3, 5)
    np.testing.assert_allclose(
        dense(x).data, ref_dense(torch.from_numpy(x)).detach().numpy(), rtol=1e-4
    )
