"""Saving and loading arrays and models safely: ``.npz`` without pickle, written atomically.

File layout: a NumPy ``.npz`` (zip) archive holding the named arrays plus one
reserved entry, ``__cnnlab__``, a uint8 array of UTF-8 JSON:
``{"format": "cnnlab", "version": 1, "metadata": {...}}``. Nothing is ever
unpickled: object arrays are refused on save and ``np.load`` runs with
``allow_pickle=False``.

Writes are atomic: the archive goes to a temporary file in the destination's
directory, is flushed and fsync'ed, then ``os.replace``d over the destination,
so a crash or a failing write leaves the previous file intact and no partial
file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "cnnlab"
VERSION = 1
_META_KEY = "__cnnlab__"


class FileFormatError(ValueError):
    """A file is truncated, corrupt, or not a cnnlab file; the message names the file."""


def save_arrays(path, arrays: dict[str, np.ndarray], metadata: dict | None = None) -> None:
    """Write ``arrays`` and JSON-serialisable ``metadata`` to ``path`` (.npz), atomically.

    Raises ValueError for object arrays, non-JSON metadata or the reserved name
    ``__cnnlab__``; the destination is untouched when anything fails.
    """
    path = Path(path)
    checked = {}
    for name, array in arrays.items():
        if not isinstance(name, str) or not name or name == _META_KEY:
            raise ValueError(f"save_arrays: invalid array name {name!r} (reserved or empty) for {path}")
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise ValueError(
                f"save_arrays: array {name!r} has dtype {array.dtype}, which needs pickle; "
                f"only numeric arrays can be saved to {path}"
            )
        checked[name] = array
    try:
        header = json.dumps({"format": FORMAT, "version": VERSION, "metadata": metadata or {}})
    except (TypeError, ValueError) as error:
        raise ValueError(f"save_arrays: metadata for {path} is not JSON-serialisable: {error}") from None
    checked[_META_KEY] = np.frombuffer(header.encode("utf-8"), dtype=np.uint8)

    directory = path.parent if str(path.parent) else Path(".")
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **checked)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_directory(directory)


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


def load_arrays(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by ``save_arrays``: ``(arrays, metadata)``.

    Raises FileNotFoundError if ``path`` does not exist and FileFormatError
    (naming the file) if it is truncated, corrupt or not a cnnlab file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_arrays: no such file: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise FileFormatError(f"{path}: not a cnnlab file (a bare .npy array, not an .npz archive)")
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zipfile.LargeZipFile) as error:
        raise FileFormatError(f"{path}: not a readable cnnlab file (truncated or corrupt?): {error}") from None
    header = arrays.pop(_META_KEY, None)
    if header is None:
        raise FileFormatError(f"{path}: not a cnnlab file (no {_META_KEY} entry)")
    try:
        info = json.loads(header.astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FileFormatError(f"{path}: corrupt cnnlab header: {error}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise FileFormatError(f"{path}: not a cnnlab file (header format {info!r})")
    if not isinstance(info.get("version"), int) or info["version"] > VERSION:
        raise FileFormatError(
            f"{path}: written by a newer cnnlab (file version {info.get('version')!r}, this reads <= {VERSION})"
        )
    return arrays, info.get("metadata", {})


def save_model(model, path) -> None:
    """Save a built model: its config (architecture), weights and buffers, input shape, class names
    and input normalisation (``model.normalization``, set by ``fit``)."""
    if model.input_shape is None:
        raise ValueError(
            f"save_model: {type(model).__name__} is not built (no input_shape); call build(input_shape) "
            f"or run it once before saving to {path}"
        )
    import cnnlab

    metadata = {
        "kind": "model",
        "cnnlab_version": cnnlab.__version__,
        "config": model.get_config(),
        "input_shape": list(model.input_shape),
        "class_names": None if model.class_names is None else [str(c) for c in model.class_names],
        "normalization": _json_ready(getattr(model, "normalization", None)),
    }
    save_arrays(path, model.state_dict(), metadata)


def _json_ready(value):
    """NumPy scalars and arrays inside ``value`` as Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def load_model(path):
    """Rebuild a model saved by ``save_model`` (architecture from its config, then its weights).

    Raises FileFormatError naming the file, and the parameter and shapes, when
    the weights do not fit the architecture.
    """
    from cnnlab.nn import from_config

    arrays, metadata = load_arrays(path)
    if metadata.get("kind") != "model" or "config" not in metadata:
        raise FileFormatError(f"{path}: a cnnlab file, but not a model (kind {metadata.get('kind')!r})")
    try:
        model = from_config(metadata["config"])
        model.build(tuple(metadata["input_shape"]))
    except (ValueError, TypeError, KeyError) as error:
        raise FileFormatError(f"{path}: cannot rebuild the model from its config: {error}") from None
    model.class_names = metadata.get("class_names")
    model.normalization = metadata.get("normalization")
    try:
        model.load_state_dict(arrays)
    except ValueError as error:
        raise FileFormatError(f"{path}: the weights do not fit the architecture: {error}") from None
    return model


def save_weights(model, path) -> None:
    """Save only the weights and buffers of ``model`` (``load_weights`` puts them back)."""
    save_arrays(path, model.state_dict(), {"kind": "weights", "class": type(model).__name__})


def load_weights(model, path, strict: bool = True):
    """Load weights saved by ``save_weights`` or ``save_model`` into a built ``model``; returns it.

    Raises FileFormatError naming the file and the mismatching parameter or shape.
    """
    arrays, _ = load_arrays(path)
    try:
        model.load_state_dict(arrays, strict=strict)
    except ValueError as error:
        raise FileFormatError(f"{path}: the weights do not fit {type(model).__name__}: {error}") from None
    return model
