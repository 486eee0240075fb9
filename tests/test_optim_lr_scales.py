"""Per-parameter learning-rate scales: every optimiser, SGD's exact arithmetic, the module's
declared scales, bad input."""

import numpy as np
import pytest

from cnnlab import nn, optim
from cnnlab.tensor import Tensor

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "adamw", "adadelta"]


def params_with_grads(seed=0):
    rng = np.random.default_rng(seed)
    params = [Tensor(rng.normal(size=(3, 4)), requires_grad=True) for _ in range(3)]
    return params, [rng.normal(size=(3, 4)) for _ in params]


def run(name, scales, steps=3, lr=0.1):
    params, grads = params_with_grads()
    start = [p.data.copy() for p in params]
    opt = optim.get_optimizer(name, params, lr, lr_scales=scales)
    for _ in range(steps):
        for p, g in zip(params, grads):
            p.grad = g.copy()
        opt.step()
    return start, [p.data for p in params]


def test_sgd_moves_each_parameter_by_its_scale():
    start, end = run("sgd", [0.0, 0.1, 1.0], steps=1)
    _, grads = params_with_grads()
    np.testing.assert_array_equal(end[0], start[0])
    np.testing.assert_allclose(end[1] - start[1], -0.1 * 0.1 * grads[1], rtol=1e-12)
    np.testing.assert_allclose(end[2] - start[2], -0.1 * grads[2], rtol=1e-12)
    # a tenth as far as the unscaled step, along the same direction
    np.testing.assert_allclose((end[1] - start[1]) / (-0.1 * grads[1]), 0.1, rtol=1e-12)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_scale_zero_freezes_and_scale_one_changes_nothing(name):
    start, scaled = run(name, [0.0, 1.0, 0.5])
    _, plain = run(name, None)
    np.testing.assert_array_equal(scaled[0], start[0])
    np.testing.assert_array_equal(scaled[1], plain[1])  # the same bits as without scales
    assert not np.array_equal(scaled[2], start[2])
    assert not np.allclose(scaled[2], plain[2])


def test_module_declares_products_of_scales():
    inner = nn.Sequential(nn.Dense(3, in_features=2), nn.Dense(2, in_features=3))
    inner.lr_scale = 0.5
    inner.dense_1.lr_scale = 0.2
    model = nn.Sequential(inner, nn.Dense(1, in_features=2))
    assert model.parameter_lr_scales() == [0.5, 0.5, pytest.approx(0.1), pytest.approx(0.1),
                                           1.0, 1.0]


def test_bad_scales():
    params, _ = params_with_grads()
    with pytest.raises(ValueError, match="SGD: lr_scales has 2 entries for 3 parameters"):
        optim.SGD(params, lr_scales=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"Adam: lr_scales\[i\] must be"):
        optim.Adam(params, lr_scales=[1.0, -1.0, 1.0])
