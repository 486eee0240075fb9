"""The two speech CNNs: shapes, and the frequency-axis filters sliding along frequency only."""

import numpy as np
import pytest

from cnnlab.apps.speech.models import build_model, freq_model
from cnnlab.nn import Conv2D
from cnnlab.tensor import Tensor, no_grad


@pytest.mark.parametrize("name, parameters", [("freq", 359_818), ("2d", 188_074)])
def test_both_models_map_spectrograms_to_ten_logits(name, parameters):
    model = build_model(name, (1, 40, 64), seed=1)
    model.train(False)
    with no_grad():
        out = model(Tensor(np.random.default_rng(0).standard_normal((3, 1, 40, 64),
                                                                    dtype=np.float32)))
    assert out.shape == (3, 10)
    assert model.num_parameters() == parameters  # both well under 2 MB as float32


def test_freq_model_kernels_span_frequency_then_time():
    convs = [layer for layer in freq_model().layers if isinstance(layer, Conv2D)]
    # the first two slide along frequency only; time is left to the last one
    assert [conv.kernel_size for conv in convs] == [(7, 1), (5, 1), (1, 5)]
    assert build_model("2d", (1, 40, 64)).layers[0].kernel_size == (3, 3)


def test_shifting_the_input_along_frequency_shifts_the_feature_map_along_frequency():
    conv = freq_model(seed=3).layers[0]  # Conv2D (7, 1), padding (3, 0)
    rng = np.random.default_rng(0)
    x = np.zeros((1, 1, 40, 64), np.float32)
    x[:, :, 8:24] = rng.standard_normal((1, 1, 16, 64))  # a sound with silence above and below
    with no_grad():
        y = conv(Tensor(x)).data
        y_up = conv(Tensor(np.roll(x, 5, axis=2))).data
        y_later = conv(Tensor(np.roll(x, 5, axis=3))).data
    np.testing.assert_allclose(y_up[:, :, 5:], y[:, :, :-5], atol=1e-5)  # equivariant in F
    # each time frame is filtered on its own: shifting in time only moves the columns
    np.testing.assert_allclose(y_later, np.roll(y, 5, axis=3), atol=1e-5)
    # and the filter never mixes frames: a change in one frame changes one output column
    x_changed = x.copy()
    x_changed[..., 30] += 1.0
    with no_grad():
        changed = np.abs(conv(Tensor(x_changed)).data - y).max(axis=(0, 1, 2)) > 1e-6
    assert np.flatnonzero(changed).tolist() == [30]


def test_freq_model_refuses_frames_that_do_not_split_into_blocks():
    with pytest.raises(ValueError, match="time blocks"):
        freq_model((1, 40, 60))
    with pytest.raises(ValueError, match="unknown speech model"):
        build_model("rnn", (1, 40, 64))
