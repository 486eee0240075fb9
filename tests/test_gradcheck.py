"""The finite-difference checker itself: it must pass right gradients and catch wrong ones."""

import numpy as np
import pytest

from cnnlab.gradcheck import gradcheck, numerical_gradient, relative_error
from cnnlab.tensor import Function, Tensor


def test_numerical_gradient_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)


def test_numerical_gradient_restores_the_input():
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()
    numerical_gradient(lambda: float(np.sum(np.sin(x))), x)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_perturbs_non_contiguous_arrays_in_place():
    x = np.arange(6.0).reshape(2, 3).T  # a transposed view: reshape(-1) would copy it
    grad = numerical_gradient(lambda: float(np.sum(x * x)), x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-8)


def test_relative_error_is_relative_for_large_and_absolute_for_small_gradients():
    assert relative_error(np.array([101.0]), np.array([100.0])) == pytest.approx(0.01)
    assert relative_error(np.array([1e-3]), np.array([0.0])) == pytest.approx(1e-3)
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0


def test_gradcheck_accepts_a_correct_backward():
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    errors = gradcheck(lambda x, y: (x @ y).exp(), [a, b])
    assert set(errors) == {0, 1}
    assert max(errors.values()) < 1e-6


class WrongSquare(Function):
    """y = x², with a deliberately wrong backward (x instead of 2x)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return (grad * self.x,)


def test_gradcheck_catches_a_wrong_backward():
    x = Tensor(np.random.default_rng(1).uniform(1, 2, (3,)), requires_grad=True)
    errors = gradcheck(WrongSquare.apply, [x])
    assert errors[0] > 0.1


def test_gradcheck_skips_inputs_without_grad_and_non_tensors():
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    constant = Tensor(rng.standard_normal(3))
    errors = gradcheck(lambda a, b, c: a * b + c, [x, constant, np.ones(3)])
    assert set(errors) == {0}
    assert errors[0] < 1e-6


def test_gradcheck_reports_an_input_the_output_does_not_depend_on():
    x = Tensor(np.ones(2), requires_grad=True)
    unused = Tensor(np.ones(2), requires_grad=True)
    errors = gradcheck(lambda a, b: a * 2, [x, unused])
    assert errors == {0: pytest.approx(0, abs=1e-8), 1: 0.0}


def test_gradcheck_is_reproducible_for_a_seed():
    x = Tensor(np.linspace(-1, 1, 5), requires_grad=True)
    first = gradcheck(lambda a: (a * a).sum(), [x], seed=3)
    second = gradcheck(lambda a: (a * a).sum(), [x], seed=3)
    assert first == second
