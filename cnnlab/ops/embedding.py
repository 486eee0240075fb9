"""The embedding lookup: each integer index selects one row of a table."""

from __future__ import annotations

import numpy as np

from cnnlab.row_sparse import RowSparseGrad
from cnnlab.tensor import Function, Tensor, as_tensor


class EmbeddingFunction(Function):
    """y[i…] = W[idx[i…]]: row ``idx[i…]`` of the table W.

    Forward:  y[i…, :] = W[idx[i…], :]
    Backward: ∂L/∂W[v, :] = Σ_{i… : idx[i…] = v} δ[i…, :],   δ = ∂L/∂y;
              zero for every row v that no index names, so the gradient is a
              ``RowSparseGrad`` holding only the named rows (repeats summed).
              The indices have no gradient.

    Shape: idx (*S), W (V, D) → y (*S, D).
    """

    def forward(self, weight, indices):
        self.indices, self.weight_shape = indices, weight.shape
        # np.take is NumPy's fast path for a gather along one axis.
        return np.take(weight, indices, axis=0)

    def backward(self, grad):
        rows = self.indices.reshape(-1)
        values = grad.reshape(len(rows), *self.weight_shape[1:])
        return (RowSparseGrad.from_indices(rows, values, self.weight_shape),)


def check_indices(indices, num_embeddings: int, owner: str = "embedding") -> np.ndarray:
    """``indices`` as an integer ndarray whose values all lie in [0, num_embeddings).

    Raises TypeError for a non-integer dtype, ValueError naming the first offending value.
    """
    array = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{owner}: indices must be integers, received dtype {array.dtype}")
    if array.size:
        low, high = array.min(), array.max()
        if low < 0 or high >= num_embeddings:
            bad = array[(array < 0) | (array >= num_embeddings)].flat[0]
            raise ValueError(
                f"{owner}: index {int(bad)} is out of range for a table of {num_embeddings} rows "
                f"(expected 0 <= index < {num_embeddings})"
            )
    return array


def embedding(indices, weight) -> Tensor:
    """Look up rows of ``weight``: y[i…] = weight[indices[i…]].

    Args:
        indices: integer array or Tensor of any shape, each value in [0, V).
        weight: the table, shape (V, D).

    Shape: indices (*S), weight (V, D) → (*S, D).

    The gradient of ``weight`` is a ``cnnlab.row_sparse.RowSparseGrad`` with one row per
    distinct index: a batch of 50 sentences of 50 tokens touches at most 2,500 of a
    20,000-word table's rows.

    Example: ``embedding(np.array([[1, 5, 1]]), w)`` with w (10, 4) gives (1, 3, 4).
    """
    weight = as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), "
            f"received shape {weight.shape}"
        )
    array = check_indices(indices, weight.shape[0])
    return EmbeddingFunction.apply(weight, indices=array)
