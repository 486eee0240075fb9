"""Named, overridable bounds on what an untrusted file may declare.

Every reader checks a file's declared sizes against these limits (and against
the file's own size) *before* it allocates, so a small hostile file can't make
cnnlab take gigabytes of memory or recurse without bound. The defaults fit
every model and data set cnnlab ships or trains (VGG-16's 138 M parameters
included). Raise one for a bigger model, for the whole process::

    import cnnlab.limits
    cnnlab.limits.LIMITS.max_array_bytes = 8 << 30

or for a block of code::

    with cnnlab.limits.override(max_array_bytes=8 << 30):
        model = load_model("giant.npz")

or from the environment, e.g. ``CNNLAB_MAX_ARRAY_BYTES=8589934592``: every
field reads ``CNNLAB_<FIELD NAME IN CAPITALS>`` once, at import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

from cnnlab.errors import LimitExceededError

__all__ = ["LIMITS", "Limits", "override"]


@dataclasses.dataclass
class Limits:
    """The bounds; each is checked by the reader named in its comment."""

    #: bytes of one array in a model or checkpoint file, once decompressed (io)
    max_array_bytes: int = 2 << 30
    #: bytes of all arrays of one model or checkpoint file together, decompressed (io)
    max_total_bytes: int = 4 << 30
    #: bytes of the JSON header of a model or checkpoint, and of run.json/history.json (io, runs)
    max_json_bytes: int = 16 << 20
    #: nesting depth of JSON objects and of layer configs (Sequential inside Sequential ...) (io, nn.config)
    max_nesting: int = 64
    #: entries in one model or checkpoint archive (io)
    max_entries: int = 10_000
    #: pixels of one image, width x height (data: images); Pillow's own bomb limit is 89.5 M
    max_image_pixels: int = 64_000_000
    #: bytes of one IDX data set once decompressed (data: idx)
    max_idx_bytes: int = 8 << 30

    def check(self, name: str, value: int, what: str) -> None:
        """Raise ``LimitExceededError`` when ``value`` exceeds limit ``name``; ``what`` names the file and field."""
        limit = getattr(self, name)
        if value > limit:
            raise LimitExceededError(
                f"{what} declares {value:,} which exceeds cnnlab.limits.{name} = {limit:,}; "
                f"if the file is trusted, raise it with cnnlab.limits.override({name}=...) "
                f"or CNNLAB_{name.upper()}"
            )


def _from_environment() -> Limits:
    limits = Limits()
    for field in dataclasses.fields(Limits):
        text = os.environ.get(f"CNNLAB_{field.name.upper()}")
        if text is None:
            continue
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"CNNLAB_{field.name.upper()} must be a whole number, received {text!r}") from None
        if value <= 0:
            raise ValueError(f"CNNLAB_{field.name.upper()} must be positive, received {text!r}")
        setattr(limits, field.name, value)
    return limits


LIMITS = _from_environment()


@contextlib.contextmanager
def override(**values: int):
    """Temporarily change limits by name: ``with override(max_nesting=200): ...``."""
    names = {field.name for field in dataclasses.fields(Limits)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TypeError(f"override: unknown limit(s) {unknown}; the limits are {sorted(names)}")
    saved = {name: getattr(LIMITS, name) for name in values}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"override: {name} must be a positive int, received {value!r}")
        setattr(LIMITS, name, value)
    try:
        yield LIMITS
    finally:
        for name, value in saved.items():
            setattr(LIMITS, name, value)
