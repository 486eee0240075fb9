"""Keras-style progress reporting for ``fit``, readable in an 80-column terminal and in a log file.

verbose=1 on a terminal: a bar redrawn in place (at most 5 times a second), then the epoch's
metrics on a line of their own, wrapped to the terminal's width (80 columns at most)::

    Epoch 3/10
    45/45 [==============================] - 2.1s 47ms/step - 684 img/s
    loss: 0.0812 - accuracy: 0.9756 - val_loss: 0.0731 - val_accuracy: 0.9778

verbose=1 when the output is not a terminal (a log file, a pipe): the same lines without the
redrawing (no carriage returns), plus a plain progress line every 30 seconds of a long epoch.
verbose=2: one line per epoch on stdout, ``Epoch 3/10 - 45/45 - 2.1s 47ms/step - loss: ...``.
A terminal that reports a width of 0 (a 0×0 pseudo-terminal) is taken as 80 columns wide.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = [
    "ESTIMATE_CHECKPOINT_BYTES", "ESTIMATE_EPOCH_SECONDS", "ProgressBar", "checkpoint_bytes",
    "estimate_line", "format_duration", "format_metrics",
]

MAX_COLUMNS = 80
BAR_WIDTH = 30
#: seconds between redraws on a terminal, and between progress lines in a log
TERMINAL_INTERVAL = 0.2
LOG_INTERVAL = 30.0
#: fit announces a run whose epoch will take longer than this (10 min) ...
ESTIMATE_EPOCH_SECONDS = 600.0
#: ... or whose checkpoint will be larger than this (100 MB)
ESTIMATE_CHECKPOINT_BYTES = 100e6


def _format_step_time(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms/step" if seconds < 1 else f"{seconds:.2f}s/step"


def format_metrics(logs: dict) -> str:
    """``'loss: 0.0812 - accuracy: 0.9756'``: the logs but 'lr' and 'time', to 4 decimals."""
    shown = [(key, value) for key, value in logs.items() if key not in ("lr", "time")]
    return " - ".join(f"{key}: {value:.4f}" for key, value in shown)


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 12 min': a human estimate, not a measurement to the second."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def checkpoint_bytes(model, optimizer) -> int:
    """Approximate size of a checkpoint: weights and buffers, plus the optimiser's state.

    parameters × (1 + ``optimizer.state_slots``) × bytes per value, plus the buffers.
    """
    weights = sum(value.nbytes for value in model.state_dict().values())
    slots = optimizer.state_slots * sum(p.data.nbytes for p in model.parameters())
    return weights + slots


def estimate_line(epoch_seconds: float, size_bytes: int) -> str | None:
    """``'estimate: 3 h 12 min per epoch, checkpoint 683 MB'``, or None when not worth saying.

    Said when the epoch takes longer than ``ESTIMATE_EPOCH_SECONDS`` (10 min) or the
    checkpoint is larger than ``ESTIMATE_CHECKPOINT_BYTES`` (100 MB).
    """
    if epoch_seconds <= ESTIMATE_EPOCH_SECONDS and size_bytes <= ESTIMATE_CHECKPOINT_BYTES:
        return None
    size = f"{size_bytes / 1e6:.0f} MB"
    return f"estimate: {format_duration(epoch_seconds)} per epoch, checkpoint {size}"


def terminal_columns(stream) -> int:
    """The width for lines: the terminal's, at most 80; 80 when unknown or reported as 0."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return MAX_COLUMNS
    return columns if 0 < columns < MAX_COLUMNS else MAX_COLUMNS


def wrap(parts: list[str], width: int, separator: str = " - ") -> list[str]:
    """Join ``parts`` with ``separator`` into lines of at most ``width`` (parts stay whole)."""
    lines, current = [], ""
    for part in parts:
        candidate = f"{current}{separator}{part}" if current else part
        if current and len(candidate) > width:
            lines.append(current)
            current = part
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


class ProgressBar:
    """The progress of one epoch: steps, elapsed time, time per step, metrics, images per second.

    Args:
        epoch, epochs: this epoch (from 0) and the total, for the "Epoch 3/10" header.
        steps: batches in the epoch.
        verbose: 0 silent, 1 bar (or log lines), 2 one line per epoch.
        stream: where to write (default: ``sys.stderr`` for verbose=1, ``sys.stdout`` for 2).
        clock: a function returning seconds (tests give a fake one).
    """

    def __init__(self, epoch: int, epochs: int, steps: int, verbose: int, stream=None,
                 clock=time.perf_counter):
        self.verbose = verbose
        self.steps = steps
        self.clock = clock
        self.start = clock()
        if stream is None:
            stream = sys.stderr if verbose == 1 else sys.stdout
        self.stream = stream
        self.terminal = verbose == 1 and _isatty(self.stream)
        self.width = terminal_columns(self.stream) if self.terminal else MAX_COLUMNS
        self.last_draw = self.start
        self.drawn = 0
        self.header = f"Epoch {epoch + 1}/{epochs}"
        if verbose == 1:
            self._write(self.header + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _timing(self, step: int) -> str:
        elapsed = self.clock() - self.start
        return f"{elapsed:.1f}s {_format_step_time(elapsed / max(step, 1))}"

    def _bar_line(self, step: int, tail: str) -> str:
        counter = f"{step}/{self.steps}"
        rest = f" - {self._timing(step)}" + (f" - {tail}" if tail else "")
        room = self.width - len(counter) - len(rest) - 3
        width = max(10, min(BAR_WIDTH, room))
        filled = width * step // max(self.steps, 1)
        arrow = "=" * filled + "." * (width - filled)
        return f"{counter} [{arrow}]{rest}"[: self.width]

    def update(self, step: int, images: int, logs: dict) -> None:
        """After batch ``step`` (from 1) with ``images`` seen so far and the running ``logs``."""
        if self.verbose != 1:
            return
        now = self.clock()
        if self.terminal:
            if now - self.last_draw < TERMINAL_INTERVAL and step < self.steps:
                return
            line = self._bar_line(step, format_metrics(logs))
            self._write("\r" + line.ljust(self.drawn))
            self.drawn = len(line)
        elif now - self.last_draw >= LOG_INTERVAL:
            parts = [f"{step}/{self.steps}", self._timing(step)]
            if logs:
                parts.append(format_metrics(logs))
            self._write("\n".join(wrap(parts, self.width)) + "\n")
        else:
            return
        self.last_draw = now

    def message(self, text: str) -> None:
        """A line of its own in the middle of the epoch (on stderr); the bar resumes below it."""
        if self.terminal:
            self._write("\r" + text.ljust(self.drawn) + "\n")
            self.drawn = 0
            self.last_draw = float("-inf")  # redraw the bar at the next update
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self, step: int, images: int, logs: dict) -> None:
        """The epoch's final lines: the bar (or counter) with images/s, then the metrics."""
        elapsed = self.clock() - self.start
        speed = f"{images / max(elapsed, 1e-9):.0f} img/s"
        metrics = format_metrics(logs)
        if self.verbose == 2:
            parts = [self.header, f"{step}/{self.steps}", self._timing(step)]
            self._write(" - ".join([*parts, *([metrics] if metrics else []), speed]) + "\n")
            return
        if self.verbose != 1:
            return
        if self.terminal:
            line = self._bar_line(step, speed)
            self._write("\r" + line.ljust(self.drawn) + "\n")
        else:
            self._write(f"{step}/{self.steps} - {self._timing(step)} - {speed}\n")
        if metrics:
            self._write("\n".join(wrap(metrics.split(" - "), self.width)) + "\n")


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
