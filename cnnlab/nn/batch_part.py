"""Which rows of a batch this process holds, in data-parallel training.

When N processes each run part of one batch (``cnnlab.distributed``), a layer that draws
random numbers per sample (``Dropout``) must draw what one process running the whole
batch would draw, and keep its rows: then N processes with batch B train exactly as one
with batch N·B. The training loop says which rows are here with ``batch_part``; outside it
``current_batch_part()`` is None and layers draw for the batch they see.
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["batch_part", "current_batch_part"]

_local = threading.local()


def current_batch_part() -> tuple[int, int] | None:
    """``(offset, total)``: this process holds rows offset, offset + 1, … of a batch of total."""
    return getattr(_local, "part", None)


@contextlib.contextmanager
def batch_part(offset: int, total: int):
    """Within the block, the batch seen is rows ``offset``… of one of ``total`` rows."""
    previous = current_batch_part()
    _local.part = (int(offset), int(total))
    try:
        yield
    finally:
        _local.part = previous
