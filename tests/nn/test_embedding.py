"""nn.Embedding and nn.GlobalMaxPool1D: shapes, configs, save/load, summary, a sentence model."""

from __future__ import annotations

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import nn
from cnnlab.io import load_model, save_model
from cnnlab.row_sparse import RowSparseGrad


@nn.register
class TinyTextCNN(nn.Module):
    """Kim (2014)'s layout in miniature: embedding, Conv1D of two widths, max over time, dense."""

    def __init__(self, vocabulary=30, width=6, filters=4, seed=None):
        super().__init__()
        self.vocabulary, self.width, self.filters, self.seed = vocabulary, width, filters, seed
        self.embed = nn.Embedding(vocabulary, width, embeddings_initializer="normal")
        self.convs = nn.ModuleList([nn.Conv1D(filters, k, activation="relu") for k in (2, 3)])
        self.pool = nn.GlobalMaxPool1D()
        self.out = nn.Dense(2)

    def forward(self, ids):
        words = self.embed(ids).transpose(0, 2, 1)  # (N, L, D) → (N, D, L) for Conv1D
        return self.out(F.concat([self.pool(conv(words)) for conv in self.convs], axis=1))


def test_output_shape_weights_and_a_row_sparse_gradient():
    layer = nn.Embedding(20, 5, seed=3)
    assert layer.compute_output_shape((7,)) == (7, 5)
    assert layer.compute_output_shape((2, 3)) == (2, 3, 5)
    ids = np.array([[1, 4, 4], [19, 0, 1]])
    out = layer(ids)
    assert out.shape == (2, 3, 5) and out.dtype == np.float32
    assert layer.weight.shape == (20, 5) and layer.num_parameters() == 100
    np.testing.assert_array_equal(out.data[1, 0], layer.weight.data[19])
    assert np.all(np.abs(layer.weight.data) <= 0.05)  # 'uniform': U(-0.05, 0.05)
    out.sum().backward()
    assert isinstance(layer.weight.grad, RowSparseGrad)
    np.testing.assert_array_equal(layer.weight.grad.rows, [0, 1, 4, 19])


def test_same_seed_same_table_and_initializer_choice():
    a, b = nn.Embedding(9, 4, seed=1), nn.Embedding(9, 4, seed=1)
    a.build((3,))
    b.build((3,))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    c = nn.Embedding(9, 4, embeddings_initializer="zeros").build((3,))
    assert not c.weight.data.any()


def test_float_ids_holding_whole_numbers_are_accepted_others_refused():
    layer = nn.Embedding(5, 2, seed=0)
    as_floats, as_ints = layer(np.array([[1.0, 4.0]])), layer(np.array([[1, 4]]))
    np.testing.assert_array_equal(as_floats.data, as_ints.data)
    with pytest.raises(ValueError, match="whole numbers, received 1.5"):
        layer(np.array([[1.5]]))
    with pytest.raises(ValueError, match="index 5 is out of range"):
        layer(np.array([[5]]))
    with pytest.raises(TypeError, match="integers"):
        layer(np.array([[True]]))


def test_frozen_table_is_a_buffer_saved_but_not_optimised():
    layer = nn.Embedding(6, 3, trainable=False, seed=0).build((4,))
    assert layer.parameters() == []
    assert [name for name, _ in layer.named_buffers()] == ["weight"]
    out = layer(np.array([[0, 5]]))
    assert not out.requires_grad
    assert layer.count_parameters() == (0, 18)


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.Embedding(0, 3), ValueError, "num_embeddings"),
    (lambda: nn.Embedding(5, 0), ValueError, "embedding_dim"),
    (lambda: nn.Embedding(5, 3, embeddings_initializer="magic"), ValueError, "embeddings_init"),
    (lambda: nn.Embedding(5, 3, trainable="yes"), TypeError, "trainable"),
    (lambda: nn.Embedding(5.5, 3), TypeError, "num_embeddings"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_config_round_trip_and_repr():
    layer = nn.Embedding(100, 8, embeddings_initializer="normal", seed=2, trainable=False)
    config = layer.get_config()
    assert config == {"class_name": "Embedding", "config": {
        "num_embeddings": 100, "embedding_dim": 8, "embeddings_initializer": "normal", "seed": 2,
        "trainable": False}}
    rebuilt = nn.from_config(config)
    assert rebuilt.get_config() == config
    assert repr(nn.Embedding(100, 8)) == "Embedding(100, embedding_dim=8)"


def test_sequential_with_embedding_summary_and_save_load(tmp_path):
    model = nn.Sequential(nn.Embedding(50, 4, seed=0), nn.Flatten(), nn.Dense(3, seed=1))
    model.build((6,))
    text = model.summary()
    assert "(None, 6, 4)" in text and "200" in text and "Total params: 275" in text
    path = tmp_path / "model.npz"
    save_model(model, path)
    loaded = load_model(path)
    ids = np.array([[0, 1, 2, 3, 4, 49]])
    np.testing.assert_array_equal(loaded(ids).data, model(ids).data)


def test_global_max_pool1d_layer():
    layer = nn.GlobalMaxPool1D()
    assert layer.compute_output_shape((5, 9)) == (5,)
    x = np.random.default_rng(0).standard_normal((2, 5, 9)).astype(np.float32)
    np.testing.assert_array_equal(layer(x).data, x.max(axis=2))
    with pytest.raises(ValueError, match=r"expected input \(N, C, L\)"):
        layer(np.zeros((2, 5, 9, 1)))
    assert nn.from_config(layer.get_config()).get_config() == layer.get_config()


def test_sentence_model_summary_save_load_and_gradients(tmp_path, check_gradients):
    model = TinyTextCNN(seed=0)
    text = model.summary((7,))
    assert "embed (Embedding)" in text and "(None, 7, 6)" in text
    ids = np.random.default_rng(1).integers(0, 30, (3, 7))
    path = tmp_path / "text.npz"
    save_model(model, path)
    np.testing.assert_array_equal(load_model(path)(ids).data, model(ids).data)

    model.astype(np.float64)
    table = model.embed.weight
    def loss(weight):
        model.embed.weight = weight
        return model(ids)
    check_gradients(loss, table.data.copy())


def test_fit_learns_a_token_rule_with_adadelta():
    from cnnlab.training import fit

    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30, (240, 7))
    labels = (ids == 3).any(axis=1).astype(np.int64)  # does token 3 occur?
    model = TinyTextCNN(seed=0)
    # fit takes float or uint8 x only: ids travel as float32 (exact below 2**24), Embedding
    # turns them back into integers.
    history = fit(model, (ids.astype(np.float32), labels), epochs=6, batch_size=16,
                  optimizer="adadelta", lr=1.0, verbose=0)
    losses = history["loss"]
    assert losses[-1] < 0.6 * losses[0]
    assert history["accuracy"][-1] > 0.85
