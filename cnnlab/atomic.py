"""Atomic, symlink-safe file writes: every file cnnlab writes goes through here.

A write goes to a fresh temporary file (``O_CREAT | O_EXCL``, so never through an
existing name or symlink) in the destination's own folder, is flushed and
fsync'ed, then renamed over the destination. ``rename`` replaces the directory
entry itself: when the destination is a symlink, the link is replaced and its
target is never written. A crash leaves the previous file intact plus, at worst,
a ``.NAME.*.tmp`` file that ``remove_stale_temporaries`` clears at the next start.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "atomic_writer", "remove_stale_temporaries", "write_bytes", "write_text"]

TEMP_SUFFIX = ".tmp"


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


@contextlib.contextmanager
def atomic_writer(path, mode: int = 0o666):
    """Yield a binary file object; on success it replaces ``path`` atomically, on error nothing changes.

    The file gets ``mode`` less the process umask, like any ordinary ``open``.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    temp = _temp_path(path)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except OSError as error:
        raise _naming(error, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(error, OSError):
            raise _naming(error, path) from None
        raise
    _fsync_directory(directory)


def _naming(error: OSError, path: Path) -> OSError:
    """The same OS error, naming the destination rather than the temporary file (or nothing)."""
    return type(error)(error.errno, error.strerror or str(error), str(path))


def write_bytes(path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring)."""
    with atomic_writer(path) as handle:
        handle.write(data)


def write_text(path, text: str) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(directory) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files a killed writer left in ``directory``; return what was removed.

    Only regular files matching the pattern are removed (never a symlink's target,
    never a folder). Call it when a run starts, before anything else writes there.
    """
    removed = []
    directory = Path(directory)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX) and entry.is_file(
                follow_symlinks=False
            ):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
