"""sum / mean / max over axes, with and without keepdims."""

import numpy as np
import pytest

from cnnlab.ops import reduce as R
from cnnlab.tensor import Tensor

AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]
SHAPE = (2, 3, 4)


def _input(dtype=np.float64, seed=0):
    # Distinct values: no ties, so max has a unique derivative everywhere.
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(np.prod(SHAPE))).reshape(SHAPE).astype(dtype) / 7 - 1


def _torch_reduction(name, axis, keepdims):
    def reference(t):
        dim = tuple(range(t.ndim)) if axis is None else axis
        if name == "sum":
            return t.sum(dim=dim, keepdim=keepdims)
        if name == "mean":
            return t.mean(dim=dim, keepdim=keepdims)
        return t.amax(dim=dim, keepdim=keepdims)

    return reference


def _ours(name, axis, keepdims):
    op = {"sum": R.sum, "mean": R.mean, "max": R.max}[name]
    return lambda t: op(t, axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reduction_gradcheck(name, axis, keepdims, check_gradients):
    check_gradients(_ours(name, axis, keepdims), _input())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reduction_against_torch(name, axis, keepdims, dtype, torch_check):
    torch_check(_ours(name, axis, keepdims), _torch_reduction(name, axis, keepdims), _input(dtype))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reduction_forward_matches_numpy(name, axis, keepdims):
    x = _input()
    out = _ours(name, axis, keepdims)(Tensor(x))
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


def test_tensor_methods_reduce_like_the_functions():
    x = Tensor(_input())
    np.testing.assert_allclose(x.sum(axis=1).data, R.sum(x, axis=1).data)
    np.testing.assert_allclose(x.mean(axis=(0, 2), keepdims=True).data, R.mean(x, (0, 2), True).data)
    np.testing.assert_allclose(x.max(axis=-1).data, R.max(x, -1).data)


def test_max_splits_the_gradient_equally_among_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    R.max(x, axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_whole_tensor_max_ties():
    x = Tensor(np.array([1.0, 5.0, 5.0, 0.0]), requires_grad=True)
    R.max(x).backward()
    np.testing.assert_allclose(x.grad, [0, 0.5, 0.5, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reductions_keep_dtype(name, dtype):
    x = Tensor(_input(dtype), requires_grad=True)
    out = _ours(name, 1, False)(x)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [3, -4, (0, 5)])
def test_axis_out_of_range_names_the_op(name, axis):
    with pytest.raises(ValueError, match=f"{name}: axis .* out of range .* 3 dimensions"):
        _ours(name, axis, False)(Tensor(_input()))


def test_max_of_empty_tensor_is_an_error():
    with pytest.raises(ValueError, match=r"max: cannot reduce an empty tensor of shape \(0, 3\)"):
        R.max(Tensor(np.ones((0, 3))), axis=0)


def test_sum_of_a_scalar_without_axis():
    x = Tensor(np.array(2.5), requires_grad=True)
    y = R.sum(x)
    y.backward()
    assert y.item() == 2.5 and x.grad == 1.0


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_axis_of_the_wrong_type_is_a_type_error(name):
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match=rf"{name}: axis must be an int, received axis=1.0"):
        getattr(x, name)(axis=1.0)
    with pytest.raises(TypeError, match=rf"{name}: axis must be an int, received axis='0'"):
        getattr(x, name)(axis=("0", 1))

