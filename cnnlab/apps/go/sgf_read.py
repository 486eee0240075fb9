"""Reading many SGF files: folders, zip archives and single files, with counted skips.

``read_games(paths, report)`` yields every usable ``Game`` (``cnnlab.apps.go.sgf``) from a
mix of folders (every ``*.sgf`` below, sorted), ``.zip`` archives (every ``*.sgf`` member,
sorted, read without unpacking) and single files. A file that cannot be used is skipped
and counted in ``report.skipped[reason]``; nothing in a file stops the run. Only a path
that does not exist (or an archive that is not a zip at all) raises ``FileFormatError``.

Bounded: a file or member larger than ``SgfLimits.max_file_bytes`` is skipped without
reading it whole ("too large"); a member's declared size is not trusted (the read stops
one byte past the limit), a member that decompresses more than ``MAX_ZIP_RATIO`` times
its stored size is a zip bomb ("zip bomb"), an archive with more than
``MAX_ZIP_ENTRIES`` entries or ``MAX_ZIP_TOTAL_BYTES`` declared bytes is skipped whole.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import stat
import zipfile
import zlib
from pathlib import Path

from cnnlab.apps.go.sgf import Game, SgfError, SgfLimits, parse_game
from cnnlab.errors import FileFormatError

__all__ = ["MAX_ZIP_ENTRIES", "MAX_ZIP_RATIO", "MAX_ZIP_TOTAL_BYTES", "ReadReport", "read_games"]

MAX_ZIP_ENTRIES = 1_000_000
MAX_ZIP_TOTAL_BYTES = 8 << 30
#: SGF text deflates 3–6×; a member claiming far more is a bomb
MAX_ZIP_RATIO = 100


@dataclasses.dataclass
class ReadReport:
    """What a read found: files seen, games kept, moves kept, and what was skipped why."""

    files: int = 0
    games: int = 0
    moves: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    truncated_games: int = 0
    truncated_moves: int = 0
    #: truncated games by why: "occupied point", "suicide"
    truncated_by: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    #: one example message per skip reason (the first seen), for the user to look at
    examples: dict = dataclasses.field(default_factory=dict)

    def skip(self, error: SgfError) -> None:
        self.skipped[error.reason] += 1
        self.examples.setdefault(error.reason, str(error))

    def keep(self, game: Game) -> None:
        self.games += 1
        self.moves += len(game.moves)
        if game.truncated:
            self.truncated_games += 1
            self.truncated_moves += game.truncated
            self.truncated_by[game.truncated_by] += 1

    def lines(self) -> list[str]:
        """A human summary: read, kept, truncated, skipped by reason."""
        why = ", ".join(f"{n:,} {what}" for what, n in sorted(self.truncated_by.items()))
        lines = [f"files read: {self.files:,}; games kept: {self.games:,} ({self.moves:,} moves)",
                 (f"games truncated at an illegal move: {self.truncated_games:,} "
                  f"({self.truncated_moves:,} moves dropped{'; ' + why if why else ''})")]
        skipped = sum(self.skipped.values())
        lines.append(f"games skipped: {skipped:,}" + "".join(
            f"\n  {reason}: {count:,} (e.g. {self.examples[reason]})"
            for reason, count in sorted(self.skipped.items())))
        return lines


def _read_bounded(path: Path, limits: SgfLimits) -> bytes:
    """The bytes of a regular file, or SgfError when it is not one or too large."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise SgfError(path, "unreadable", "not a regular file")
        if info.st_size > limits.max_file_bytes:
            raise SgfError(path, "too large", f"{info.st_size:,} bytes > {limits.max_file_bytes:,}")
        with open(path, "rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as error:
        raise SgfError(path, "unreadable", error.strerror or str(error)) from None
    if len(data) > limits.max_file_bytes:  # it grew since the stat
        raise SgfError(path, "too large", f"more than {limits.max_file_bytes:,} bytes")
    return data


def _is_sgf(name: str) -> bool:
    return name.lower().endswith(".sgf")


def _folder_files(folder: Path) -> list[Path]:
    found = []
    for root, folders, files in os.walk(folder):
        folders.sort()
        found += [Path(root, name) for name in sorted(files) if _is_sgf(name)]
    return found


def _zip_members(archive: Path, limits: SgfLimits, report: ReadReport):
    """(source name, bytes) of each .sgf member; bad members, or a whole archive that
    cannot be opened, are counted and skipped."""
    try:
        zipped = zipfile.ZipFile(archive)
        infos = zipped.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
        report.files += 1
        report.skip(SgfError(archive, "unreadable", f"not a readable zip archive: {error}"))
        return
    with zipped:
        declared = sum(info.file_size for info in infos)
        if len(infos) > MAX_ZIP_ENTRIES or declared > MAX_ZIP_TOTAL_BYTES:
            report.files += 1
            report.skip(SgfError(archive, "too large", f"{len(infos):,} entries, {declared:,} "
                                 f"bytes declared (limits {MAX_ZIP_ENTRIES:,}, "
                                 f"{MAX_ZIP_TOTAL_BYTES:,})"))
            return
        for info in sorted(infos, key=lambda info: info.filename):
            if info.is_dir() or not _is_sgf(info.filename):
                continue
            source = f"{archive}::{info.filename}"
            report.files += 1
            try:
                yield source, _read_member(zipped, info, source, limits)
            except SgfError as error:
                report.skip(error)


def _read_member(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, source: str,
                 limits: SgfLimits) -> bytes:
    if info.flag_bits & 0x1:
        raise SgfError(source, "unreadable", "the member is encrypted")
    if info.file_size > limits.max_file_bytes:
        raise SgfError(source, "too large", f"declares {info.file_size:,} bytes")
    if info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
        raise SgfError(source, "zip bomb",
                       f"{info.compress_size:,} bytes stored expand to {info.file_size:,}")
    try:
        with zipped.open(info) as member:
            # the declared size may lie: never read more than one byte past the limit
            data = member.read(limits.max_file_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as error:
        raise SgfError(source, "unreadable", f"{type(error).__name__}: {error}") from None
    if len(data) > limits.max_file_bytes:
        raise SgfError(source, "zip bomb", f"expands past {limits.max_file_bytes:,} bytes "
                       f"though it declares {info.file_size:,}")
    return data


def _sources(paths, limits: SgfLimits, report: ReadReport):
    """(source name, bytes) of every SGF file in ``paths``; unreadable ones counted."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = _folder_files(path)
        elif path.is_file() and zipfile.is_zipfile(path):
            yield from _zip_members(path, limits, report)
            continue
        elif path.exists():
            files = [path]
        else:
            raise FileFormatError(path, "no such file or folder")
        for file in files:
            report.files += 1
            try:
                yield str(file), _read_bounded(file, limits)
            except SgfError as error:
                report.skip(error)


def read_games(paths, report: ReadReport | None = None, limits: SgfLimits | None = None,
               sizes=(19,)):
    """Yield each usable game in ``paths`` (folders, zips, files), counting in ``report``.

    Args:
        paths: a path or a list of them.
        report: a ``ReadReport`` to fill (pass one to see the counts).
        limits: per-file bounds (default ``SgfLimits()``).
        sizes: board sizes kept; other sizes are skipped with the reason "board size".
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    report = ReadReport() if report is None else report
    limits = SgfLimits() if limits is None else limits
    for source, data in _sources(paths, limits, report):
        try:
            game = parse_game(data, source, limits, sizes)
        except SgfError as error:
            report.skip(error)
            continue
        report.keep(game)
        yield game
