"""``Vocabulary``: word ↔ id, built from the training sentences only.

Id 0 is the padding token and id 1 the unknown token; the words follow, the most frequent
first (ties in alphabetical order, so the same sentences always give the same ids). A word
of the test fold that the training folds never saw maps to the unknown id: the test data
never leaks into the model, not even as a row of the embedding table.

The vocabulary is saved with the model as a JSON list in the model file's metadata
(``cnnlab.apps.text.model.save_text_model``): ``Vocabulary.from_words`` checks such a list
as untrusted input (strings, unique, bounded in number and length).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from cnnlab._checks import check_int
from cnnlab.errors import FileFormatError

__all__ = ["MAX_WORDS", "MAX_WORD_CHARS", "PAD", "PAD_ID", "UNK", "UNK_ID", "Vocabulary"]

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
#: bounds on a vocabulary read from a file (MR has 18,765 words, SST-2 16,185)
MAX_WORDS = 2_000_000
MAX_WORD_CHARS = 1_000


class Vocabulary:
    """Word ids: ``PAD`` = 0, ``UNK`` = 1, then the words.

    Build one with ``Vocabulary.build(token_lists, min_count)``; ``encode`` turns tokens
    into ids, ``words`` is the list to save and ``from_words`` reads it back.
    """

    def __init__(self, words: list[str]):
        self.words = [PAD, UNK, *words]
        self.ids = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, token_lists, min_count: int = 1) -> Vocabulary:
        """The words occurring at least ``min_count`` times in ``token_lists`` (training only)."""
        min_count = check_int(min_count, "Vocabulary.build", "min_count", minimum=1)
        counts = Counter(token for tokens in token_lists for token in tokens)
        kept = [word for word, n in counts.items() if n >= min_count and word not in (PAD, UNK)]
        kept.sort(key=lambda word: (-counts[word], word))
        return cls(kept)

    @classmethod
    def from_words(cls, words, path="vocabulary") -> Vocabulary:
        """The vocabulary saved as ``vocabulary.words``; FileFormatError naming ``path`` if the
        list is not one (wrong type, duplicates, missing special tokens, too long)."""
        if not isinstance(words, list) or len(words) < 2 or words[:2] != [PAD, UNK]:
            raise FileFormatError(path, f"the vocabulary must be a list starting with "
                                        f"{PAD!r}, {UNK!r}")
        if len(words) > MAX_WORDS:
            raise FileFormatError(path, f"the vocabulary holds {len(words):,} words, more than "
                                        f"the {MAX_WORDS:,} allowed")
        if not all(isinstance(w, str) and 0 < len(w) <= MAX_WORD_CHARS for w in words):
            raise FileFormatError(path, f"the vocabulary must hold non-empty strings of at most "
                                        f"{MAX_WORD_CHARS} characters")
        if len(set(words)) != len(words):
            raise FileFormatError(path, "the vocabulary holds a word twice")
        return cls(words[2:])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.ids

    def encode(self, tokens) -> list[int]:
        """The id of each token; ``UNK_ID`` for words the training data did not have."""
        ids = self.ids
        return [ids.get(token, UNK_ID) for token in tokens]

    def encode_padded(self, token_lists, length: int, left_pad: int) -> np.ndarray:
        """(N, length) int64 ids: ``left_pad`` padding ids, the sentence, padding to ``length``.

        A sentence longer than ``length − left_pad`` tokens is cut at that length.
        """
        rows = np.full((len(token_lists), length), PAD_ID, dtype=np.int64)
        room = length - left_pad
        for i, tokens in enumerate(token_lists):
            ids = self.encode(tokens[:room])
            rows[i, left_pad:left_pad + len(ids)] = ids
        return rows
