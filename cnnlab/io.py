"""Saving and loading arrays and models safely: ``.npz`` without pickle, bounded, atomic.

File layout: a NumPy ``.npz`` (zip) archive holding the named arrays plus one
reserved entry, ``__cnnlab__``, a uint8 array of UTF-8 JSON:
``{"format": "cnnlab", "version": 1, "metadata": {...}}``.

Writes go through ``cnnlab.atomic``: a fresh temporary file in the destination's
folder, renamed over it, never written through a symlink, with the umask's ordinary
permissions. A crash or a failing write leaves the previous file intact.

Every file read is untrusted input (the model: PyTorch's ``weights_only=True`` and
safetensors' no-code format). Nothing is ever unpickled and no string from a file
picks a callable. The archive is read entry by entry: entries flagged encrypted,
compressed other than stored/deflate or needing a newer zip version are refused;
each ``.npy`` header is parsed first and its declared size checked against the
entry's size and ``cnnlab.limits`` (max_entries, max_array_bytes, max_total_bytes,
max_json_bytes) before an array is allocated; a model's arrays are compared with the
weights its config declares before they are read; JSON nesting is measured before
``json.loads`` recurses (max_nesting). Every problem, a missing file included, is a
``FileFormatError`` (``LimitExceededError`` for a limit) naming the file: the only
exceptions ``load_arrays``, ``load_model`` and ``load_weights`` let out.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import cnnlab
from cnnlab.atomic import atomic_writer
from cnnlab.errors import CnnlabError, FileFormatError, LimitExceededError
from cnnlab.limits import LIMITS
from cnnlab.model_file import check_weight, rebuild_model

__all__ = [
    "FORMAT",
    "VERSION",
    "ArrayEntry",
    "FileFormatError",
    "LimitExceededError",
    "load_arrays",
    "load_model",
    "load_weights",
    "open_archive",
    "open_regular_file",
    "parse_json",
    "save_arrays",
    "save_model",
    "save_weights",
]

FORMAT = "cnnlab"
VERSION = 1
_META_KEY = "__cnnlab__"
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_MAX_ZIP_VERSION = 63  # what CPython's zipfile can extract (its MAX_EXTRACT_VERSION)
_NPY_HEADER_BYTES = 10_000  # numpy's own bound on a .npy header
_MAX_AXES = 32
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)  # linear: no backtracking


def save_arrays(path, arrays: dict[str, np.ndarray], metadata: dict | None = None) -> None:
    """Write ``arrays`` and JSON-serialisable ``metadata`` to ``path`` (.npz), atomically.

    Raises ValueError for object arrays, non-JSON metadata or the reserved name
    ``__cnnlab__``; the destination is untouched when anything fails.
    """
    path = Path(path)
    checked = {}
    for name, array in arrays.items():
        if not isinstance(name, str) or not name or name == _META_KEY:
            raise ValueError(
                f"save_arrays: invalid array name {name!r} (reserved or empty) for {path}"
            )
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
        raise ValueError(
            f"save_arrays: metadata for {path} is not JSON-serialisable: {error}"
        ) from None
    checked[_META_KEY] = np.frombuffer(header.encode("utf-8"), dtype=np.uint8)
    with atomic_writer(path) as handle:
        np.savez(handle, allow_pickle=False, **checked)


@dataclass(frozen=True)
class ArrayEntry:
    """What one ``.npy`` entry of an archive declares (checked, not yet read)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int


@contextlib.contextmanager
def _translated(path):
    """zipfile, zlib and numpy raise a dozen undocumented types on hostile bytes: name the file."""
    try:
        yield
    except CnnlabError:
        raise
    except Exception as error:  # noqa: BLE001 - the boundary: any parse failure names the file
        raise FileFormatError(
            path,
            f"not a readable cnnlab file (truncated or corrupt?): {type(error).__name__}: {error}",
        ) from None


class _Archive:
    """An open cnnlab archive: entries checked, header parsed, arrays read on demand."""

    def __init__(self, path, header: bool = True):
        self.path = Path(path)
        self._handle = open_regular_file(self.path)
        try:
            with _translated(self.path):
                if not zipfile.is_zipfile(self._handle):
                    raise FileFormatError(
                        self.path,
                        "not a cnnlab file: not a zip archive (cnnlab models and checkpoints "
                        "are .npz archives; nothing else is read, and nothing is ever unpickled)",
                    )
                try:
                    self._zip = zipfile.ZipFile(self._handle)
                except NotImplementedError as error:  # zipfile refuses versions above its own
                    raise FileFormatError(
                        self.path, f"an entry needs a newer zip reader ({error})"
                    ) from None
                self._infos = self._check_directory(os.fstat(self._handle.fileno()).st_size)
                self.entries = {
                    key: self._declared(key, info) for key, info in self._infos.items()
                }
                if header:
                    self.metadata = self._read_header()
                    del self.entries[_META_KEY]
                else:  # a plain NumPy .npz (weights from elsewhere): every entry is an array
                    self.metadata = {}
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._zip.close()
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _check_directory(self, file_size: int) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        LIMITS.check("max_entries", len(infos), f"{self.path}: the archive's entry count")
        found, total = {}, 0
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                raise FileFormatError(self.path, f"entry {name!r} is not a .npy array")
            key = name[: -len(".npy")]
            what = f"entry {name!r}"
            if key in found:
                raise FileFormatError(self.path, f"{what} appears twice")
            if info.flag_bits & 0x1:
                raise FileFormatError(
                    self.path, f"{what} is flagged encrypted; cnnlab files never are"
                )
            if info.compress_type not in _METHODS:
                raise FileFormatError(
                    self.path,
                    f"{what} uses compression method {info.compress_type}; cnnlab reads only "
                    "stored (0) and deflate (8) entries",
                )
            if info.extract_version > _MAX_ZIP_VERSION:
                raise FileFormatError(
                    self.path,
                    f"{what} needs zip version {info.extract_version / 10:.1f} to extract",
                )
            if info.compress_size > file_size or (
                info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size
            ):
                raise FileFormatError(self.path, f"{what} declares more bytes than the file holds")
            limit = "max_json_bytes" if key == _META_KEY else "max_array_bytes"
            LIMITS.check(limit, info.file_size, f"{self.path}: {what}")
            total += info.file_size
            LIMITS.check("max_total_bytes", total, f"{self.path}: the archive's arrays together")
            found[key] = info
        return found

    def _declared(self, key: str, info: zipfile.ZipInfo) -> ArrayEntry:
        """Parse the entry's .npy header; check its declaration against the entry and limits."""
        with self._zip.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member, _NPY_HEADER_BYTES)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member, _NPY_HEADER_BYTES)
            else:
                raise FileFormatError(
                    self.path, f"array {key!r} has .npy format version {version}"
                )
            header_bytes = member.tell()
        what = f"array {key!r}"
        if dtype.hasobject:
            raise FileFormatError(
                self.path, f"{what} has dtype {dtype}, which needs pickle: refused"
            )
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
            raise FileFormatError(self.path, f"{what} has dtype {dtype}, not a plain numeric type")
        if len(shape) > _MAX_AXES or any(n < 0 for n in shape):
            raise FileFormatError(self.path, f"{what} declares an impossible shape {shape}")
        nbytes = math.prod(shape) * dtype.itemsize
        LIMITS.check("max_array_bytes", nbytes, f"{self.path}: {what} of shape {shape}")
        if header_bytes + nbytes != info.file_size:
            raise FileFormatError(
                self.path,
                f"{what} declares shape {shape} and dtype {dtype} ({nbytes:,} bytes) but its "
                f"entry holds {info.file_size - header_bytes:,} bytes",
            )
        return ArrayEntry(key, tuple(shape), dtype, nbytes)

    def read(self, key: str) -> np.ndarray:
        """The array ``key``, read within the size its header declared."""
        with _translated(self.path), self._zip.open(self._infos[key]) as member:
            array = np.lib.format.read_array(
                member, allow_pickle=False, max_header_size=_NPY_HEADER_BYTES
            )
            if member.read(1):  # reaching the end makes zipfile check the CRC too
                raise FileFormatError(self.path, f"array {key!r} has trailing bytes")
        return array

    def _read_header(self) -> dict:
        if _META_KEY not in self.entries:
            raise FileFormatError(self.path, f"not a cnnlab file (no {_META_KEY} entry)")
        entry = self.entries[_META_KEY]
        if entry.dtype != np.uint8 or len(entry.shape) != 1:
            raise FileFormatError(
                self.path, f"corrupt cnnlab header: {entry.dtype} of shape {entry.shape}"
            )
        try:
            text = self.read(_META_KEY).tobytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise FileFormatError(self.path, f"corrupt cnnlab header: {error}") from None
        info = parse_json(text, self.path, "the cnnlab header")
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            shown = info.get("format") if isinstance(info, dict) else type(info).__name__
            raise FileFormatError(self.path, f"not a cnnlab file (header format {shown!r})")
        version = info.get("version")
        if (
            isinstance(version, bool)
            or not isinstance(version, int)
            or not 1 <= version <= VERSION
        ):
            raise FileFormatError(
                self.path,
                f"file version {version!r} is not one this cnnlab reads (1 to {VERSION}; a newer "
                "cnnlab may have written it)",
            )
        metadata = info.get("metadata", {})
        if not isinstance(metadata, dict):
            raise FileFormatError(
                self.path, f"the metadata is a {type(metadata).__name__}; expected a JSON object"
            )
        return metadata


def open_regular_file(path: Path):
    """``path`` opened for reading in binary; a FileFormatError naming it when it is missing,
    unreadable or not a regular file."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):  # a FIFO would block, a device would never end
            raise FileFormatError(path, "not a regular file")
        return open(path, "rb")  # closed by _Archive.close
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except OSError as error:
        raise FileFormatError(path, f"cannot be read: {error.strerror or error}") from None


def open_archive(path, header: bool = True) -> _Archive:
    """Open a cnnlab ``.npz`` to read (a context manager): ``.metadata``, ``.entries``, ``.read``.

    ``entries`` maps each array name (the header entry aside) to its ``ArrayEntry``
    (shape, dtype, bytes) as declared and checked; no array is read until ``read(name)``.
    ``header=False`` opens a plain NumPy ``.npz`` (no cnnlab header, same checks).
    Raises ``FileFormatError``.
    """
    return _Archive(path, header)


def parse_json(text: str, path, what: str, *, allow_nan: bool = True):
    """``json.loads`` of untrusted ``text``, its nesting measured first against ``max_nesting``.

    ``allow_nan=False`` refuses the NaN/Infinity constants that Python's JSON writer emits.
    """
    LIMITS.check("max_json_bytes", len(text), f"{path}: {what}")
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    LIMITS.check("max_nesting", deepest, f"{path}: {what}'s JSON nesting")
    try:
        return json.loads(text, parse_constant=None if allow_nan else _reject_constant)
    except (
        ValueError,
        RecursionError,
    ) as error:  # ValueError: bad JSON, or an int of 5,000 digits
        raise FileFormatError(path, f"{what} is not valid JSON: {error}") from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def load_arrays(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by ``save_arrays``: ``(arrays, metadata)``.

    Raises ``FileFormatError`` naming the file if it is missing, truncated, corrupt,
    hostile or not a cnnlab file (``LimitExceededError`` when it declares more than
    ``cnnlab.limits`` allows).
    """
    with open_archive(path) as archive:
        arrays = {key: archive.read(key) for key in archive.entries}
        return arrays, archive.metadata


def save_model(model, path) -> None:
    """Save a built model: its config (architecture), weights and buffers, input shape, class names
    and input normalisation (``model.normalization``, set by ``fit``)."""
    if not getattr(model, "built", False):
        raise ValueError(
            f"save_model: {type(model).__name__} is not built; call build(input_shape) "
            f"or run it once before saving to {path}"
        )
    input_shape = getattr(model, "input_shape", None)
    metadata = {
        "kind": "model",
        "cnnlab_version": cnnlab.__version__,
        "config": model.get_config(),
        "input_shape": None if input_shape is None else list(input_shape),
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

    Raises ``FileFormatError`` naming the file and what was wrong: a config that does
    not parse, weights that do not fit the architecture (checked before building),
    non-finite or non-float weights, a bad input shape, class names or normalisation.
    """
    with open_archive(path) as archive:
        metadata = archive.metadata
        if metadata.get("kind") != "model" or "config" not in metadata:
            raise FileFormatError(
                path, f"a cnnlab file, but not a model (kind {metadata.get('kind')!r})"
            )
        return rebuild_model(archive, metadata, config_field="config", prefix="")


def save_weights(model, path) -> None:
    """Save only the weights and buffers of ``model`` (``load_weights`` puts them back)."""
    save_arrays(path, model.state_dict(), {"kind": "weights", "class": type(model).__name__})


def load_weights(model, path, strict: bool = True):
    """Load weights saved by ``save_weights`` or ``save_model`` into a built ``model``; returns it.

    Raises FileFormatError naming the file and the mismatching parameter or shape;
    the file's shapes are compared with the model's before any array is read.
    """
    with open_archive(path) as archive:
        targets = dict(model.named_parameters())
        shapes = {name: tuple(p.shape) for name, p in targets.items()}
        shapes.update((name, tuple(b.shape)) for name, b in model.named_buffers())
        present = archive.entries
        mismatched = [
            f"parameter '{k}' has shape {shapes[k]} in the model but {e.shape} in the file"
            for k, e in present.items()
            if k in shapes and shapes[k] != e.shape
        ]
        missing = [k for k in shapes if k not in present]
        unexpected = [k for k in present if k not in shapes]
        if strict and (missing or unexpected):
            mismatched.insert(0, f"names do not match: missing {missing}, unexpected {unexpected}")
        if mismatched:
            raise FileFormatError(
                path, f"the weights do not fit {type(model).__name__}: " + "; ".join(mismatched)
            )
        arrays = {k: check_weight(path, k, archive.read(k)) for k in present if k in shapes}
    try:
        model.load_state_dict(arrays, strict=strict)
    except ValueError as error:
        raise FileFormatError(
            path, f"the weights do not fit {type(model).__name__}: {error}"
        ) from None
    return model
