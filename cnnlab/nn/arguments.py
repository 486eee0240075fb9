"""A module's constructor arguments: normalised once on arrival, read back for configs and reprs.

Checks use ``cnnlab._checks``' wording ("Conv2D: stride must be ..., received
stride=0"): a wrong type raises TypeError, a value out of range ValueError.
"""

from __future__ import annotations

import inspect

import numpy as np

from cnnlab._checks import check_choice, check_int, check_type
from cnnlab.nn import init


def to_tuple(value, n: int, name: str, owner: str, minimum: int) -> tuple[int, ...]:
    """An int or ``n`` ints, each >= ``minimum``, as an ``n``-tuple (PyTorch's ``_pair``)."""
    what = ("an int" if n == 1 else f"an int or {n} ints") + f" >= {minimum}"
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{owner}: {name} must be {what}, received {name}={value!r}")
        items = value
    else:
        items = (value,) * n
    try:
        return tuple(check_int(v, owner, name, minimum=minimum) for v in items)
    except (TypeError, ValueError) as error:
        # Echo the whole argument, not the one item that failed.
        raise type(error)(f"{owner}: {name} must be {what}, received {name}={value!r}") from None


def check_initializer(name, owner: str, argument: str = "kernel_initializer") -> str:
    """``name`` if it names an initialiser of ``cnnlab.nn.init``."""
    check_type(name, str, owner, argument, "a name")
    return check_choice(name, sorted(init.INITIALIZERS), owner, argument)


def check_seed(seed, owner: str) -> int | None:
    """None, or ``seed`` as an int >= 0 (what ``numpy.random.default_rng`` accepts)."""
    return None if seed is None else check_int(seed, owner, "seed", minimum=0)


def as_input_shape(input_shape, owner: str) -> tuple[int, ...]:
    """A per-sample ``input_shape`` as a tuple of ints >= 1; TypeError or ValueError otherwise."""
    what = "a tuple of ints >= 1 (per sample, e.g. (1, 28, 28))"
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(
            f"{owner}: input_shape must be {what}, received input_shape={input_shape!r}"
        )
    try:
        return tuple(check_int(n, owner, "input_shape", minimum=1) for n in input_shape)
    except (TypeError, ValueError) as error:
        raise type(error)(
            f"{owner}: input_shape must be {what}, received input_shape={input_shape!r}"
        ) from None


def json_value(value):
    """Tuples become lists and NumPy scalars Python numbers, so configs are JSON-ready."""
    if isinstance(value, (tuple, list)):
        return [json_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


def _init_parameters(module) -> list[inspect.Parameter]:
    """The named parameters of ``type(module).__init__`` (not self, not *args or **kwargs)."""
    return [
        param for name, param in inspect.signature(type(module).__init__).parameters.items()
        if name != "self" and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
    ]


def init_arguments(module) -> dict:
    """Each ``__init__`` argument of ``module``, read from the attribute of the same name.

    Raises NotImplementedError naming the argument a subclass did not store.
    """
    config = {}
    for param in _init_parameters(module):
        if param.name not in module.__dict__ and not hasattr(type(module), param.name):
            raise NotImplementedError(
                f"{type(module).__name__}.get_config: argument '{param.name}' is not stored as an "
                "attribute of the same name; override get_config"
            )
        config[param.name] = json_value(getattr(module, param.name))
    return config


def _same_as_default(value, default) -> bool:
    if isinstance(value, (tuple, list)) and not isinstance(default, (tuple, list)):
        return all(v == default for v in value)
    if isinstance(value, (tuple, list)) and isinstance(default, (tuple, list)):
        return list(value) == list(default)
    return value == default


def non_default_arguments(module) -> list[str]:
    """``repr`` parts of the arguments that differ from their defaults (PyTorch's ``extra_repr``):
    the first required argument bare, the others as ``name=value``."""
    parts = []
    try:
        config = module.get_config()["config"]
    except NotImplementedError:
        return parts
    for param in _init_parameters(module):
        if param.name not in config or param.name not in module.__dict__:
            continue
        value = getattr(module, param.name)
        if param.default is inspect.Parameter.empty:
            parts.append(repr(value) if not parts else f"{param.name}={value!r}")
        elif not _same_as_default(value, param.default):
            parts.append(f"{param.name}={value!r}")
    return parts
