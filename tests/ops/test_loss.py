"""cross_entropy (labels and soft targets), mse_loss, l1_loss."""

import numpy as np
import pytest

from cnnlab.ops.loss import cross_entropy, l1_loss, mse_loss
from cnnlab.tensor import Tensor

REDUCTIONS = ["mean", "sum", "none"]


def _logits(n=6, k=4, dtype=np.float64, seed=0):
    return (np.random.default_rng(seed).standard_normal((n, k)) * 2).astype(dtype)


def _labels(n=6, k=4, seed=1):
    return np.random.default_rng(seed).integers(0, k, n)


def _soft(n=6, k=4, dtype=np.float64, seed=2):
    p = np.random.default_rng(seed).uniform(0.1, 1, (n, k))
    return (p / p.sum(axis=1, keepdims=True)).astype(dtype)


def naive_cross_entropy(logits, labels):
    """−log(e^{x_y} / Σ_k e^{x_k}) per sample, with plain exponentials."""
    return np.array([-np.log(np.exp(row[y]) / np.exp(row).sum()) for row, y in zip(logits, labels)])




@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_labels_forward(reduction):
    x, y = _logits(), _labels()
    per_sample = naive_cross_entropy(x, y)
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    out = cross_entropy(x, y, reduction)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_labels_gradcheck(reduction, check_gradients):
    y = _labels()
    check_gradients(lambda t: cross_entropy(t, y, reduction), _logits())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_soft_gradcheck_for_logits_and_targets(reduction, check_gradients):
    # Targets that require grad receive one; rows need not sum to 1 for the check.
    target = _soft() * np.linspace(0.5, 2, 6)[:, None]
    check_gradients(lambda t, s: cross_entropy(t, s, reduction), _logits(), target)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_labels_against_torch(reduction, dtype, torch_check, torch):
    torch_check(
        lambda t, y: cross_entropy(t, y, reduction),
        lambda t, y: torch.nn.functional.cross_entropy(t, y, reduction=reduction),
        _logits(dtype=dtype),
        _labels(),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_soft_against_torch(reduction, dtype, torch_check, torch):
    torch_check(
        lambda t, s: cross_entropy(t, s, reduction),
        lambda t, s: torch.nn.functional.cross_entropy(t, s, reduction=reduction),
        _logits(dtype=dtype),
        _soft(dtype=dtype),
    )


def test_one_hot_targets_equal_labels():
    x, y = _logits(), _labels()
    one_hot = np.eye(4)[y]
    xa, xb = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    a, b = cross_entropy(xa, y), cross_entropy(xb, one_hot)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-14)
    a.backward()
    b.backward()
    np.testing.assert_allclose(xa.grad, xb.grad, rtol=1e-12, atol=1e-15)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    x, y = _logits(), _labels()
    xt = Tensor(x, requires_grad=True)
    cross_entropy(xt, y).backward()
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(xt.grad, (p - np.eye(4)[y]) / len(y), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    x = Tensor(np.array([[1e4, 0.0, -1e4], [5e3, 5e3, 0.0]], dtype=dtype), requires_grad=True)
    loss = cross_entropy(x, np.array([1, 0]), reduction="none")
    assert np.all(np.isfinite(loss.data))
    np.testing.assert_allclose(loss.data, [1e4, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_keeps_dtype_with_float64_targets(dtype):
    x = Tensor(_logits(dtype=dtype), requires_grad=True)
    for target in (_labels(), _soft(dtype=np.float64)):
        loss = cross_entropy(x, target)
        assert loss.dtype == dtype
        loss.backward()
        assert x.grad.dtype == dtype


def test_cross_entropy_accepts_tensor_labels():
    x, y = _logits(), _labels()
    np.testing.assert_allclose(cross_entropy(x, Tensor(y)).data, cross_entropy(x, y).data)


@pytest.mark.parametrize("bad", [4, 7, -1])
def test_label_out_of_range_names_op_label_and_k(bad):
    y = _labels()
    y[3] = bad
    with pytest.raises(
        ValueError, match=rf"cross_entropy: label {bad} is out of range for K=4 classes \(expected labels in \[0, 4\)\)"
    ):
        cross_entropy(_logits(), y)


def test_cross_entropy_shape_and_type_errors():
    x = _logits()
    with pytest.raises(ValueError, match=r"cross_entropy: logits must have shape \(N, K\), received \(6,\)"):
        cross_entropy(x[:, 0], _labels())
    with pytest.raises(ValueError, match=r"cross_entropy: labels have shape \(5,\), expected \(6,\) for logits \(6, 4\)"):
        cross_entropy(x, _labels(5))
    with pytest.raises(ValueError, match=r"cross_entropy: labels of shape \(6,\) must be integers, received dtype float64"):
        cross_entropy(x, _labels().astype(float))
    with pytest.raises(
        ValueError,
        match=r"cross_entropy: target has shape \(6, 3\), expected labels \(6,\) or a distribution \(6, 4\)",
    ):
        cross_entropy(x, _soft(k=3))
    with pytest.raises(ValueError, match="cross_entropy: logits must be floating point, received dtype int64"):
        cross_entropy(np.ones((6, 4), dtype=np.int64), _labels())



REGRESSION = {
    "mse_loss": (mse_loss, lambda d: d * d),
    "l1_loss": (l1_loss, np.abs),
}


def _pair(shape=(3, 4), dtype=np.float64, seed=3):
    rng = np.random.default_rng(seed)
    pred = rng.standard_normal(shape)
    # Keep |pred − target| away from 0: |·| has a kink there.
    target = pred + rng.uniform(0.1, 1, shape) * rng.choice([-1, 1], shape)
    return pred.astype(dtype), target.astype(dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", REGRESSION)
def test_regression_forward(name, reduction):
    op, elementwise = REGRESSION[name]
    pred, target = _pair()
    values = elementwise(pred - target)
    expected = {"mean": values.mean(), "sum": values.sum(), "none": values}[reduction]
    out = op(pred, target, reduction)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-13)


@pytest.mark.parametrize("shape", [(3, 4), (5,), (2, 3, 2, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", REGRESSION)
def test_regression_gradcheck(name, reduction, shape, check_gradients):
    op, _ = REGRESSION[name]
    check_gradients(lambda p, t: op(p, t, reduction), *_pair(shape))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", REGRESSION)
def test_regression_against_torch(name, reduction, dtype, torch_check, torch):
    op, _ = REGRESSION[name]
    reference = getattr(torch.nn.functional, name)
    torch_check(lambda p, t: op(p, t, reduction), lambda p, t: reference(p, t, reduction=reduction), *_pair(dtype=dtype))


def test_l1_gradient_is_zero_where_prediction_equals_target():
    pred = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    l1_loss(pred, np.array([0.0, 2.0, 5.0]), reduction="sum").backward()
    np.testing.assert_array_equal(pred.grad, [1.0, 0.0, -1.0])


@pytest.mark.parametrize("name", REGRESSION)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_regression_keeps_dtype_with_float64_targets(name, dtype):
    op, _ = REGRESSION[name]
    pred, target = _pair(dtype=dtype)
    pt = Tensor(pred, requires_grad=True)
    loss = op(pt, target.astype(np.float64))
    assert loss.dtype == dtype
    loss.backward()
    assert pt.grad.dtype == dtype


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_errors(name):
    op, _ = REGRESSION[name]
    pred, target = _pair()
    with pytest.raises(ValueError, match=rf"{name}: target has shape \(4, 3\), expected the prediction's shape \(3, 4\)"):
        op(pred, target.T)
    with pytest.raises(ValueError, match=rf"{name}: predictions must be floating point, received dtype int64"):
        op(np.ones((3, 4), dtype=np.int64), target)


@pytest.mark.parametrize("op", [cross_entropy, mse_loss, l1_loss])
def test_bad_reduction_is_rejected(op):
    message = (
        rf"{op.__name__}: reduction must be one of 'mean', 'sum', 'none', received reduction='avg'"
    )
    with pytest.raises(ValueError, match=message):
        op(_logits(), _labels() if op is cross_entropy else _logits(), reduction="avg")
