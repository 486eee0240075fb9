"""Fuzzing the model and checkpoint loaders: mutated valid files may raise only cnnlab's errors.

Mutations of a valid model file and a valid training checkpoint: byte flips, truncation,
edits of the zip's central directory, of a ``.npy`` header (shape, dtype) and of the JSON
metadata (any field replaced by random JSON). Whatever the mutation, ``load_arrays``,
``load_model``, ``load_checkpoint`` and ``model_from_checkpoint`` either load or raise a
``cnnlab.errors`` type naming the file. Longer hunt: ``--hypothesis-profile=long``.
"""

from __future__ import annotations

import io as stdio
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cnnlab.limits
from cnnlab import io, nn
from cnnlab.callbacks import ModelCheckpoint
from cnnlab.checkpoint import load_checkpoint, model_from_checkpoint
from cnnlab.errors import CnnlabError
from cnnlab.training import fit


def _small_net():
    return nn.Sequential(
        nn.Conv2D(2, 3), nn.BatchNorm(), nn.Dropout(0.5), nn.Flatten(), nn.Dense(3), seed=0
    ).build((1, 6, 6))


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    """(model bytes, checkpoint bytes, a folder to write mutations into)."""
    folder = tmp_path_factory.mktemp("fuzz-model-files")
    model = _small_net()
    model.class_names = ["a", "b", "c"]
    rng = np.random.default_rng(0)
    data = rng.standard_normal((8, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, 8)
    fit(
        model,
        data,
        epochs=1,
        batch_size=4,
        verbose=0,
        callbacks=[ModelCheckpoint(folder / "valid-checkpoint.npz", save_best_only=False)],
    )
    io.save_model(model, folder / "valid-model.npz")
    return (
        (folder / "valid-model.npz").read_bytes(),
        (folder / "valid-checkpoint.npz").read_bytes(),
        folder,
    )


def _only_cnnlab_errors(path, loaders):
    # Bounds small enough that whatever a mutation makes a loader accept costs little.
    with cnnlab.limits.override(max_array_bytes=1 << 22, max_total_bytes=1 << 23):
        for load in loaders:
            try:
                load(path)
            except CnnlabError as error:
                assert str(path) in str(error)


def _flip(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out)


def _edit_central_directory(data: bytes, edits) -> bytes:
    """Overwrite 2-byte fields of the central directory (versions, flags, method, sizes...)."""
    with zipfile.ZipFile(stdio.BytesIO(data)) as archive:
        start = archive.start_dir
    out = bytearray(data)
    for offset, value in edits:
        position = start + offset % max(1, len(data) - start - 2)
        struct.pack_into("<H", out, position, value)
    return bytes(out)


def _edit_npy_header(data: bytes, which: int, shape, descr: str, fortran: bool) -> bytes:
    """Give one entry a new .npy header, keeping its data bytes."""
    source = zipfile.ZipFile(stdio.BytesIO(data))
    infos = source.infolist()
    target = infos[which % len(infos)]
    out = stdio.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in infos:
            payload = source.read(info)
            if info is target:
                member = stdio.BytesIO(payload)
                np.lib.format.read_magic(member)
                np.lib.format.read_array_header_1_0(member)
                header = stdio.BytesIO()
                header_fields = {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}
                np.lib.format.write_array_header_1_0(header, header_fields)
                payload = header.getvalue() + payload[member.tell() :]
            archive.writestr(info.filename, payload)
    return out.getvalue()


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

_DESCRS = [
    "<f4",
    "<f8",
    ">f4",
    "<f2",
    "|b1",
    "<i8",
    "|u1",
    "<c8",
    "<U4",
    "|S3",
    "|V8",
    "<M8[s]",
    "|O",
]


def _mutation(size: int):
    positions = st.integers(0, size - 1)
    return st.one_of(
        st.tuples(
            st.just("flip"),
            st.lists(st.tuples(positions, st.integers(0, 255)), min_size=1, max_size=8),
        ),
        st.tuples(st.just("truncate"), positions),
        st.tuples(
            st.just("directory"),
            st.lists(
                st.tuples(st.integers(0, 4096), st.integers(0, 65535)), min_size=1, max_size=4
            ),
        ),
        st.tuples(
            st.just("npy"),
            st.tuples(
                st.integers(0, 50),
                st.lists(st.integers(-2, 2**40), max_size=5),
                st.sampled_from(_DESCRS),
                st.booleans(),
            ),
        ),
        st.tuples(
            st.just("metadata"),
            st.tuples(st.text(max_size=3) | st.sampled_from(_METADATA_KEYS), _json),
        ),
    )


_METADATA_KEYS = [
    "kind",
    "config",
    "model_config",
    "input_shape",
    "class_names",
    "normalization",
    "epoch",
    "epochs",
    "seed",
    "history",
    "optimizer",
    "callbacks",
    "rng",
    "format",
    "version",
]


def _apply(data: bytes, mutation, path) -> None:
    kind, arguments = mutation
    if kind == "flip":
        path.write_bytes(_flip(data, arguments))
    elif kind == "truncate":
        path.write_bytes(data[:arguments])
    elif kind == "directory":
        path.write_bytes(_edit_central_directory(data, arguments))
    elif kind == "npy":
        path.write_bytes(_edit_npy_header(data, *arguments))
    else:
        key, value = arguments
        path.write_bytes(data)
        arrays, metadata = io.load_arrays(path)
        metadata[key] = value
        io.save_arrays(path, arrays, metadata)


@given(data=st.data())
def test_mutated_model_files_raise_only_cnnlab_errors(valid_files, data):
    model_bytes, _, folder = valid_files
    path = folder / "model.npz"
    _apply(model_bytes, data.draw(_mutation(len(model_bytes))), path)
    _only_cnnlab_errors(path, (io.load_arrays, io.load_model))


@given(data=st.data())
def test_mutated_checkpoints_raise_only_cnnlab_errors(valid_files, data):
    _, checkpoint_bytes, folder = valid_files
    path = folder / "checkpoint.npz"
    _apply(checkpoint_bytes, data.draw(_mutation(len(checkpoint_bytes))), path)
    _only_cnnlab_errors(path, (load_checkpoint, model_from_checkpoint))


def test_unmutated_files_load(valid_files):
    model_bytes, checkpoint_bytes, folder = valid_files
    (folder / "model.npz").write_bytes(model_bytes)
    (folder / "checkpoint.npz").write_bytes(checkpoint_bytes)
    assert io.load_model(folder / "model.npz").class_names == ["a", "b", "c"]
    assert load_checkpoint(folder / "checkpoint.npz")["epoch"] == 1
