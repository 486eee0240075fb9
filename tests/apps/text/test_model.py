"""Kim's CNN: layout, shapes, max-norm, padding row, short sentences, the model file."""

from __future__ import annotations

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import nn
from cnnlab.apps.text.model import (
    MAX_NORM,
    WordsAsChannels,
    apply_constraints,
    kim_cnn,
    left_pad,
    load_text_model,
    save_text_model,
)
from cnnlab.apps.text.vocabulary import PAD_ID, Vocabulary
from cnnlab.errors import FileFormatError
from cnnlab.io import save_model


def small(vocabulary=30, classes=3, length=12, seed=0):
    return kim_cnn(vocabulary, classes, length, embedding_dim=8, filters=5, seed=seed)


def test_layout_shapes_and_initialisation():
    model = kim_cnn(1000, 2, 20, seed=1)
    assert [type(layer).__name__ for layer in model] == [
        "Embedding", "WordsAsChannels", "Parallel", "Dropout", "Dense"]
    branches = model[2].branches
    assert [b[0].kernel_size[0] for b in branches] == [3, 4, 5]
    assert all(b[0].weight.shape == (100, 300, h) for b, h in zip(branches, (3, 4, 5)))
    assert model[3].rate == 0.5 and model[4].weight.shape == (2, 300)
    table = model[0].weight.data
    assert np.abs(table).max() <= 0.25 and np.abs(table).max() > 0.24  # U(-0.25, 0.25)
    np.testing.assert_array_equal(table[PAD_ID], 0)
    assert model.compute_output_shape((20,)) == (2,)
    assert WordsAsChannels().compute_output_shape((20, 300)) == (300, 20)
    with pytest.raises(ValueError, match="shorter than the widest filter"):
        kim_cnn(10, 2, 4)
    np.testing.assert_array_equal(kim_cnn(50, 2, 9, seed=3)[0].weight.data,
                                  kim_cnn(50, 2, 9, seed=3)[0].weight.data)


def test_max_norm_scales_long_rows_only_and_padding_stays_zero():
    model = small()
    weight = model[-1].weight.data
    weight[0] = 10.0  # norm 10 * sqrt(15) > 3
    weight[1] *= 1e-3
    short = weight[1].copy()
    model[0].weight.data[PAD_ID] = 7.0
    apply_constraints(model)
    norms = np.linalg.norm(weight, axis=1)
    assert norms[0] == pytest.approx(MAX_NORM, rel=1e-6)
    np.testing.assert_allclose(weight[0], weight[0, 0])  # direction kept
    np.testing.assert_array_equal(weight[1], short)
    np.testing.assert_array_equal(model[0].weight.data[PAD_ID], 0)


def test_a_sentence_shorter_than_the_widest_filter():
    vocabulary = Vocabulary.build([["good"], ["bad"]])
    pad = left_pad()
    assert pad == 4
    ids = vocabulary.encode_padded([["good"], []], 1 + 2 * pad, pad)  # one word, and none
    model = small(vocabulary=len(vocabulary), classes=2, length=ids.shape[1])
    logits = model(ids.astype(np.float32))
    assert logits.shape == (2, 2) and np.isfinite(logits.data).all()
    # the one word is seen by every filter width: changing it changes every branch's output
    other = ids.copy()
    other[0, pad] = vocabulary.ids["bad"]
    x = model[1](model[0](ids.astype(np.float32)))
    y = model[1](model[0](other.astype(np.float32)))
    for branch in model[2].branches:
        assert not np.array_equal(branch(x).data[0], branch(y).data[0])


def test_gradients_reach_the_embedding_rows_of_the_sentence_only():
    model = small(vocabulary=30, length=10)
    ids = np.zeros((2, 10), dtype=np.float32)
    ids[:, 4:6] = [[5, 6], [6, 9]]
    F.cross_entropy(model(ids), np.array([0, 2])).backward()
    assert model[0].weight.grad.rows.tolist() == [0, 5, 6, 9]  # padding row 0 too


def test_text_model_file_round_trip_and_refusals(tmp_path):
    vocabulary = Vocabulary.build([["a", "b", "c"]])
    model = small(vocabulary=len(vocabulary), classes=2)
    model.class_names = ["neg", "pos"]
    save_text_model(model, vocabulary, False, tmp_path / "m.npz")
    loaded, words, lowercase = load_text_model(tmp_path / "m.npz")
    assert words.words == vocabulary.words and lowercase is False
    assert loaded.class_names == ["neg", "pos"]
    x = np.array([[0, 0, 0, 0, 2, 3, 4, 0, 0, 0, 0, 0]], dtype=np.float32)
    model.eval()
    loaded.eval()
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    save_model(model, tmp_path / "plain.npz")  # a model file without a vocabulary
    with pytest.raises(FileFormatError, match="plain.npz: not a text model"):
        load_text_model(tmp_path / "plain.npz")
    save_text_model(model, Vocabulary.build([["a"]]), True, tmp_path / "short.npz")
    with pytest.raises(FileFormatError, match="short.npz: the vocabulary has 3 words but the "
                                              "embedding 5 rows"):
        load_text_model(tmp_path / "short.npz")
    other = nn.Sequential(nn.Dense(2))
    other.build((4,))
    other.class_names = ["a", "b"]
    with pytest.raises(ValueError, match="Kim's CNN .* expected"):
        save_text_model(other, vocabulary, True, tmp_path / "x.npz")  # not Kim's layout
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FileFormatError, match="junk.npz"):
        load_text_model(tmp_path / "junk.npz")
