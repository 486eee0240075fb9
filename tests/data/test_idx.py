import gzip
import tracemalloc

import numpy as np
import pytest

from cnnlab.data.idx import (
    IDXFormatError,
    IDXLimitExceededError,
    read_idx,
    read_idx_pair,
    write_idx,
)
from cnnlab.errors import CnnlabError, FileFormatError, LimitExceededError
from cnnlab.limits import override


def _write_bytes(data, compressed, directory):
    path = directory / f"file{len(list(directory.iterdir()))}{'.gz' if compressed else ''}"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("compressed", [False, True])
def test_reads_hand_written_header(tmp_path, compressed):
    # magic 0x00000801: uint8, 1 dimension of size 3, then the values.
    raw = bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9])
    path = _write_bytes(gzip.compress(raw) if compressed else raw, compressed, tmp_path)
    array = read_idx(path)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, [7, 8, 9])


def test_reads_big_endian_int32(tmp_path):
    values = (258).to_bytes(4, "big") + (-1).to_bytes(4, "big", signed=True)
    raw = bytes([0, 0, 0x0C, 2, 0, 0, 0, 1, 0, 0, 0, 2]) + values
    array = read_idx(_write_bytes(raw, False, tmp_path))
    assert array.shape == (1, 2)
    assert array.dtype == np.int32 and array.dtype.isnative
    np.testing.assert_array_equal(array, [[258, -1]])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((5, 4, 3)) * 100).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    loaded = read_idx(path)
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


def test_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = write_idx(tmp_path / "plain-name", array, compress=True)
    np.testing.assert_array_equal(read_idx(path), array)


def test_bad_magic_number_names_file(tmp_path):
    path = _write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x05", False, tmp_path)
    with pytest.raises(IDXFormatError, match="bad magic number") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_type_code(tmp_path):
    path = _write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), False, tmp_path)
    with pytest.raises(IDXFormatError, match="type code 0x07"):
        read_idx(path)


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_data(tmp_path, compressed):
    array = np.arange(100, dtype=np.uint8).reshape(10, 10)
    raw = tmp_path / "full"
    write_idx(raw, array, compress=False)
    cut = raw.read_bytes()[:-7]
    path = _write_bytes(gzip.compress(cut) if compressed else cut, compressed, tmp_path)
    with pytest.raises(IDXFormatError, match="truncated IDX file") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_header(tmp_path):
    path = _write_bytes(bytes([0, 0, 0x08, 3, 0, 0, 0, 2]), False, tmp_path)
    with pytest.raises(IDXFormatError, match="truncated IDX header"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.random.default_rng(1).integers(0, 255, (50, 50), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(IDXFormatError, match=str(path.name)):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((2, 2), dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(IDXFormatError, match="longer than its header"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        read_idx(tmp_path / "nothing-here")


def test_pair_round_trip_and_label_count_mismatch(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, (6, 5, 4), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5], dtype=np.uint8)
    images_path = write_idx(tmp_path / "images.gz", images)
    labels_path = write_idx(tmp_path / "labels.gz", labels)
    x, y = read_idx_pair(images_path, labels_path)
    assert x.shape == (6, 1, 5, 4) and x.dtype == np.uint8
    assert y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], images)
    np.testing.assert_array_equal(y, labels)

    short_labels = write_idx(tmp_path / "short.gz", labels[:5])
    with pytest.raises(IDXFormatError, match="5 labels for 6 images") as info:
        read_idx_pair(images_path, short_labels)
    assert "short.gz" in str(info.value)


def test_pair_rejects_wrong_ranks(tmp_path):
    images_path = write_idx(tmp_path / "images", np.zeros((3, 2, 2), dtype=np.uint8))
    labels_2d = write_idx(tmp_path / "labels2d", np.zeros((3, 1), dtype=np.uint8))
    with pytest.raises(IDXFormatError, match="labels of shape"):
        read_idx_pair(images_path, labels_2d)
    flat_images = write_idx(tmp_path / "flat", np.zeros((3, 4), dtype=np.uint8))
    labels = write_idx(tmp_path / "labels", np.zeros(3, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=r"images of shape \(N, H, W\)"):
        read_idx_pair(flat_images, labels)


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="write_idx: IDX cannot store dtype uint16"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


def _header(code, shape):
    return bytes([0, 0, code, len(shape)]) + b"".join(int(s).to_bytes(4, "big") for s in shape)


def _peak_bytes_of(function):
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_idx_format_error_is_a_cnnlab_file_format_error(tmp_path):
    path = _write_bytes(b"\x12\x34\x08\x01", False, tmp_path)
    with pytest.raises(FileFormatError) as info:
        read_idx(path)
    assert isinstance(info.value, IDXFormatError) and isinstance(info.value, CnnlabError)
    assert info.value.path == str(path)


@pytest.mark.parametrize("compressed", [False, True])
def test_zero_length_file_names_the_file(tmp_path, compressed):
    path = _write_bytes(gzip.compress(b"") if compressed else b"", compressed, tmp_path)
    with pytest.raises(IDXFormatError, match=f"{path.name}: empty file"):
        read_idx(path)


@pytest.mark.parametrize("compressed", [False, True])
def test_zero_size_dimension_reads_as_an_empty_array(tmp_path, compressed):
    # Was a memoryview TypeError: "cannot cast view with zeros in shape or strides".
    raw = _header(0x08, (0, 28, 28))
    array = read_idx(_write_bytes(gzip.compress(raw) if compressed else raw, compressed, tmp_path))
    assert array.shape == (0, 28, 28) and array.dtype == np.uint8
    with pytest.raises(IDXFormatError, match="longer than its header"):
        read_idx(_write_bytes(raw + b"\x00", False, tmp_path))


@pytest.mark.parametrize("ndim", [0, 17, 65, 255])
def test_ndim_65_is_refused_naming_the_file(tmp_path, ndim):
    data = bytes([0, 0, 0x08, ndim]) + b"\x00\x00\x00\x01" * ndim + b"\x07"
    path = _write_bytes(data, False, tmp_path)
    with pytest.raises(IDXFormatError, match=f"{path.name}: IDX header declares {ndim} dimensions "
                                             r"\(expected 1 to 16\)"):
        read_idx(path)


@pytest.mark.parametrize("compressed", [False, True])
def test_overflowing_shape_is_refused_naming_the_file(tmp_path, compressed):
    # 0xFFFFFFFF^4 float64s: more bytes than an int64 holds.
    raw = _header(0x0E, (0xFFFFFFFF,) * 4) + bytes(64)
    path = _write_bytes(gzip.compress(raw) if compressed else raw, compressed, tmp_path)
    with pytest.raises(IDXFormatError, match=f"{path.name}: IDX header .* exceeds .*max_idx_bytes"):
        read_idx(path)


@pytest.mark.parametrize("compressed", [False, True])
def test_header_declaring_65535_cubed_is_refused_before_allocating(tmp_path, compressed):
    raw = _header(0x08, (65535, 65535, 65535)) + bytes(100)
    path = _write_bytes(gzip.compress(raw) if compressed else raw, compressed, tmp_path)
    errors = []

    def attempt():
        with pytest.raises(IDXLimitExceededError, match=path.name) as info:
            read_idx(path)
        errors.append(info.value)

    assert _peak_bytes_of(attempt) < 1_000_000
    assert isinstance(errors[0], LimitExceededError) and isinstance(errors[0], IDXFormatError)


@pytest.mark.parametrize("compressed", [False, True])
def test_declared_size_is_checked_against_the_data_before_allocating(tmp_path, compressed):
    # 1000^3 bytes declared (under the 8 GiB limit), 100 present: refused without taking 1 GB.
    raw = _header(0x08, (1000, 1000, 1000)) + bytes(100)
    path = _write_bytes(gzip.compress(raw) if compressed else raw, compressed, tmp_path)

    def attempt():
        with pytest.raises(IDXFormatError, match=f"{path.name}: truncated IDX file"):
            read_idx(path)

    assert _peak_bytes_of(attempt) < 50_000_000


def test_limit_applies_to_valid_files_and_can_be_raised(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((50, 40), dtype=np.uint8))
    with override(max_idx_bytes=1000), pytest.raises(IDXLimitExceededError, match="max_idx_bytes"):
        read_idx(path)
    assert read_idx(path).shape == (50, 40)


def test_corrupt_gzip_names_the_file(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.arange(100, dtype=np.uint8))
    data = bytearray(path.read_bytes())
    data[20:30] = b"\xff" * 10
    path.write_bytes(bytes(data))
    with pytest.raises(IDXFormatError, match="x.gz: "):
        read_idx(path)


def test_write_idx_is_atomic_through_a_symlink(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "data.idx"
    link.symlink_to(target)
    write_idx(link, np.arange(3, dtype=np.uint8))
    assert target.read_text() == "keep me"
    np.testing.assert_array_equal(read_idx(link), [0, 1, 2])


def test_zero_size_with_huge_other_sizes_names_the_file(tmp_path):
    # Found by the fuzz suite: an empty shape NumPy still can't represent.
    path = _write_bytes(_header(0x0C, (0, 318, 3372, 66361, 32404262)), False, tmp_path)
    with pytest.raises(IDXFormatError, match=f"{path.name}: IDX header declares shape .* large"):
        read_idx(path)
