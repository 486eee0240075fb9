"""``Embedding``: a learned vector for each integer id (a word, a token, a category)."""

from __future__ import annotations

import numpy as np

import cnnlab.functional as F
from cnnlab._checks import check_int, check_type
from cnnlab.nn.arguments import as_input_shape, check_initializer, check_seed
from cnnlab.nn.config import register
from cnnlab.nn.layer import Layer, WeightSpec
from cnnlab.tensor import Tensor


@register
class Embedding(Layer):
    """Look up row ``i`` of a (num_embeddings, embedding_dim) table for each id ``i``.

    y[n, t…, :] = W[x[n, t…], :]; the table's gradient is row-sparse (only the rows a
    batch names; see ``cnnlab.functional.embedding``).

    Args:
        num_embeddings: size of the vocabulary V; ids must lie in [0, V).
        embedding_dim: length D of each vector.
        embeddings_initializer: name from ``cnnlab.nn.init`` (default 'uniform',
            U(−0.05, 0.05), Keras's default).
        seed: seed of the initialiser; None derives one from the model's seed.
        trainable: False keeps the table fixed (a buffer, saved but not optimised),
            as Kim (2014)'s CNN-static keeps its pre-trained word vectors.

    Ids may come as integers, or as floats holding whole numbers (data loaders and
    ``summary`` feed floats), which are converted; anything else is refused.

    Shape: (N, *S) ids → (N, *S, D); a sentence batch (50, 50) → (50, 50, 300).

    Example:
        >>> Embedding(20000, 300).compute_output_shape((50,))
        (50, 300)
    """

    def __init__(self, num_embeddings, embedding_dim, embeddings_initializer="uniform",
                 seed=None, trainable=True):
        super().__init__()
        self.num_embeddings = check_int(num_embeddings, "Embedding", "num_embeddings", minimum=1)
        self.embedding_dim = check_int(embedding_dim, "Embedding", "embedding_dim", minimum=1)
        self.embeddings_initializer = check_initializer(
            embeddings_initializer, "Embedding", "embeddings_initializer"
        )
        self.seed = check_seed(seed, "Embedding")
        self.trainable = check_type(trainable, bool, "Embedding", "trainable", "True or False")

    def compute_output_shape(self, input_shape):
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        return (*input_shape, self.embedding_dim)

    def weight_specs(self, input_shape):
        shape = (self.num_embeddings, self.embedding_dim)
        # fans as torch/Keras see a (V, D) table: each id feeds D outputs.
        return [WeightSpec("weight", shape, self.embeddings_initializer, self.num_embeddings,
                           self.embedding_dim, trainable=self.trainable)]

    def _ids(self, x: Tensor) -> np.ndarray:
        ids = x.data
        if ids.dtype.kind == "f":
            whole = ids.astype(np.int64)
            if not np.array_equal(whole, ids):
                bad = ids[whole != ids].flat[0]
                raise ValueError(f"{self._label()}: ids must be whole numbers, received {bad}")
            return whole
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{self._label()}: ids must be integers, received dtype {ids.dtype}")
        return ids

    def forward(self, x):
        ids = self._ids(x)
        return F.embedding(ids, self.weight)
