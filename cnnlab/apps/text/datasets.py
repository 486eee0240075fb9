"""The sentence-classification data sets of Kim (2014), and any folder of one file per class.

``load_corpus(data, data_dir=None)`` returns a ``Corpus``: the tokenised sentences, their
labels, the class names and how the data splits:

- ``mr``: rt-polarity (``rt-polarity.pos`` / ``.neg``), Windows-1252; no split of its own,
  so cross-validation (``Corpus.parts`` is None);
- ``trec``: ``TREC.train`` / ``TREC.test`` (``COARSE:fine question``; the 6 coarse classes),
  Latin-1, TREC's own split; its capitals are kept (Kim did);
- ``sst2``: ``stsa.binary.train`` / ``.dev`` / ``.test`` (``label sentence``), UTF-8;
- a folder path: one text file per class (the file's name without its suffix is the class),
  one example per line, UTF-8; cross-validation.

The named sets are looked for in ``data_dir/<folder>`` and ``data_dir``, then
``$CNNLAB_DATA/<folder>`` (``cnnlab.data.datasets.user_data_dir``), then the project's
``../shared/datasets/<folder>``.

Every file is untrusted: at most ``MAX_FILE_BYTES`` are read, a line may hold at most
``MAX_LINE_BYTES``, a byte the encoding cannot decode or a malformed label is a
``FileFormatError`` naming the file and the line. Blank lines are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.apps.text.tokenize import tokenize
from cnnlab.data.datasets import user_data_dir
from cnnlab.errors import CnnlabError, FileFormatError
from cnnlab.io import open_regular_file

__all__ = ["MAX_CLASSES", "MAX_FILE_BYTES", "MAX_LINE_BYTES", "NAMED", "Corpus",
           "TextDataNotFoundError", "fold_assignment", "load_corpus", "read_lines"]

MAX_FILE_BYTES = 256 << 20
MAX_LINE_BYTES = 64 << 10
MAX_CLASSES = 1000
#: name → (folder, files, encoding)
NAMED = {
    "mr": ("rt-polarity", ("rt-polarity.neg", "rt-polarity.pos"), "cp1252"),
    "trec": ("trec", ("TREC.train", "TREC.test"), "latin-1"),
    "sst2": ("sst", ("stsa.binary.train", "stsa.binary.dev", "stsa.binary.test"), "utf-8"),
}


class TextDataNotFoundError(CnnlabError, FileNotFoundError):
    """A named text data set is not on this machine."""


@dataclass
class Corpus:
    """Tokenised sentences and labels.

    Attributes:
        name: 'mr', 'trec', 'sst2' or the folder's name.
        sentences: one token list per example.
        labels: int64 (N,), indices into ``class_names``.
        class_names: the classes, in label order.
        parts: None (cross-validation) or a str array (N,) of 'train', 'dev', 'test'.
        lowercase: whether the tokeniser lower-cased (False for TREC).
    """

    name: str
    sentences: list[list[str]]
    labels: np.ndarray
    class_names: list[str]
    parts: np.ndarray | None
    lowercase: bool = True

    def __len__(self) -> int:
        return len(self.sentences)


def read_lines(path, encoding: str) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line of ``path``, decoded with ``encoding``.

    Raises FileFormatError naming the file (and the line) when it is missing, not a regular
    file, larger than ``MAX_FILE_BYTES``, holds a line longer than ``MAX_LINE_BYTES`` or a byte
    that ``encoding`` cannot decode.
    """
    with open_regular_file(Path(path)) as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise FileFormatError(path, f"larger than the {MAX_FILE_BYTES:,} bytes a text data "
                                    "file may have")
    if b"\0" in data:
        raise FileFormatError(path, "holds NUL bytes: not a text file")
    lines = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if len(raw) > MAX_LINE_BYTES:
            raise FileFormatError(path, f"line {number} is {len(raw):,} bytes long, more than "
                                        f"the {MAX_LINE_BYTES:,} a sentence may have")
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as error:
            byte = raw[error.start]
            raise FileFormatError(path, f"line {number}: byte 0x{byte:02x} is not valid "
                                        f"{encoding}") from None
        if text.strip():
            lines.append((number, text))
    return lines


def _candidate_dirs(folder: str, data_dir) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs += [Path(data_dir).expanduser() / folder, Path(data_dir).expanduser()]
    dirs.append(user_data_dir() / folder)
    repository = Path(__file__).resolve().parents[3]
    dirs.append(repository.parent / "shared" / "datasets" / folder)
    return dirs


def _find_named(name: str, data_dir) -> tuple[Path, ...]:
    folder, files, _ = NAMED[name]
    candidates = _candidate_dirs(folder, data_dir)
    for directory in candidates:
        if all((directory / file).is_file() for file in files):
            return tuple(directory / file for file in files)
    raise TextDataNotFoundError(
        f"the {name} data set ({', '.join(files)}) is not in any of "
        f"{', '.join(str(d) for d in candidates)}; give --data-dir or set CNNLAB_DATA")


def _load_mr(paths) -> Corpus:
    sentences, labels = [], []
    for label, path in enumerate(paths):  # neg = 0, pos = 1
        for _, text in read_lines(path, "cp1252"):
            sentences.append(tokenize(text))
            labels.append(label)
    return Corpus("mr", sentences, np.array(labels, np.int64), ["negative", "positive"], None)


def _labelled_lines(path, encoding, parse) -> list[tuple[str, str]]:
    """(label, text) of each line, ``parse(line) -> (label, text) or None`` (None: malformed)."""
    pairs = []
    for number, line in read_lines(path, encoding):
        pair = parse(line)
        if pair is None:
            raise FileFormatError(path, f"line {number} does not start with a label: "
                                        f"{line[:60]!r}")
        pairs.append(pair)
    return pairs


def _trec_line(line: str):
    head, _, text = line.strip().partition(" ")
    coarse, colon, fine = head.partition(":")
    if not colon or not coarse.isalpha() or not coarse.isupper() or not fine:
        return None
    return coarse, text


def _load_trec(paths) -> Corpus:
    parts = [(part, _labelled_lines(path, "latin-1", _trec_line))
             for part, path in zip(("train", "test"), paths)]
    classes = sorted({label for _, pairs in parts for label, _ in pairs})
    return _labelled_corpus("trec", parts, classes, lowercase=False)


def _sst_line(line: str):
    label, _, text = line.strip().partition(" ")
    return (label, text) if label in ("0", "1") else None


def _load_sst2(paths) -> Corpus:
    parts = [(part, _labelled_lines(path, "utf-8", _sst_line))
             for part, path in zip(("train", "dev", "test"), paths)]
    corpus = _labelled_corpus("sst2", parts, ["0", "1"], lowercase=True)
    corpus.class_names = ["negative", "positive"]
    return corpus


def _labelled_corpus(name, parts, classes, lowercase) -> Corpus:
    index = {label: i for i, label in enumerate(classes)}
    sentences, labels, names = [], [], []
    for part, pairs in parts:
        for label, text in pairs:
            sentences.append(tokenize(text, lowercase))
            labels.append(index[label])
            names.append(part)
    return Corpus(name, sentences, np.array(labels, np.int64), list(classes),
                  np.array(names), lowercase)


def _load_folder(folder: Path) -> Corpus:
    if not folder.is_dir():
        raise TextDataNotFoundError(f"{folder}: not a data set name (mr, trec, sst2) nor a folder")
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if len(files) > MAX_CLASSES:
        raise FileFormatError(folder, f"holds {len(files)} files; at most {MAX_CLASSES} classes")
    sentences, labels, classes = [], [], []
    for path in files:
        lines = read_lines(path, "utf-8")
        if not lines:
            raise FileFormatError(path, "holds no example (one example per line)")
        classes.append(path.stem if path.suffix in (".txt", ".text") else path.name)
        sentences += [tokenize(text) for _, text in lines]
        labels += [len(classes) - 1] * len(lines)
    if len(classes) < 2:
        raise FileFormatError(folder, f"holds {len(classes)} class file(s); a classifier needs "
                                      "at least 2 (one text file per class)")
    return Corpus(folder.name, sentences, np.array(labels, np.int64), classes, None)


def load_corpus(data: str, data_dir=None) -> Corpus:
    """The data set ``data`` ('mr', 'trec', 'sst2' or a folder path), tokenised."""
    if data in NAMED:
        paths = _find_named(data, data_dir)
        return {"mr": _load_mr, "trec": _load_trec, "sst2": _load_sst2}[data](paths)
    return _load_folder(Path(data).expanduser())


def fold_assignment(count: int, folds: int, seed: int = 0) -> np.ndarray:
    """int64 (count,): the fold of each example, a seeded permutation dealt out in turn, so the
    folds differ in size by at most one (Kim drew each example's fold independently)."""
    fold = np.empty(count, dtype=np.int64)
    fold[np.random.default_rng([seed, 10]).permutation(count)] = np.arange(count) % folds
    return fold
