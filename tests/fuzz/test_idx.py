"""Fuzz the IDX reader: whatever the bytes, only cnnlab's own errors come out, memory stays bounded.

Budget from the hypothesis profile in conftest.py ("ci" by default; "long" for maintainers).
"""

import gzip

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cnnlab.data.idx import read_idx, read_idx_pair, write_idx
from cnnlab.errors import CnnlabError
from cnnlab.limits import override

from .mutations import byte_mutation, mutate

_DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
#: small enough that no example can make the reader take more than a few MB
_SMALL_LIMIT = 1 << 20


def _valid_file_bytes(dtype: str, shape: tuple, seed: int) -> bytes:
    array = (np.random.default_rng(seed).standard_normal(shape) * 50).astype(dtype)
    header = bytes(
        [
            0,
            0,
            {"uint8": 8, "int8": 9, "int16": 11, "int32": 12, "float32": 13, "float64": 14}[dtype],
            len(shape),
        ]
    )
    header += b"".join(int(s).to_bytes(4, "big") for s in shape)
    return header + array.astype(np.dtype(dtype).newbyteorder(">")).tobytes()


_valid = st.builds(
    _valid_file_bytes,
    st.sampled_from(_DTYPES),
    st.lists(st.integers(0, 5), min_size=1, max_size=4).map(tuple),
    st.integers(0, 3),
)

_mutation = byte_mutation(200)


def _read_allowing_only_cnnlab_errors(path):
    """read_idx returns a native-order array or raises a CnnlabError; nothing else."""
    with override(max_idx_bytes=_SMALL_LIMIT):
        try:
            array = read_idx(path)
        except CnnlabError as error:
            assert str(path) in str(error)
            return None
    assert isinstance(array, np.ndarray) and array.dtype.isnative
    assert 1 <= array.ndim <= 16 and array.nbytes <= _SMALL_LIMIT
    return array


@given(
    original=_valid,
    mutations=st.lists(_mutation, max_size=6),
    where=st.sampled_from(["raw", "inside", "outside"]),
)
def test_mutated_valid_files(tmp_path, original, mutations, where):
    # Mutate the IDX bytes (then store raw or gzip them), or mutate the gzip stream itself.
    if where == "outside":
        data = mutate(gzip.compress(original, mtime=0), mutations)
    else:
        data = mutate(original, mutations)
        data = gzip.compress(data, mtime=0) if where == "inside" else data
    path = tmp_path / "fuzzed"
    path.write_bytes(data)
    array = _read_allowing_only_cnnlab_errors(path)
    if not mutations and array is not None:
        assert (
            array.tobytes()
            == np.frombuffer(original[4 + 4 * original[3] :], array.dtype.newbyteorder(">"))
            .astype(array.dtype)
            .tobytes()
        )


@given(
    code=st.integers(0, 255),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=70),
    ndim_offset=st.integers(-2, 2),
    payload=st.binary(max_size=64),
    compress=st.booleans(),
)
def test_random_headers(tmp_path, code, dims, ndim_offset, payload, compress):
    ndim = max(0, min(255, len(dims) + ndim_offset))
    data = bytes([0, 0, code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload
    path = tmp_path / "header"
    path.write_bytes(gzip.compress(data) if compress else data)
    _read_allowing_only_cnnlab_errors(path)


@given(
    data=st.binary(max_size=300),
    prefix=st.sampled_from([b"", b"\x1f\x8b", b"\x00\x00\x08", b"\x00\x00"]),
)
def test_random_bytes(tmp_path, data, prefix):
    path = tmp_path / "noise"
    path.write_bytes(prefix + data)
    _read_allowing_only_cnnlab_errors(path)


@given(images=_valid, labels=_valid, mutations=st.lists(_mutation, max_size=3))
def test_image_label_pairs(tmp_path, images, labels, mutations):
    images_path, labels_path = tmp_path / "images", tmp_path / "labels"
    images_path.write_bytes(mutate(images, mutations))
    labels_path.write_bytes(labels)
    with override(max_idx_bytes=_SMALL_LIMIT):
        try:
            x, y = read_idx_pair(images_path, labels_path)
        except CnnlabError:
            return
    assert x.ndim == 4 and x.dtype == np.uint8 and y.dtype == np.int64 and len(x) == len(y)


def test_round_trip_seed_files_are_valid(tmp_path):
    # The seeds above must be readable, or the mutation fuzz would only ever test errors.
    for dtype in _DTYPES:
        expected = write_idx(tmp_path / f"{dtype}.gz", np.arange(6, dtype=dtype).reshape(2, 3))
        (tmp_path / "raw").write_bytes(_valid_file_bytes(dtype, (2, 3), 0))
        assert read_idx(tmp_path / "raw").shape == read_idx(expected).shape == (2, 3)
