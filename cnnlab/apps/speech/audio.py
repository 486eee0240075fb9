"""Reading speech audio: a WAV file as mono float32 samples at 8 kHz, with SciPy only.

What ``read_wav`` does with each kind of file (every refusal is an ``AudioError`` naming
the file and what was wrong, never a traceback):

- PCM 8-bit (unsigned), 16-bit, 24-bit (SciPy returns it left-justified in int32) and
  32-bit integers, and 32/64-bit float WAVs are read and scaled to [-1, 1];
  float samples that are not finite are refused.
- Several channels are averaged into one (``AudioInfo.notes`` says so).
- Any sample rate from 1 kHz to 384 kHz is resampled to 8 kHz with
  ``scipy.signal.resample_poly`` (a polyphase low-pass filter, no aliasing).
- A file larger than ``MAX_FILE_BYTES`` is refused before it is read; a recording
  longer than ``max_seconds`` is refused, or cropped to its first ``max_seconds`` with
  ``crop=True`` (a note says so).
- An empty file, a file that is not RIFF/WAVE (a text file, an MP3), a truncated or
  unsupported encoding (A-law, ADPCM) and a WAV without samples are refused.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import numpy as np

from cnnlab.errors import FileFormatError
from cnnlab.io import open_regular_file

__all__ = ["MAX_FILE_BYTES", "MAX_SECONDS", "SAMPLE_RATE", "AudioError", "AudioInfo", "read_wav",
           "resample"]

SAMPLE_RATE = 8000
#: the longest recording read by default, in seconds (a spoken digit lasts under 2.5 s)
MAX_SECONDS = 10.0
#: a bound on the bytes of one WAV file, checked before reading (10 min of 48 kHz stereo float32)
MAX_FILE_BYTES = 256 << 20
_RATE_RANGE = (1000, 384_000)


class AudioError(FileFormatError):
    """An audio file cannot be used; the message names the file and why."""


@dataclasses.dataclass
class AudioInfo:
    """What the file held before it became mono 8 kHz float32, and what was done to it."""

    path: str
    sample_rate: int
    channels: int
    dtype: str
    seconds: float
    notes: list[str] = dataclasses.field(default_factory=list)


def _scaled(data: np.ndarray, path) -> np.ndarray:
    """Samples as float32 in [-1, 1] whatever the WAV's encoding."""
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned, silence at 128
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype == np.int16:
        return data.astype(np.float32) / 32768.0
    if data.dtype == np.int32:  # 32-bit, and 24-bit left-justified by SciPy
        return (data.astype(np.float64) / 2147483648.0).astype(np.float32)
    if data.dtype.kind == "f":
        if not np.isfinite(data).all():
            raise AudioError(path, "the float WAV holds NaN or infinite samples")
        return data.astype(np.float32)
    raise AudioError(path, f"unsupported sample type {data.dtype} (expected 8/16/24/32-bit PCM "
                           "or 32/64-bit float)")


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """``samples`` at ``rate`` Hz resampled to ``target`` Hz (polyphase, anti-aliased)."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly  # lazy: scipy.signal loads slowly

    common = math.gcd(int(rate), int(target))
    return resample_poly(samples, target // common, rate // common).astype(np.float32)


def read_wav(path, max_seconds: float = MAX_SECONDS, crop: bool = False,
             target_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, AudioInfo]:
    """Read a WAV file as mono float32 samples at ``target_rate``: ``(samples (S,), info)``.

    Raises ``AudioError`` (a ``ValueError``) naming the file for every file it can't use;
    see the module docstring for what is handled and what is refused.
    """
    from scipy.io import wavfile  # lazy: keeps `cnnlab --help` fast

    with open_regular_file(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise AudioError(path, "the file is empty (0 bytes); expected a WAV recording")
        if size > MAX_FILE_BYTES:
            raise AudioError(path, f"the file has {size:,} bytes, more than the {MAX_FILE_BYTES:,} "
                                   "a speech recording needs; cut it shorter first")
        if handle.read(4) not in (b"RIFF", b"RIFX", b"RF64"):
            raise AudioError(path, "not a WAV file (it does not start with RIFF)")
        handle.seek(0)
        try:
            with warnings.catch_warnings():  # unknown chunks (LIST, cue) are skipped, harmlessly
                warnings.simplefilter("ignore", wavfile.WavFileWarning)
                rate, data = wavfile.read(handle, mmap=False)
        except Exception as error:  # noqa: BLE001 - the boundary: SciPy's parser on hostile bytes
            raise AudioError(path, f"not a readable WAV file: {error}") from None
    if not _RATE_RANGE[0] <= rate <= _RATE_RANGE[1]:
        raise AudioError(path, f"sample rate {rate} Hz is outside {_RATE_RANGE[0]}..{_RATE_RANGE[1]} Hz")
    channels = 1 if data.ndim == 1 else data.shape[1]
    if data.size == 0 or channels == 0:
        raise AudioError(path, "the WAV holds no samples")
    info = AudioInfo(str(path), int(rate), channels, str(data.dtype), len(data) / rate)
    if info.seconds > max_seconds:
        if not crop:
            raise AudioError(path, f"the recording lasts {info.seconds:.1f} s, longer than the "
                                   f"{max_seconds:g} s allowed; cut it, or crop it to its start")
        data = data[: int(max_seconds * rate)]
        info.notes.append(f"cropped from {info.seconds:.1f} s to its first {max_seconds:g} s")
    samples = _scaled(data, path)
    if channels > 1:
        samples = samples.mean(axis=1)
        info.notes.append(f"{channels} channels averaged into one")
    if rate != target_rate:
        samples = resample(samples, rate, target_rate)
        info.notes.append(f"resampled from {rate} Hz to {target_rate} Hz")
    return np.ascontiguousarray(samples, dtype=np.float32), info
