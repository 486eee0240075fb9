"""The registry of module classes that ``from_config`` can rebuild by name."""

from __future__ import annotations

_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` rebuildable by ``from_config`` (user modules too)."""
    existing = _REGISTRY.get(cls.__name__)
    if existing is not None and existing is not cls and existing.__module__.startswith("cnnlab."):
        raise ValueError(f"register: the name {cls.__name__!r} is taken by {existing.__module__}.{existing.__name__}")
    _REGISTRY[cls.__name__] = cls
    return cls


def registered() -> dict[str, type]:
    return dict(_REGISTRY)


def from_config(config: dict):
    """Rebuild a module from ``module.get_config()`` (``{"class_name": ..., "config": {...}}``)."""
    import cnnlab.nn  # noqa: F401 - registers the built-in layers

    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(
            "from_config: expected a dict with keys 'class_name' and 'config' (from get_config()), "
            f"received {type(config).__name__} with keys {sorted(config) if isinstance(config, dict) else '-'}"
        )
    cls = _REGISTRY.get(config["class_name"])
    if cls is None:
        raise ValueError(
            f"from_config: unknown module class {config['class_name']!r}; known: {sorted(_REGISTRY)} "
            "(decorate your own Module subclasses with cnnlab.nn.register)"
        )
    return cls.from_config(config["config"])
