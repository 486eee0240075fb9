"""Vocabulary: from the training sentences only, special ids, min count, a checked saved form."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.apps.text.datasets import Corpus
from cnnlab.apps.text.train import TextSettings, _split
from cnnlab.apps.text.vocabulary import PAD, PAD_ID, UNK, UNK_ID, Vocabulary
from cnnlab.errors import FileFormatError


def test_ids_frequency_order_unknown_and_min_count():
    vocabulary = Vocabulary.build([["b", "a", "b"], ["c", "a", "b"]])
    assert vocabulary.words == [PAD, UNK, "b", "a", "c"]  # most frequent first, ties a-z
    assert vocabulary.encode(["a", "zebra", "c"]) == [3, UNK_ID, 4]
    assert Vocabulary.build([["b", "a", "b"], ["c", "a", "b"]], min_count=2).words == [
        PAD, UNK, "b", "a"]
    ids = vocabulary.encode_padded([["a"], ["b", "c", "a", "b", "b"]], length=6, left_pad=2)
    np.testing.assert_array_equal(ids, [[PAD_ID, PAD_ID, 3, 0, 0, 0], [0, 0, 2, 4, 3, 2]])


def test_built_from_the_training_fold_only():
    # each sentence holds a word of its own: a test word must not get an id
    sentences = [[f"word{i}", "shared"] for i in range(40)]
    corpus = Corpus("toy", sentences, np.arange(40) % 2, ["a", "b"], None)
    settings = TextSettings("toy", folds=4, dev_fraction=0.1)
    train, dev, test = _split(corpus, settings, seed=0, fold=1)
    assert len(test) == 10 and len(dev) == 3 and len(train) == 27
    assert not set(train) & set(test) and not set(dev) & set(test) and not set(dev) & set(train)
    vocabulary = Vocabulary.build(sentences[i] for i in train)
    assert "shared" in vocabulary
    assert all(f"word{i}" in vocabulary for i in train)
    assert not any(f"word{i}" in vocabulary for i in np.concatenate([test, dev]))


@pytest.mark.parametrize("words, match", [
    ("abc", "list starting"), ([UNK, PAD, "a"], "list starting"),
    ([PAD, UNK, "a", "a"], "twice"), ([PAD, UNK, 3], "non-empty strings"),
    ([PAD, UNK, ""], "non-empty strings"), ([PAD, UNK, "x" * 2000], "non-empty strings"),
])
def test_a_saved_vocabulary_is_checked(words, match):
    with pytest.raises(FileFormatError, match=f"model.npz: .*{match}"):
        Vocabulary.from_words(words, "model.npz")
    assert Vocabulary.from_words([PAD, UNK, "x"], "m").words == [PAD, UNK, "x"]
