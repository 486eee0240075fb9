"""linear(x, w, b): y = x Wᵀ + b with W stored (out_features, in_features)."""

import numpy as np
import pytest

from cnnlab.ops.activation import relu
from cnnlab.ops.linear import linear
from cnnlab.tensor import Tensor


def _operands(x_shape, out_features=4, bias=True, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    in_features = x_shape[-1]
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((out_features, in_features)).astype(dtype)
    b = rng.standard_normal(out_features).astype(dtype) if bias else None
    return x, w, b


def naive_linear(x, w, b=None):
    """y[n, o] = Σ_i x[n, i] w[o, i] + b[o], by loops."""
    rows = x.reshape(-1, x.shape[-1])
    out = np.zeros((rows.shape[0], w.shape[0]))
    for n in range(rows.shape[0]):
        for o in range(w.shape[0]):
            out[n, o] = sum(rows[n, i] * w[o, i] for i in range(w.shape[1])) + (0 if b is None else b[o])
    return out.reshape(x.shape[:-1] + (w.shape[0],))


X_SHAPES = [(5, 3), (1, 3), (3,), (2, 4, 3), (2, 1, 2, 3)]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", X_SHAPES)
def test_forward_matches_loops(x_shape, bias):
    x, w, b = _operands(x_shape, bias=bias)
    np.testing.assert_allclose(linear(x, w, b).data, naive_linear(x, w, b), rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", X_SHAPES)
def test_gradcheck(x_shape, bias, check_gradients):
    x, w, b = _operands(x_shape, bias=bias)
    if bias:
        check_gradients(linear, x, w, b)
    else:
        check_gradients(linear, x, w)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", X_SHAPES)
def test_against_torch(x_shape, bias, dtype, torch_check, torch):
    x, w, b = _operands(x_shape, bias=bias, dtype=dtype)
    if bias:
        torch_check(linear, torch.nn.functional.linear, x, w, b)
    else:
        torch_check(linear, torch.nn.functional.linear, x, w)


def test_backward_formulas():
    x, w, b = _operands((5, 3))
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    delta = np.random.default_rng(1).standard_normal((5, 4))
    linear(xt, wt, bt).backward(delta)
    np.testing.assert_allclose(xt.grad, delta @ w, rtol=1e-12)
    np.testing.assert_allclose(wt.grad, delta.T @ x, rtol=1e-12)
    np.testing.assert_allclose(bt.grad, delta.sum(axis=0), rtol=1e-12)


def test_only_the_parameters_need_gradients():
    x, w, b = _operands((5, 3))
    wt, bt = Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    linear(x, wt, bt).sum().backward()
    np.testing.assert_allclose(wt.grad, np.ones((4, 5)) @ x)
    np.testing.assert_allclose(bt.grad, np.full(4, 5.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x, w, b = _operands((5, 3), dtype=dtype)
    wt = Tensor(w, requires_grad=True)
    y = linear(x, wt, b)
    assert y.dtype == dtype
    y.sum().backward()
    assert wt.grad.dtype == dtype


def test_input_feature_mismatch_names_op_shapes_and_expectation():
    x, w, _ = _operands((5, 3))
    with pytest.raises(
        ValueError,
        match=r"linear: input of shape \(5, 2\) does not match weight of shape \(4, 3\): "
        r"expected an input of shape \(\.\.\., 3\)",
    ):
        linear(x[:, :2], w)


def test_weight_must_be_two_dimensional():
    with pytest.raises(ValueError, match=r"linear: weight must be 2-D \(out_features, in_features\), received shape \(3,\)"):
        linear(np.ones((2, 3)), np.ones(3))


def test_scalar_input_is_rejected():
    with pytest.raises(ValueError, match=r"linear: input of shape \(\)"):
        linear(np.array(1.0), np.ones((2, 1)))


def test_bias_shape_error():
    x, w, _ = _operands((5, 3))
    with pytest.raises(ValueError, match=r"linear: bias has shape \(3,\), expected \(4,\)"):
        linear(x, w, np.ones(3))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", X_SHAPES)
def test_fused_relu_equals_linear_then_relu(x_shape, bias):
    x, w, b = _operands(x_shape, bias=bias)
    results = []
    for fused in (True, False):
        tensors = [Tensor(a, requires_grad=True) for a in (x, w, b) if a is not None]
        y = linear(*tensors, activation="relu") if fused else relu(linear(*tensors))
        y.backward(np.random.default_rng(1).standard_normal(y.shape))
        results.append([y.data] + [t.grad for t in tensors])
    for fused, separate in zip(*results):
        np.testing.assert_allclose(fused, separate, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape", X_SHAPES)
def test_fused_relu_gradcheck(x_shape, check_gradients):
    check_gradients(lambda x, w, b: linear(x, w, b, activation="relu"), *_operands(x_shape))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_relu_against_torch(dtype, torch_check, torch):
    torch_check(
        lambda x, w, b: linear(x, w, b, activation="relu"),
        lambda x, w, b: torch.relu(torch.nn.functional.linear(x, w, b)),
        *_operands((6, 5), out_features=7, dtype=dtype, seed=3),
    )


def test_only_relu_fuses():
    with pytest.raises(ValueError, match="activation"):
        linear(*_operands((2, 3)), activation="sigmoid")
