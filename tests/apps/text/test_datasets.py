"""The data sets: counts of the real files, and one-line errors naming bad files."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.apps.text import datasets
from cnnlab.apps.text.datasets import fold_assignment, load_corpus
from cnnlab.cli import main
from cnnlab.errors import FileFormatError


def _named_or_skip(name):
    try:
        return load_corpus(name)
    except datasets.TextDataNotFoundError as error:
        pytest.skip(f"needs the {name} data set: {error}")


def test_the_real_data_sets_load_with_their_published_counts():
    mr = _named_or_skip("mr")
    assert len(mr) == 10662 and np.bincount(mr.labels).tolist() == [5331, 5331]
    assert mr.parts is None and mr.lowercase
    trec = _named_or_skip("trec")
    assert trec.class_names == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert (trec.parts == "train").sum() == 5452 and (trec.parts == "test").sum() == 500
    assert not trec.lowercase and trec.sentences[0][0][0].isupper()
    sst = _named_or_skip("sst2")
    assert [(sst.parts == p).sum() for p in ("train", "dev", "test")] == [6920, 872, 1821]


def test_folds_are_seeded_and_balanced():
    a, b = fold_assignment(103, 10, seed=0), fold_assignment(103, 10, seed=0)
    np.testing.assert_array_equal(a, b)
    assert sorted(np.bincount(a).tolist()) == [10] * 7 + [11] * 3
    assert not np.array_equal(a, fold_assignment(103, 10, seed=1))


def test_a_folder_of_class_files(tmp_path):
    (tmp_path / "good.txt").write_text("A fine film.\n\nLoved it!\n")
    (tmp_path / "bad.txt").write_text("dull\n")
    corpus = load_corpus(str(tmp_path))
    assert corpus.class_names == ["bad", "good"] and corpus.labels.tolist() == [0, 1, 1]
    assert corpus.sentences[1] == ["a", "fine", "film"]


def _write(folder, name, data: bytes):
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(data)


@pytest.mark.parametrize("name, data, match", [
    ("pos.txt", b"fine\n\xff\xfe broken\n", r"pos.txt: line 2: byte 0xff is not valid utf-8"),
    ("pos.txt", b"a\x00b\n", "NUL bytes"),
    ("pos.txt", b"x" * (datasets.MAX_LINE_BYTES + 1), "line 1 is 65,537 bytes long"),
    ("pos.txt", b"\n \n", "holds no example"),
])
def test_bad_class_files_are_one_line_errors_naming_the_file(tmp_path, capsys, name, data, match):
    folder = tmp_path / "reviews"
    _write(folder, "neg.txt", b"bad\n")
    _write(folder, name, data)
    with pytest.raises(FileFormatError, match=match):
        load_corpus(str(folder))
    assert main(["text", "train", "--data", str(folder), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnlab text: error: ") and "pos.txt" in err and "\n" not in err


def test_too_big_a_file_too_few_classes_and_a_missing_folder(tmp_path, monkeypatch):
    folder = tmp_path / "one"
    _write(folder, "only.txt", b"just one class\n")
    with pytest.raises(FileFormatError, match="at least 2"):
        load_corpus(str(folder))
    monkeypatch.setattr(datasets, "MAX_FILE_BYTES", 16)
    _write(folder, "other.txt", b"more than ten bytes\n")
    with pytest.raises(FileFormatError, match="other.txt: larger than the 16 bytes"):
        load_corpus(str(folder))
    with pytest.raises(datasets.TextDataNotFoundError, match="not a data set name"):
        load_corpus(str(tmp_path / "nowhere"))


def test_bad_labelled_lines_and_encodings_of_the_named_sets(tmp_path):
    sst = tmp_path / "sst"
    _write(sst, "stsa.binary.train", b"1 a good film\n0 a bad one\n")
    _write(sst, "stsa.binary.dev", b"1 fine\n")
    _write(sst, "stsa.binary.test", b"1 fine\n7 what\n")
    with pytest.raises(FileFormatError, match=r"stsa.binary.test: line 2 does not start with a "
                                              r"label: '7 what"):
        load_corpus("sst2", data_dir=tmp_path)
    trec = tmp_path / "trec"
    _write(trec, "TREC.train", b"NUM:dist How far ?\nHow far ?\n")
    _write(trec, "TREC.test", b"LOC:city Where ?\n")
    with pytest.raises(FileFormatError, match="TREC.train: line 2 does not start"):
        load_corpus("trec", data_dir=tmp_path)
    mr = tmp_path / "rt-polarity"
    _write(mr, "rt-polarity.pos", b"caf\xe9 \x85 fine\n")  # é and … in cp1252
    _write(mr, "rt-polarity.neg", b"bad \x81 byte\n")  # 0x81 is undefined in cp1252
    with pytest.raises(FileFormatError, match="rt-polarity.neg: line 1: byte 0x81 is not valid "
                                              "cp1252"):
        load_corpus("mr", data_dir=tmp_path)
    _write(mr, "rt-polarity.neg", b"bad\n")
    assert load_corpus("mr", data_dir=tmp_path).sentences == [["bad"], ["caf", "fine"]]
