"""Keras-style progress reporting for ``fit``: a bar per epoch (verbose=1) or one line per epoch (verbose=2)."""

from __future__ import annotations

import sys
import time


def _format_step_time(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms/step" if seconds < 1 else f"{seconds:.2f}s/step"


def _format_logs(logs: dict) -> str:
    return " - ".join(f"{key}: {value:.4f}" for key, value in logs.items() if key not in ("lr", "time"))


class ProgressBar:
    """Keras-style per-epoch bar on tqdm: steps, elapsed, time per step, metrics, images/s."""

    def __init__(self, epoch: int, epochs: int, steps: int, verbose: int):
        self.verbose = verbose
        self.steps = steps
        self.start = time.perf_counter()
        self.bar = None
        if verbose == 1:
            from tqdm import tqdm

            class _Bar(tqdm):
                stats = ""

                @property
                def format_dict(self):
                    values = super().format_dict
                    values["stats"] = self.stats
                    return values

            print(f"Epoch {epoch + 1}/{epochs}", file=sys.stderr, flush=True)
            # Redrawn 5× a second on a terminal; in a log file, every 30 s and at the end.
            interval = 0.2 if sys.stderr.isatty() else 30.0
            self.bar = _Bar(total=steps, bar_format="{n_fmt}/{total_fmt} [{bar:30}] - {stats}", ascii=".=",
                            file=sys.stderr, mininterval=interval, dynamic_ncols=False, leave=True)
        self.prefix = f"Epoch {epoch + 1}/{epochs} - "

    def _stats(self, step: int, images: int, logs: dict) -> str:
        elapsed = time.perf_counter() - self.start
        parts = [f"{elapsed:.1f}s {_format_step_time(elapsed / max(step, 1))}"]
        if logs:
            parts.append(_format_logs(logs))
        parts.append(f"{images / max(elapsed, 1e-9):.0f} img/s")
        return " - ".join(parts)

    def update(self, step: int, images: int, logs: dict) -> None:
        if self.bar is not None:
            self.bar.stats = self._stats(step, images, logs)
            self.bar.update(1)

    def close(self, step: int, images: int, logs: dict) -> None:
        stats = self._stats(step, images, logs)
        if self.bar is not None:
            self.bar.stats = stats
            self.bar.close()
        elif self.verbose >= 2:
            print(f"{self.prefix}{step}/{self.steps} - {stats}", flush=True)
