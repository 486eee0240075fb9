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
