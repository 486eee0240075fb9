"""Spectrogram augmentation: each change does what it says, seeded, and the spec parser."""

import numpy as np
import pytest

from cnnlab.apps.speech.augment import (
    DEFAULT_AUGMENT,
    SpectrogramAugmentation,
    parse_speech_augment,
)


def batch(count=4, bins=20, frames=30, seed=0):
    return np.random.default_rng(seed).standard_normal((count, 1, bins, frames)).astype(np.float32)


def test_time_shift_moves_whole_frames_and_fills_with_the_quietest_value():
    x = batch(1)
    augment = SpectrogramAugmentation(shift=3, seed=0)
    y = augment(x)
    offsets = [k for k in range(-3, 4) if np.array_equal(y[..., max(k, 0):30 + min(k, 0)],
                                                        x[..., max(-k, 0):30 - max(k, 0)])]
    assert len(offsets) == 1
    k = offsets[0]
    filled = y[..., :k] if k > 0 else y[..., 30 + k:]
    assert (filled == x.min()).all()


def test_pitch_moves_a_peak_up_or_down_frequency_and_tempo_stretches_time():
    x = np.zeros((2, 1, 40, 8), np.float32)
    x[:, :, 20] = 1.0
    y = SpectrogramAugmentation(pitch=0.2, seed=4)(x)
    peaks = y[:, 0, :, 0].argmax(axis=1)
    assert (np.abs(peaks - 20) <= 5).all() and (peaks != 20).any()
    x = np.zeros((16, 1, 4, 41), np.float32)
    x[..., 30] = 1.0  # 10 frames after the middle (20)
    peaks = SpectrogramAugmentation(tempo=0.3, seed=1)(x)[:, 0, 0].argmax(axis=1)
    assert (peaks >= 20 + 7).all() and (peaks <= 20 + 13).all() and len(set(peaks)) > 2


def test_masks_zero_one_band_and_noise_has_its_deviation():
    x = batch(64, seed=2) + 5.0
    y = SpectrogramAugmentation(freq_mask=4, seed=0)(x)
    rows = (y == 0).all(axis=(1, 3))
    assert rows.sum(axis=1).max() <= 4 and rows.any()
    y = SpectrogramAugmentation(noise=0.5, seed=0)(x)
    assert abs((y - x).std() - 0.5) < 0.01


def test_same_seed_same_batch_and_the_input_is_untouched():
    x = batch()
    kept = x.copy()
    a = parse_speech_augment(DEFAULT_AUGMENT, seed=7)(x)
    b = parse_speech_augment(DEFAULT_AUGMENT, seed=7)(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, kept)
    assert a.shape == x.shape and a.dtype == np.float32
    assert not np.array_equal(a, parse_speech_augment(DEFAULT_AUGMENT, seed=8)(x))


def test_spec_round_trip_and_refusals():
    augment = parse_speech_augment("shift=6, tempo=0.1,freq_mask=5")
    assert augment.spec() == "shift=6,tempo=0.1,freq_mask=5"
    assert parse_speech_augment("none") is None
    for bad, message in [("flip=1", "expected NAME=NUMBER"), ("shift=1.5", "whole number"),
                         ("tempo=0.9", r"\[0.0, 0.5\]"), ("shift=__import__", "NAME=NUMBER")]:
        with pytest.raises(ValueError, match=message):
            parse_speech_augment(bad)
