"""Kim (2014)'s sentence CNN, its two constraints, and its model file (weights + vocabulary).

    ids (N, L) → Embedding (V, 300), U(−0.25, 0.25), trained (CNN-rand) → (N, L, 300)
      → WordsAsChannels → (N, 300, L): each filter spans the whole embedding, slides along time
      → Parallel: for h in 3, 4, 5: Conv1D(100, h) + ReLU → GlobalMaxPool1D → (N, 100)
      → concatenated (N, 300) → Dropout(0.5) → Dense(classes) (logits; softmax in the loss)

A sentence is ``LEFT_PAD = max width − 1`` padding ids, its words, then padding to the
common length (Kim's layout), so even a one-word sentence meets every filter width and
every word can sit under every position of a filter.

After each step (``apply_constraints``): the rows of the last layer's weight, one per class,
are scaled back to an L2 norm of at most 3 (Kim's max-norm), and the padding row of the
embedding is reset to zero (his ``set_zero``), so padding stays "no word".
"""

from __future__ import annotations

import numpy as np

import cnnlab.functional as F
from cnnlab.apps.text.vocabulary import PAD_ID, Vocabulary
from cnnlab.errors import FileFormatError
from cnnlab.io import open_archive, save_arrays
from cnnlab.model_file import rebuild_model
from cnnlab.nn import (
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    GlobalMaxPool1D,
    Layer,
    Parallel,
    Sequential,
    register,
)
from cnnlab.nn.arguments import as_input_shape
from cnnlab.tensor import no_grad

__all__ = ["MAX_NORM", "WIDTHS", "WordsAsChannels", "apply_constraints", "is_kim_cnn", "kim_cnn",
           "left_pad", "load_text_model", "save_text_model"]

WIDTHS = (3, 4, 5)
MAX_NORM = 3.0
EMBEDDING_RANGE = 0.25  # Kim's U(−0.25, 0.25) for words without a pre-trained vector


@register
class WordsAsChannels(Layer):
    """(N, L, D) word vectors → (N, D, L): the D embedding dimensions become the channels a
    ``Conv1D`` filter spans whole, time the one axis it slides along.

    Shape: (N, L, D) → (N, D, L).
    """

    def check_input_shape(self, input_shape):
        if len(input_shape) != 2:
            raise self._expect(input_shape, "(N, L, D)")

    def compute_output_shape(self, input_shape):
        input_shape = as_input_shape(input_shape, self._label())
        self.check_input_shape(input_shape)
        return (input_shape[1], input_shape[0])

    def forward(self, x):
        return F.transpose(x, (0, 2, 1))


def left_pad(widths=WIDTHS) -> int:
    """Padding ids before each sentence: the widest filter less one (4 for 3, 4, 5)."""
    return max(widths) - 1


def kim_cnn(vocabulary_size: int, classes: int, length: int, embedding_dim: int = 300,
            widths=WIDTHS, filters: int = 100, dropout: float = 0.5, seed: int = 0) -> Sequential:
    """Kim's CNN-rand, built for (N, ``length``) id inputs, embedding drawn from U(−0.25, 0.25).

    Args:
        vocabulary_size: rows of the embedding (``len(Vocabulary)``).
        classes: outputs of the last layer.
        length: ids per (padded) sentence, at least the widest filter.
        embedding_dim, widths, filters, dropout: Kim's 300, (3, 4, 5), 100, 0.5.
        seed: the weights' seed (the embedding's draw and every layer's initialiser).
    """
    if length < max(widths):
        raise ValueError(f"kim_cnn: length {length} is shorter than the widest filter "
                         f"{max(widths)}; pad the sentences")
    branches = [Sequential(Conv1D(filters, h, activation="relu"), GlobalMaxPool1D())
                for h in widths]
    model = Sequential(
        Embedding(vocabulary_size, embedding_dim),
        WordsAsChannels(),
        Parallel(*branches),
        Dropout(dropout),
        Dense(classes),
        name="kim_cnn",
        seed=seed,
    )
    model.build((length,))
    table = model[0].weight.data
    rng = np.random.default_rng([seed, 2014])
    table[...] = rng.uniform(-EMBEDDING_RANGE, EMBEDDING_RANGE, table.shape)
    apply_constraints(model)
    return model


def apply_constraints(model: Sequential, max_norm: float = MAX_NORM) -> None:
    """Kim's max-norm on the last layer's rows (one per class) and a zero padding row."""
    with no_grad():
        clip_row_norms(model[-1].weight.data, max_norm)  # (classes, features)
        model[0].weight.data[PAD_ID] = 0


def clip_row_norms(weight: np.ndarray, max_norm: float = MAX_NORM) -> None:
    """Scale, in place, each row of ``weight`` whose L2 norm exceeds ``max_norm`` down to it."""
    norms = np.sqrt(np.sum(weight.astype(np.float64) ** 2, axis=1, keepdims=True))
    weight *= np.minimum(1.0, max_norm / np.maximum(norms, 1e-12)).astype(weight.dtype)


def save_text_model(model: Sequential, vocabulary: Vocabulary, lowercase: bool, path) -> None:
    """The model file (``cnnlab.io``'s safe format) with the vocabulary and the tokeniser's
    setting in its metadata, so ``load_text_model`` can encode new sentences alike."""
    if not is_kim_cnn(model):
        raise ValueError(f"save_text_model: {LAYOUT} expected, received {model!r:.200}")
    metadata = {
        "kind": "model",
        "config": model.get_config(),
        "input_shape": list(model.input_shape),
        "class_names": [str(c) for c in model.class_names],
        "normalization": None,
        "text": {"vocabulary": vocabulary.words, "lowercase": bool(lowercase),
                 "widths": [int(w) for w in _widths(model)]},
    }
    save_arrays(path, model.state_dict(), metadata)


LAYOUT = "Kim's CNN (Embedding, WordsAsChannels, Parallel of Conv1D branches, Dropout, Dense)"


def is_kim_cnn(model) -> bool:
    """Whether ``model`` has the layout ``kim_cnn`` builds (what predict relies on)."""
    kinds = (Embedding, WordsAsChannels, Parallel, Dropout, Dense)
    return (isinstance(model, Sequential) and len(model) == len(kinds)
            and all(isinstance(layer, kind) for layer, kind in zip(model, kinds))
            and all(_is_branch(b) for b in model[2].branches))


def _is_branch(branch) -> bool:
    """Conv1D + ReLU with stride 1, no dilation or padding, then max over time: window t of
    the response is then exactly the words t … t + h − 1 (what predict's n-grams read)."""
    if not (isinstance(branch, Sequential) and len(branch) == 2):
        return False
    conv, pool = branch
    return (isinstance(conv, Conv1D) and isinstance(pool, GlobalMaxPool1D)
            and conv.activation == "relu" and conv.stride == (1,) and conv.dilation == (1,)
            and conv._padding == (0,) and conv.groups == 1)


def _widths(model) -> list[int]:
    return [branch[0].kernel_size[0] for branch in model[2].branches]


def load_text_model(path) -> tuple[Sequential, Vocabulary, bool]:
    """(model, vocabulary, lowercase) from a file of ``save_text_model``; FileFormatError naming
    the file when it is not one, or its vocabulary does not fit the embedding."""
    with open_archive(path) as archive:
        metadata = archive.metadata
        text = metadata.get("text")
        if metadata.get("kind") != "model" or not isinstance(text, dict):
            raise FileFormatError(path, "not a text model of cnnlab (no vocabulary)")
        vocabulary = Vocabulary.from_words(text.get("vocabulary"), path)
        lowercase = text.get("lowercase")
        if not isinstance(lowercase, bool):
            raise FileFormatError(path, f"text.lowercase must be true or false, "
                                        f"received {lowercase!r:.50}")
        model = rebuild_model(archive, metadata, config_field="config", prefix="")
    if not is_kim_cnn(model):
        raise FileFormatError(path, f"the model is not {LAYOUT}")
    if model[0].num_embeddings != len(vocabulary):
        raise FileFormatError(path, f"the vocabulary has {len(vocabulary)} words but the "
                                    f"embedding {model[0].num_embeddings} rows")
    return model, vocabulary, lowercase
