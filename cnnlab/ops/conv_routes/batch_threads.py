"""Split the images of a batch across threads, as many as NumPy's BLAS may use.

The im2col route's GEMMs run one per image (``im2col._per_image``). When each of them
is small, OpenBLAS runs it on the calling thread alone (below 2^18 multiply-adds, its
own threshold), so a second core would sit idle while PyTorch uses both. Here the
batch is cut into one contiguous range of images per BLAS thread, and each range (its
im2col copies, GEMMs, bias) runs on its own Python thread: the GEMMs and the compiled
loops release the GIL. The ranges write disjoint images, so no locks are needed.

The thread count is the BLAS's own setting (``threadpoolctl``), so ``--threads``, the
``OPENBLAS_NUM_THREADS`` environment and ``threadpool_limits`` blocks apply to it too;
with one thread everything runs on the caller. A range no worker has started when the
caller is done with its own is taken by the caller, so a worker kept off its core by
another process delays the call by at most the range it started; OpenBLAS's spinning
threads instead slow to a crawl when another process holds a core (issue 17).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import threadpoolctl

# OpenBLAS multithreads one GEMM of more than 65536 × 4 multiply-adds itself (interface/gemm.c:
# SMP_THRESHOLD_MIN × GEMM_MULTITHREAD_THRESHOLD); such per-image GEMMs are left to it.
BLAS_SINGLE_THREAD_MACS = 1 << 18
# Below about a million multiply-adds for the batch, handing work to a thread (≈30 µs) costs
# more than it saves.
MIN_PARALLEL_MACS = 1 << 20

# Ranges per thread. One: a range left untaken by a worker that another process keeps off
# its core is taken by the caller, so smaller ranges buy little. Measured with 2 threads on
# the shared machine (min / median ms of 40, interleaved): conv_a forward 0.79 / 1.02 with
# one range per thread, 0.84 / 1.03 with two, 0.89 / 1.23 with four, 1.12 / 1.42 unsplit;
# LeNet epoch (3,200 images) 428 / 552, 456 / 559, 492 / 572, 420 / 527 unsplit.
PIECES_PER_THREAD = 1

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None


@functools.cache
def _blas_controller():
    """NumPy's BLAS as threadpoolctl sees it (scanning the loaded libraries takes ~5 ms: once)."""
    found = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    return found[0] if found else None


def blas_threads() -> int:
    """The number of threads NumPy's BLAS is set to use now (1 if it cannot say)."""
    controller = _blas_controller()
    count = controller.get_num_threads() if controller is not None else None
    return max(1, int(count or 1))


def _executor() -> ThreadPoolExecutor:
    """The process's worker threads, made again in a forked child (a fork keeps no threads)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max(1, (os.cpu_count() or 2) - 1), "cnnlab-batch")
            _pool_pid = os.getpid()
        return _pool


_blas_lock = threading.Lock()


@contextlib.contextmanager
def blas_one_thread():
    """NumPy's BLAS at one thread inside the block (for GEMMs run on several Python threads at
    once, which a multithreaded BLAS would oversubscribe), its setting restored after.

    The lock keeps two callers on different threads from restoring each other's setting
    mid-block; a call inside a held block (BLAS already at one thread) takes no lock."""
    controller = _blas_controller()
    if controller is None or controller.get_num_threads() in (0, 1):
        yield
        return
    with _blas_lock:
        before = controller.get_num_threads()
        controller.set_num_threads(1)
        try:
            yield
        finally:
            controller.set_num_threads(before)


def per_image_gemms(gemm_macs: int) -> bool:
    """Whether GEMMs of ``gemm_macs`` multiply-adds may run one per image: when BLAS runs each
    on one thread (small ones, or one BLAS thread). A larger one OpenBLAS splits over its
    threads and synchronises them on every call, so one GEMM per image costs a hand-over
    per image: conv_c's forward (128 images of 64×75×1024) took 405–446 ms against 79–90 ms
    for one GEMM over the batch, with 2 threads on this shared machine."""
    return gemm_macs <= BLAS_SINGLE_THREAD_MACS or blas_threads() == 1


def chunk_count(n_images: int, gemm_macs: int, total_macs: int) -> int:
    """How many image ranges to run at once, for GEMMs of ``gemm_macs`` multiply-adds each
    and ``total_macs`` in all."""
    if n_images < 2 or gemm_macs > BLAS_SINGLE_THREAD_MACS or total_macs < MIN_PARALLEL_MACS:
        return 1
    return min(blas_threads(), n_images)


def for_each_range(n_images: int, threads: int, work) -> None:
    """Call ``work(start, stop)`` on contiguous image ranges covering range(n_images), on the
    calling thread and ``threads − 1`` worker threads; return when all are done (an exception
    in any is raised here, after the others have finished).

    The batch is cut into ``PIECES_PER_THREAD`` range(s) per thread, and each thread takes
    the next range left until none is: a worker that another process keeps off its core
    takes fewer, or none, and the caller never waits for a range nobody has started.
    """
    if threads <= 1:
        work(0, n_images)
        return
    pieces = min(n_images, PIECES_PER_THREAD * threads)
    for_each_piece([n_images * i // pieces for i in range(pieces + 1)], threads, work)


def for_each_piece(bounds, threads: int, work) -> None:
    """Call ``work(bounds[i], bounds[i + 1])`` for every i, on the calling thread and up to
    ``threads − 1`` worker threads, as ``for_each_range`` does with its own ranges."""
    if threads <= 1 or len(bounds) <= 2:
        for i in range(len(bounds) - 1):
            work(bounds[i], bounds[i + 1])
        return
    ranges = _Ranges(list(bounds), work)
    pool = _executor()
    threads = min(threads, len(bounds) - 1)
    for _ in range(threads - 1):
        pool.submit(ranges.take_until_done)
    ranges.take_until_done()
    ranges.wait()
    if ranges.error is not None:
        raise ranges.error


class _Ranges:
    """Ranges of images handed out one at a time to whichever thread asks next."""

    def __init__(self, bounds, work):
        self.bounds, self.work = bounds, work
        self.next = 0
        self.running = 0
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)

    def take_until_done(self) -> None:
        while True:
            with self.lock:
                if self.next == len(self.bounds) - 1 or self.error is not None:
                    return
                i = self.next
                self.next += 1
                self.running += 1
            try:
                self.work(self.bounds[i], self.bounds[i + 1])
            except BaseException as error:  # noqa: BLE001 - re-raised by for_each_range
                with self.lock:
                    self.error = self.error or error
            finally:
                with self.lock:
                    self.running -= 1
                    if not self.running:
                        self.idle.notify_all()

    def wait(self) -> None:
        """Until no range is being worked on (every range is taken once the caller returns)."""
        with self.lock:
            while self.running:
                self.idle.wait()
