"""Run a compiled element-wise pass (batch norm, ReLU, max pooling, dropout) on as many threads
as NumPy's BLAS may use.

These passes are loops over memory that numba compiles with ``nogil``; one thread reads
about 1–2 GB/s of float32 through them, and PyTorch runs its own on every thread it has.
Here the pass is cut into contiguous ranges of its outer axis (channels, image planes,
elements) run on the threads of ``conv_routes.batch_threads`` (the caller takes any range
a busy worker has not started). Results do not depend on the split: each output element
is computed by the same arithmetic whichever thread writes it, and sums stay within one
range (a channel).

Measured on this 2-core machine while other work kept it busy (load 3–5), so only the work
per thread is clean: batch norm's forward at (64, 32, 28, 28) float32 took 1.4–1.5 ms of
CPU on one thread; split, its two channel ranges took 0.70 and 0.71 ms of CPU each and ran
at the same time (traced per range). Wall time then depends on the second core being free:
with it busy, the split forward+backward was slower (fastest of 30: 7.7 against 5.5 ms),
the same trade as OpenBLAS's own threads, and ``cnnlab.threads`` (which sets the BLAS
thread count from the foreign load during ``fit``) governs both.
"""

from __future__ import annotations

from cnnlab.ops.conv_routes.batch_threads import blas_threads, for_each_range

# Below this many elements in the pass, handing a range to a thread (≈30 µs with the
# wake-up) costs more than the second core saves at ≈1 ns per element.
MIN_PARALLEL_ELEMENTS = 1 << 17


def run_split(units: int, elements: int, work) -> None:
    """Call ``work(start, stop)`` over ranges covering range(units), on one thread per BLAS
    thread when the pass touches at least ``MIN_PARALLEL_ELEMENTS`` elements, else once."""
    threads = min(blas_threads(), units) if elements >= MIN_PARALLEL_ELEMENTS else 1
    for_each_range(units, threads, work)
