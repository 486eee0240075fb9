"""Element-wise passes split across the BLAS threads (``ops.pass_threads``): every unit is
worked on once, and ReLU, max pooling and dropout give the same bits as on one thread."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cnnlab.ops import pass_threads
from cnnlab.ops.activation import relu, relu_in_place
from cnnlab.ops.norm import dropout
from cnnlab.ops.pool import max_pool2d, pool_routes
from cnnlab.tensor import Tensor


def test_run_split_covers_every_unit_once_and_stays_whole_below_the_threshold():
    seen = []
    with threadpool_limits(2, user_api="blas"):
        if pass_threads.blas_threads() != 2:
            pytest.skip("NumPy's BLAS thread count cannot be set here")
        pass_threads.run_split(9, pass_threads.MIN_PARALLEL_ELEMENTS - 1,
                               lambda a, b: seen.append((a, b)))
        assert seen == [(0, 9)]
        seen.clear()
        pass_threads.run_split(9, pass_threads.MIN_PARALLEL_ELEMENTS,
                               lambda a, b: seen.append((a, b)))
    assert sorted(i for a, b in seen for i in range(a, b)) == list(range(9))
    assert len(seen) == 2


def _relu_step(x, delta):
    xt = Tensor(x, requires_grad=True)
    y = relu(xt)
    y.backward(delta)
    return y.data, xt.grad


def _pool_step(x, delta, kernel, stride, route):
    xt = Tensor(x, requires_grad=True)
    with pool_routes(max_pool=route):
        y = max_pool2d(xt, kernel, stride)
    y.backward(delta[:, :, : y.shape[2], : y.shape[3]].copy())
    return y.data, xt.grad


def _dropout_step(x, delta):
    xt = Tensor(x, requires_grad=True)
    y = dropout(xt, 0.3, rng=5)
    y.backward(delta)
    return y.data, xt.grad


def _pool_input(rng, with_nan):
    x = rng.standard_normal((5, 3, 8, 9)).astype(np.float32)
    x[:, :, 2, 3] = x[:, :, 2, 2]  # ties: the first maximum must win in every range
    if with_nan:
        x[4, 1, 5, 6] = np.nan  # in the last image only: one range recomputes it
    return x


def _relu_in_place_step(x, delta):
    y = x.copy()
    assert relu_in_place(y) is y
    return y, relu(x).data


STEPS = {
    "relu_in_place": lambda rng, delta: _relu_in_place_step(
        rng.standard_normal(delta.shape).astype(np.float32), delta),
    "relu": lambda rng, delta: _relu_step(rng.standard_normal(delta.shape).astype(np.float32),
                                          delta),
    "dropout": lambda rng, delta: _dropout_step(
        rng.standard_normal(delta.shape).astype(np.float32), delta),
    "max_pool_2x2": lambda rng, delta: _pool_step(_pool_input(rng, False), delta, 2, 2,
                                                  "compiled_fixed_window"),
    "max_pool_3x3_nan": lambda rng, delta: _pool_step(_pool_input(rng, True), delta, 3, 2,
                                                      "compiled_fixed_window"),
    "max_pool_generic": lambda rng, delta: _pool_step(_pool_input(rng, True), delta, 3, 2,
                                                      "compiled_generic"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_split_passes_give_the_bits_of_one_thread(step, monkeypatch):
    delta = np.random.default_rng(1).standard_normal((5, 3, 8, 9)).astype(np.float32)
    with threadpool_limits(1, user_api="blas"):
        one = STEPS[step](np.random.default_rng(0), delta)
    monkeypatch.setattr(pass_threads, "MIN_PARALLEL_ELEMENTS", 0)
    for threads in (2, 3):
        with threadpool_limits(threads, user_api="blas"):
            split = STEPS[step](np.random.default_rng(0), delta)
        for ours, theirs in zip(split, one):
            np.testing.assert_array_equal(ours, theirs)
    if "nan" in step:
        assert np.isnan(one[0][4, 1]).any() and not np.isnan(one[0][:4]).any()
