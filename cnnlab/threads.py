"""How many BLAS threads training uses: the free cores, fewer when other processes hold some.

OpenBLAS splits each matrix product between its threads and waits for the slowest; a
thread that shares its core with another busy process runs at a fraction of the speed,
and its partners spin while they wait. On this project's 2-core machine, with another
process holding one core, a fashion-net training step went from 0.45 s to several
seconds with 2 threads; 1 thread kept most of its speed. Results do not depend on the
count: OpenBLAS divides the output, not the sums, between threads (sgemm at the shapes
of the zoo's layers gave bit-identical products with 1 and 2 threads; tested through
``fit`` in tests/test_threads.py).

The rule (``choose_threads``): free = usable cores − the cores other processes keep busy,
threads = free rounded to the nearest integer, at least 1, at most the cores. On 2 cores,
2 threads while the foreign load stays under half a core, else 1. With two threads in
lock step, each gets what its core leaves (1 − f for the shared one), so 2 threads do
2·(1 − f) of a core's work against 1 for a single thread: 2 pays only below f = 0.5.

The foreign load is read from ``/proc/stat`` (time the usable CPUs were busy) minus this
process's own CPU time (``os.times``), over an interval: a short idle sample when training
starts (``BlasThreads``, 0.1 s), then each epoch (``BlasThreads.recheck``). Where
``/proc/stat`` cannot be read (not Linux) the thread count is left as it is.
``cnnlab train --threads N`` and ``with BlasThreads(N):`` around ``fit`` fix the count and
measure nothing: a ``BlasThreads`` inside another (``fit``'s inside the command line's)
leaves the count to the outer one.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
import os
import time

from threadpoolctl import threadpool_info, threadpool_limits

from cnnlab._checks import check_int

__all__ = [
    "BlasThreads",
    "CpuReading",
    "choose_threads",
    "foreign_load",
    "read_cpu",
    "recheck",
    "usable_cores",
]

SAMPLE_SECONDS = 0.1  # at 100 ticks/s, 10 ticks per core: enough to tell 0 from 0.5 core


@dataclasses.dataclass(frozen=True)
class CpuReading:
    """Cumulative counters at one moment, in seconds: ``wall`` (monotonic clock), ``busy``
    (CPU time spent by all processes on the usable CPUs), ``own`` (this process's CPU time)."""

    wall: float
    busy: float
    own: float


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def read_cpu(stat_path="/proc/stat") -> CpuReading | None:
    """Now's ``CpuReading`` (the usable CPUs' lines of ``/proc/stat``), None if unreadable."""
    wall = time.monotonic()
    try:
        cpus = {f"cpu{index}" for index in os.sched_getaffinity(0)}
        with open(stat_path, encoding="ascii") as stat:
            lines = stat.read().splitlines()
        ticks_per_second = os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError):
        return None
    busy_ticks = 0
    for line in lines:
        fields = line.split()
        if fields and fields[0] in cpus:
            # user nice system idle iowait irq softirq steal ...: all but idle and iowait
            values = [int(value) for value in fields[1:9]]
            busy_ticks += sum(values) - values[3] - values[4]
    times = os.times()
    return CpuReading(wall, busy_ticks / ticks_per_second, times.user + times.system)


def foreign_load(before: CpuReading, after: CpuReading) -> float:
    """Cores kept busy by other processes between two readings (0 for an empty interval)."""
    seconds = after.wall - before.wall
    if seconds <= 0:
        return 0.0
    others = (after.busy - before.busy) - (after.own - before.own)
    return max(0.0, others / seconds)


def choose_threads(cores: int, load: float) -> int:
    """BLAS threads for ``cores`` usable cores when others keep ``load`` cores busy:
    the free cores rounded to the nearest integer (halves round down), from 1 to ``cores``."""
    return max(1, min(cores, math.ceil(cores - load - 0.5)))


_ACTIVE: contextvars.ContextVar[BlasThreads | None] = contextvars.ContextVar(
    "blas_threads", default=None
)


def recheck() -> int | None:
    """``recheck`` the innermost ``BlasThreads`` in force (the training loop calls it each
    epoch); None when there is none."""
    active = _ACTIVE.get()
    return active.recheck() if active is not None else None


def _blas_threads_now() -> int | None:
    """The BLAS libraries' current thread count (the smallest), None if none is loaded."""
    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return min(counts) if counts else None


class BlasThreads:
    """Context manager: the BLAS thread count for a training run.

        with BlasThreads() as blas:       # measures 0.1 s, then limits BLAS's threads
            ...                           # train an epoch
            blas.recheck()                # the load during that epoch decides the next

    ``with`` gives the instance in force: this one, or the enclosing one when this one has
    no fixed count and another is in force.

    Args:
        threads: a fixed count (nothing is measured), or None to choose by the rule above.
        read: returns a ``CpuReading`` or None (default ``read_cpu``; tests inject readings).
        sleep: waits ``SAMPLE_SECONDS`` (default ``time.sleep``).
        cores: usable cores (default: the affinity mask, and no more than BLAS has now).

    ``threads`` is the count in force (None: left as it was), ``cores`` the usable cores,
    ``load`` the last foreign load measured (None when nothing was measured); ``changes``
    lists (threads, load) each time a measurement set a new count.
    On exit the BLAS libraries get back the counts they had.
    """

    def __init__(self, threads=None, *, read=None, sleep=None, cores=None):
        self.fixed = None if threads is None else check_int(threads, "BlasThreads", "threads", 1)
        # looked up when used, so that a test can replace the module's read_cpu
        self._read = read or (lambda: read_cpu())
        self._sleep = sleep or time.sleep
        self.cores = cores
        self.threads: int | None = self.fixed
        self.load: float | None = None
        self.changes: list[tuple[int, float]] = []
        self._original = None
        self._last: CpuReading | None = None
        self._token = None

    def __enter__(self):
        outer = _ACTIVE.get()
        if outer is not None and self.fixed is None:
            return outer  # the enclosing one decides (and rechecks)
        self._token = _ACTIVE.set(self)
        self._original = threadpool_limits(limits=None, user_api="blas")  # remembers, sets nothing
        if self.fixed is not None:
            self._apply(self.fixed)
            return self
        if self.cores is None:
            current = _blas_threads_now()
            self.cores = min(usable_cores(), current) if current else usable_cores()
        if self.cores < 2:
            return self
        before = self._read()
        if before is None:
            return self
        self._sleep(SAMPLE_SECONDS)  # idle: what is busy now is other processes
        self._last = before
        self.recheck()
        return self

    def recheck(self) -> int | None:
        """Measure the foreign load since the last reading and set the count it calls for."""
        if self.fixed is not None or self._last is None:
            return self.threads
        now = self._read()
        if now is None:
            return self.threads
        self.load = foreign_load(self._last, now)
        self._last = now
        wanted = choose_threads(self.cores, self.load)
        if wanted != self.threads:
            self._apply(wanted)
            self.changes.append((wanted, self.load))
        return self.threads

    def _apply(self, threads: int) -> None:
        threadpool_limits(limits=threads, user_api="blas")
        self.threads = threads

    @property
    def reduced(self) -> bool:
        """Whether a measurement left fewer threads than usable cores."""
        return self.load is not None and self.threads is not None and self.threads < self.cores

    def describe(self) -> str:
        """One line for the user about the last change, e.g. 'BLAS threads: 1 of 2 (...)'."""
        if self.load is None or self.threads is None:
            return f"BLAS threads: {self.threads}"
        return (
            f"BLAS threads: {self.threads} of {self.cores} (other processes keep "
            f"{self.load:.1f} cores busy; --threads N fixes the count)"
        )

    def __exit__(self, *exc_info):
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None
            self._original.restore_original_limits()
        return False
