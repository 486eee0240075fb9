"""How run.py measures: clean BLAS environment, foreign-load-aware timed blocks, medians and IQRs.

Everything here is framework-neutral (NumPy only, and only for the sgemm peak), so that the
memory children of run.py can import it without loading cnnlab or PyTorch.

A *block* is one timed stretch of ``calls`` back-to-back calls of one framework's step.
During a block, the machine's busy CPU time (/proc/stat) minus this process's own CPU time
(getrusage, all threads) over the wall time is the *foreign load* in cores: work other
processes did while we were timing. A block above ``max_foreign`` cores is measured again,
within a per-case budget of discards; cnnlab and PyTorch blocks alternate, and each case
reports the median and the interquartile range of each side.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import resource
import statistics
import time
from collections.abc import Callable, Mapping

#: Variables that make NumPy's bundled OpenBLAS pick an older kernel (read when it loads).
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: Busy columns of /proc/stat's "cpu" line: user nice system [idle iowait] irq softirq steal.
#: guest time is already counted in user.
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)


def cleaned_environment(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` without the BLAS kernel overrides, or None when none of them is set."""
    if not any(name in environ for name in BLAS_OVERRIDES):
        return None
    return {key: value for key, value in environ.items() if key not in BLAS_OVERRIDES}


def busy_jiffies(proc_stat_text: str) -> int:
    """Busy clock ticks of all CPUs together, from the text of /proc/stat."""
    for line in proc_stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:]]
            return sum(values[i] for i in _BUSY_COLUMNS if i < len(values))
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def foreign_cores(busy_seconds: float, own_cpu_seconds: float, wall_seconds: float) -> float:
    """Cores kept busy by other processes: (machine busy − our CPU time) / wall, never < 0."""
    if wall_seconds <= 0:
        return 0.0
    return max(0.0, (busy_seconds - own_cpu_seconds) / wall_seconds)


@dataclasses.dataclass(frozen=True)
class CpuSnapshot:
    busy_seconds: float | None  # None where /proc/stat cannot be read (not Linux)
    own_cpu_seconds: float
    wall: float


class LoadProbe:
    """Snapshots of machine-wide busy time and this process's CPU time (all its threads)."""

    def __init__(self, proc_stat: str = "/proc/stat"):
        self.proc_stat = proc_stat
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def snapshot(self) -> CpuSnapshot:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        try:
            with open(self.proc_stat) as f:
                busy = busy_jiffies(f.read()) / self.tick
        except (OSError, ValueError):
            busy = None
        return CpuSnapshot(busy, usage.ru_utime + usage.ru_stime, time.perf_counter())

    @staticmethod
    def foreign(start: CpuSnapshot, end: CpuSnapshot) -> float | None:
        if start.busy_seconds is None or end.busy_seconds is None:
            return None
        return foreign_cores(end.busy_seconds - start.busy_seconds,
                             end.own_cpu_seconds - start.own_cpu_seconds, end.wall - start.wall)


@dataclasses.dataclass(frozen=True)
class Block:
    seconds_per_call: float
    foreign: float | None  # cores; None when it could not be measured


@dataclasses.dataclass(frozen=True)
class Settings:
    """How every case is timed (run.py's flags)."""

    repeat: int = 9  # kept blocks per side
    long_repeat: int = 5  # for cases whose one call lasts about a second or more (steps, epochs)
    min_block_s: float = 0.2  # /proc/stat counts in 10 ms ticks: shorter blocks read too coarsely
    max_foreign: float = 0.25  # cores of other processes' work above which a block is redone
    max_discards: int = 9  # per case, both sides together; never more than the case's repeat


def measure_block(fn: Callable[[], object], calls: int, probe: LoadProbe) -> Block:
    """Run ``fn`` ``calls`` times back to back; seconds per call and the foreign load meanwhile."""
    start = probe.snapshot()
    for _ in range(calls):
        fn()
    end = probe.snapshot()
    return Block((end.wall - start.wall) / calls, probe.foreign(start, end))


class DiscardBudget:
    """Bounded re-measurement: at most ``limit`` blocks thrown away per case."""

    def __init__(self, limit: int, max_foreign: float):
        self.limit, self.max_foreign = limit, max_foreign
        self.discarded = 0
        self.kept_under_load = 0

    def measure(self, measure_once: Callable[[], Block]) -> Block:
        """A block below the load limit, or the last one measured once the budget is spent."""
        while True:
            block = measure_once()
            loaded = block.foreign is not None and block.foreign > self.max_foreign
            if not loaded:
                return block
            if self.discarded >= self.limit:
                self.kept_under_load += 1
                return block
            self.discarded += 1


@dataclasses.dataclass
class PairResult:
    """Kept blocks of both sides of one case, and how many blocks load made us redo."""

    ours: list[Block]
    theirs: list[Block]
    discarded: int = 0
    kept_under_load: int = 0

    @property
    def ours_ms(self) -> float:
        return 1e3 * statistics.median(b.seconds_per_call for b in self.ours)

    @property
    def theirs_ms(self) -> float:
        return 1e3 * statistics.median(b.seconds_per_call for b in self.theirs)

    @property
    def foreign(self) -> float | None:
        loads = [b.foreign for b in self.ours + self.theirs if b.foreign is not None]
        return statistics.median(loads) if loads else None


def interquartile_range(values) -> float:
    """Q3 − Q1 (quartiles interpolated between the samples); 0 for fewer than two values."""
    values = sorted(values)
    if len(values) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q3 - q1


def calls_per_block(seconds_per_call: float, min_block_s: float, most: int = 10_000) -> int:
    """Back-to-back calls that make a block last at least ``min_block_s``."""
    if seconds_per_call <= 0:
        return most
    return max(1, min(most, math.ceil(min_block_s / seconds_per_call)))


def time_pair(ours: Callable[[], object], theirs: Callable[[], object], settings: Settings,
              warmup: int = 2, repeat: int | None = None, probe: LoadProbe | None = None,
              warmup_ours: Callable[[], object] | None = None,
              warmup_theirs: Callable[[], object] | None = None) -> PairResult:
    """Alternate timed blocks of ``ours`` and ``theirs`` (who goes first alternates too).

    The warm-up runs each side ``warmup`` times (or the given cheaper warm-up callables,
    for epoch-long cases) and times the last call to size the blocks.
    """
    probe = probe or LoadProbe()
    repeat = repeat or settings.repeat
    sizes = []
    for run, warm in ((ours, warmup_ours), (theirs, warmup_theirs)):
        for _ in range(warmup):
            (warm or run)()
        if warm is None:  # one more call, timed, sizes the blocks
            start = time.perf_counter()
            run()
            sizes.append(calls_per_block(time.perf_counter() - start, settings.min_block_s))
        else:  # long calls (an epoch): one per block
            sizes.append(1)
    # at most as many blocks redone as one side keeps: a busy machine adds at most half again
    budget = DiscardBudget(min(settings.max_discards, repeat), settings.max_foreign)
    result = PairResult([], [])
    for i in range(repeat):
        sides = [(ours, sizes[0], result.ours), (theirs, sizes[1], result.theirs)]
        for run, calls, kept in sides if i % 2 == 0 else sides[::-1]:
            kept.append(budget.measure(functools.partial(measure_block, run, calls, probe)))
    result.discarded, result.kept_under_load = budget.discarded, budget.kept_under_load
    return result


def gflops(flops: float, ms: float) -> str:
    return f"{flops / ms / 1e6:.1f}"


def bench_line(name: str, result: PairResult, **extra) -> str:
    """``bench case=NAME cnnlab_ms=… torch_ms=… ratio=…`` then the IQRs, the load and extras."""
    ours_ms, theirs_ms = result.ours_ms, result.theirs_ms
    load = "n/a" if result.foreign is None else f"{result.foreign:.2f}"
    fields = {
        "cnnlab_iqr": f"{1e3 * interquartile_range(b.seconds_per_call for b in result.ours):.2f}",
        "torch_iqr": f"{1e3 * interquartile_range(b.seconds_per_call for b in result.theirs):.2f}",
        "load": load,
        "discarded": result.discarded,
    }
    if result.kept_under_load:
        fields["kept_under_load"] = result.kept_under_load
    fields.update(extra)
    tail = "".join(f" {key}={value}" for key, value in fields.items())
    return (f"bench case={name} cnnlab_ms={ours_ms:.2f} torch_ms={theirs_ms:.2f} "
            f"ratio={ours_ms / theirs_ms:.2f}{tail}")


def report(name: str, result: PairResult, **extra) -> None:
    print(bench_line(name, result, **extra), flush=True)


def conv_flops(n: int, c_in: int, c_out: int, out_h: int, out_w: int, k_h: int, k_w: int,
               groups: int = 1) -> int:
    """Floating-point operations (2 per multiply-add) of one convolution's forward pass."""
    return 2 * n * c_out * out_h * out_w * (c_in // groups) * k_h * k_w


def sgemm_peak(size: int = 2048, repeat: int = 8, convert=None,
               multiply=None) -> tuple[float, float]:
    """(best, median) GFLOP/s of a size² float32 matrix product.

    NumPy's BLAS by default; ``convert`` (NumPy array → the framework's) and ``multiply``
    measure another framework's, e.g. ``convert=torch.from_numpy, multiply=torch.mm``.
    """
    import numpy as np  # here, so that importing the harness loads no BLAS before run.py re-execs

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    if convert is not None:
        a, b = convert(a), convert(b)
    multiply = multiply or np.matmul
    multiply(a, b)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        multiply(a, b)
        times.append(time.perf_counter() - start)
    flops = 2 * size**3
    return flops / min(times) / 1e9, flops / statistics.median(times) / 1e9
