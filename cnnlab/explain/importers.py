"""VGG weights the user already has: a torchvision ``state_dict`` file onto the zoo's VGG.

Formats, none of which runs code from the file:

- ``.safetensors``: read here (8-byte little-endian header length, a JSON header of
  {name: {dtype, shape, data_offsets}}, raw little-endian data); every field is checked
  against the file's size and ``cnnlab.limits`` before anything is allocated;
- ``.npz``: NumPy arrays, ``allow_pickle=False``, with cnnlab's archive checks;
- ``.pth`` / ``.pt``: ``torch.load(weights_only=True)`` (PyTorch's restricted unpickler that
  only rebuilds tensors), and only when torch is installed; otherwise convert the file.

Torchvision names the layers of ``features`` by index, a conv's ReLU and each pooling taking
an index too (features.0 conv1_1, .2 conv1_2, .4 pool, .5 conv2_1, ...), so the indices
alone give the configuration, and a reduced VGG maps as well as VGG-16 and VGG-19.
``classifier.0/3/6`` are the three Linear layers; their weight is (out, in), as cnnlab's
``Dense`` (no transpose), and torchvision's flatten is NCHW's, as cnnlab's ``Flatten``.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from pathlib import Path

import numpy as np

from cnnlab.errors import FileFormatError
from cnnlab.io import open_archive, open_regular_file, parse_json
from cnnlab.limits import LIMITS
from cnnlab.models.imagenet import VGG16_STAGES, VGG19_STAGES, vgg

__all__ = ["load_vgg_weights", "read_safetensors", "read_state_dict"]

_ARCHES = {"vgg16": VGG16_STAGES, "vgg19": VGG19_STAGES}
_SAFETENSORS_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "BF16": "<u2"}
_MAX_AXES = 8
_FEATURE = re.compile(r"features\.(\d+)\.(weight|bias)")
_LINEAR_INDICES = (0, 3, 6)  # Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear


def read_safetensors(path) -> dict[str, np.ndarray]:
    """{name: float32 array} of a ``.safetensors`` file, every declared field checked first.

    Raises ``FileFormatError`` (``LimitExceededError`` past ``cnnlab.limits``) naming the file.
    """
    path = Path(path)
    with open_regular_file(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        raw = handle.read(8)
        if len(raw) < 8:
            raise FileFormatError(path, f"not a safetensors file: {size} bytes, less than its "
                                        "8-byte header length")
        header_len = int.from_bytes(raw, "little")
        LIMITS.check("max_json_bytes", header_len, f"{path}: the safetensors header length")
        if 8 + header_len > size:
            raise FileFormatError(path, f"the header length {header_len:,} runs past the end of "
                                        f"the file ({size:,} bytes): truncated or not safetensors")
        try:
            text = handle.read(header_len).decode("utf-8")
        except UnicodeDecodeError as error:
            raise FileFormatError(path, f"the safetensors header is not UTF-8: {error}") from None
        header = parse_json(text, path, "the safetensors header", allow_nan=False)
        data_size = size - 8 - header_len
        entries = _checked_entries(path, header, data_size)
        arrays = {}
        for name, (dtype, shape, begin, end) in entries.items():
            handle.seek(8 + header_len + begin)
            data = handle.read(end - begin)
            if len(data) != end - begin:
                raise FileFormatError(path, f"tensor {name!r} is cut short")
            array = np.frombuffer(data, dtype=_SAFETENSORS_DTYPES[dtype]).reshape(shape)
            if dtype == "BF16":  # the top half of a float32
                array = (array.astype(np.uint32) << 16).view(np.float32)
            arrays[name] = array.astype(np.float32)
    return arrays



def _checked_entries(path, header, data_size: int) -> dict:
    """{name: (dtype, shape, begin, end)} with every field checked; the data must be exactly
    covered by the tensors, without overlaps (as the format requires)."""
    if not isinstance(header, dict):
        raise FileFormatError(path, f"the safetensors header is a {type(header).__name__}, "
                                    "not a JSON object")
    LIMITS.check("max_entries", len(header), f"{path}: the safetensors tensor count")
    entries, total = {}, 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        what = f"tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FileFormatError(path, f"{what}: expected {{dtype, shape, data_offsets}}, "
                                        f"received {str(info)[:200]}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _SAFETENSORS_DTYPES:
            raise FileFormatError(path, f"{what} has dtype {str(dtype)[:40]!r}; weights are read "
                                        f"as {', '.join(_SAFETENSORS_DTYPES)}")
        if (not isinstance(shape, list) or len(shape) > _MAX_AXES
                or not all(type(n) is int and n >= 0 for n in shape)):
            raise FileFormatError(path, f"{what} declares an impossible shape {str(shape)[:200]}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(n) is int for n in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_size):
            raise FileFormatError(path, f"{what} has data_offsets {str(offsets)[:100]} outside "
                                        f"the file's {data_size:,} bytes of data")
        nbytes = math.prod(shape) * np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
        LIMITS.check("max_array_bytes", nbytes, f"{path}: {what} of shape {tuple(shape)}")
        if offsets[1] - offsets[0] != nbytes:
            raise FileFormatError(path, f"{what} declares shape {tuple(shape)} of {dtype} "
                                        f"({nbytes:,} bytes) but data_offsets span "
                                        f"{offsets[1] - offsets[0]:,} bytes")
        total += nbytes
        LIMITS.check("max_total_bytes", total, f"{path}: the tensors together")
        entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != position:
            raise FileFormatError(path, f"tensor {name!r} starts at byte {begin:,} of the data, "
                                        f"expected {position:,} (overlap or gap)")
        position = end
    if position != data_size:
        raise FileFormatError(path, f"the tensors cover {position:,} of the {data_size:,} "
                                    "bytes of data")
    return entries


def read_state_dict(path) -> dict[str, np.ndarray]:
    """{name: array} from a ``.safetensors``, ``.npz`` or (torch installed) ``.pth`` file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return read_safetensors(path)
    if suffix == ".npz":
        with open_archive(path, header=False) as archive:
            return {name: archive.read(name) for name in archive.entries}
    if suffix in (".pth", ".pt"):
        return _read_torch(path)
    raise FileFormatError(path, f"unknown weights format {suffix or '(no suffix)'!r}; expected "
                                ".safetensors, .npz, or .pth/.pt (with PyTorch installed)")


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch  # lazy and optional: only a .pth needs it
    except ImportError:
        raise FileFormatError(path, "a .pth file needs PyTorch, which is not installed; convert "
                                    "it once where torch is (safetensors.torch.save_file, or "
                                    "numpy.savez of each tensor's .numpy()) and pass the "
                                    ".safetensors or .npz") from None
    with open_regular_file(path) as handle:  # torch.load has no bound of its own: the file's size is one
        LIMITS.check("max_total_bytes", os.fstat(handle.fileno()).st_size, f"{path}: the file")
    try:
        loaded = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - any refusal by the restricted unpickler
        raise FileFormatError(path, f"not a weights-only PyTorch file: "
                                    f"{type(error).__name__}: {str(error)[:300]}") from None
    for key in ("state_dict", "model"):  # checkpoints that wrap the state_dict
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict):
        raise FileFormatError(path, f"holds a {type(loaded).__name__}, not a state_dict")
    arrays = {}
    for name, value in loaded.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            arrays[str(name)] = value.detach().float().numpy().copy()
    return arrays


def _repeats_from_indices(indices: list[int]) -> list[int]:
    """Convolutions per stage from the convs' feature indices: a gap of 2 is conv, ReLU;
    a gap of 3 is conv, ReLU, pooling (a new stage)."""
    repeats = [1]
    for previous, index in itertools.pairwise(indices):
        if index - previous == 2:
            repeats[-1] += 1
        else:
            repeats.append(1)
    return repeats


def _expected(stages, arrays) -> dict:
    """{file name: (cnnlab name, shape)} for ``stages``, the head included when the file has
    any ``classifier.*`` tensor (its sizes read from the file where it has them)."""
    expected, index, conv, channels = {}, 0, 0, 3
    for filters, repeats in stages:
        for _ in range(repeats):
            layer = "conv2d" if conv == 0 else f"conv2d_{conv}"
            expected[f"features.{index}.weight"] = (f"{layer}.weight", (filters, channels, 3, 3))
            expected[f"features.{index}.bias"] = (f"{layer}.bias", (filters,))
            index, conv, channels = index + 2, conv + 1, filters
        index += 1
    head = [k for k in arrays if k.startswith("classifier.")]
    if head:
        hidden = _rows(arrays, "classifier.0.weight", 4096)
        classes = _rows(arrays, "classifier.6.weight", 1000)
        sizes = [(hidden, channels * 49), (hidden, hidden), (classes, hidden)]
        for i, (linear, shape) in enumerate(zip(_LINEAR_INDICES, sizes)):
            layer = "dense" if i == 0 else f"dense_{i}"
            expected[f"classifier.{linear}.weight"] = (f"{layer}.weight", shape)
            expected[f"classifier.{linear}.bias"] = (f"{layer}.bias", shape[:1])
    return expected


def _rows(arrays, name, default):
    """The first axis of a weight in the file (out features or filters), else ``default``."""
    array = arrays.get(name)
    return int(array.shape[0]) if array is not None and array.ndim >= 2 else default


def load_vgg_weights(path, arch: str | None = None):
    """A built VGG (a zoo ``Sequential``, float32) with the weights of a torchvision file.

    Args:
        path: a torchvision VGG ``state_dict`` as ``.safetensors``, ``.npz`` or ``.pth``.
        arch: "vgg16", "vgg19", or None: the configuration read from the file's names
            (a reduced VGG too). A file without ``classifier.*`` tensors gives the
            convolutions and pooling only (for Deep Dream and style features).
    Raises ``FileFormatError`` naming the file and every missing, mismatched or unexpected
    tensor (the first 40 of each kind).
    """
    path = Path(path)
    if arch is not None and arch not in _ARCHES:
        raise FileFormatError(path, f"unknown arch {arch!r}; expected one of "
                                    f"{', '.join(_ARCHES)} or None (read from the file)")
    arrays = {k: v for k, v in read_state_dict(path).items() if not k.endswith("num_batches_tracked")}
    conv_indices = sorted({int(m.group(1)) for k in arrays if (m := _FEATURE.fullmatch(k))})
    if arch is None:
        if not conv_indices:
            raise FileFormatError(path, f"no torchvision VGG tensors (features.N.weight) among "
                                        f"{_names(sorted(arrays))}")
        repeats = _repeats_from_indices(conv_indices)
        widths = [_rows(arrays, f"features.{i}.weight", 0) for i in conv_indices]
        stages, position = [], 0
        for count in repeats:
            stages.append((widths[position + count - 1], count))
            position += count
        name = next((n for n, s in _ARCHES.items() if tuple(stages) == s), "vgg")
    else:
        stages, name = _ARCHES[arch], arch
    expected = _expected(stages, arrays)
    missing = [k for k in expected if k not in arrays]
    mismatched = [f"{k} {tuple(arrays[k].shape)} (expected {expected[k][1]})"
                  for k in expected if k in arrays and tuple(arrays[k].shape) != expected[k][1]]
    unexpected = [k for k in arrays if k not in expected]
    if missing or mismatched or unexpected:
        parts = [f"{label}: {_names(items)}" for label, items in
                 (("missing", missing), ("mismatched", mismatched), ("unexpected", unexpected))
                 if items]
        raise FileFormatError(path, f"not the weights of a torchvision {name} "
                                    f"(stages {list(stages)}): " + "; ".join(parts))
    has_head = any(k.startswith("classifier.") for k in expected)
    classes = _rows(arrays, "classifier.6.weight", 1000) if has_head else None
    hidden = _rows(arrays, "classifier.0.weight", 4096)
    side = 7 * 2 ** len(stages)  # torchvision's head sees 7×7 maps
    model = vgg(stages, classes, hidden=hidden, name=name)
    _skip_initialisation(model)
    model.build((3, side, side))
    model.load_state_dict({cnnlab_name: arrays[k].astype(np.float32)
                           for k, (cnnlab_name, _) in expected.items()})
    # torchvision's ImageNet models take (x − mean) / std per channel of pixels in [0, 1]
    model.normalization = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    return model


def _skip_initialisation(model) -> None:
    """Zeros instead of random draws: every weight is overwritten (VGG-19 has 144 M)."""
    for layer in model.layers:
        if hasattr(layer, "kernel_initializer"):
            layer.kernel_initializer = "zeros"


def _names(items, limit: int = 40) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")

