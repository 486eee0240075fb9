"""The process-wide stream of layers built at construction without a seed, and ``manual_seed``.

A layer given ``in_channels``/``in_features`` creates its weights in ``__init__``,
before any model (and so any model seed) can reach it. Without its own ``seed=``
it takes the next seed of this stream: ``(base, kind, n)`` for the n-th such
layer of its kind since the process started or since ``manual_seed(base)``.
Base 0 is the default, so ``manual_seed(0)`` gives the weights a fresh process gives.
"""

from __future__ import annotations

import threading

from cnnlab._checks import check_int

# Which family of layers a stream belongs to; part of every seed drawn from it.
CONV_STREAM = 1
DENSE_STREAM = 2

_lock = threading.Lock()
_base = 0
_created: dict[int, int] = {}  # kind -> layers of that kind seeded so far


def manual_seed(seed: int) -> None:
    """Restart the stream that layers built at construction without a seed draw from.

    As ``torch.manual_seed``: call it at the top of a script or notebook cell, and
    the layers that cell creates eagerly (``Dense(10, in_features=64)``,
    ``Conv2D(8, 3, in_channels=1)``) get the same weights on every re-run, whatever
    the process created before. Layers with their own ``seed=`` and layers built
    inside a model from the model's seed are not affected (see ``cnnlab.nn.Module``).

    Args:
        seed: an int >= 0.
    """
    global _base
    seed = check_int(seed, "manual_seed", "seed", minimum=0)
    with _lock:
        _base = seed
        _created.clear()


def next_eager_seed(kind: int) -> tuple[int, int, int]:
    """The seed of the next layer of ``kind`` (CONV_STREAM, DENSE_STREAM) built at construction."""
    with _lock:
        n = _created.get(kind, 0)
        _created[kind] = n + 1
        return (_base, kind, n)
