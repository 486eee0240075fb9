"""What a model or checkpoint file may declare, checked before the model exists, and the rebuild.

Shared by ``cnnlab.io.load_model`` and ``cnnlab.checkpoint``: the input shape, class
names and input normalisation are validated field by field; the weights the config
declares (from shape logic alone, ``cnnlab.nn.config.declared_weights``) are compared
with the arrays the archive declares *before* any array is read or any weight is
created; each array read must be a finite float tensor. Every problem is a
``FileFormatError`` naming the file and the field or tensor.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from cnnlab.errors import CnnlabError, FileFormatError
from cnnlab.nn.config import declared_weights, from_config, shape_only_from_config

__all__ = [
    "build_with_weights",
    "check_class_names",
    "check_input_shape",
    "check_model_fields",
    "check_normalization",
    "check_weight",
    "compare_entries",
    "read_weights",
    "rebuild_model",
]

_MAX_INPUT_AXES = 8
_MAX_INPUT_SIZE = 2**31
_MAX_CLASS_NAME = 1000


def _naming(path, error: CnnlabError, field: str) -> FileFormatError:
    """``error`` (from_config's: it knows no file) again, naming the file and field; same type."""
    kind = type(error) if isinstance(error, FileFormatError) else FileFormatError
    return kind(path, f"{field}: {error}")


def check_input_shape(path, value, field: str = "input_shape") -> tuple[int, ...] | None:
    """None, or a per-sample shape of 1 to 8 whole numbers >= 1."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= _MAX_INPUT_AXES
        or not all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= _MAX_INPUT_SIZE
            for n in value
        )
    ):
        raise FileFormatError(
            path,
            f"{field} must be a list of 1 to {_MAX_INPUT_AXES} whole numbers >= 1, "
            f"received {value!r:.200}",
        )
    return tuple(value)


def check_class_names(
    path, value, outputs: int | None, field: str = "class_names"
) -> list[str] | None:
    """None, or a list of strings, at least one per output of the model."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(name, str) and len(name) <= _MAX_CLASS_NAME for name in value
    ):
        raise FileFormatError(path, f"{field} must be a list of strings, received {value!r:.200}")
    if outputs is not None and len(value) < outputs:
        raise FileFormatError(
            path, f"{field} names {len(value)} classes but the model has {outputs} outputs"
        )
    return list(value)


def check_normalization(
    path, value, channels: int | None, field: str = "normalization"
) -> dict | None:
    """None, or ``{"mean": m, "std": s}``: finite numbers (or one per channel), every std > 0."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"mean", "std"}:
        shown = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise FileFormatError(
            path,
            f"{field} must be an object with exactly 'mean' and 'std', received {shown!r:.200}",
        )
    checked = {}
    for key in ("mean", "std"):
        item = value[key]
        numbers_ = item if isinstance(item, list) else [item]
        if (
            not numbers_
            or (isinstance(item, list) and channels is not None and len(item) != channels)
            or not all(
                isinstance(n, numbers.Real) and not isinstance(n, bool) and math.isfinite(n)
                for n in numbers_
            )
        ):
            raise FileFormatError(
                path,
                f"{field}['{key}'] must be a finite number (or one per input channel), "
                f"received {item!r:.200}",
            )
        if key == "std" and min(numbers_) <= 0:
            raise FileFormatError(path, f"{field}['std'] must be > 0, received {item!r:.200}")
        checked[key] = [float(n) for n in item] if isinstance(item, list) else float(item)
    return checked


def check_weight(path, name: str, array: np.ndarray) -> np.ndarray:
    """``array`` if it is a real floating tensor of finite values, else FileFormatError."""
    if array.dtype.kind != "f":
        raise FileFormatError(
            path, f"tensor {name!r} has dtype {array.dtype}; weights must be real floating point"
        )
    if not np.isfinite(array).all():
        raise FileFormatError(path, f"tensor {name!r} holds NaN or infinite values")
    return array


def expected_weights(path, config, input_shape, field: str):
    """(shape-only skeleton, declared weights or None) of a config, nothing allocated."""
    try:
        skeleton = shape_only_from_config(config)
        return skeleton, declared_weights(skeleton, input_shape)
    except CnnlabError as error:
        raise _naming(path, error, field) from None
    except (ValueError, TypeError, OverflowError) as error:
        raise FileFormatError(
            path, f"{field} does not fit input_shape {input_shape}: {error}"
        ) from None


def compare_entries(path, declared, entries: dict, prefix: str) -> None:
    """Refuse arrays whose names or shapes differ from the weights the architecture declares."""
    present = {
        key[len(prefix) :]: entry for key, entry in entries.items() if key.startswith(prefix)
    }
    shapes = {name: shape for name, shape, _ in declared}
    missing = [name for name in shapes if name not in present]
    unexpected = [name for name in present if name not in shapes]
    problems = [
        f"parameter '{name}' has shape {shapes[name]} in the architecture "
        f"but {entry.shape} in the file"
        for name, entry in present.items()
        if name in shapes and shapes[name] != entry.shape
    ]
    if missing or unexpected:
        problems.insert(
            0, f"names do not match: missing {missing[:10]}, unexpected {unexpected[:10]}"
        )
    if problems:
        raise FileFormatError(
            path, "the weights do not fit the architecture: " + "; ".join(problems[:10])
        )


def check_model_fields(archive, metadata: dict, config_field: str, prefix: str) -> dict:
    """Validate the model part of an archive's metadata against its arrays, reading none of them.

    Returns ``{"input_shape", "class_names", "normalization", "declared"}``; ``declared``
    is ``(name, shape, trainable)`` per weight, or None for a custom module whose
    weights only a forward pass would tell.
    """
    path = archive.path
    input_shape = check_input_shape(path, metadata.get("input_shape"))
    skeleton, declared = expected_weights(
        path, metadata.get(config_field), input_shape, config_field
    )
    if declared is not None:
        compare_entries(path, declared, archive.entries, prefix)
    outputs = None
    if (
        input_shape is not None and declared is not None
    ):  # shape logic alone gives the output shape
        output_shape = tuple(skeleton.compute_output_shape(input_shape))
        outputs = output_shape[0] if len(output_shape) == 1 else None
    channels = None if input_shape is None else input_shape[0]
    return {
        "input_shape": input_shape,
        "class_names": check_class_names(path, metadata.get("class_names"), outputs),
        "normalization": check_normalization(path, metadata.get("normalization"), channels),
        "declared": declared,
    }


def read_weights(archive, prefix: str) -> dict[str, np.ndarray]:
    """Every array named ``prefix + name``, by ``name``, each a finite float tensor."""
    return {
        key[len(prefix) :]: check_weight(archive.path, key, archive.read(key))
        for key in archive.entries
        if key.startswith(prefix)
    }


def rebuild_model(archive, metadata: dict, config_field: str, prefix: str):
    """The model an archive's metadata describes, with its weights (arrays ``prefix + name``).

    The order is what keeps a hostile file harmless: validate the metadata, compare
    the declared weights with the archive's declared arrays, read and check the
    arrays, and only then build the model (whose allocation now matches the file).
    """
    fields = check_model_fields(archive, metadata, config_field, prefix)
    weights = read_weights(archive, prefix)
    model = build_with_weights(
        archive.path, metadata[config_field], fields["input_shape"], weights, config_field
    )
    model.class_names = fields["class_names"]
    model.normalization = fields["normalization"]
    return model


def build_with_weights(path, config, input_shape, weights: dict, config_field: str = "config"):
    """``from_config`` + ``build`` + ``load_state_dict``; failures name the file."""
    try:
        model = from_config(config)
        if input_shape is not None:
            model.build(input_shape)
    except CnnlabError as error:
        raise _naming(path, error, config_field) from None
    except (ValueError, TypeError, OverflowError, KeyError, AttributeError) as error:
        raise FileFormatError(
            path, f"cannot rebuild the model from its {config_field}: {error}"
        ) from None
    try:
        model.load_state_dict(weights)
    except ValueError as error:
        raise FileFormatError(path, f"the weights do not fit the architecture: {error}") from None
    return model
