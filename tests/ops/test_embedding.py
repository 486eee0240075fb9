"""embedding and global_max_pool1d: naive loops, finite differences in float64, PyTorch oracle."""

import numpy as np
import pytest

from cnnlab.ops.embedding import embedding
from cnnlab.ops.global_max import global_max_pool1d
from cnnlab.row_sparse import RowSparseGrad
from cnnlab.tensor import Tensor

# (index shape, num_embeddings, embedding_dim)
CASES = [((5,), 7, 3), ((2, 4), 6, 2), ((2, 3, 2), 4, 5), ((3, 50), 40, 8)]


def _case(shape, vocabulary, width, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, vocabulary, shape)
    indices.flat[0] = indices.flat[-1]  # at least one repeated index
    return indices, rng.standard_normal((vocabulary, width)).astype(dtype)


@pytest.mark.parametrize("shape, vocabulary, width", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_a_loop(shape, vocabulary, width, dtype):
    indices, weight = _case(shape, vocabulary, width, dtype)
    out = embedding(indices, Tensor(weight))
    expected = np.zeros((*shape, width), dtype=dtype)
    for position in np.ndindex(shape):
        for d in range(width):
            expected[position + (d,)] = weight[indices[position], d]
    assert out.dtype == dtype and out.shape == (*shape, width)
    np.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize("shape, vocabulary, width", CASES[:3])
def test_gradient_matches_finite_differences(shape, vocabulary, width, check_gradients):
    indices, weight = _case(shape, vocabulary, width)
    check_gradients(lambda w: embedding(indices, w), weight)


@pytest.mark.parametrize("shape, vocabulary, width", CASES)
def test_gradient_is_row_sparse_with_one_row_per_distinct_index(shape, vocabulary, width):
    indices, weight = _case(shape, vocabulary, width)
    w = Tensor(weight, requires_grad=True)
    upstream = np.random.default_rng(1).standard_normal((*shape, width))
    embedding(indices, w).backward(upstream)
    assert isinstance(w.grad, RowSparseGrad)
    np.testing.assert_array_equal(w.grad.rows, np.unique(indices))
    expected = np.zeros_like(weight)
    for position in np.ndindex(shape):
        expected[indices[position]] += upstream[position]
    np.testing.assert_allclose(w.grad.to_dense(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape, vocabulary, width", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(shape, vocabulary, width, dtype, torch_check, torch):
    indices, weight = _case(shape, vocabulary, width, dtype)
    torch_check(
        lambda w, i: embedding(i, w),
        lambda w, i: torch.nn.functional.embedding(i, w),
        weight, indices,
    )


def test_matches_torch_sparse_gradient_rows(torch):
    indices, weight = _case((3, 50), 40, 8)
    w = Tensor(weight, requires_grad=True)
    embedding(indices, w).sum().backward()
    tw = torch.tensor(weight, requires_grad=True)
    torch.nn.functional.embedding(torch.from_numpy(indices), tw, sparse=True).sum().backward()
    reference = tw.grad.coalesce()
    np.testing.assert_array_equal(w.grad.rows, reference.indices().numpy()[0])
    np.testing.assert_allclose(w.grad.values, reference.values().numpy(), rtol=1e-12)


def test_indices_of_a_tensor_and_no_gradient_without_requires_grad():
    weight = np.arange(6.0).reshape(3, 2)
    out = embedding(Tensor(np.array([2, 0])), weight)
    assert not out.requires_grad
    np.testing.assert_array_equal(out.data, [[4.0, 5.0], [0.0, 1.0]])


@pytest.mark.parametrize("indices, error, match", [
    (np.array([0, 5]), ValueError, "index 5 is out of range for a table of 5 rows"),
    (np.array([[1, -1]]), ValueError, "index -1 is out of range"),
    (np.array([0.0, 1.0]), TypeError, "integers, received dtype float64"),
    (np.array([True]), TypeError, "integers, received dtype bool"),
])
def test_bad_indices_are_refused_naming_the_value(indices, error, match):
    with pytest.raises(error, match=match):
        embedding(indices, np.zeros((5, 2)))


def test_weight_must_be_a_table():
    with pytest.raises(ValueError, match=r"2-D \(num_embeddings, embedding_dim\)"):
        embedding(np.array([0]), np.zeros(5))


def _naive_max_over_time(x):
    out = np.empty(x.shape[:-1], dtype=x.dtype)
    first = np.zeros(x.shape, dtype=bool)
    for position in np.ndindex(x.shape[:-1]):
        best = 0
        for t in range(x.shape[-1]):
            if x[position + (t,)] > x[position + (best,)]:
                best = t
        out[position] = x[position + (best,)]
        first[position + (best,)] = True
    return out, first


@pytest.mark.parametrize("shape", [(2, 3, 5), (4, 1), (50, 4, 48)])
def test_global_max_pool1d_matches_a_loop_and_routes_the_gradient_to_one_position(shape):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 3, shape).astype(np.float64)  # small integers: many ties
    t = Tensor(x, requires_grad=True)
    out = global_max_pool1d(t)
    expected, first = _naive_max_over_time(x)
    np.testing.assert_array_equal(out.data, expected)
    upstream = rng.standard_normal(expected.shape)
    out.backward(upstream)
    np.testing.assert_array_equal(t.grad, np.where(first, upstream[..., None], 0.0))


def test_global_max_pool1d_gradient_matches_finite_differences(check_gradients):
    x = np.random.default_rng(2).standard_normal((2, 3, 6))
    check_gradients(global_max_pool1d, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_max_pool1d_matches_torch(dtype, torch_check, torch):
    x = np.random.default_rng(3).standard_normal((4, 5, 9)).astype(dtype)
    torch_check(global_max_pool1d, lambda t: torch.nn.functional.max_pool1d(t, 9)[..., 0], x)


def test_global_max_pool1d_ties_go_where_torch_sends_them(torch):
    x = np.array([[[1.0, 3.0, 3.0, 0.0, 3.0]]])
    t = Tensor(x, requires_grad=True)
    global_max_pool1d(t).sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool1d(tx, 5).sum().backward()
    np.testing.assert_array_equal(t.grad, tx.grad.numpy())
    np.testing.assert_array_equal(t.grad, [[[0.0, 1.0, 0.0, 0.0, 0.0]]])


def test_global_max_pool1d_refuses_an_empty_axis():
    with pytest.raises(ValueError, match="L >= 1"):
        global_max_pool1d(np.zeros((2, 3, 0)))
