"""WAV files for the speech tests, written byte by byte where SciPy can't (24-bit)."""

from __future__ import annotations

import struct

import numpy as np
from scipy.io import wavfile


def sine(frequency: float, seconds: float, rate: int = 8000, amplitude: float = 0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write_wav(path, samples, rate: int = 8000, dtype=np.int16):
    """``samples`` in [-1, 1] (S,) or (S, channels) as a WAV of ``dtype`` (SciPy's writer)."""
    samples = np.asarray(samples, dtype=np.float64)
    if np.dtype(dtype) == np.uint8:
        data = np.round(samples * 127 + 128).astype(np.uint8)
    elif np.dtype(dtype).kind == "i":
        data = np.round(samples * (np.iinfo(dtype).max - 1)).astype(dtype)
    else:
        data = samples.astype(dtype)
    wavfile.write(path, rate, data)
    return path


def write_wav24(path, samples, rate: int = 8000):
    """A 24-bit PCM mono WAV, header and 3-byte little-endian samples by hand."""
    values = np.round(np.asarray(samples, dtype=np.float64) * (2**23 - 1)).astype(np.int32)
    data = b"".join(struct.pack("<i", int(v))[:3] for v in values)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 3, 3, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path
