"""Safe save/load: .npz without pickle, atomic writes, clear errors for bad files and weights."""

from __future__ import annotations

import io as stdio
import json
import os
import stat
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import cnnlab.limits
from cnnlab import io, models, nn


def _files(directory):
    return sorted(os.listdir(directory))


def test_save_and_load_arrays_round_trip(tmp_path):
    path = tmp_path / "arrays.npz"
    arrays = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([1, 2], dtype=np.int64),
    }
    io.save_arrays(path, arrays, {"epoch": 3, "names": ["x", "y"]})
    loaded, metadata = io.load_arrays(path)
    assert set(loaded) == {"a", "b"}
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)
        assert loaded[key].dtype == value.dtype
    assert metadata == {"epoch": 3, "names": ["x", "y"]}
    assert _files(tmp_path) == ["arrays.npz"]  # no temporary file left behind


def test_file_is_a_plain_npz_with_a_json_header_and_no_pickle(tmp_path):
    path = tmp_path / "m.npz"
    io.save_arrays(path, {"w": np.ones(2)}, {"k": 1})
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(archive["__cnnlab__"].tobytes().decode())
        assert archive["__cnnlab__"].dtype == np.uint8
    assert header == {"format": "cnnlab", "version": 1, "metadata": {"k": 1}}


def test_save_refuses_object_arrays_and_bad_metadata(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(ValueError, match="needs pickle"):
        io.save_arrays(path, {"o": np.array([{"a": 1}], dtype=object)}, {})
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        io.save_arrays(path, {"w": np.ones(1)}, {"f": object()})
    with pytest.raises(ValueError, match="reserved"):
        io.save_arrays(path, {"__cnnlab__": np.ones(1)}, {})
    assert _files(tmp_path) == []


def test_failing_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    io.save_arrays(path, {"w": np.ones(3)}, {"version": "old"})
    before = path.read_bytes()

    def broken_savez(file, *args, **kwargs):
        file.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        io.save_arrays(path, {"w": np.zeros(3)}, {"version": "new"})
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["model.npz"]
    monkeypatch.undo()
    _, metadata = io.load_arrays(path)
    assert metadata == {"version": "old"}


def test_failing_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    io.save_arrays(path, {"w": np.ones(3)}, {})

    def broken_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        io.save_arrays(path, {"w": np.zeros(3)}, {})
    monkeypatch.undo()
    assert _files(tmp_path) == ["model.npz"]
    np.testing.assert_array_equal(io.load_arrays(path)[0]["w"], np.ones(3))


def _saved(tmp_path):
    path = tmp_path / "model.npz"
    io.save_model(models.get("lenet5"), path)
    return path


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_file_raises_file_format_error_naming_the_file(tmp_path, keep):
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(io.FileFormatError, match=str(path)):
        io.load_model(path)


def test_corrupt_file_raises_file_format_error(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zero a block inside compressed/stored member data
    path.write_bytes(bytes(data))
    with pytest.raises(io.FileFormatError, match=str(path)):
        io.load_model(path)


def _write_with(path, save, *args, **kwargs):
    with open(path, "wb") as f:
        save(f, *args, **kwargs)


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.write_text("hello, not an archive"),
        lambda p: _write_with(p, np.save, np.ones(3)),
        lambda p: _write_with(p, np.savez, w=np.ones(3)),  # an npz, but not a cnnlab one
        lambda p: p.write_bytes(b""),
    ],
    ids=["text", "npy", "foreign-npz", "empty"],
)
def test_foreign_files_raise_file_format_error(tmp_path, write):
    path = tmp_path / "foreign.npz"
    write(path)
    with pytest.raises(io.FileFormatError, match=str(path)):
        io.load_arrays(path)


def test_pickled_array_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as archive, archive.open("obj.npy", "w") as member:
        np.save(member, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(io.FileFormatError, match=str(path)):
        io.load_arrays(path)


def test_missing_file_is_a_file_format_error_naming_it(tmp_path):
    for load in (io.load_arrays, io.load_model):
        with pytest.raises(io.FileFormatError, match="nope.npz: no such file"):
            load(tmp_path / "nope.npz")


def test_save_then_load_model_gives_identical_predictions(tmp_path):
    model = models.get("fashion", seed=2, class_names=[f"c{i}" for i in range(10)])
    model.normalization = {"mean": np.float32(0.286), "std": 0.353}
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    model(x)  # one training-mode pass moves the batch-norm running statistics
    model.eval()
    expected = model(x).data
    path = tmp_path / "fashion.npz"
    io.save_model(model, path)
    loaded = io.load_model(path)
    loaded.eval()
    np.testing.assert_array_equal(loaded(x).data, expected)
    assert loaded.class_names == model.class_names
    assert loaded.normalization == pytest.approx({"mean": 0.286, "std": 0.353})
    assert loaded.input_shape == (1, 28, 28)
    assert loaded.get_config() == model.get_config()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)


def test_save_model_requires_a_built_model(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        io.save_model(nn.Sequential(nn.Dense(2)), tmp_path / "m.npz")


def test_wrong_architecture_weights_name_the_parameter(tmp_path):
    path = tmp_path / "weights.npz"
    io.save_weights(models.get("lecture"), path)
    target = models.get("lecture", num_classes=5)
    with pytest.raises(
        io.FileFormatError, match=r"weights.npz.*'dense_1.weight' has shape \(5, 100\)"
    ):
        io.load_weights(target, path)
    with pytest.raises(
        io.FileFormatError,
        match=r"missing \['dense_2.weight', 'dense_2.bias'\]"
        r".*'dense.weight' has shape \(120, 400\)",
    ):
        io.load_weights(models.get("lenet5"), path)
    same = io.load_weights(models.get("lecture", seed=9), path)
    np.testing.assert_array_equal(
        same.conv2d.weight.data, models.get("lecture").conv2d.weight.data
    )


def test_model_file_whose_weights_do_not_fit_its_config(tmp_path):
    path = tmp_path / "model.npz"
    model = models.get("lecture")
    io.save_model(model, path)
    arrays, metadata = io.load_arrays(path)
    arrays["dense.weight"] = arrays["dense.weight"][:, :10]
    io.save_arrays(path, arrays, metadata)
    with pytest.raises(
        io.FileFormatError, match=r"model.npz.*'dense.weight'.*\(100, 1250\).*\(100, 10\)"
    ):
        io.load_model(path)


def test_weights_file_is_not_a_model(tmp_path):
    path = tmp_path / "w.npz"
    io.save_weights(models.get("lecture"), path)
    with pytest.raises(io.FileFormatError, match="not a model"):
        io.load_model(path)


# Issue 10's regressions: every bad model file gets a cnnlab error naming it, before allocating.
def _lecture_file(tmp_path, name="model.npz"):
    path = tmp_path / name
    io.save_model(models.get("lecture", class_names=[str(i) for i in range(10)]), path)
    return path


def _rewrite(path, edit_metadata=None, edit_arrays=None):
    arrays, metadata = io.load_arrays(path)
    if edit_metadata:
        edit_metadata(metadata)
    if edit_arrays:
        edit_arrays(arrays)
    io.save_arrays(path, arrays, metadata)


def _npy_header(shape, descr="<f4") -> bytes:
    buffer = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def _raw_zip_entry(
    name: str, data: bytes, file_size: int, method: int = zipfile.ZIP_DEFLATED, crc: int = 0
) -> bytes:
    """A one-entry zip declaring ``file_size`` (a bomb's CRC is 0: the loader never gets there)."""
    encoded = name.encode()
    local = (
        struct.pack(
            "<4s5H3L2H",
            b"PK\x03\x04",
            20,
            0,
            method,
            0,
            33,
            crc,
            len(data),
            file_size,
            len(encoded),
            0,
        )
        + encoded
    )
    central = (
        struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            method,
            0,
            33,
            crc,
            len(data),
            file_size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        + encoded
    )
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0
    )
    return local + data + central + end


def _with_entry_replaced(path, key, raw_zip: bytes):
    """Rewrite the cnnlab file at ``path`` with entry ``key`` taken from a hand-made zip."""
    arrays, metadata = io.load_arrays(path)
    del arrays[key]
    io.save_arrays(path, arrays, metadata)
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    path.write_bytes(raw_zip)
    with zipfile.ZipFile(path, "a") as archive:
        for info, data in members:
            archive.writestr(info, data)


def _deflate_bomb(header: bytes, megabytes: int) -> bytes:
    """Raw deflate of ``header`` + ``megabytes`` MiB of zeros, ~1 KB per MiB (blocks repeat)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + block * megabytes + compressor.flush(zlib.Z_FINISH)


def _peak_bytes(function, *args):
    tracemalloc.start()
    try:
        function(*args)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_npz_bomb_refused_before_allocating(tmp_path):
    path = _lecture_file(tmp_path)
    header = _npy_header(
        (2**19, 1000)
    )  # 2,000 MiB of float32: under max_array_bytes, not the net's
    _with_entry_replaced(
        path,
        "dense.weight",
        _raw_zip_entry(
            "dense.weight.npy", _deflate_bomb(header, 2000), len(header) + 2000 * 2**20
        ),
    )
    assert path.stat().st_size < 4 * 2**20
    errors = []
    peak = _peak_bytes(
        lambda: errors.append(pytest.raises(io.FileFormatError, io.load_model, path))
    )
    assert "'dense.weight' has shape (100, 1250) in the architecture but (524288, 1000)" in str(
        errors[0].value
    )
    assert peak < 32 * 2**20
    with (
        cnnlab.limits.override(max_total_bytes=2**30),
        pytest.raises(io.LimitExceededError, match="max_total"),
    ):
        io.load_arrays(path)


def test_npy_declaring_shape_1e12_refused_before_allocating(tmp_path):
    path = _lecture_file(tmp_path)
    header = _npy_header((10**12,))
    _with_entry_replaced(
        path,
        "dense.bias",
        _raw_zip_entry("dense.bias.npy", zlib.compress(header)[2:-4], 2**32 - 1),
    )
    for load in (io.load_arrays, io.load_model):
        with pytest.raises(
            io.LimitExceededError, match=r"model.npz: entry 'dense.bias.npy'.*max_array_bytes"
        ):
            load(path)
    # The same header in an entry whose declared size is small: the shape itself is refused.
    path = _lecture_file(tmp_path, "second.npz")
    _with_entry_replaced(
        path,
        "dense_1.bias",
        _raw_zip_entry(
            "dense_1.bias.npy", header, len(header), zipfile.ZIP_STORED, zlib.crc32(header)
        ),
    )
    with pytest.raises(
        io.LimitExceededError, match=r"array 'dense_1.bias' of shape \(1000000000000,\)"
    ):
        io.load_arrays(path)


def test_dense_400000_units_refused_before_allocating(tmp_path):
    path = _lecture_file(tmp_path)
    _rewrite(path, lambda m: m["config"]["config"]["layers"][5]["config"].update(units=400_000))
    errors = []
    peak = _peak_bytes(
        lambda: errors.append(pytest.raises(io.FileFormatError, io.load_model, path))
    )
    assert "'dense.weight' has shape (400000, 1250) in the architecture but (100, 1250)" in str(
        errors[0].value
    )
    assert peak < 16 * 2**20


def test_eager_dense_400000_units_refused_before_allocating(tmp_path):
    path = tmp_path / "eager.npz"
    io.save_model(nn.Sequential(nn.Dense(3, in_features=4)).build((4,)), path)
    _rewrite(
        path,
        lambda m: m["config"]["config"]["layers"][0]["config"].update(
            units=400_000, in_features=1250
        ),
    )
    errors = []
    peak = _peak_bytes(
        lambda: errors.append(pytest.raises(io.FileFormatError, io.load_model, path))
    )
    assert "eager.npz" in str(errors[0].value) and "400000" in str(errors[0].value)
    assert peak < 16 * 2**20


def _header_only_file(path, text: str, arrays=None):
    with open(path, "wb") as f:
        np.savez(f, __cnnlab__=np.frombuffer(text.encode(), dtype=np.uint8), **(arrays or {}))


def test_json_nested_100000_deep_refused_without_recursion(tmp_path):
    path = tmp_path / "deep.npz"
    _header_only_file(
        path,
        '{"format": "cnnlab", "version": 1, "metadata": {"x": '
        + "[" * 100_000
        + "]" * 100_000
        + "}}",
    )
    with pytest.raises(
        io.LimitExceededError, match=r"deep.npz.*JSON nesting.*100,002.*max_nesting"
    ):
        io.load_arrays(path)


def test_sequential_2000_deep_refused_without_recursion(tmp_path):
    path = _lecture_file(tmp_path)
    arrays, metadata = io.load_arrays(path)
    metadata["config"] = "CONFIG"
    layer = '{"class_name": "Flatten", "config": {}}'
    head = '{"class_name": "Sequential", "config": {"name": null, "seed": null, "layers": ['
    config = head * 2000 + layer + "]}}" * 2000  # json.dumps itself would recurse too deep
    text = json.dumps({"format": "cnnlab", "version": 1, "metadata": metadata}).replace(
        '"CONFIG"', config
    )
    _header_only_file(path, text, arrays)
    with pytest.raises(io.LimitExceededError, match="model.npz.*max_nesting"):
        io.load_model(path)
    with (
        cnnlab.limits.override(max_nesting=10**6),
        pytest.raises(io.FileFormatError, match="model.npz"),
    ):
        io.load_model(path)  # past the scan, json or from_config still refuse it cleanly


def _patch_central_directory(path, offset: int, fmt: str, value):
    """Overwrite one field of every central-directory header (offset from the header's start)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        position = archive.start_dir
    while data[position : position + 4] == b"PK\x01\x02":
        struct.pack_into(fmt, data, position + offset, value)
        name, extra, comment = struct.unpack_from("<3H", data, position + 28)
        position += 46 + name + extra + comment
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "message"),
    [
        (8, "<H", 0x1, "flagged encrypted"),
        (10, "<H", 99, "compression method 99"),
        (6, "<H", 255, "zip file version 25.5"),
    ],
    ids=["encrypted", "unknown-compression", "version-255"],
)
def test_zip_entry_flags_refused(tmp_path, offset, fmt, value, message):
    path = _lecture_file(tmp_path)
    _patch_central_directory(path, offset, fmt, value)
    for load in (io.load_arrays, io.load_model):
        with pytest.raises(io.FileFormatError, match=f"model.npz: .*{message}"):
            load(path)


def _set_layer_config(metadata, value):
    metadata["config"]["config"]["layers"][0] = value


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m.update(config={"class_name": "Sequential", "config": "layers"}),
            "Sequential.from_config: config must be a dict",
        ),
        (lambda m: _set_layer_config(m, "Conv2D"), "expected a dict with keys 'class_name'"),
        (lambda m: m.update(input_shape=[1, 28, -0.0]), "input_shape must be a list"),
        (lambda m: m.update(input_shape=[1, 28, float("inf")]), "input_shape must be a list"),
        (lambda m: m.update(input_shape="1x28x28"), "input_shape must be a list"),
        (
            lambda m: m.update(class_names=["a", "b"]),
            "class_names names 2 classes but the model has 10",
        ),
        (lambda m: m.update(class_names=list(range(10))), "class_names must be a list of strings"),
        (lambda m: m.update(normalization="mean=0.1"), "normalization must be an object"),
        (lambda m: m.update(normalization=[0.1, 0.3]), "normalization must be an object"),
        (lambda m: m.update(normalization={"mean": 0.1}), "exactly 'mean' and 'std'"),
        (
            lambda m: m.update(normalization={"mean": 0.1, "std": 0}),
            r"normalization\['std'\] must be > 0",
        ),
        (
            lambda m: m.update(normalization={"mean": float("nan"), "std": 1}),
            r"\['mean'\] must be a finite",
        ),
        (
            lambda m: m.update(normalization={"mean": 0.1, "std": float("nan")}),
            r"\['std'\] must be a finite",
        ),
        (lambda m: m["config"].update(class_name="Evil"), "unknown module class 'Evil'"),
        (lambda m: m.update(config=None), "expected a dict with keys 'class_name'"),
    ],
    ids=[
        "config-string",
        "layer-config-string",
        "input-shape-minus-zero",
        "input-shape-inf",
        "input-shape-string",
        "class-names-too-short",
        "class-names-not-strings",
        "normalization-string",
        "normalization-list",
        "normalization-without-std",
        "std-zero",
        "mean-nan",
        "std-nan",
        "unknown-class",
        "config-null",
    ],
)
def test_bad_model_metadata_refused_naming_the_file(tmp_path, edit, message):
    path = _lecture_file(tmp_path)
    _rewrite(path, edit)
    with pytest.raises(io.FileFormatError, match=f"model.npz: .*{message}"):
        io.load_model(path)


def test_metadata_that_is_a_list_refused(tmp_path):
    path = tmp_path / "list.npz"
    _header_only_file(path, '{"format": "cnnlab", "version": 1, "metadata": [1, 2]}')
    with pytest.raises(io.FileFormatError, match="list.npz: the metadata is a list"):
        io.load_arrays(path)


def test_non_zip_file_gets_cnnlabs_message_not_allow_pickle_advice(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(
        b"\x80\x04K\x01." + bytes(100)
    )  # a pickle, which numpy would offer to unpickle
    with pytest.raises(
        io.FileFormatError, match="model.npz: not a cnnlab file: not a zip archive"
    ) as error:
        io.load_model(path)
    assert "allow_pickle" not in str(error.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [(np.nan, "holds NaN or infinite"), (np.inf, "holds NaN or infinite")],
    ids=["nan", "inf"],
)
def test_non_finite_weight_refused_naming_the_tensor(tmp_path, value, message):
    path = _lecture_file(tmp_path)
    _rewrite(path, edit_arrays=lambda a: a["dense_1.bias"].__setitem__(3, value))
    with pytest.raises(io.FileFormatError, match=f"model.npz: tensor 'dense_1.bias' {message}"):
        io.load_model(path)


@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        (np.complex64, "dtype complex64; weights must be real"),
        (np.bool_, "dtype bool; weights must be real"),
        (np.int32, "dtype int32; weights must be real"),
        ("<U3", "not a plain numeric type"),
    ],
    ids=["complex", "bool", "int", "string"],
)
def test_wrong_weight_dtype_refused_naming_the_tensor(tmp_path, dtype, message):
    path = _lecture_file(tmp_path)
    _rewrite(
        path, edit_arrays=lambda a: a.update({"dense_1.bias": a["dense_1.bias"].astype(dtype)})
    )
    with pytest.raises(io.FileFormatError, match=f"model.npz: .*'dense_1.bias'.* {message}"):
        io.load_model(path)


def test_complex_weights_not_silently_truncated_by_load_weights(tmp_path):
    path = tmp_path / "w.npz"
    model = nn.Sequential(nn.Dense(3, in_features=4)).build((4,))
    state = {k: v.astype(np.complex64) + 1j for k, v in model.state_dict().items()}
    io.save_arrays(path, state, {"kind": "weights"})
    with pytest.raises(io.FileFormatError, match="complex64"):
        io.load_weights(model, path)


def test_files_are_written_with_the_umasks_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        path = _lecture_file(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o027)
        io.save_arrays(tmp_path / "b.npz", {"w": np.ones(2)})
        assert stat.S_IMODE((tmp_path / "b.npz").stat().st_mode) == 0o640
    finally:
        os.umask(previous)


def test_save_never_writes_through_a_symlink(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "model.npz"
    link.symlink_to(target)
    io.save_model(models.get("lecture"), link)
    assert target.read_text() == "keep me"
    assert not link.is_symlink()
    assert io.load_model(link).get_config() == models.get("lecture").get_config()


def test_save_model_trusts_model_built_for_an_eager_layer(tmp_path):
    layer = nn.Dense(3, in_features=4, seed=1)  # built: it has its weights, though no input_shape
    assert layer.built and layer.input_shape is None
    path = tmp_path / "dense.npz"
    io.save_model(layer, path)
    loaded = io.load_model(path)
    np.testing.assert_array_equal(loaded.weight.data, layer.weight.data)
    assert loaded.in_features == 4


def test_file_saved_before_the_hardening_still_loads(tmp_path):
    """A file written the old way (np.savez straight to the file) reads the same."""
    model = models.get("lecture", seed=4)
    path = tmp_path / "old.npz"
    header = json.dumps(
        {
            "format": "cnnlab",
            "version": 1,
            "metadata": {
                "kind": "model",
                "cnnlab_version": "0.1.0",
                "config": model.get_config(),
                "input_shape": [1, 28, 28],
                "class_names": None,
                "normalization": {"mean": 0.2, "std": 0.3},
            },
        }
    )
    with open(path, "wb") as f:
        np.savez(
            f, __cnnlab__=np.frombuffer(header.encode(), dtype=np.uint8), **model.state_dict()
        )
    loaded = io.load_model(path)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)
    assert loaded.normalization == {"mean": 0.2, "std": 0.3}
