"""Spectrograms with SciPy: log-magnitude STFT, log-mel and MFCC, as (F, T) images.

Axis order is frequency first: a spectrogram is (F, T) with row 0 the lowest frequency,
and a batch is NCHW (N, 1, F, T), so a (k, 1) kernel slides along frequency only.

- ``log_stft``: log(|STFT| + floor) of a Hann-windowed STFT (``scipy.signal.stft``),
  F = window // 2 + 1 bins, bin f at f · rate / window Hz.
- ``log_mel``: log(M · |STFT|² + floor), M the triangular mel filterbank of
  ``mel_filterbank`` (HTK's mel scale, mel(f) = 2595 log10(1 + f / 700)); F = n_mels.
- ``mfcc``: the orthonormal DCT-II of the log-mel along frequency, first n_mfcc rows.
- ``fix_frames`` crops the middle ``frames`` frames or pads both ends with the
  recording's quietest value; ``features`` does it all and standardises each recording
  (zero mean, unit variance), so the loudness of a recording does not matter.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cnnlab._checks import check_choice, check_int, check_number

__all__ = ["KINDS", "FeatureSettings", "feature_batch", "features", "fix_frames", "hz_to_mel",
           "log_mel", "log_stft", "mel_filterbank", "mel_to_hz", "mfcc"]

KINDS = ("logmel", "stft", "mfcc")
_FLOOR = 1e-6  # log(0) guard, about −120 dB below a full-scale sine


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
    """How a recording becomes the model's input (stored in a speech model file).

    Args:
        kind: 'logmel', 'stft' (log-magnitude) or 'mfcc'.
        window: STFT window (and FFT) length in samples (256 = 32 ms at 8 kHz).
        hop: samples between frames (128 = 16 ms).
        n_mels: mel bands (logmel and mfcc).
        n_mfcc: cepstral coefficients kept (mfcc).
        frames: the fixed number of time frames T (64 × 16 ms ≈ 1 s).
        sample_rate: Hz of the samples (the audio reader gives 8 kHz).
    """

    kind: str = "logmel"
    window: int = 256
    hop: int = 128
    n_mels: int = 40
    n_mfcc: int = 20
    frames: int = 64
    sample_rate: int = 8000

    def __post_init__(self):
        check_choice(self.kind, KINDS, "FeatureSettings", "kind")
        check_int(self.window, "FeatureSettings", "window", 16, 1 << 14)
        check_int(self.hop, "FeatureSettings", "hop", 1, self.window)
        check_int(self.n_mels, "FeatureSettings", "n_mels", 2, 512)
        check_int(self.n_mfcc, "FeatureSettings", "n_mfcc", 1, self.n_mels)
        check_int(self.frames, "FeatureSettings", "frames", 1, 10_000)
        check_int(self.sample_rate, "FeatureSettings", "sample_rate", 1000, 384_000)

    @property
    def bins(self) -> int:
        """F, the rows of one spectrogram."""
        return {"stft": self.window // 2 + 1, "logmel": self.n_mels, "mfcc": self.n_mfcc}[self.kind]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(1, F, T): one sample of the model's input."""
        return (1, self.bins, self.frames)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj) -> FeatureSettings:
        """Settings from untrusted JSON: only the known fields, each checked (ValueError/TypeError)."""
        if not isinstance(obj, dict):
            raise TypeError(f"feature settings must be an object, found {type(obj).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ValueError(f"unknown feature setting(s) {unknown!r:.200}; known: {sorted(known)}")
        return cls(**obj)


def hz_to_mel(hz):
    """HTK's mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, window: int, sample_rate: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular filters (n_mels, window // 2 + 1) with centres evenly spaced in mel.

    Filter m rises linearly from centre m − 1 to centre m and falls to centre m + 1 (the
    n_mels + 2 edges span [fmin, fmax] in mel); each filter's peak weight is 1.
    """
    n_mels = check_int(n_mels, "mel_filterbank", "n_mels", 1)
    fmax = sample_rate / 2 if fmax is None else fmax
    check_number(fmax, "mel_filterbank", "fmax", low=fmin, low_open=True, high=sample_rate / 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    bin_hz = np.arange(window // 2 + 1) * sample_rate / window
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bin_hz - lower) / (centre - lower)
    falling = (upper - bin_hz) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def _magnitude(samples: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """|STFT| (window // 2 + 1, frames) of a Hann window; at least one frame for any length."""
    from scipy.signal import stft  # lazy: scipy.signal loads slowly

    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) < settings.window:  # shorter than one window: one zero-padded frame
        samples = np.pad(samples, (0, settings.window - len(samples)))
    _, _, spectrum = stft(samples, fs=settings.sample_rate, window="hann",
                          nperseg=settings.window, noverlap=settings.window - settings.hop,
                          boundary=None, padded=False)
    return np.abs(spectrum).astype(np.float32)


def log_stft(samples, settings: FeatureSettings) -> np.ndarray:
    """log(|STFT| + floor): (window // 2 + 1, T), row f at f · sample_rate / window Hz."""
    return np.log(_magnitude(samples, settings) + _FLOOR)


def log_mel(samples, settings: FeatureSettings) -> np.ndarray:
    """log(M · |STFT|² + floor): (n_mels, T), M from ``mel_filterbank``."""
    bank = mel_filterbank(settings.n_mels, settings.window, settings.sample_rate)
    return np.log(bank @ _magnitude(samples, settings) ** 2 + _FLOOR)


def mfcc(samples, settings: FeatureSettings) -> np.ndarray:
    """The first n_mfcc rows of the orthonormal DCT-II of the log-mel along frequency."""
    from scipy.fft import dct

    return dct(log_mel(samples, settings), type=2, norm="ortho", axis=0)[: settings.n_mfcc]


_COMPUTE = {"stft": log_stft, "logmel": log_mel, "mfcc": mfcc}


def fix_frames(spectrogram: np.ndarray, frames: int) -> np.ndarray:
    """(F, T) → (F, frames): the middle ``frames`` columns, or padded on both sides with the
    spectrogram's smallest value (its silence)."""
    length = spectrogram.shape[1]
    if length >= frames:
        start = (length - frames) // 2
        return spectrogram[:, start : start + frames]
    before = (frames - length) // 2
    return np.pad(spectrogram, ((0, 0), (before, frames - length - before)),
                  constant_values=spectrogram.min())


def features(samples, settings: FeatureSettings) -> np.ndarray:
    """One recording's model input (1, F, frames), float32, standardised to mean 0, std 1."""
    spectrogram = fix_frames(_COMPUTE[settings.kind](samples, settings), settings.frames)
    spectrogram = spectrogram - spectrogram.mean()
    spread = spectrogram.std()
    if spread > 0:  # digital silence is constant: leave it at zero
        spectrogram = spectrogram / spread
    return spectrogram[None].astype(np.float32)


def feature_batch(recordings, settings: FeatureSettings) -> np.ndarray:
    """(N, 1, F, frames) float32 from N recordings (1-D sample arrays)."""
    out = np.empty((len(recordings), *settings.input_shape), dtype=np.float32)
    for i, samples in enumerate(recordings):
        out[i] = features(samples, settings)
    return out
