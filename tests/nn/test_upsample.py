"""nn.Upsample2D: output shape, config round trip, the pooled-and-restored 19×19 board."""

import numpy as np
import pytest

from cnnlab import nn


def test_shape_and_forward_after_a_padded_pooling():
    model = nn.Sequential(nn.MaxPool2D(2, padding=1), nn.Upsample2D(2, size=19, offset=1))
    x = np.random.default_rng(0).standard_normal((2, 3, 19, 19)).astype(np.float32)
    out = model(x).data
    assert out.shape == (2, 3, 19, 19)
    # each output point lies over the 2×2 window it was pooled from: windows are
    # rows {−1, 0}, {1, 2}, …, {17, 18}, so point (i, j) gets the max of its own window
    for i, j in [(0, 0), (1, 2), (18, 18), (7, 12)]:
        rows = slice(max(0, 2 * ((i + 1) // 2) - 1), 2 * ((i + 1) // 2) + 1)
        cols = slice(max(0, 2 * ((j + 1) // 2) - 1), 2 * ((j + 1) // 2) + 1)
        np.testing.assert_array_equal(out[:, :, i, j], x[:, :, rows, cols].max(axis=(2, 3)))


def test_default_size_doubles_and_config_round_trips():
    layer = nn.Upsample2D(3)
    assert layer.compute_output_shape((4, 5, 6)) == (4, 15, 18)
    clone = nn.from_config(nn.Upsample2D(2, size=(19, 19), offset=1).get_config())
    assert (clone.scale, clone.size, clone.offset) == ((2, 2), (19, 19), (1, 1))
    assert clone.num_parameters() == 0


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="Upsample2D: scale"):
        nn.Upsample2D(0)
    with pytest.raises(ValueError, match=r"expected input \(N, C, H, W\)"):
        nn.Upsample2D(2).build((3, 4))
