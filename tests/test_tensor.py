"""Tensor and the autograd walk: dtypes, backward, accumulation, no_grad, retain_grad."""

import weakref

import numpy as np
import pytest

from cnnlab.tensor import (
    Function,
    Tensor,
    as_tensor,
    enable_grad,
    is_grad_enabled,
    no_grad,
    unbroadcast,
)


def test_python_numbers_and_lists_become_float32():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor(3).dtype == np.float32
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor([[1.5], [2.5]]).shape == (2, 1)


def test_numpy_arrays_keep_their_dtype_and_integer_lists_stay_integers():
    assert Tensor(np.ones(3, dtype=np.float64)).dtype == np.float64
    assert Tensor(np.ones(3, dtype=np.float32)).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.int64
    assert Tensor([0, 1, 2]).dtype.kind == "i"
    assert Tensor(np.ones(3), dtype=np.float32).dtype == np.float32


def test_only_float_tensors_can_require_grad():
    with pytest.raises(ValueError, match="only floating-point tensors can require gradients, received dtype int64"):
        Tensor(np.arange(3), requires_grad=True)


def test_basic_properties():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert x.is_leaf
    assert "requires_grad=True" in repr(x)
    assert x.numpy() is x.data
    assert Tensor(np.array(4.0)).item() == 4.0
    assert as_tensor(x) is x
    assert isinstance(as_tensor([1.0]), Tensor)


def test_detach_shares_data_but_not_the_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    z = x * 2
    assert not z.is_leaf


def test_comparisons_give_boolean_arrays():
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x > 1.5, [False, True, True])
    np.testing.assert_array_equal(x <= 2, [True, True, False])
    np.testing.assert_array_equal(x < Tensor(np.array([2.0, 2.0, 2.0])), [True, False, False])
    np.testing.assert_array_equal(x >= 3, [False, False, True])


def test_ndarray_on_the_left_defers_to_tensor():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = np.full(3, 2.0) * x + np.ones(3)
    assert isinstance(y, Tensor)
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


def test_backward_computes_the_chain_rule():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = Tensor(np.array([4.0, 5.0, 6.0]), requires_grad=True)
    loss = ((x * y + x) ** 2).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * (x.data * y.data + x.data) * (y.data + 1))
    np.testing.assert_allclose(y.grad, 2 * (x.data * y.data + x.data) * x.data)


def test_diamond_graph_sums_both_paths():
    x = Tensor(np.array([2.0]), requires_grad=True)
    a = x * 3
    b = x * x
    (a + b).sum().backward()
    np.testing.assert_allclose(x.grad, [3 + 2 * 2.0])


def test_backward_twice_accumulates():
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, [2.0, -4.0])
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, -8.0])


def test_gradients_accumulate_across_graphs_until_zero_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 4).sum().backward()
    np.testing.assert_allclose(x.grad, [7.0, 7.0])
    x.zero_grad()
    assert x.grad is None
    (x * 5).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 5.0])


def test_leaf_grad_is_a_private_copy():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    upstream = np.array([1.0, 1.0])
    y = x + 0
    y.backward(upstream)
    x.grad[0] = 100.0
    np.testing.assert_array_equal(upstream, [1.0, 1.0])


def _identity_function(keep):
    """A Function whose backward returns a fresh array, kept on the Function or not."""

    class Identity(Function):
        def forward(self, a):
            return a.copy()

        def backward(self, grad):
            out = np.array(grad, copy=True)
            self.returned = weakref.ref(out)
            if keep:
                self.kept = out
            return (out,)

    return Identity


def test_a_gradient_nobody_else_holds_becomes_the_leaf_grad_without_a_copy():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = _identity_function(keep=False).apply(x)
    y.backward(np.array([3.0, 4.0]))
    assert x.grad is y._ctx.returned()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_a_gradient_something_else_holds_is_copied():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = _identity_function(keep=True).apply(x)
    y.backward(np.array([3.0, 4.0]))
    assert not np.shares_memory(x.grad, y._ctx.kept)
    x.grad[0] = 100.0
    np.testing.assert_array_equal(y._ctx.kept, [3.0, 4.0])


def test_one_gradient_array_for_two_leaves_gives_each_its_own():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    (a + b).backward(np.array([1.0, 1.0]))  # add's backward hands on the same array twice
    assert not np.shares_memory(a.grad, b.grad)
    a.grad[0] = 100.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_a_view_is_never_taken_as_the_leaf_grad():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    x.T.sum().backward()  # the transpose's backward returns a view of a fresh array
    assert x.grad.flags.owndata
    np.testing.assert_array_equal(x.grad, np.ones((2, 2)))


def test_backward_with_explicit_upstream_gradient():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = x * 2
    y.backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(x.grad, [2.0, 0.0, -2.0])


def test_backward_errors():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad can be implied only for a one-element tensor, received shape \(2,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"backward: grad has shape \(3,\), expected \(2,\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).sum().backward()


def test_inputs_not_requiring_grad_get_none():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_intermediate_grads_are_not_kept_unless_retained():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    hidden = x * 3
    kept = (x * 2).retain_grad()
    (hidden * kept).sum().backward()
    assert hidden.grad is None
    np.testing.assert_allclose(kept.grad, hidden.data)
    np.testing.assert_allclose(x.grad, 2 * 6 * x.data)


def test_no_grad_records_nothing_and_restores_state():
    x = Tensor(np.ones(3), requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
        with enable_grad():
            z = x * 2
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad and not z.is_leaf


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(ZeroDivisionError), no_grad():
        1 / 0  # noqa: B018
    assert is_grad_enabled()


def test_long_chain_does_not_hit_the_recursion_limit():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001**3000], rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_keep_the_parameter_dtype(dtype):
    w = Tensor(np.ones((3, 2), dtype=dtype), requires_grad=True)
    x = Tensor(np.ones((4, 3), dtype=dtype))
    loss = ((x @ w) * 0.5 - 1).sum() / 4
    assert loss.dtype == dtype
    loss.backward()
    assert w.grad.dtype == dtype


def test_astype_records_a_cast():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_wrong_gradient_shape_from_a_function_is_reported():
    class Broken(Function):
        def forward(self, a):
            return a * 2

        def backward(self, grad):
            return (grad.sum(axis=0),)

    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Broken.backward returned a gradient of shape \(3,\) for an input of shape \(2, 3\)"):
        Broken.apply(x).sum().backward()


def test_function_outputs_are_always_arrays():
    class Scalar(Function):
        def forward(self, a):
            return a.sum()  # a NumPy scalar, not an array

        def backward(self, grad):
            return (np.ones(3) * grad,)

    x = Tensor(np.ones(3), requires_grad=True)
    out = Scalar.apply(x)
    assert isinstance(out.data, np.ndarray) and out.shape == ()
    out.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("grad_shape", "shape", "expected"),
    [
        ((2, 3), (2, 3), np.ones((2, 3))),
        ((2, 3), (3,), np.full(3, 2.0)),
        ((2, 3), (1, 3), np.full((1, 3), 2.0)),
        ((2, 3), (2, 1), np.full((2, 1), 3.0)),
        ((2, 3), (), np.array(6.0)),
        ((4, 2, 3), (2, 1), np.full((2, 1), 12.0)),
    ],
)
def test_unbroadcast_sums_over_broadcast_axes(grad_shape, shape, expected):
    out = unbroadcast(np.ones(grad_shape), shape)
    assert out.shape == shape
    np.testing.assert_array_equal(out, expected)
