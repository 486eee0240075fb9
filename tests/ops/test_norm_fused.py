"""batch_norm with a fused ReLU, and batch norm's passes split across threads."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cnnlab.ops import pass_threads
from cnnlab.ops.activation import relu
from cnnlab.ops.norm import batch_norm
from cnnlab.tensor import Tensor

SHAPES = [(6, 3), (4, 3, 2, 3), (2, 2, 1, 1), (16, 5, 7, 7)]


def _inputs(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    channels = shape[1]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    return x, gamma, beta


def _forward_backward(shape, dtype, training, fused, seed=0):
    """Output and the gradients of x, γ, β; fused: batch_norm(activation="relu"), else
    relu(batch_norm(...)) as two ops."""
    x, gamma, beta = _inputs(shape, dtype, seed)
    tensors = [Tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    running = np.full(shape[1], 0.3, dtype), np.full(shape[1], 1.7, dtype)
    if fused:
        y = batch_norm(*tensors, *running, training=training, activation="relu")
    else:
        y = relu(batch_norm(*tensors, *running, training=training))
    delta = np.random.default_rng(seed + 1).standard_normal(shape).astype(dtype)
    y.backward(delta)
    return [y.data] + [t.grad for t in tensors] + list(running)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_relu_gives_the_bits_of_batch_norm_then_relu(shape, training, dtype):
    fused = _forward_backward(shape, dtype, training, fused=True)
    apart = _forward_backward(shape, dtype, training, fused=False)
    for ours, theirs in zip(fused, apart):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    if fused[0].size >= 12:
        assert (fused[0] == 0).any() and (fused[0] > 0).any()  # the ReLU cut something


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_fused_relu_gradcheck(shape, training, check_gradients):
    x, gamma, beta = _inputs(shape)
    running_mean, running_var = np.full(shape[1], 0.3), np.full(shape[1], 1.7)

    def fn(x, gamma, beta):
        return batch_norm(x, gamma, beta, running_mean.copy(), running_var.copy(),
                          training=training, activation="relu")

    check_gradients(fn, x, gamma, beta)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES[:2])
def test_fused_relu_against_torch(shape, dtype, torch_check, torch):
    x, gamma, beta = _inputs(shape, dtype)
    channels = shape[1]
    torch_mean = torch.zeros(channels, dtype=torch.from_numpy(x).dtype)
    torch_var = torch.ones(channels, dtype=torch_mean.dtype)
    torch_check(
        lambda a, g, b: batch_norm(a, g, b, np.zeros(channels, dtype), np.ones(channels, dtype),
                                   activation="relu"),
        lambda a, g, b: torch.relu(torch.nn.functional.batch_norm(
            a, torch_mean, torch_var, g, b, training=True)),
        x, gamma, beta,
    )


def test_fused_relu_keeps_nan_like_relu():
    x = np.array([[1.0, np.nan], [-1.0, 2.0], [0.5, 3.0]])
    y = batch_norm(x, None, None, None, None, activation="relu").data
    expected = relu(batch_norm(x, None, None, None, None)).data
    np.testing.assert_array_equal(y, expected)
    assert np.isnan(y[:, 1]).all()


def test_batch_norm_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        batch_norm(np.ones((2, 3)), None, None, None, None, activation="tanh")


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_passes_split_across_threads_give_the_same_bits(training, fused, monkeypatch):
    shape = (8, 7, 5, 6)  # 7 channels: uneven ranges on 2 or 3 threads
    with threadpool_limits(1, user_api="blas"):
        one = _forward_backward(shape, np.float32, training, fused)
    monkeypatch.setattr(pass_threads, "MIN_PARALLEL_ELEMENTS", 0)
    for threads in (2, 3):
        with threadpool_limits(threads, user_api="blas"):
            split = _forward_backward(shape, np.float32, training, fused)
        for ours, theirs in zip(split, one):
            np.testing.assert_array_equal(ours, theirs)
