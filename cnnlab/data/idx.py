"""Reader and writer for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the data in
C order, big-endian::

    byte 0-1   0x00 0x00
    byte 2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte 3     number of dimensions d
    4 .. 4+4d  the d sizes, uint32 big-endian
    then       prod(sizes) values

Every check names the file: a bad magic number, an unknown type code, a truncated file, trailing
bytes, or (for an image/label pair) a different number of images and labels all raise
``IDXFormatError``, a ``ValueError``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDXFormatError", "read_idx", "read_idx_pair", "write_idx"]

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


class IDXFormatError(ValueError):
    """A file is not a valid IDX file (or an image/label pair does not fit together)."""

    def __init__(self, path, message: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


def _open(path: Path):
    with open(path, "rb") as handle:
        compressed = handle.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_exactly(handle, buffer: memoryview) -> int:
    total = 0
    while total < len(buffer):
        count = handle.readinto(buffer[total:])
        if not count:
            break
        total += count
    return total


def read_idx(path) -> np.ndarray:
    """Read one IDX file (raw, or gzip-compressed whatever its extension) into a NumPy array.

    Returns an array of the stored shape in native byte order (uint8 for MNIST's images and
    labels). The whole file is validated: magic number, type code, number of dimensions and
    that the file holds exactly ``prod(sizes)`` values, no fewer and no more.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        with _open(path) as handle:
            magic = handle.read(4)
            if len(magic) < 4:
                raise IDXFormatError(path, f"truncated IDX file: {len(magic)} bytes, shorter than the "
                                           "4-byte magic number")
            if magic[0] != 0 or magic[1] != 0:
                raise IDXFormatError(path, f"bad magic number 0x{magic.hex()}: an IDX file starts with "
                                           "0x0000, then a type code and the number of dimensions")
            code, ndim = magic[2], magic[3]
            if code not in _TYPE_CODES:
                known = ", ".join(f"0x{c:02X}" for c in _TYPE_CODES)
                raise IDXFormatError(path, f"unknown IDX type code 0x{code:02X} (expected one of {known})")
            if ndim == 0:
                raise IDXFormatError(path, "IDX header declares 0 dimensions (expected at least 1)")
            header = handle.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise IDXFormatError(path, f"truncated IDX header: {ndim} dimensions need {4 * ndim} "
                                           f"bytes of sizes, found {len(header)}")
            shape = tuple(int(s) for s in np.frombuffer(header, dtype=">u4"))
            dtype = _TYPE_CODES[code]
            data = np.empty(shape, dtype=dtype)
            expected = data.nbytes
            got = _read_exactly(handle, memoryview(data).cast("B"))
            if got < expected:
                raise IDXFormatError(path, f"truncated IDX file: shape {shape} of {dtype.name} needs "
                                           f"{expected} data bytes, found {got}")
            if handle.read(1):
                raise IDXFormatError(path, f"IDX file is longer than its header says: more than the "
                                           f"{expected} data bytes of shape {shape}")
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise IDXFormatError(path, f"corrupt or truncated gzip stream ({error})") from error
    if dtype.byteorder == ">":
        data = data.astype(dtype.newbyteorder("="))
    return data


def write_idx(path, array, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed when ``compress`` is True or, if None,
    when the name ends in ``.gz``. The file is written to a temporary name and renamed into place.
    """
    path = Path(path)
    array = np.asarray(array)
    key = (array.dtype.kind, array.dtype.itemsize)
    if key not in _CODE_OF_KIND:
        raise ValueError(f"write_idx: IDX cannot store dtype {array.dtype} (expected uint8, int8, int16, "
                         "int32, float32 or float64)")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: array must have 1 to 255 dimensions, received shape {array.shape}")
    code = _CODE_OF_KIND[key]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=_TYPE_CODES[code]).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    data = header + payload
    if compress:
        data = gzip.compress(data, mtime=0)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
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
