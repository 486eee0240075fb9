"""Safe save/load: .npz without pickle, atomic writes, clear errors for bad files and weights."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from cnnlab import io, models, nn


def _files(directory):
    return sorted(os.listdir(directory))


def test_save_and_load_arrays_round_trip(tmp_path):
    path = tmp_path / "arrays.npz"
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], dtype=np.int64)}
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
    with pytest.raises(io.FileFormatError, match=r"weights.npz.*'dense_1.weight' has shape \(5, 100\)"):
        io.load_weights(target, path)
    with pytest.raises(io.FileFormatError, match=r"missing \['dense_2.weight', 'dense_2.bias'\].*'dense.weight' has shape \(120, 400\)"):
        io.load_weights(models.get("lenet5"), path)
    same = io.load_weights(models.get("lecture", seed=9), path)
    np.testing.assert_array_equal(same.conv2d.weight.data, models.get("lecture").conv2d.weight.data)


def test_model_file_whose_weights_do_not_fit_its_config(tmp_path):
    path = tmp_path / "model.npz"
    model = models.get("lecture")
    io.save_model(model, path)
    arrays, metadata = io.load_arrays(path)
    arrays["dense.weight"] = arrays["dense.weight"][:, :10]
    io.save_arrays(path, arrays, metadata)
    with pytest.raises(io.FileFormatError, match=r"model.npz.*'dense.weight'.*\(100, 1250\).*\(100, 10\)"):
        io.load_model(path)


def test_weights_file_is_not_a_model(tmp_path):
    path = tmp_path / "w.npz"
    io.save_weights(models.get("lecture"), path)
    with pytest.raises(io.FileFormatError, match="not a model"):
        io.load_model(path)
