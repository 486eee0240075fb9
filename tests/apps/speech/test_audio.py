"""read_wav: every encoding handled or refused with the file's name, never a traceback."""

import numpy as np
import pytest

from cnnlab.apps.speech.audio import AudioError, read_wav
from cnnlab.errors import FileFormatError
from tests.apps.speech.wav_files import sine, write_wav, write_wav24


def dominant_hz(samples, rate=8000):
    spectrum = np.abs(np.fft.rfft(samples))
    return np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()]


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, np.float32, np.float64])
def test_each_sample_type_reads_as_float_in_unit_range(tmp_path, dtype):
    wave = sine(440, 0.5)
    samples, info = read_wav(write_wav(tmp_path / "a.wav", wave, dtype=dtype))
    assert samples.dtype == np.float32 and samples.shape == wave.shape
    assert info.dtype == np.dtype(dtype).name and info.notes == []
    np.testing.assert_allclose(samples, wave, atol=0.01)


def test_24_bit_pcm_is_read_at_its_scale(tmp_path):
    wave = sine(440, 0.25)
    samples, info = read_wav(write_wav24(tmp_path / "a24.wav", wave))
    assert info.dtype == "int32"  # SciPy widens 24-bit samples, left-justified
    np.testing.assert_allclose(samples, wave, atol=1e-5)


def test_stereo_is_averaged_and_said(tmp_path):
    left, right = sine(440, 0.5), sine(440, 0.5, amplitude=0.1)
    samples, info = read_wav(write_wav(tmp_path / "s.wav", np.stack([left, right], 1)))
    assert info.channels == 2 and "2 channels averaged into one" in info.notes
    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-3)


def test_other_rates_are_resampled_to_8k_keeping_the_pitch(tmp_path):
    samples, info = read_wav(write_wav(tmp_path / "r.wav", sine(1000, 1.0, rate=44100), 44100))
    assert info.sample_rate == 44100 and "resampled from 44100 Hz to 8000 Hz" in info.notes
    assert len(samples) == 8000
    assert abs(dominant_hz(samples) - 1000) <= 2


def test_a_very_long_file_is_refused_or_cropped(tmp_path):
    path = write_wav(tmp_path / "long.wav", sine(300, 11.0))
    with pytest.raises(AudioError, match=r"long\.wav.*11\.0 s, longer than the 10 s"):
        read_wav(path)
    samples, info = read_wav(path, crop=True)
    assert len(samples) == 80_000 and "cropped" in info.notes[0]


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"hello, this is a text file\n", "not a WAV file"),
    (b"ID3\x03\x00" + bytes(200), "not a WAV file"),  # an MP3
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", "not a readable WAV"),  # truncated
])
def test_unreadable_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=f"bad.wav.*{message}"):
        read_wav(path)


def test_non_finite_float_samples_are_refused(tmp_path):
    wave = sine(440, 0.1).astype(np.float32)
    wave[3] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        read_wav(write_wav(tmp_path / "nan.wav", wave, dtype=np.float32))


def test_a_wav_without_samples_and_a_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no samples"):
        read_wav(write_wav(tmp_path / "zero.wav", np.zeros(0)))
    with pytest.raises(FileFormatError, match="missing.wav: no such file"):
        read_wav(tmp_path / "missing.wav")
    with pytest.raises(FileFormatError, match="not a regular file"):
        read_wav(tmp_path)
