"""Spectrogram shapes and the frequency axis, checked on sines of known frequency."""

import numpy as np
import pytest

from cnnlab.apps.speech.spectrogram import (
    FeatureSettings,
    feature_batch,
    features,
    fix_frames,
    hz_to_mel,
    log_mel,
    log_stft,
    mel_filterbank,
    mel_to_hz,
    mfcc,
)
from tests.apps.speech.wav_files import sine


@pytest.mark.parametrize("hz", [250.0, 1000.0, 3000.0])
def test_log_stft_peak_is_in_the_bin_of_the_sine(hz):
    settings = FeatureSettings(kind="stft", window=256, hop=128)
    spectrogram = log_stft(sine(hz, 1.0), settings)
    assert spectrogram.shape == (129, (8000 - 256) // 128 + 1)  # (F, T), F = window/2 + 1
    assert spectrogram.mean(axis=1).argmax() == round(hz * 256 / 8000)


@pytest.mark.parametrize("hz", [300.0, 1000.0, 2500.0])
def test_log_mel_peak_is_in_the_band_centred_nearest_the_sine(hz):
    settings = FeatureSettings(kind="logmel", n_mels=40)
    spectrogram = log_mel(sine(hz, 1.0), settings)
    assert spectrogram.shape[0] == 40
    centres = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(4000), 42))[1:-1]
    assert spectrogram.mean(axis=1).argmax() == np.abs(centres - hz).argmin()


def test_higher_pitch_moves_the_peak_up_the_frequency_axis():
    settings = FeatureSettings()
    low = features(sine(400, 0.5), settings)[0].mean(axis=1).argmax()
    high = features(sine(800, 0.5), settings)[0].mean(axis=1).argmax()
    assert high > low  # row 0 is the lowest frequency


def test_mel_filterbank_triangles_peak_at_one_and_cover_the_range():
    bank = mel_filterbank(20, 512, 8000)
    assert bank.shape == (20, 257)
    assert (bank.max(axis=1) <= 1).all() and (bank.max(axis=1) > 0.9).all()
    assert (bank.sum(axis=0)[5:-5] > 0).all()  # every inner FFT bin is in some band
    np.testing.assert_allclose(mel_to_hz(hz_to_mel([0, 700, 4000])), [0, 700, 4000])


def test_mfcc_is_the_orthonormal_dct_of_log_mel():
    from scipy.fft import dct

    settings = FeatureSettings(kind="mfcc", n_mels=40, n_mfcc=13)
    wave = sine(700, 0.4)
    coefficients = mfcc(wave, settings)
    assert coefficients.shape[0] == 13
    np.testing.assert_allclose(coefficients, dct(log_mel(wave, settings), norm="ortho",
                                                 axis=0)[:13], rtol=1e-5)


def test_fixed_frames_pad_short_and_crop_long_recordings_in_nchw():
    settings = FeatureSettings(frames=64)
    short, long = features(sine(500, 0.2), settings), features(sine(500, 3.0), settings)
    assert short.shape == long.shape == (1, 40, 64)
    assert abs(short.mean()) < 1e-4 and abs(short.std() - 1) < 1e-3
    batch = feature_batch([sine(500, 0.2), sine(900, 0.3)], FeatureSettings(kind="stft"))
    assert batch.shape == (2, 1, 129, 64) and batch.dtype == np.float32
    spectrogram = np.arange(12.0).reshape(2, 6)
    np.testing.assert_array_equal(fix_frames(spectrogram, 2), [[2, 3], [8, 9]])  # the middle
    padded = fix_frames(spectrogram, 9)
    assert padded.shape == (2, 9) and (padded[:, :1] == 0).all() and (padded[:, -2:] == 0).all()


def test_digital_silence_and_a_few_samples_give_finite_features():
    settings = FeatureSettings()
    assert np.isfinite(features(np.zeros(4000, np.float32), settings)).all()
    assert features(np.ones(10, np.float32), settings).shape == (1, 40, 64)


def test_settings_from_json_refuse_unknown_and_bad_fields():
    settings = FeatureSettings(kind="mfcc", n_mels=30, n_mfcc=12, frames=50)
    assert FeatureSettings.from_json(settings.to_json()) == settings
    with pytest.raises(ValueError, match="unknown feature setting"):
        FeatureSettings.from_json({"kind": "logmel", "evil": 1})
    with pytest.raises(ValueError, match="kind"):
        FeatureSettings.from_json({"kind": "wavelet"})
    with pytest.raises(ValueError, match="hop"):
        FeatureSettings(window=64, hop=65)
