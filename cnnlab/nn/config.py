"""Rebuilding modules from configs: the registry of classes ``from_config`` may name; the parser.

A config often comes from a file, so ``from_config`` treats it as untrusted data:

- a class is picked only from the registry (the allow-list: cnnlab's layers and the
  classes a user decorated with ``register``), never looked up elsewhere by name;
- nesting (Sequential inside Sequential ...) and the number of module configs are
  capped by ``cnnlab.limits`` (max_nesting, max_entries) before anything recurses;
- every problem is a ``cnnlab.errors.FileFormatError`` naming the class and what was
  wrong, whatever the layer's own check raised; a value of the wrong type is a
  ``ConfigTypeError``, both that and a TypeError (as ``cnnlab._checks`` raises).

``shape_only_from_config`` and ``declared_weights`` let a loader compare what a config
would allocate with what a file holds *before* any weight exists.
"""

from __future__ import annotations

import math
import threading

from cnnlab._checks import check_int
from cnnlab.errors import CnnlabError, FileFormatError
from cnnlab.limits import LIMITS
from cnnlab.nn.layer import Layer

__all__ = [
    "ConfigTypeError",
    "declared_weights",
    "from_config",
    "register",
    "registered",
    "shape_only_from_config",
]

_REGISTRY: dict[str, type] = {}

#: arguments with which a built-in layer creates its weights in ``__init__`` (eagerly)
_EAGER_ARGUMENTS = ("in_features", "in_channels", "num_features")

# Errors a layer's constructor may raise on bad values; all of them become FileFormatError.
_CONSTRUCTION_ERRORS = (
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
    IndexError,
    OverflowError,
    ZeroDivisionError,
    NotImplementedError,
)

_local = threading.local()


class ConfigTypeError(FileFormatError, TypeError):
    """A config holds a value of the wrong type: a cnnlab error that is also a TypeError."""  # depth of the from_config calls in progress, shape-only mode


def register(cls: type) -> type:
    """Class decorator: make ``cls`` rebuildable by ``from_config`` (user modules too)."""
    existing = _REGISTRY.get(cls.__name__)
    if existing is not None and existing is not cls and existing.__module__.startswith("cnnlab."):
        raise ValueError(
            f"register: the name {cls.__name__!r} is taken by "
            f"{existing.__module__}.{existing.__name__}"
        )
    _REGISTRY[cls.__name__] = cls
    return cls


def registered() -> dict[str, type]:
    return dict(_REGISTRY)


def from_config(config: dict):
    """Rebuild a module from ``module.get_config()`` (``{"class_name": ..., "config": {...}}``).

    Raises ``FileFormatError`` (a ValueError; ``LimitExceededError`` for a config nested
    deeper than ``cnnlab.limits`` allows) naming the class and the problem.
    """
    import cnnlab.nn  # noqa: F401 - registers the built-in layers (cnnlab.nn imports this module)

    depth = getattr(_local, "depth", 0)
    if depth == 0:
        _check_size(config)
    _local.depth = depth + 1
    try:
        return _build(config)
    finally:
        _local.depth = depth


def shape_only_from_config(config: dict):
    """Like ``from_config``, but no built-in layer creates weights: for ``declared_weights``.

    A layer given its input size (``Dense(in_features=...)``, ``Conv2D(in_channels=...)``,
    ``BatchNorm(num_features=...)``) keeps that size as an attribute, so shape checks
    see it, but allocates nothing. Such a module is for shape logic only.
    """
    previous = getattr(_local, "shape_only", False)
    _local.shape_only = True
    try:
        return from_config(config)
    finally:
        _local.shape_only = previous


def _check_size(config) -> None:
    """Cap the nesting depth and the number of module configs, without recursing."""
    deepest, modules = 0, 0
    stack = [(config, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            modules += "class_name" in value
            children = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        LIMITS.check("max_nesting", deepest, "from_config: the config's nesting depth")
        LIMITS.check("max_entries", modules, "from_config: the config's module count")
        stack.extend((child, depth + 1) for child in children)


def _build(config):
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        keys = sorted(map(str, config)) if isinstance(config, dict) else "-"
        raise ConfigTypeError(
            "from_config: expected a dict with keys 'class_name' and 'config' (get_config()), "
            f"received {type(config).__name__} with keys {keys}"
        )
    name, arguments = config["class_name"], config["config"]
    if not isinstance(name, str):
        raise ConfigTypeError(f"from_config: class_name must be a str, received {name!r:.100}")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise FileFormatError(
            f"from_config: unknown module class {name!r}; known: {sorted(_REGISTRY)} "
            "(decorate your own Module subclasses with cnnlab.nn.register)"
        )
    if not isinstance(arguments, dict) or not all(isinstance(key, str) for key in arguments):
        raise ConfigTypeError(
            f"{name}.from_config: config must be a dict of argument names to values, "
            f"received {type(arguments).__name__}"
        )
    arguments = dict(arguments)
    try:
        if arguments.get("seed") is not None:
            check_int(arguments["seed"], name, "seed", 0, 2**63 - 1)
        deferred = {}
        if cls.__module__.startswith("cnnlab."):
            for key in _EAGER_ARGUMENTS:
                if arguments.get(key) is not None:
                    deferred[key] = check_int(arguments[key], name, key, 1)
        lazy = {**arguments, **dict.fromkeys(deferred)}
        module = cls.from_config(lazy)
        if deferred and getattr(_local, "shape_only", False):
            for key, value in deferred.items():
                setattr(module, key, value)
        elif deferred:
            _check_eager_weights(module, name, deferred)
            module = cls.from_config(arguments)
    except CnnlabError:
        raise
    except _CONSTRUCTION_ERRORS as error:
        kind = ConfigTypeError if isinstance(error, TypeError) else FileFormatError
        raise kind(f"from_config: cannot build {name}: {error}") from None
    return module


def _check_eager_weights(layer, name: str, sizes: dict) -> None:
    """Bound what a layer given its input size would allocate in ``__init__``, before it does."""
    size = next(iter(sizes.values()))
    total = 0
    for spec in layer.weight_specs((size,)):
        nbytes = math.prod(spec.shape) * layer._dtype.itemsize
        total += nbytes
        LIMITS.check("max_array_bytes", nbytes, f"from_config: {name}'s {spec.name} {spec.shape}")
    LIMITS.check("max_total_bytes", total, f"from_config: {name}'s weights")


def declared_weights(module, input_shape) -> list[tuple[str, tuple[int, ...], bool]] | None:
    """``(dotted name, shape, trainable)`` of every weight ``module`` would create, in order.

    Computed from shape logic alone (nothing is allocated), for per-sample
    ``input_shape``; with ``input_shape`` None only layers given their input size
    (``in_features`` ...) can declare weights. Returns None when some module can
    only tell by running (a custom module that is neither a Layer nor a Sequential).
    Raises ValueError naming the layer when the shapes do not fit together.
    """
    found: list[tuple[str, tuple[int, ...], bool]] = []
    try:
        _walk(module, "", None if input_shape is None else tuple(input_shape), found)
    except _Unknown:
        return None
    return found


class _Unknown(Exception):
    """A module whose weights can only be known by building it."""


def _walk(module, prefix: str, shape, found: list) -> tuple[int, ...] | None:
    """Append ``module``'s weights to ``found``; return its output shape (None: unknown)."""
    from cnnlab.nn.container import (  # container imports this module: import at use
        Parallel,
        Sequential,
    )

    if isinstance(module, Sequential):
        for name, layer in module.named_layers():
            shape = _walk(layer, f"{prefix}.{name}" if prefix else name, shape, found)
        return shape
    if isinstance(module, Parallel):  # every branch sees the same input
        shapes = [_walk(branch, f"{prefix}.{name}" if prefix else name, shape, found)
                  for name, branch in module.named_branches()]
        return None if None in shapes else module.concatenated_shape(shapes)
    if not isinstance(module, Layer):
        raise _Unknown
    layer_input = shape
    if layer_input is None:
        size = next(
            (
                getattr(module, key, None)
                for key in _EAGER_ARGUMENTS
                if getattr(module, key, None) is not None
            ),
            None,
        )
        layer_input = None if size is None else (int(size),)
    declares = type(module).weight_specs is not Layer.weight_specs
    if declares and layer_input is None:
        raise _Unknown
    if layer_input is not None:
        for spec in module.weight_specs(layer_input):
            found.append(
                (
                    f"{prefix}.{spec.name}" if prefix else spec.name,
                    tuple(spec.shape),
                    spec.trainable,
                )
            )
    return None if shape is None else tuple(module.compute_output_shape(shape))
