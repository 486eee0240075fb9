"""Ctrl-C (SIGINT) and SIGTERM as a request to stop training cleanly at the end of the batch.

``fit`` installs the handlers first thing, before it prepares data or reads a checkpoint,
so a signal at any moment of a run becomes a clean stop, never a KeyboardInterrupt
traceback. A program can install them even earlier, around its own slow start (imports
done, data loading, model building), with the same context manager; ``fit`` then shares it
and stops before its first batch if a signal already came::

    with stop_signals() as stop:
        data = load_dataset("fashion-mnist")
        history = fit(model, data.train)        # history.interrupted if stopped

A second Ctrl-C while the stop is pending raises KeyboardInterrupt (abort now).
Outside the main thread signals cannot be caught; the request then never fires.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

__all__ = ["StopRequest", "stop_signals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_active: StopRequest | None = None


class StopRequest:
    """Whether a stop was asked for, and by which signal ('SIGINT' or 'SIGTERM')."""

    def __init__(self, verbose: int = 1):
        self.signal_name: str | None = None
        self.verbose = verbose

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = self.signal_name or name
        if self.verbose:
            print(f"\n{name}: stopping at the end of this batch (Ctrl-C again to abort now)",
                  file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_signals(verbose: int = 1):
    """Within the block, SIGINT and SIGTERM set ``StopRequest.signal_name`` instead of stopping.

    Nested use (a program's block around ``fit``'s own) shares the outer request.
    """
    global _active
    if _active is not None:
        yield _active
        return
    request = StopRequest(verbose)
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    for signum in _SIGNALS:
        signal.signal(signum, request._handle)
    _active = request
    try:
        yield request
    finally:
        _active = None
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
