"""Reader and writer for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the data in
C order, big-endian::

    byte 0-1   0x00 0x00
    byte 2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte 3     number of dimensions d
    4 .. 4+4d  the d sizes, uint32 big-endian
    then       prod(sizes) values

A file read here is untrusted: the header is checked before anything is allocated (1 to
``MAX_DIMENSIONS`` dimensions, a declared size within ``cnnlab.limits.LIMITS.max_idx_bytes``
and, for a raw file, equal to what the file holds), and a gzip stream is decompressed in bounded
chunks. Every check names the file: an empty file, a bad magic number, an unknown type code, a
truncated file, trailing bytes, or (for an image/label pair) a different number of images and
labels all raise ``IDXFormatError``, a ``cnnlab.errors.FileFormatError`` (so a ``ValueError``).
"""

from __future__ import annotations

import gzip
import math
import sys
import zlib
from pathlib import Path

import numpy as np

from cnnlab._checks import check_type
from cnnlab.atomic import write_bytes
from cnnlab.errors import FileFormatError, LimitExceededError
from cnnlab.limits import LIMITS

__all__ = ["MAX_DIMENSIONS", "IDXFormatError", "IDXLimitExceededError", "read_idx", "read_idx_pair",
           "write_idx"]

_TYPE_CODES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dtype.kind, dtype.itemsize): code for code, dtype in _TYPE_CODES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
#: IDX data sets have 1 (labels) to 4 dimensions; more is a corrupt or hostile header.
MAX_DIMENSIONS = 16
#: a gzip stream is decompressed this many bytes at a time, so memory follows what is really there.
_CHUNK_BYTES = 1 << 24


class IDXFormatError(FileFormatError):
    """A file is not a valid IDX file (or an image/label pair does not fit together).

    ``IDXFormatError(path, problem)`` reads ``"{path}: {problem}"``; a ``ValueError`` and a
    ``cnnlab.errors.FileFormatError``.
    """


class IDXLimitExceededError(IDXFormatError, LimitExceededError):
    """An IDX header declares more data than ``cnnlab.limits.LIMITS.max_idx_bytes`` allows."""


def _read_header(handle, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Parse and check the header: (shape, dtype, header length in bytes); nothing allocated."""
    magic = handle.read(4)
    if not magic:
        raise IDXFormatError(
            path, "empty file (0 bytes): an IDX file starts with a 4-byte magic number"
        )
    if len(magic) < 4:
        raise IDXFormatError(
            path, f"truncated IDX file: {len(magic)} bytes, shorter than the 4-byte magic number"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            path,
            f"bad magic number 0x{magic.hex()}: an IDX file starts with 0x0000, "
            "then a type code and the number of dimensions",
        )
    code, ndim = magic[2], magic[3]
    if code not in _TYPE_CODES:
        known = ", ".join(f"0x{c:02X}" for c in _TYPE_CODES)
        raise IDXFormatError(path, f"unknown IDX type code 0x{code:02X} (expected one of {known})")
    if not 1 <= ndim <= MAX_DIMENSIONS:
        raise IDXFormatError(
            path, f"IDX header declares {ndim} dimensions (expected 1 to {MAX_DIMENSIONS})"
        )
    sizes = handle.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise IDXFormatError(
            path,
            f"truncated IDX header: {ndim} dimensions need {4 * ndim} bytes of sizes, "
            f"found {len(sizes)}",
        )
    shape = tuple(int.from_bytes(sizes[i:i + 4], "big") for i in range(0, len(sizes), 4))
    dtype = _TYPE_CODES[code]
    # Python integers: a product of sizes never overflows here, unlike NumPy's intp.
    nbytes = math.prod(shape) * dtype.itemsize
    try:
        LIMITS.check("max_idx_bytes", nbytes, f"IDX header (shape {shape} of {dtype.name})")
    except LimitExceededError as error:
        raise IDXLimitExceededError(path, str(error)) from None
    if math.prod(max(size, 1) for size in shape) * dtype.itemsize > sys.maxsize:
        # NumPy refuses such a shape even when a zero size makes it empty.
        raise IDXFormatError(path, f"IDX header declares shape {shape}, too large for any array")
    return shape, dtype, 4 + 4 * ndim


def _read_exactly(handle, buffer: memoryview) -> int:
    total = 0
    while total < len(buffer):
        count = handle.readinto(buffer[total:])
        if not count:
            break
        total += count
    return total


def _read_raw(path: Path) -> np.ndarray:
    with open(path, "rb") as handle:
        shape, dtype, header_bytes = _read_header(handle, path)
        nbytes = math.prod(shape) * dtype.itemsize
        file_bytes = path.stat().st_size
        # Checked against the file's size before allocating: a short file can't declare 65535^3.
        held = file_bytes - header_bytes
        if held < nbytes:
            raise IDXFormatError(
                path,
                f"truncated IDX file: shape {shape} of {dtype.name} needs {nbytes:,} data bytes, "
                f"the file holds {held:,}",
            )
        if held > nbytes:
            raise IDXFormatError(
                path,
                f"IDX file is longer than its header says: {held:,} data bytes for the "
                f"{nbytes:,} of shape {shape}",
            )
        data = np.empty(shape, dtype=dtype)
        got = _read_exactly(handle, memoryview(data.reshape(-1)).cast("B")) if nbytes else 0
        if got != nbytes or handle.read(1):
            raise IDXFormatError(path, "the file changed while it was read")
    return data


def _read_gzip(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        shape, dtype, _ = _read_header(handle, path)
        nbytes = math.prod(shape) * dtype.itemsize
        # Grown as the stream really decompresses (never to more than the header declares, itself
        # bounded by max_idx_bytes), so a small file can't make us allocate what it only claims.
        buffer = bytearray()
        while len(buffer) < nbytes:
            chunk = handle.read(min(_CHUNK_BYTES, nbytes - len(buffer)))
            if not chunk:
                raise IDXFormatError(
                    path,
                    f"truncated IDX file: shape {shape} of {dtype.name} needs {nbytes:,} data "
                    f"bytes, found {len(buffer):,}",
                )
            buffer += chunk
        if handle.read(1):
            raise IDXFormatError(
                path,
                f"IDX file is longer than its header says: more than the {nbytes:,} data bytes "
                f"of shape {shape}",
            )
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def read_idx(path) -> np.ndarray:
    """Read one IDX file (raw, or gzip-compressed whatever its extension) into a NumPy array.

    Returns an array of the stored shape in native byte order (uint8 for MNIST's images and
    labels). The whole file is validated, and the header before anything is allocated: magic
    number, type code, 1 to ``MAX_DIMENSIONS`` dimensions, a declared size within
    ``LIMITS.max_idx_bytes``, and exactly ``prod(sizes)`` values, no fewer and no more (checked
    against the file's size, or for gzip against what the stream really decompresses to).

    Raises:
        FileNotFoundError: no such file.
        IDXFormatError: anything wrong with the file (``IDXLimitExceededError`` for the limit).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        with open(path, "rb") as handle:
            compressed = handle.read(2) == _GZIP_MAGIC
        data = _read_gzip(path) if compressed else _read_raw(path)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise IDXFormatError(path, f"corrupt or truncated gzip stream ({error})") from None
    except OSError as error:
        raise IDXFormatError(path, f"cannot read the file: {error.strerror or error}") from None
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("="))
    return data


def write_idx(path, array, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed when ``compress`` is True or, if None,
    when the name ends in ``.gz``. Written atomically (``cnnlab.atomic``: temporary file + rename).
    """
    path = Path(path)
    array = np.asarray(array)
    if compress is not None:
        check_type(compress, bool, "write_idx", "compress", "True, False or None")
    key = (array.dtype.kind, array.dtype.itemsize)
    if key not in _CODE_OF_KIND:
        raise ValueError(f"write_idx: IDX cannot store dtype {array.dtype} (expected uint8, int8, int16, "
                         "int32, float32 or float64)")
    if not 1 <= array.ndim <= MAX_DIMENSIONS:
        raise ValueError(
            f"write_idx: array must have 1 to {MAX_DIMENSIONS} dimensions, "
            f"received shape {array.shape}"
        )
    if max(array.shape) > 0xFFFFFFFF:
        raise ValueError(f"write_idx: IDX sizes are uint32, received shape {array.shape}")
    code = _CODE_OF_KIND[key]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=_TYPE_CODES[code]).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    data = header + payload
    if compress:
        data = gzip.compress(data, mtime=0)
    write_bytes(path, data)
    return path


def read_idx_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST-style pair: images (N, H, W) uint8 and labels (N,) uint8.

    Returns images as (N, 1, H, W) uint8 and labels as (N,) int64; raises ``IDXFormatError``
    naming the files when the ranks, dtypes or counts do not fit.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXFormatError(images_path, f"expected uint8 images of shape (N, H, W), found {images.dtype} "
                                          f"of shape {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise IDXFormatError(labels_path, f"expected integer labels of shape (N,), found {labels.dtype} "
                                          f"of shape {labels.shape}")
    if len(images) != len(labels):
        raise IDXFormatError(labels_path, f"label count mismatch: {len(labels)} labels for {len(images)} "
                                          f"images in {images_path}")
    return images[:, None], labels.astype(np.int64)
