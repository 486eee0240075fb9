"""How ``grid_sample``'s compiled passes (``sampling_loops``) are spread over threads: the one
place that chooses, and the one override.

Routes (``SPLITS``), each running every pass over contiguous image ranges with identical
results (images never share an output or a gradient):

- ``"caller"``: the whole batch on the calling thread.
- ``"openmp"``: one range per thread inside a numba ``prange`` on numba's threading layer
  (OpenMP or TBB). Their workers wait spinning for a moment after each parallel region, so
  a hand-over costs about 6 µs (measured: an empty two-thread region, 6 µs against 0.8 µs
  on one). Only used where that layer is what numba runs (never its ``workqueue``
  fallback, whose every region costs 20–130 µs) and only in the process that started it:
  GNU OpenMP cannot run a region in a child forked after the parent used it.
- ``"threads"``: ranges on the Python worker threads of ``conv_routes.batch_threads``
  (``nogil`` loops). A hand-over there wakes a sleeping thread: about 85 µs on this machine,
  so it pays only for batches of several hundred thousand outputs. The fallback where the
  OpenMP route is not available.

``choose(outputs)`` picks a route and a thread count from NumPy's BLAS setting (so
``--threads``, ``threadpool_limits`` and ``cnnlab.threads``' load-dependent count govern it
too); ``sampling_split(route)`` forces one inside a block (the tests run every route
through it). Measured speeds: benchmarks/README.md, "grid_sample (issue 15)".
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from cnnlab._checks import check_choice
from cnnlab.ops import sampling_loops as loops
from cnnlab.ops.conv_routes.batch_threads import blas_threads, for_each_range

__all__ = ["SPLITS", "Split", "choose", "openmp_available", "sampling_split"]

SPLITS = ("caller", "openmp", "threads")

# Below this many output values a pass stays on the caller: with the OpenMP route a second
# thread saves half of ~3 ns an output against a ~6 µs hand-over per pass; the Python
# threads' ~85 µs hand-over needs far more (see batch_threads and benchmarks/README.md).
MIN_OPENMP_OUTPUTS = 1 << 13
MIN_THREADS_OUTPUTS = 1 << 18

# GNU OpenMP's workers spin this many rounds after a region before they sleep, unless the
# user set GOMP_SPINCOUNT. Its default (300,000) kept a worker spinning 3.9 ms after every
# call, a core taken from the conv's threads during training; 10,000 spins 0.2–0.4 ms and
# keeps the fast hand-over between a forward and its backward (batch 64 fwd+bwd on two
# threads: 0.52× the one-thread time, against 0.55× with the default and 1.19× with no
# spinning at all, OMP_WAIT_POLICY=passive). Read once, when GNU OpenMP is loaded: a PyTorch
# imported first brings its own libgomp.so.1, which numba then shares, with its settings.
GOMP_SPIN_COUNT = "10000"

_FORCED: contextvars.ContextVar[str | None] = contextvars.ContextVar("sampling_split",
                                                                      default=None)


@contextlib.contextmanager
def sampling_split(route: str):
    """Force ``grid_sample``'s route inside the block ("caller", "openmp" or "threads"); a
    forced split route runs on at least two threads. "openmp" where the OpenMP route is
    not available raises RuntimeError from grid_sample, naming why."""
    token = _FORCED.set(check_choice(route, SPLITS, "sampling_split", "route"))
    try:
        yield
    finally:
        _FORCED.reset(token)


@dataclass(frozen=True)
class Split:
    """A route and its thread count; ``run_*`` run one pass over the whole batch."""

    route: str
    threads: int

    def bilinear_forward(self, x, grid, out, jacobian, index, fractions, axes, zeros, pair):
        self._run(x.shape[0], lambda: _bilinear_forward_openmp(
            x, grid, out, jacobian, index, fractions[0], fractions[1], _axes_array(axes),
            zeros, np.empty(0, pair), self.threads), lambda a, b: loops.bilinear_forward(
            x, grid, out, jacobian, index, fractions, axes, zeros, pair, a, b))

    def bilinear_backward(self, grad, dx, dgrid, index, fractions, jacobian, pair):
        """∂L/∂x into ``dx`` and ∂L/∂grid into ``dgrid``; either may be None (not wanted)."""
        empty = np.empty((0, 0, 0, 0), grad.dtype)

        def images(start, stop):  # both gradients of a range: one hand-over per range
            if dx is not None:
                loops.bilinear_input_backward(grad, dx, index, fractions, pair, start, stop)
            if dgrid is not None:
                loops.bilinear_grid_backward(grad, jacobian, dgrid, start, stop)

        self._run(grad.shape[0], lambda: _bilinear_backward_openmp(
            grad, empty if dx is None else dx, dx is not None, empty if dgrid is None else dgrid,
            dgrid is not None, index, fractions[0], fractions[1], jacobian, np.empty(0, pair),
            self.threads), images)

    def nearest_forward(self, x, grid, out, align_corners, border):
        self._run(x.shape[0], lambda: _nearest_forward_openmp(
            x, grid, out, align_corners, border, self.threads), lambda a, b: (
            loops.nearest_forward(x, grid, out, align_corners, border, a, b)))

    def nearest_backward(self, grid, grad, dx, align_corners, border):
        self._run(grad.shape[0], lambda: _nearest_backward_openmp(
            grid, grad, dx, align_corners, border, self.threads), lambda a, b: (
            loops.nearest_backward(grid, grad, dx, align_corners, border, a, b)))

    def _run(self, images: int, region, ranges) -> None:
        """The pass: ``region()`` runs it in one OpenMP region; ``ranges(start, stop)`` runs
        one image range, on the caller or the Python threads."""
        if self.route == "openmp":
            numba.set_num_threads(self.threads)
            region()
            return
        threads = 1 if self.route == "caller" or images < 2 else self.threads
        for_each_range(images, threads, ranges)


def choose(outputs: int) -> Split:
    """The route and thread count for a ``grid_sample`` of ``outputs`` output values."""
    forced = _FORCED.get()
    threads = blas_threads()
    if forced is not None:
        if forced == "openmp":
            available, why = openmp_available()
            if not available:
                raise RuntimeError(f"sampling_split: the openmp route is not available: {why}")
            return Split("openmp", max(2, min(threads, numba.config.NUMBA_NUM_THREADS)))
        return Split(forced, 1 if forced == "caller" else max(2, threads))
    if threads > 1 and outputs >= MIN_OPENMP_OUTPUTS and openmp_available()[0]:
        return Split("openmp", min(threads, numba.config.NUMBA_NUM_THREADS))
    if threads > 1 and outputs >= MIN_THREADS_OUTPUTS:
        return Split("threads", threads)
    return Split("caller", 1)


_probe_lock = threading.Lock()
_layer: dict = {}


def openmp_available() -> tuple[bool, str]:
    """(whether the "openmp" route may run here, why not). The first call starts numba's
    threading layer with an empty region and reads which layer numba chose."""
    with _probe_lock:
        if "pid" not in _layer:
            if numba.config.NUMBA_NUM_THREADS < 2:
                _layer.update(pid=os.getpid(), name=None, why="numba has one thread "
                              "(NUMBA_NUM_THREADS)")
            else:
                try:
                    os.environ.setdefault("GOMP_SPINCOUNT", GOMP_SPIN_COUNT)
                    _empty_region(np.zeros(2))
                    name = numba.threading_layer()
                    why = ("" if name in ("omp", "tbb") else f"numba's threading layer is "
                           f"{name}, whose regions cost too much at these sizes")
                except Exception as error:  # noqa: BLE001 - no layer could be loaded
                    name, why = None, f"numba could not start a threading layer: {error}"
                _layer.update(pid=os.getpid(), name=name, why=why)
        if _layer["pid"] != os.getpid():
            return False, "a process forked after its parent started the OpenMP workers"
        return not _layer["why"], _layer["why"]


@functools.lru_cache(maxsize=64)
def _axes_array(axes) -> np.ndarray:
    """``sampling._constants``' axes tuple (cached there per size and dtype) as the (2, 5)
    array the OpenMP region takes, made once per tuple rather than on every call."""
    array = np.array(axes, type(axes[0][0]))
    array.flags.writeable = False
    return array


@njit(parallel=True, nogil=True, cache=True)
def _empty_region(a):
    for i in prange(a.shape[0]):
        a[i] = i


@njit(nogil=True, cache=True)
def _range(count, parts, p):
    return p * count // parts, (p + 1) * count // parts


# The gufunc a prange becomes takes arrays and scalars only: the axes' tuple travels as a
# (2, 5) array and the pair dtype as an empty array of it, turned back inside the range.

@njit(nogil=True, cache=True)
def _bilinear_forward_range(x, grid, out, jacobian, index, t, s, axes, zeros, pair_of, parts, p):
    a = ((axes[0, 0], axes[0, 1], axes[0, 2], axes[0, 3], axes[0, 4]),
         (axes[1, 0], axes[1, 1], axes[1, 2], axes[1, 3], axes[1, 4]))
    start, stop = _range(x.shape[0], parts, p)
    loops.bilinear_forward(x, grid, out, jacobian, index, (t, s), a, zeros, pair_of.dtype,
                           start, stop)


@njit(parallel=True, nogil=True, cache=True)
def _bilinear_forward_openmp(x, grid, out, jacobian, index, t, s, axes, zeros, pair_of, parts):
    for p in prange(parts):
        _bilinear_forward_range(x, grid, out, jacobian, index, t, s, axes, zeros, pair_of,
                                parts, p)


@njit(nogil=True, cache=True)
def _bilinear_backward_range(grad, dx, want_dx, dgrid, want_dgrid, index, t, s, jacobian,
                             pair_of, parts, p):
    start, stop = _range(grad.shape[0], parts, p)
    if want_dx:
        loops.bilinear_input_backward(grad, dx, index, (t, s), pair_of.dtype, start, stop)
    if want_dgrid:
        loops.bilinear_grid_backward(grad, jacobian, dgrid, start, stop)


@njit(parallel=True, nogil=True, cache=True)
def _bilinear_backward_openmp(grad, dx, want_dx, dgrid, want_dgrid, index, t, s, jacobian,
                              pair_of, parts):
    for p in prange(parts):
        _bilinear_backward_range(grad, dx, want_dx, dgrid, want_dgrid, index, t, s, jacobian,
                                 pair_of, parts, p)


@njit(parallel=True, nogil=True, cache=True)
def _nearest_forward_openmp(x, grid, out, align_corners, border, parts):
    for p in prange(parts):
        start, stop = _range(x.shape[0], parts, p)
        loops.nearest_forward(x, grid, out, align_corners, border, start, stop)


@njit(parallel=True, nogil=True, cache=True)
def _nearest_backward_openmp(grid, grad, dx, align_corners, border, parts):
    for p in prange(parts):
        start, stop = _range(grad.shape[0], parts, p)
        loops.nearest_backward(grid, grad, dx, align_corners, border, start, stop)
