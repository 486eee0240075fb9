"""Seeded augmentation of spectrogram batches (N, 1, F, T): shift, tempo, pitch, noise, masks.

Everything is done on the standardised spectrogram, not on the audio, so the features
are computed once per recording:

- time shift: each spectrogram moves by a whole number of frames in [−shift, shift];
  the frames that come in hold its smallest value (silence).
- tempo: time is stretched by a factor in [1 − tempo, 1 + tempo] about the middle
  (linear interpolation between frames), as a faster or slower speaker.
- pitch: frequency is scaled by a factor in [1 − pitch, 1 + pitch] from 0 Hz (row f takes
  the value at f / factor): exact for STFT rows, which are linear in Hz, and close for
  mel rows, which are nearly linear below 1 kHz and nearly logarithmic above.
- noise: Gaussian noise of this standard deviation (the features have std 1).
- SpecAugment (Park et al. 2019): one band of up to ``freq_mask`` rows and one of up to
  ``time_mask`` frames set to 0, the mean.

``augment.rng`` is the one random stream (checkpoints save it, so a resumed run draws what
the unbroken run would have drawn).
"""

from __future__ import annotations

import re

import numpy as np

from cnnlab._checks import check_int, check_number

__all__ = ["AUGMENT_OPTIONS", "DEFAULT_AUGMENT", "SpectrogramAugmentation", "parse_speech_augment"]

#: option → (type, lowest, highest)
AUGMENT_OPTIONS = {
    "shift": (int, 0, 1000),
    "tempo": (float, 0.0, 0.5),
    "pitch": (float, 0.0, 0.5),
    "noise": (float, 0.0, 10.0),
    "freq_mask": (int, 0, 1000),
    "time_mask": (int, 0, 1000),
}
DEFAULT_AUGMENT = "shift=4,tempo=0.08,pitch=0.03,noise=0.03"
_ITEM = re.compile(r"([a-z_]+)=([0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _stretch(x: np.ndarray, axis: int, factors: np.ndarray, anchor: float) -> np.ndarray:
    """Per-sample linear resampling along ``axis`` (2 = F, 3 = T): out[i] = x[(i − a) / r + a],
    the source position clamped to the edges."""
    length = x.shape[axis]
    positions = np.arange(length, dtype=np.float64)
    source = (positions[None, :] - anchor) / factors[:, None] + anchor  # (N, L)
    source = np.clip(source, 0, length - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, length - 1)
    weight = (source - low).astype(np.float32)
    shape = [len(x), 1, 1, 1]
    shape[axis] = length
    low, high, weight = (a.reshape(shape) for a in (low, high, weight))
    # take_along_axis broadcasts the index over the other axes
    return (np.take_along_axis(x, low, axis) * (1 - weight)
            + np.take_along_axis(x, high, axis) * weight)


class SpectrogramAugmentation:
    """Random spectrogram changes (module docstring); ``augment(x)`` returns a new batch.

    Args:
        shift: frames; tempo, pitch: fractions; noise: std; freq_mask: rows; time_mask:
            frames; seed: of ``rng``.
    """

    def __init__(self, shift=0, tempo=0.0, pitch=0.0, noise=0.0, freq_mask=0, time_mask=0,
                 seed=0):
        name = "SpectrogramAugmentation"
        self.shift = check_int(shift, name, "shift", 0)
        self.tempo = check_number(tempo, name, "tempo", 0.0, 0.5)
        self.pitch = check_number(pitch, name, "pitch", 0.0, 0.5)
        self.noise = check_number(noise, name, "noise", 0.0)
        self.freq_mask = check_int(freq_mask, name, "freq_mask", 0)
        self.time_mask = check_int(time_mask, name, "time_mask", 0)
        self.seed = check_int(seed, name, "seed", 0)
        self.rng = np.random.default_rng(seed)

    def get_config(self) -> dict:
        return {key: getattr(self, key) for key in (*AUGMENT_OPTIONS, "seed")}

    def spec(self) -> str:
        """The option text ``parse_speech_augment`` reads back."""
        return ",".join(f"{key}={getattr(self, key):g}" for key in AUGMENT_OPTIONS
                        if getattr(self, key))

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """(N, 1, F, T) float → the same shape and dtype, each sample changed at random."""
        rng = self.rng if rng is None else rng
        x = np.array(x, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"SpectrogramAugmentation: expected (N, 1, F, T), received {x.shape}")
        count, _, bins, frames = x.shape
        if self.tempo:
            factors = rng.uniform(1 - self.tempo, 1 + self.tempo, count)
            x = _stretch(x, 3, factors, (frames - 1) / 2)
        if self.pitch:
            x = _stretch(x, 2, rng.uniform(1 - self.pitch, 1 + self.pitch, count), 0.0)
        if self.shift:
            x = self._shift(x, rng.integers(-self.shift, self.shift + 1, count))
        if self.noise:
            x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(self.noise)
        for axis, most, size in ((2, self.freq_mask, bins), (3, self.time_mask, frames)):
            if not most:
                continue
            widths = rng.integers(0, min(most, size) + 1, count)
            starts = rng.integers(0, size - widths + 1)
            positions = np.arange(size)
            masked = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
            shape = [count, 1, 1, 1]
            shape[axis] = size
            x = np.where(masked.reshape(shape), np.float32(0), x)
        return x.astype(np.float32, copy=False)

    @staticmethod
    def _shift(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        frames = x.shape[3]
        source = np.arange(frames)[None, :] - offsets[:, None]  # out[t] = x[t − offset]
        inside = (source >= 0) & (source < frames)
        moved = np.take_along_axis(x, np.clip(source, 0, frames - 1)[:, None, None, :], 3)
        floor = x.min(axis=(1, 2, 3), keepdims=True)
        return np.where(inside[:, None, None, :], moved, floor)


def parse_speech_augment(spec: str, seed: int = 0) -> SpectrogramAugmentation | None:
    """'shift=6,tempo=0.1,...' (options: ``AUGMENT_OPTIONS``) → an augmentation; 'none' → None.

    Raises ValueError naming the option for unknown names, bad numbers or out-of-range values.
    """
    text = spec.strip().replace(" ", "")
    if text.lower() in ("", "none", "off", "no"):
        return None
    options = {}
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None or match[1] not in AUGMENT_OPTIONS:
            raise ValueError(f"cannot read {item!r:.60}: expected NAME=NUMBER with NAME one of "
                             f"{', '.join(AUGMENT_OPTIONS)}")
        kind, low, high = AUGMENT_OPTIONS[match[1]]
        if kind is int and not match[2].isdigit():
            raise ValueError(f"{match[1]} takes a whole number, received {match[2]!r}")
        value = kind(match[2])
        if not low <= value <= high:
            raise ValueError(f"{match[1]} must lie in [{low}, {high}], received {match[2]}")
        options[match[1]] = value
    return SpectrogramAugmentation(**options, seed=seed)
