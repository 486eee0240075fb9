"""The Free Spoken Digit Dataset (FSDD): recordings, features and the two splits.

The folder holds ``{digit}_{speaker}_{index}.wav`` (3,000 files: 10 digits × 6 speakers ×
50 takes, 8 kHz mono 16-bit). It is looked for in ``data_dir/fsdd/recordings``,
``data_dir/fsdd``, ``data_dir/recordings`` and ``data_dir`` when ``data_dir`` is given, else
in ``$CNNLAB_DATA/fsdd`` (default ``~/.cache/cnnlab/fsdd``), with or without ``recordings/``.

Splits:

- ``standard``: takes 0–4 of every speaker and digit are the test set (300 of 3,000), the
  dataset's own split; the same speakers are in both halves.
- ``speaker``: one speaker's 500 recordings are the test set, the five others train;
  ``rotations`` gives all six.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from cnnlab.apps.speech.audio import read_wav
from cnnlab.apps.speech.spectrogram import FeatureSettings, feature_batch
from cnnlab.errors import CnnlabError

__all__ = ["CLASS_NAMES", "SPLITS", "FsddData", "FsddNotFoundError", "find_fsdd", "load_fsdd",
           "parse_split", "split_indices"]

CLASS_NAMES = [str(digit) for digit in range(10)]
SPLITS = ("standard", "speaker")
STANDARD_TEST_TAKES = 5
_NAME = re.compile(r"([0-9])_([a-z]{1,32})_([0-9]{1,3})\.wav")
_MAX_FILES = 100_000


class FsddNotFoundError(CnnlabError, FileNotFoundError):
    """The FSDD recordings are not where they were looked for; the message lists the places."""


@dataclasses.dataclass
class FsddData:
    """Every recording as features: x (N, 1, F, T) float32, digits (N,) int64, speakers (N,)
    str, takes (N,) int64, paths (N,) str."""

    x: np.ndarray
    digits: np.ndarray
    speakers: np.ndarray
    takes: np.ndarray
    paths: list

    @property
    def speaker_names(self) -> list[str]:
        return sorted(set(self.speakers.tolist()))


def _candidates(data_dir) -> list[Path]:
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        return [root / "fsdd" / "recordings", root / "fsdd", root / "recordings", root]
    # lazy: cnnlab.data loads scikit-learn
    from cnnlab.data.datasets import user_data_dir

    return [user_data_dir() / "fsdd" / "recordings", user_data_dir() / "fsdd"]


def find_fsdd(data_dir=None) -> Path:
    """The folder holding the FSDD ``*.wav`` files; FsddNotFoundError naming where it looked."""
    places = _candidates(data_dir)
    for place in places:
        if place.is_dir() and any(_NAME.fullmatch(entry) for entry in os.listdir(place)):
            return place
    raise FsddNotFoundError(
        "the FSDD recordings (0_george_0.wav ...) are not in " + ", ".join(map(str, places))
        + "; give --data-dir FOLDER (e.g. ../shared/datasets) or set CNNLAB_DATA")


def load_fsdd(data_dir=None, settings: FeatureSettings | None = None, limit_per_class=None,
              takes=None) -> FsddData:
    """Read the recordings (sorted by name) and compute their features.

    ``limit_per_class`` keeps the first takes of each (digit, speaker) pair only (fast tests);
    ``takes`` keeps only the given take numbers.
    """
    settings = settings or FeatureSettings()
    folder = find_fsdd(data_dir)
    found = []
    for name in sorted(os.listdir(folder))[:_MAX_FILES]:
        match = _NAME.fullmatch(name)
        if match is None:
            continue
        digit, speaker, take = int(match[1]), match[2], int(match[3])
        if takes is not None and take not in takes:
            continue
        if limit_per_class is not None and take >= limit_per_class:
            continue
        found.append((digit, speaker, take, folder / name))
    recordings = [read_wav(path)[0] for *_, path in found]
    return FsddData(
        x=feature_batch(recordings, settings),
        digits=np.array([f[0] for f in found], dtype=np.int64),
        speakers=np.array([f[1] for f in found], dtype=str),
        takes=np.array([f[2] for f in found], dtype=np.int64),
        paths=[str(f[3]) for f in found],
    )


def parse_split(text: str) -> tuple[str, str | None]:
    """'standard', 'speaker' (all six rotations) or 'speaker:NAME' → (kind, speaker or None)."""
    kind, _, speaker = text.partition(":")
    if kind not in SPLITS or (kind == "standard" and speaker):
        raise ValueError(f"unknown split {text!r}; expected standard, speaker or speaker:NAME")
    return kind, speaker or None


def split_indices(data: FsddData, kind: str, speaker: str | None = None):
    """(train indices, test indices) of the standard split, or of one held-out speaker."""
    if kind == "standard":
        test = data.takes < STANDARD_TEST_TAKES
    elif kind == "speaker":
        if speaker not in data.speaker_names:
            raise ValueError(f"unknown speaker {speaker!r}; the speakers are "
                             f"{', '.join(data.speaker_names)}")
        test = data.speakers == speaker
    else:
        raise ValueError(f"unknown split {kind!r}; expected one of {SPLITS}")
    return np.flatnonzero(~test), np.flatnonzero(test)
