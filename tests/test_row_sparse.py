"""RowSparseGrad: coalescing, the combination rules, and how backward accumulates it."""

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab.row_sparse import RowSparseGrad, sum_rows
from cnnlab.tensor import Tensor


def _naive_dense(indices, values, shape):
    dense = np.zeros(shape, dtype=values.dtype)
    for i, row in enumerate(indices):
        dense[row] += values[i]
    return dense


@pytest.mark.parametrize("n, vocabulary, width",
                         [(1, 5, 3), (40, 7, 4), (300, 1000, 2), (0, 4, 3)])
def test_from_indices_sums_repeated_rows_into_unique_sorted_rows(n, vocabulary, width):
    rng = np.random.default_rng(n)
    indices = rng.integers(0, vocabulary, n)
    values = rng.standard_normal((n, width))
    grad = RowSparseGrad.from_indices(indices, values, (vocabulary, width))
    np.testing.assert_array_equal(grad.rows, np.unique(indices))
    assert grad.rows.dtype == np.int64 and grad.values.dtype == np.float64
    np.testing.assert_allclose(grad.to_dense(), _naive_dense(indices, values, (vocabulary, width)),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(grad), grad.to_dense())


def test_sum_rows_keeps_float32_and_trailing_axes():
    indices = np.array([3, 1, 3, 3])
    values = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    rows, summed = sum_rows(indices, values)
    np.testing.assert_array_equal(rows, [1, 3])
    assert summed.dtype == np.float32 and summed.shape == (2, 3, 2)
    np.testing.assert_array_equal(summed[1], values[0] + values[2] + values[3])


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    a = RowSparseGrad.from_indices([4, 0, 4], rng.standard_normal((3, 2)), (6, 2))
    b = RowSparseGrad.from_indices([1, 4], rng.standard_normal((2, 2)), (6, 2))
    return a, b


def test_sparse_plus_sparse_is_sparse_on_the_union_of_rows():
    a, b = _pair()
    total = a + b
    assert isinstance(total, RowSparseGrad)
    np.testing.assert_array_equal(total.rows, [0, 1, 4])
    np.testing.assert_allclose(total.to_dense(), a.to_dense() + b.to_dense(), rtol=1e-15)


def test_sparse_and_dense_give_a_new_dense_array_either_way_round():
    a, _ = _pair()
    dense = np.arange(12.0).reshape(6, 2)
    before = dense.copy()
    for result in (a + dense, dense + a):
        assert type(result) is np.ndarray
        np.testing.assert_allclose(result, a.to_dense() + before, rtol=1e-15)
    np.testing.assert_array_equal(dense, before)  # neither operand changed
    np.testing.assert_allclose(a - dense, a.to_dense() - before, rtol=1e-15)
    np.testing.assert_allclose(dense - a, before - a.to_dense(), rtol=1e-15)


def test_scaling_negation_and_copy():
    a, _ = _pair()
    dense = a.to_dense()
    np.testing.assert_allclose((a * 0.5).to_dense(), dense * 0.5)
    np.testing.assert_allclose((2 * a).to_dense(), dense * 2)
    np.testing.assert_allclose((-a).to_dense(), -dense)
    copy = a.copy()
    copy *= 3.0
    np.testing.assert_allclose(copy.to_dense(), dense * 3)
    np.testing.assert_allclose(a.to_dense(), dense)  # the copy did not share values


def test_ufuncs_refuse_instead_of_materialising_silently():
    a, _ = _pair()
    with pytest.raises(TypeError):
        np.square(a)


@pytest.mark.parametrize("rows, values, shape, match", [
    ([1, 1], np.zeros((2, 2)), (4, 2), "unique"),
    ([2, 1], np.zeros((2, 2)), (4, 2), "increasing"),
    ([4], np.zeros((1, 2)), (4, 2), r"\[0, 4\)"),
    ([0], np.zeros((1, 3)), (4, 2), "do not fit"),
    ([0.0], np.zeros((1, 2)), (4, 2), "integer"),
])
def test_constructor_checks_rows_and_values(rows, values, shape, match):
    with pytest.raises(ValueError, match=match):
        RowSparseGrad(np.asarray(rows), values, shape)


def test_shapes_must_agree_to_combine():
    a, _ = _pair()
    with pytest.raises(ValueError, match="shape"):
        a + np.zeros((5, 2))


def test_backward_twice_accumulates_sparse_plus_sparse():
    w = Tensor(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=True)
    out = F.embedding(np.array([1, 3, 1]), w)
    out.sum().backward()
    first = w.grad.to_dense()
    out.sum().backward()
    assert isinstance(w.grad, RowSparseGrad)
    np.testing.assert_allclose(w.grad.to_dense(), 2 * first)


def test_a_table_used_sparsely_and_densely_gets_the_dense_sum():
    rng = np.random.default_rng(1)
    w = Tensor(rng.standard_normal((6, 3)), requires_grad=True)
    ids = np.array([[0, 5, 5]])
    hidden = F.embedding(ids, w).sum(axis=1)  # (1, 3)
    logits = F.matmul(hidden, w.T)  # tied output layer: (1, 6)
    weights = Tensor(rng.standard_normal((1, 6)))
    (logits * weights).sum().backward()
    grad = w.grad
    assert type(grad) is np.ndarray
    # d/dW of Σ_v c_v <h, W_v>, h = W_0 + 2 W_5: c_v h in row v, plus Σ_v c_v W_v in rows 0, 5.
    c, h = weights.data[0], hidden.data[0]
    expected = np.outer(c, h)
    pulled = c @ w.data
    expected[0] += pulled
    expected[5] += 2 * pulled
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_an_embedding_of_a_computed_table_passes_a_dense_gradient_upstream():
    base = Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    table = base * 2.0
    F.embedding(np.array([2, 2, 0]), table).sum().backward()
    expected = np.zeros((4, 3))
    expected[2] = 4.0
    expected[0] = 2.0
    assert type(base.grad) is np.ndarray
    np.testing.assert_allclose(base.grad, expected)
