"""relu, leaky_relu, sigmoid, tanh, softmax, log_softmax."""

import numpy as np
import pytest

from cnnlab.ops.activation import (
    leaky_relu,
    log_softmax,
    relu,
    relu_grad,
    sigmoid,
    softmax,
    tanh,
)
from cnnlab.tensor import Tensor


def _input(shape=(3, 5), dtype=np.float64, seed=0):
    # Keep values away from 0 so ReLU's kink never sits inside a finite-difference step.
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 3.0, shape) * rng.choice([-1, 1], shape)
    return x.astype(dtype)


# name: (ours, theirs(torch, x))
OPS = {
    "relu": (relu, lambda torch, x: torch.nn.functional.relu(x)),
    "leaky_relu": (leaky_relu, lambda torch, x: torch.nn.functional.leaky_relu(x)),
    "leaky_relu_0.2": (lambda x: leaky_relu(x, 0.2), lambda torch, x: torch.nn.functional.leaky_relu(x, 0.2)),
    "sigmoid": (sigmoid, lambda torch, x: torch.sigmoid(x)),
    "tanh": (tanh, lambda torch, x: torch.tanh(x)),
    "softmax": (softmax, lambda torch, x: torch.softmax(x, dim=-1)),
    "softmax_axis0": (lambda x: softmax(x, axis=0), lambda torch, x: torch.softmax(x, dim=0)),
    "softmax_axis1": (lambda x: softmax(x, axis=1), lambda torch, x: torch.softmax(x, dim=1)),
    "log_softmax": (log_softmax, lambda torch, x: torch.log_softmax(x, dim=-1)),
    "log_softmax_axis0": (lambda x: log_softmax(x, axis=0), lambda torch, x: torch.log_softmax(x, dim=0)),
    "log_softmax_axis1": (lambda x: log_softmax(x, axis=1), lambda torch, x: torch.log_softmax(x, dim=1)),
}
SHAPES = [(7,), (3, 5), (2, 3, 4, 4)]
# Axis 1 exists only for inputs with at least two dimensions.
CASES = [(name, shape) for name in OPS for shape in SHAPES if not (name.endswith("axis1") and len(shape) < 2)]


@pytest.mark.parametrize(("name", "shape"), CASES)
def test_gradcheck(name, shape, check_gradients):
    check_gradients(OPS[name][0], _input(shape))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("name", "shape"), CASES)
def test_against_torch(name, shape, dtype, torch_check, torch):
    ours, theirs = OPS[name]
    torch_check(ours, lambda x: theirs(torch, x), _input(shape, dtype))


def test_forward_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(relu(x).data, [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(leaky_relu(x, 0.1).data, [-0.2, -0.05, 0, 0.5, 2])
    np.testing.assert_allclose(sigmoid(x).data, 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(tanh(x).data, np.tanh(x), rtol=1e-15)
    e = np.exp(x)
    np.testing.assert_allclose(softmax(x).data, e / e.sum(), rtol=1e-14)
    np.testing.assert_allclose(log_softmax(x).data, np.log(e / e.sum()), rtol=1e-14)


def test_relu_and_leaky_relu_gradients_at_zero_follow_pytorch():
    x = Tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
    relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 0, 1])
    x.zero_grad()
    leaky_relu(x, 0.1).sum().backward()
    np.testing.assert_allclose(x.grad, [0.1, 0.1, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_large_inputs(dtype):
    x = Tensor(np.array([-1000.0, -80.0, 0.0, 80.0, 1000.0], dtype=dtype), requires_grad=True)
    with np.errstate(over="raise"):
        y = sigmoid(x)
    assert np.all(np.isfinite(y.data))
    np.testing.assert_allclose(y.data[[0, 2, 4]], [0.0, 0.5, 1.0])
    y.sum().backward()
    assert np.all(np.isfinite(x.grad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_are_stable_for_large_logits(dtype):
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]], dtype=dtype)
    probabilities = softmax(x).data
    logs = log_softmax(x).data
    assert np.all(np.isfinite(probabilities)) and np.all(np.isfinite(logs))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, rtol=1e-6)
    np.testing.assert_allclose(probabilities[1], 1 / 3, rtol=1e-6)
    shifted = x[0].astype(np.float64) - 1001
    np.testing.assert_allclose(logs[0], shifted - np.log(np.exp(shifted).sum()), rtol=1e-6)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_sums_to_one_along_its_axis(axis):
    y = softmax(_input((2, 3, 4)), axis=axis).data
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-14)
    assert np.all(y > 0)


@pytest.mark.parametrize("op", [relu, leaky_relu, sigmoid, tanh, softmax, log_softmax])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(op, dtype):
    x = Tensor(_input(dtype=dtype), requires_grad=True)
    y = op(x)
    assert y.dtype == dtype
    (y * y).sum().backward()
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("op", [softmax, log_softmax])
def test_axis_errors_name_the_op(op):
    name = op.__name__
    with pytest.raises(ValueError, match=rf"{name}: axis 2 is out of range for an input of shape \(3, 5\)"):
        op(_input(), axis=2)
    with pytest.raises(ValueError, match=rf"{name}: axis -3 is out of range"):
        op(_input(), axis=-3)
    with pytest.raises(TypeError, match=rf"{name}: axis must be an int, received axis=\(0, 1\)"):
        op(_input(), axis=(0, 1))


@pytest.mark.parametrize("op", [relu, leaky_relu, sigmoid, tanh, softmax, log_softmax])
def test_integer_input_is_rejected(op):
    with pytest.raises(ValueError, match=rf"{op.__name__}: expected a floating-point tensor, received dtype int64"):
        op(np.arange(3))


def test_leaky_relu_slope_must_be_a_number():
    message = "leaky_relu: negative_slope must be a number, received negative_slope='x'"
    with pytest.raises(TypeError, match=message):
        leaky_relu(_input(), "x")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_grad_masks_the_upstream_gradient_where_the_output_is_zero(dtype):
    rng = np.random.default_rng(4)
    out = np.maximum(rng.standard_normal((3, 4, 5)), 0).astype(dtype)
    grad = rng.standard_normal((3, 4, 5)).astype(dtype)
    expected = np.where(out > 0, grad, 0).astype(dtype)
    result = relu_grad(grad, out)  # the compiled pass
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, expected)
    # strided and broadcast upstream gradients take NumPy's path, with the same result
    np.testing.assert_array_equal(relu_grad(grad[:, ::2], out[:, ::2]), expected[:, ::2])
    ones = np.broadcast_to(np.ones((), dtype), out.shape)
    np.testing.assert_array_equal(relu_grad(ones, out), (out > 0).astype(dtype))


def test_relu_grad_is_zero_where_the_output_is_zero_even_for_a_nan_upstream():
    # as PyTorch's threshold_backward: masked positions get 0, not 0 · NaN
    out = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    grad = np.array([np.nan, 2.0, np.inf], dtype=np.float32)
    np.testing.assert_array_equal(relu_grad(grad, out), [0.0, 2.0, 0.0])
