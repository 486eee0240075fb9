"""Element-wise arithmetic and matmul: broadcasting, finite differences, PyTorch, dtypes, errors."""

import numpy as np
import pytest

from cnnlab.ops import arithmetic as A
from cnnlab.tensor import Tensor

BINARY = {
    "add": (A.add, lambda a, b: a + b),
    "sub": (A.sub, lambda a, b: a - b),
    "mul": (A.mul, lambda a, b: a * b),
    "div": (A.div, lambda a, b: a / b),
}

# Broadcasting both ways: b into a, a into b, both into a common shape, scalars.
BROADCAST_SHAPES = [
    ((3, 4), (3, 4)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 3, 4)),
    ((3, 1), (1, 4)),
    ((2, 1, 4), (3, 1)),
    ((), (2, 3)),
    ((2, 3), ()),
]


def _operands(shape_a, shape_b, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape_a).astype(dtype)
    # Keep divisors away from zero so finite differences stay well conditioned.
    b = (rng.uniform(0.5, 2.0, shape_b) * rng.choice([-1, 1], shape_b)).astype(dtype)
    return a, b


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize(("shape_a", "shape_b"), BROADCAST_SHAPES)
def test_binary_gradcheck(name, shape_a, shape_b, check_gradients):
    op, _ = BINARY[name]
    check_gradients(op, *_operands(shape_a, shape_b))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize(("shape_a", "shape_b"), BROADCAST_SHAPES)
def test_binary_against_torch(name, shape_a, shape_b, dtype, torch_check):
    op, reference = BINARY[name]
    torch_check(op, reference, *_operands(shape_a, shape_b, dtype))


@pytest.mark.parametrize("name", BINARY)
def test_binary_forward_matches_numpy(name):
    op, reference = BINARY[name]
    a, b = _operands((2, 3), (3,))
    np.testing.assert_array_equal(op(Tensor(a), Tensor(b)).data, reference(a, b))


UNARY = {
    "neg": (A.neg, lambda t: -t, (-3.0, 3.0)),
    "exp": (A.exp, lambda t: t.exp(), (-2.0, 2.0)),
    "log": (A.log, lambda t: t.log(), (0.5, 3.0)),
    "sqrt": (A.sqrt, lambda t: t.sqrt(), (0.5, 3.0)),
    "abs": (A.abs, lambda t: t.abs(), (0.1, 3.0)),
    "pow3": (lambda a: A.pow(a, 3), lambda t: t**3, (-2.0, 2.0)),
    "pow_half": (lambda a: A.pow(a, 0.5), lambda t: t**0.5, (0.5, 3.0)),
    "pow_neg": (lambda a: A.pow(a, -2), lambda t: t**-2, (0.5, 3.0)),
    "clip": (lambda a: A.clip(a, -0.5, 0.7), lambda t: t.clamp(-0.5, 0.7), (-2.0, 2.0)),
    "clip_low": (lambda a: A.clip(a, low=0.2), lambda t: t.clamp(min=0.2), (-2.0, 2.0)),
}


def _unary_input(low, high, dtype=np.float64, shape=(3, 5), seed=1):
    rng = np.random.default_rng(seed)
    magnitude = rng.uniform(abs(low) if low > 0 else 0.05, high, shape)
    sign = 1 if low > 0 else rng.choice([-1, 1], shape)
    return (magnitude * sign).astype(dtype)


@pytest.mark.parametrize("name", UNARY)
def test_unary_gradcheck(name, check_gradients):
    op, _, (low, high) = UNARY[name]
    x = _unary_input(low, high)
    if name.startswith("clip"):
        # Keep finite differences away from the kinks at the clip bounds.
        for bound in (-0.5, 0.2, 0.7):
            x[np.abs(x - bound) < 1e-3] += 1e-2
    check_gradients(op, x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", UNARY)
def test_unary_against_torch(name, dtype, torch_check):
    op, reference, (low, high) = UNARY[name]
    torch_check(op, reference, _unary_input(low, high, dtype))


def test_abs_gradient_is_zero_at_zero():
    x = Tensor(np.array([-2.0, 0.0, 3.0]), requires_grad=True)
    A.abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0])


def test_clip_gradient_is_zero_outside_the_bounds():
    x = Tensor(np.array([-2.0, -0.5, 0.0, 0.7, 3.0]), requires_grad=True)
    y = A.clip(x, -0.5, 0.7)
    np.testing.assert_array_equal(y.data, [-0.5, -0.5, 0.0, 0.7, 0.7])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_pow_rejects_tensor_exponent():
    with pytest.raises(TypeError, match="pow"):
        A.pow(Tensor(np.ones(2)), Tensor(2.0))


MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
]


def _matmul_operands(shape_a, shape_b, dtype=np.float64, seed=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape_a).astype(dtype), rng.standard_normal(shape_b).astype(dtype)


@pytest.mark.parametrize(("shape_a", "shape_b"), MATMUL_SHAPES)
def test_matmul_gradcheck(shape_a, shape_b, check_gradients):
    check_gradients(A.matmul, *_matmul_operands(shape_a, shape_b))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("shape_a", "shape_b"), MATMUL_SHAPES)
def test_matmul_against_torch(shape_a, shape_b, dtype, torch_check):
    torch_check(A.matmul, lambda a, b: a @ b, *_matmul_operands(shape_a, shape_b, dtype))


def test_matmul_operator_and_reflected_operator():
    a, b = _matmul_operands((2, 3), (3, 4))
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b)
    result = a @ Tensor(b)
    assert isinstance(result, Tensor)
    np.testing.assert_allclose(result.data, a @ b)


def test_matmul_of_vectors_gives_a_zero_dimensional_array():
    a, b = _matmul_operands((4,), (4,))
    out = A.matmul(Tensor(a, requires_grad=True), Tensor(b))
    assert isinstance(out.data, np.ndarray)
    assert out.shape == ()


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((3, 4), (5, 6)), ((4,), (3,)), ((2, 3, 4), (3, 4))],
)
def test_matmul_shape_error_names_op_and_shapes(shape_a, shape_b):
    with pytest.raises(ValueError, match="matmul") as info:
        A.matmul(Tensor(np.ones(shape_a)), Tensor(np.ones(shape_b)))
    assert str(shape_a) in str(info.value) and str(shape_b) in str(info.value)


def test_matmul_rejects_scalars():
    with pytest.raises(ValueError, match="at least 1-D"):
        A.matmul(Tensor(2.0), Tensor(np.ones(3)))


def test_cast_converts_and_gradient_comes_back_in_the_input_dtype():
    x = Tensor(np.arange(3, dtype=np.float32), requires_grad=True)
    y = A.cast(x, np.float64)
    assert y.dtype == np.float64
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "expression",
    [
        lambda t: t + 1,
        lambda t: 1 + t,
        lambda t: t - 0.5,
        lambda t: 0.5 - t,
        lambda t: t * 2.5,
        lambda t: 2.5 * t,
        lambda t: t / 3,
        lambda t: 3.0 / t,
        lambda t: t**2,
        lambda t: t**2.0,
        lambda t: t ** np.float64(2.0),
        lambda t: t + np.float64(1.0),
        lambda t: -t,
        lambda t: t.exp().log().sqrt(),
        lambda t: t.clip(0.5, 1.5),
        lambda t: t.abs(),
    ],
)
def test_python_scalars_keep_the_tensor_dtype(expression, dtype):
    x = Tensor(np.linspace(1, 2, 6).astype(dtype), requires_grad=True)
    y = expression(x)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype


def test_float_scalar_with_integer_tensor_is_not_truncated():
    labels = Tensor(np.array([1, 2, 3]))
    np.testing.assert_allclose((labels * 0.5).data, [0.5, 1.0, 1.5])
    np.testing.assert_allclose((0.5 + labels).data, [1.5, 2.5, 3.5])
    assert (labels * 2).dtype == labels.dtype


def test_tensor_used_twice_accumulates_both_paths(check_gradients):
    check_gradients(lambda x: x * x + x / (x * x + 1), np.random.default_rng(3).standard_normal((2, 3)))
