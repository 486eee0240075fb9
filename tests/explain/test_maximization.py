"""Activation maximisation on the trained 8×8 digits net: it raises each kind of target
tenfold, L1 makes pixels neutral, a dead unit moves through the redirected ReLU."""

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.explain.maximization import maximize
from cnnlab.explain.probe import ExplainError

STEPS = 48


@pytest.mark.parametrize("layer, units", [("conv2d_1", [0, 4, 6]), ("dense", [0, 5, 9]),
                                          (None, list(range(10)))])
def test_the_target_rises_tenfold_above_the_random_start(trained_digits, layer, units):
    model = trained_digits[0]
    result = maximize(model, layer, units, steps=STEPS, seed=0)
    assert result.images.shape == (len(units), 1, 8, 8)
    assert 0 <= result.images.min() and result.images.max() <= 1
    assert (result.final >= 10 * np.abs(result.start)).all(), (result.start, result.final)
    assert result.history.shape == (STEPS, len(units))


def test_every_channel_rises(trained_digits):
    # Not every channel can rise tenfold: a channel whose bias already drives it hard on the
    # neutral start (channel 7 here) reaches about 4× before its pixels saturate.
    model = trained_digits[0]
    result = maximize(model, "conv2d_1", list(range(16)), steps=STEPS, seed=0)
    assert (result.final >= 2 * np.abs(result.start)).all(), (result.start, result.final)
    assert np.median(result.final / np.abs(result.start)) >= 10


def test_fourier_parameterisation_and_a_single_position_also_rise(trained_digits):
    model = trained_digits[0]
    fourier = maximize(model, "dense", [1, 2], steps=STEPS, fourier=True)
    assert (fourier.final >= 10 * np.abs(fourier.start)).all()
    spot = maximize(model, "relu_1", 4, position=(2, 5), steps=STEPS)
    assert spot.final[0] >= 10 * abs(spot.start[0]) and spot.final[0] > 0


def test_the_last_layer_is_its_logits(trained_digits):
    model = trained_digits[0]
    by_name = maximize(model, "dense_1", 3, steps=5)
    by_none = maximize(model, None, 3, steps=5)
    assert by_name.layer is None
    np.testing.assert_array_equal(by_name.image, by_none.image)


def test_l1_leaves_more_pixels_at_the_neutral_value(trained_digits):
    model = trained_digits[0]
    mean = model.normalization["mean"] if model.normalization else 0.0
    std = model.normalization["std"] if model.normalization else 1.0

    def near_neutral(result):
        return (np.abs(result.images - mean) / std < 0.05).mean()

    plain = maximize(model, None, list(range(10)), steps=STEPS, seed=1)
    sparse = maximize(model, None, list(range(10)), steps=STEPS, seed=1, l1=1.0)
    assert near_neutral(sparse) > near_neutral(plain) + 0.2


def test_a_dead_unit_moves_only_through_the_redirected_relu(trained_digits_copy):
    model = trained_digits_copy[0]
    probe_start = maximize(model, "dense", 0, steps=1, lr=1e-9)
    model.dense.bias.data[0] -= probe_start.start[0] + 1.0  # pre-activation −1 at the start
    dead = maximize(model, "relu_2", 0, steps=20, redirect_steps=0)
    assert dead.start[0] == 0 and dead.final[0] == 0
    np.testing.assert_allclose(dead.history, 0)
    alive = maximize(model, "relu_2", 0, steps=20, redirect_steps=10)
    assert alive.final[0] > 0


def test_seeded_and_batched(trained_digits):
    model = trained_digits[0]
    a = maximize(model, "conv2d", [0, 1], steps=6, seed=3)
    b = maximize(model, "conv2d", [0, 1], steps=6, seed=3)
    c = maximize(model, "conv2d", [0, 1], steps=6, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert a.units == (0, 1) and not np.allclose(a.images[0], a.images[1])


def test_a_colour_conv_model_at_another_size():
    model = nn.Sequential(nn.Conv2D(4, 3, activation="relu"), nn.MaxPool2D(2),
                          nn.Conv2D(6, 3), seed=0).build((3, 16, 16))
    result = maximize(model, "conv2d_1", [0, 1, 2], steps=30, size=(24, 20), fourier=True,
                      blur_every=4, tv=0.01)
    assert result.images.shape == (3, 3, 24, 20)
    assert (result.final > result.start).all()


def test_bad_requests_say_what_is_valid(trained_digits):
    model = trained_digits[0]
    with pytest.raises(ExplainError, match="unknown output class 10; valid units are 0 to 9"):
        maximize(model, None, 10, steps=1)
    with pytest.raises(ExplainError, match="unit of layer 'conv2d_1' 16; valid units are 0 to 15"):
        maximize(model, "conv2d_1", [0, 16], steps=1)
    with pytest.raises(ExplainError, match="unknown layer 'conv7'"):
        maximize(model, "conv7", 0, steps=1)
    with pytest.raises(ExplainError, match="outside the 8×8 feature map"):
        maximize(model, "conv2d", 0, position=(8, 0), steps=1)
    with pytest.raises(ExplainError, match="position applies to a conv layer"):
        maximize(model, "dense", 0, position=(0, 0), steps=1)
    with pytest.raises(ExplainError, match="unit must be an int"):
        maximize(model, "dense", 1.5, steps=1)
    with pytest.raises(ExplainError, match="which its dense layers fix"):
        maximize(model, "conv2d", 0, size=(16, 16), steps=1)
    conv_only = nn.Sequential(nn.Conv2D(2, 5), nn.MaxPool2D(2), seed=0).build((1, 8, 8))
    with pytest.raises(ExplainError, match="too small"):
        maximize(conv_only, "conv2d", 0, size=(5, 5), steps=1)


def test_total_variation_and_blur_smooth_the_result(trained_digits):
    model = trained_digits[0]

    def variation(result):
        x = result.images
        return (np.diff(x, axis=2) ** 2).sum() + (np.diff(x, axis=3) ** 2).sum()

    plain = maximize(model, None, [0, 1, 2], steps=STEPS, seed=2)
    smooth = maximize(model, None, [0, 1, 2], steps=STEPS, seed=2, tv=2.0)
    blurred = maximize(model, None, [0, 1, 2], steps=STEPS, seed=2, blur_every=4,
                       blur_sigma=1.0)
    assert variation(smooth) < 0.5 * variation(plain)
    assert variation(blurred) < 0.5 * variation(plain)
    assert (smooth.final > 5 * np.abs(smooth.start)).all()  # still a maximisation
