"""read_games over folders, zips and files: counted skips, bounded zip members, bombs refused."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from cnnlab.apps.go.sgf import SgfLimits
from cnnlab.apps.go.sgf_read import ReadReport, read_games
from cnnlab.errors import FileFormatError

HERE = Path(__file__).parent / "sgf"
GAME = b"(;GM[1]SZ[19];B[pd];W[dd])"


def test_a_folder_of_real_records_is_read_in_sorted_order():
    report = ReadReport()
    games = list(read_games(HERE / "fox-pro", report))
    assert [g.source for g in games] == [str(p) for p in sorted((HERE / "fox-pro").rglob("*.sgf"))]
    assert report.files == report.games == 6 and not report.skipped
    assert report.moves == sum(len(g.moves) for g in games)
    assert report.truncated_games == 2
    assert report.truncated_by == {"occupied point": 1, "suicide": 1}
    assert report.truncated_moves == sum(g.truncated for g in games) > 0


def test_a_zip_is_read_without_unpacking():
    report = ReadReport()
    games = list(read_games(HERE / "fox-9d-sample.zip", report))
    assert [g.source.split("::")[1] for g in games] == [
        "9d/1539959006010001162.sgf", "9d/1542506852010001066.sgf", "9d/1551243604022405968.sgf"]
    assert games[0].setup_black == ((3, 15), (15, 3)) and games[0].komi == 7.5
    assert report.games == 3 and not report.skipped


def test_bad_files_are_skipped_counted_and_never_stop_the_run(tmp_path):
    (tmp_path / "a-good.sgf").write_bytes(GAME)
    (tmp_path / "b-garbage.sgf").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "c-truncated.sgf").write_bytes(GAME[:-3])
    (tmp_path / "d-nine.sgf").write_bytes(GAME.replace(b"SZ[19]", b"SZ[9]").replace(b"B[pd];W[dd]", b"B[aa]"))
    (tmp_path / "e-big.sgf").write_bytes(b"(;C[" + b"x" * 2000 + b"];B[aa])")
    (tmp_path / "notes.txt").write_bytes(b"not read: not .sgf")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f-good.SGF").write_bytes(GAME.replace(b"W[dd]", b"W[dc]"))
    report = ReadReport()
    games = list(read_games([tmp_path, HERE / "title" / "M-96-1.sgf"], report,
                            limits=SgfLimits(max_file_bytes=1000)))
    assert [Path(g.source).name for g in games] == ["a-good.sgf", "f-good.SGF", "M-96-1.sgf"]
    assert report.files == 7 and report.games == 3
    assert report.skipped == {"not SGF": 1, "truncated": 1, "board size": 1, "too large": 1}
    text = "\n".join(report.lines())
    assert "games skipped: 4" in text and "b-garbage.sgf: not SGF" in text
    assert "d-nine.sgf: board size: 9×9" in text


def test_a_missing_path_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileFormatError, match="nowhere.sgf: no such file"):
        list(read_games(tmp_path / "nowhere.sgf"))


def test_a_damaged_zip_is_skipped_and_counted(tmp_path):
    archive = tmp_path / "games.zip"
    data = (HERE / "fox-9d-sample.zip").read_bytes()
    archive.write_bytes(data[:200] + data[-22:])  # the directory points at lost bytes
    report = ReadReport()
    games = list(read_games([archive, HERE / "fox-9d-sample.zip"], report))
    assert len(games) == 3 and report.skipped == {"unreadable": 1}
    assert report.examples["unreadable"].startswith(f"{archive}: unreadable: not a readable zip")


def test_zip_bombs_and_oversized_members_are_skipped(tmp_path):
    archive = tmp_path / "bombs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("a-good.sgf", GAME)
        zipped.writestr("b-bomb.sgf", b"(;C[" + b"\0" * 600_000 + b"];B[aa])")  # ratio ~1000
        zipped.writestr("c-huge.sgf", b"(;C[" + bytes(3 << 20) + b"];B[aa])")
        zipped.writestr("d-readme.txt", b"not an sgf")
    report = ReadReport()
    games = list(read_games(archive, report))
    assert [g.source for g in games] == [f"{archive}::a-good.sgf"]
    assert report.skipped == {"zip bomb": 1, "too large": 1} and report.files == 3


def _lie_about_sizes(archive: Path, member: str, declared: int) -> None:
    """Rewrite ``member``'s uncompressed size in the local header and the directory."""
    data = bytearray(archive.read_bytes())
    name = member.encode()
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(name)] == name:
                data[start + offset:start + offset + 4] = struct.pack("<I", declared)
            start += 4
    archive.write_bytes(bytes(data))


def test_a_member_that_lies_about_its_size_is_read_bounded(tmp_path):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("a-good.sgf", GAME)
        zipped.writestr("b-liar.sgf", b"(;C[" + b"ab" * 100_000 + b"];B[aa])")
    _lie_about_sizes(archive, "b-liar.sgf", 900)  # declares 900 bytes, holds 200 kB
    report = ReadReport()
    games = list(read_games(archive, report, limits=SgfLimits(max_file_bytes=10_000)))
    # zipfile stops at the declared size and finds the CRC wrong (our read stops one byte
    # past the limit in any case)
    assert len(games) == 1 and report.skipped == {"unreadable": 1}
    assert "Bad CRC-32" in report.examples["unreadable"]
