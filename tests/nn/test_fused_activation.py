"""Conv2D and Dense with activation="relu" run the ReLU fused into their op: the same
outputs and gradients as the layer followed by a ReLU layer."""

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.tensor import Tensor


@pytest.mark.parametrize(
    "make, x_shape",
    [
        (
            lambda activation: nn.Conv2D(
                5, 3, padding=1, in_channels=2, activation=activation, seed=1
            ),
            (3, 2, 8, 8),
        ),
        (lambda activation: nn.Dense(6, in_features=4, activation=activation, seed=1), (5, 4)),
    ],
    ids=["Conv2D", "Dense"],
)
def test_relu_layer_equals_layer_then_relu(make, x_shape):
    x = np.random.default_rng(0).standard_normal(x_shape)
    fused, plain = make("relu").astype(np.float64), make(None).astype(np.float64)
    model = nn.Sequential(plain, nn.ReLU())
    outputs, grads = [], []
    for net, layer in ((fused, fused), (model, plain)):
        y = net(Tensor(x))
        y.backward(np.random.default_rng(1).standard_normal(y.shape))
        outputs.append(y.data)
        grads.append([p.grad for p in layer.parameters()])
    assert (outputs[0] == 0).any() and (outputs[0] > 0).any()
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


class _DoubledConv(nn.Conv2D):
    """A user's subclass with its own forward: Sequential must call it as it is."""

    def forward(self, x):
        return super().forward(x) * 2.0


def _small_net():
    return nn.Sequential(
        nn.Conv2D(4, 3, padding=1, use_bias=False), nn.BatchNorm(), nn.ReLU(),
        nn.Conv2D(4, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
        _DoubledConv(3, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Dense(8, use_bias=False), nn.BatchNorm(), nn.ReLU(),
        nn.Dense(6), nn.ReLU(), nn.Dense(3, activation="relu"), nn.ReLU(),
        seed=3,
    ).astype(np.float64)


@pytest.mark.parametrize("training", [True, False])
def test_sequential_fuses_relu_layers_with_the_same_bits(training):
    """Sequential runs [Conv2D | Dense | BatchNorm, ReLU] as one fused op: outputs, every
    gradient and the running statistics equal those of the layers called one by one."""
    x = np.random.default_rng(0).standard_normal((5, 2, 6, 6))
    results = []
    for fused in (True, False):
        model = _small_net().build((2, 6, 6))  # the same weights, however it is called
        model.train(training)
        xt = Tensor(x, requires_grad=True)
        if fused:
            y = model(xt)
        else:
            y = xt
            for layer in model.layers:
                y = layer(y)
        y.backward(np.random.default_rng(1).standard_normal(y.shape))
        results.append([y.data, xt.grad] + [p.grad for p in model.parameters()]
                       + [b for _, b in model.named_buffers()])
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)


def test_sequential_fusion_skips_what_it_cannot_fuse():
    model = _small_net()
    layers = model.layers
    assert layers[0].relu_fusable() and layers[1].relu_fusable() and layers[9].relu_fusable()
    assert not layers[6].relu_fusable()  # its own forward
    assert not layers[14].relu_fusable()  # already activated
    assert not layers[5].relu_fusable()  # pooling


def test_sequential_fusion_builds_the_skipped_relu_and_records_every_layer():
    model = _small_net()
    model(Tensor(np.zeros((2, 2, 6, 6))))
    assert all(layer.input_shape is not None for layer in model.layers)
    text = model.summary((2, 6, 6))
    assert text.count("ReLU") == 6
