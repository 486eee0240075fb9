"""Fuzz the image reader: whatever the bytes, only cnnlab's own errors come out of read_image,
probe_image and prepare_image, and what comes back is float32 in [0, 1].

Budget from the hypothesis profile in conftest.py ("ci" by default; "long" for maintainers).
"""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cnnlab.data.images import prepare_image, probe_image, read_image
from cnnlab.errors import CnnlabError
from cnnlab.limits import override

from .mutations import byte_mutation, mutate

#: small enough that a mutated header can't make a decoder allocate much
_SMALL_LIMIT = 1 << 16


def _encode(mode: str, fmt: str, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    size = (7, 5)
    if mode == "F":
        picture = Image.fromarray(rng.standard_normal(size[::-1]).astype(np.float32), mode="F")
    elif mode == "I;16":
        picture = Image.fromarray(rng.integers(0, 65536, size[::-1], dtype=np.uint16))
    else:
        picture = Image.frombytes(
            "L", size, rng.integers(0, 256, size[0] * size[1], dtype=np.uint8).tobytes()
        )
        picture = picture.convert(mode)
    buffer = io.BytesIO()
    options = {"transparency": 0} if mode == "P" and fmt == "PNG" else {}
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


SEEDS = [
    _encode("L", "PNG"),
    _encode("RGB", "PNG"),
    _encode("RGBA", "PNG"),
    _encode("LA", "PNG"),
    _encode("P", "PNG"),
    _encode("I;16", "PNG"),
    _encode("1", "PNG"),
    _encode("RGB", "JPEG"),
    _encode("L", "JPEG"),
    _encode("CMYK", "JPEG"),
    _encode("P", "GIF"),
    _encode("RGB", "BMP"),
    _encode("F", "TIFF"),
    _encode("CMYK", "TIFF"),
    _encode("I;16", "TIFF"),
    _encode("RGBA", "WEBP"),
    _encode("L", "PPM"),
    _encode("RGB", "PPM"),
]

_mutation = byte_mutation(400)


def _check(path):
    """Only CnnlabError (naming the file) may come out; a result is float32 (C, H, W) in [0, 1]."""
    with override(max_image_pixels=_SMALL_LIMIT):
        try:
            probe_image(path)
            image = read_image(path, channels=3)
        except CnnlabError as error:
            assert str(path) in str(error)
            return None
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[0] == 3
    assert image.shape[1] * image.shape[2] <= _SMALL_LIMIT
    assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
    prepared = prepare_image(image[:1], (1, 28, 28))
    assert prepared.shape == (1, 28, 28) and np.isfinite(prepared).all()
    assert prepared.min() >= 0 and prepared.max() <= 1
    return image


def test_seed_files_are_readable(tmp_path):
    # The mutation fuzz starts from files that really decode.
    for number, data in enumerate(SEEDS):
        path = tmp_path / f"seed{number}"
        path.write_bytes(data)
        assert _check(path) is not None, number


@given(original=st.sampled_from(SEEDS), mutations=st.lists(_mutation, min_size=1, max_size=5))
def test_mutated_valid_images(tmp_path, original, mutations):
    path = tmp_path / "fuzzed"
    path.write_bytes(mutate(original, mutations))
    _check(path)


@given(original=st.sampled_from(SEEDS), keep=st.floats(0, 1))
def test_truncated_images(tmp_path, original, keep):
    path = tmp_path / "truncated"
    path.write_bytes(original[: int(len(original) * keep)])
    _check(path)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@given(
    width=st.integers(0, 2**31),
    height=st.integers(0, 2**31),
    depth=st.sampled_from([1, 2, 4, 8, 16, 3]),
    colour=st.sampled_from([0, 2, 3, 4, 6, 5]),
    payload=st.binary(max_size=200),
    compress=st.booleans(),
)
def test_random_png_headers(tmp_path, width, height, depth, colour, payload, compress):
    # A well-formed PNG container (valid CRCs) around an arbitrary header and pixel stream.
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    data += _chunk(b"IDAT", zlib.compress(payload) if compress else payload) + _chunk(b"IEND", b"")
    path = tmp_path / "header.png"
    path.write_bytes(data)
    _check(path)


@given(
    data=st.binary(max_size=300),
    prefix=st.sampled_from(
        [
            b"",
            b"\x89PNG\r\n\x1a\n",
            b"\xff\xd8\xff",
            b"GIF89a",
            b"BM",
            b"II*\x00",
            b"MM\x00*",
            b"RIFF\x00\x00\x00\x00WEBP",
            b"P5\n",
            b"%!PS-Adobe-3.0",
        ]
    ),
)
def test_random_bytes(tmp_path, data, prefix):
    path = tmp_path / "noise"
    path.write_bytes(prefix + data)
    _check(path)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 50), (3, 40, 1), (1, 2, 2)])
def test_prepare_tiny_and_thin_images(shape):
    for image in (
        np.zeros(shape, np.float32),
        np.ones(shape, np.float32),
        np.random.default_rng(0).random(shape, dtype=np.float32),
    ):
        prepared = prepare_image(image, (1, 28, 28))
        assert prepared.shape == (1, 28, 28) and np.isfinite(prepared).all()
