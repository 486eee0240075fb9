"""Synchronous data-parallel training over MPI (``mpirun -np N cnnlab train …``).

The ranks of an MPI job each hold the whole model and train on their own part of every
step's batch; after each backward the gradients are summed across the ranks, so every rank
takes the same step (``cnnlab.loop`` says how the loss is shared so the sum is exact).

- ``world()`` detects a launch by ``mpirun``/``mpiexec`` (OpenMPI's or MPICH's variables
  with a size > 1) and only then imports ``mpi4py``; otherwise it returns None and cnnlab
  runs as a single process, importing nothing of MPI.
- ``MPIGroup.broadcast_state`` copies rank 0's parameters and buffers to every rank at the
  start, so that the ranks agree even if something made them build different weights.
- ``MPIGroup.gradient_sum`` packs the gradients into a few contiguous buckets (about
  ``BUCKET_BYTES`` each, in the reverse of the parameters' order: the order in which the
  backward finishes them) and sums each with a non-blocking ``Iallreduce`` as soon as the
  backward has completed it, overlapped with the rest of the backward; the step's metrics
  and stop requests ride in one more small buffer.
- Batch norm: each rank normalises with its own part's statistics and keeps its own running
  estimates (rank 0's are saved), as Horovod and PyTorch's DDP do by default;
  ``synchronize_batch_norm(model, group)`` makes every BatchNorm layer use the statistics of
  the whole batch instead (``cnnlab.ops.norm_sync``), which matches one process exactly.
- ``run_or_abort`` ends the whole job when one rank fails: it prints that rank's message and
  calls ``MPI_Abort``, instead of leaving the other ranks waiting in a collective.

Launch (``--oversubscribe`` when there are fewer cores than ranks; ``--allow-run-as-root``
as root in a container)::

    mpirun -np 4 cnnlab train --model fashion --data fashion-mnist --batch-size 32
"""

from __future__ import annotations

import os
import sys
import time
import zlib

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.row_sparse import RowSparseGrad

__all__ = ["BUCKET_BYTES", "DistributedError", "GradientSum", "MPIGroup", "is_root",
           "launched_size", "root_run", "run_or_abort", "synchronize_batch_norm",
           "threads_per_rank", "world"]

#: the size of a gradient bucket: a few large reductions instead of one per tensor, small
#: enough that the last layers' buckets are summed while the backward is still running
BUCKET_BYTES = 2 << 20
#: what launchers set: OpenMPI's mpirun, MPICH/Intel MPI's hydra
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS")

_world = None


class DistributedError(CnnlabError):
    """A data-parallel launch that cannot work (mpi4py missing, ranks that disagree)."""


def launched_size() -> int:
    """The number of ranks the launcher says this job has (1 when not launched by MPI)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def world() -> MPIGroup | None:
    """The job's ranks as an ``MPIGroup``, or None when this is a single process."""
    global _world
    if _world is not None or launched_size() <= 1:
        return _world
    try:
        from mpi4py import MPI
    except ImportError:
        raise DistributedError(
            f"launched by MPI with {launched_size()} ranks, but mpi4py is not installed: "
            "pip install -e '.[mpi]' (or Debian's python3-mpi4py)") from None
    if MPI.COMM_WORLD.Get_size() > 1:
        _world = MPIGroup(MPI.COMM_WORLD)
    return _world


def is_root() -> bool:
    """Whether this process prints and writes files: always alone, rank 0 under mpirun."""
    group = world()
    return group is None or group.rank == 0


def root_run(create):
    """The run folder of a data-parallel job: ``create()`` (which makes and fills it) runs on
    rank 0 only; the other ranks get a ``cnnlab.runs.Run`` of the same folder, to read, never
    to write. Alone, simply ``create()``."""
    group = world()
    if group is None:
        return create()
    from pathlib import Path

    from cnnlab import runs

    run = create() if group.rank == 0 else None
    directory = group.comm.bcast(None if run is None else str(run.directory), root=0)
    return run if run is not None else runs.Run(Path(directory))


def threads_per_rank() -> int | None:
    """BLAS threads for each rank: this machine's cores shared among its ranks (None alone,
    where ``cnnlab.threads.BlasThreads`` chooses)."""
    group = world()
    if group is None:
        return None
    local = os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE", os.environ.get("MPI_LOCALNRANKS", ""))
    ranks_here = int(local) if local.isdigit() and int(local) > 0 else group.size
    return max(1, (os.cpu_count() or 1) // ranks_here)


class MPIGroup:
    """The ranks of one MPI communicator, with the collectives that training needs."""

    def __init__(self, comm, bucket_bytes: int = BUCKET_BYTES):
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.bucket_bytes = int(bucket_bytes)
        #: sum buckets during the backward (False: all after it, to measure what overlap buys)
        self.overlap = True
        self._buckets: list[tuple[np.ndarray, list[tuple[int, int, int]]]] = []
        self._layout: tuple = ()
        #: seconds the last step's gradient sum cost outside the overlap: packing, and waiting
        #: in ``finish`` (for the slowest rank too)
        self.last_reduce_seconds = 0.0
        #: buckets of the last step, and how many of them began summing during the backward
        self.last_buckets = self.last_overlapped = 0

    def __repr__(self) -> str:
        return f"MPIGroup(rank={self.rank}, size={self.size})"

    def broadcast_state(self, model) -> None:
        """Copy rank 0's parameters and buffers into every rank's model, in place."""
        arrays = [p.data for p in model.parameters()] + [b for _, b in model.named_buffers()]
        shapes = self.comm.bcast([(a.shape, a.dtype.str) for a in arrays], root=0)
        if shapes != [(a.shape, a.dtype.str) for a in arrays]:
            raise DistributedError(
                f"rank {self.rank}'s model differs from rank 0's (parameter shapes or dtypes); "
                "every rank must build the same model")
        for dtype in sorted({a.dtype.str for a in arrays}):
            group = [a for a in arrays if a.dtype.str == dtype]
            flat = np.concatenate([a.ravel() for a in group])
            self.comm.Bcast(flat, root=0)
            start = 0
            for a in group:
                a[...] = flat[start:start + a.size].reshape(a.shape)
                start += a.size

    def sum(self, values) -> np.ndarray:
        """The element-wise sum of ``values`` (float64) over the ranks."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        total = np.empty_like(values)
        self.comm.Allreduce(values, total, op=self._mpi.SUM)
        return total

    def gradient_sum(self, parameters) -> GradientSum:
        """Start summing a step's gradients over the ranks: give ``.leaf_done`` to the backward
        (``Tensor.backward(..., leaf_done=...)``), then call ``.finish(extra)``."""
        tensors = [p for p in parameters if p.requires_grad][::-1]
        self._plan(tensors)
        return GradientSum(self, tensors)

    def _plan(self, tensors) -> None:
        """Buckets of consecutive parameters of one dtype, about ``bucket_bytes`` each."""
        layout = tuple((p.data.shape, p.data.dtype.str) for p in tensors)
        if layout == self._layout:
            return
        agreed = self.comm.allgather(zlib.crc32(repr(layout).encode()))
        if len(set(agreed)) != 1:
            raise DistributedError(
                "the ranks' models differ (parameter shapes, dtypes or which ones train); "
                "every rank must build the same model")
        buckets, current, size, dtype = [], [], 0, None
        for index, p in enumerate(tensors):
            if current and (p.data.dtype != dtype or size * dtype.itemsize >= self.bucket_bytes):
                buckets.append((dtype, current, size))
                current, size = [], 0
            dtype = p.data.dtype
            current.append((index, size, size + p.data.size))
            size += p.data.size
        if current:
            buckets.append((dtype, current, size))
        self._buckets = [(np.empty(size, dtype), places) for dtype, places, size in buckets]
        self._layout = layout

    def abort(self, status: int = 1) -> None:
        """End every rank of the job now (``MPI_Abort``)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(status)


class GradientSum:
    """One step's gradient sum: each bucket's ``Iallreduce`` starts as soon as the backward
    has completed every gradient in it (``leaf_done``), while the backward goes on with the
    earlier layers; ``finish`` starts the rest, waits, and puts the sums in place.

    A parameter without a gradient on this step contributes zeros and keeps ``grad = None``
    (the ranks run the same graph, so it has none anywhere). A row-sparse embedding gradient
    is summed densely (its rows differ between ranks).
    """

    def __init__(self, group: MPIGroup, tensors):
        self.group, self.tensors = group, tensors
        self.where = {}
        for bucket, (_, places) in enumerate(group._buckets):
            for index, begin, end in places:
                self.where[id(tensors[index])] = (bucket, begin, end)
        self.missing = [len(places) for _, places in group._buckets]
        self.requests = [None] * len(group._buckets)
        self.packed: set[int] = set()
        self.pack_seconds = 0.0

    def leaf_done(self, tensor) -> None:
        """Pack this gradient; start its bucket's sum once the bucket is complete."""
        where = self.where.get(id(tensor))
        if (not self.group.overlap or where is None or id(tensor) in self.packed
                or tensor.grad is None):
            return
        start = time.perf_counter()
        self._pack(tensor, *where)
        bucket = where[0]
        self.missing[bucket] -= 1
        if self.missing[bucket] == 0:
            self._start(bucket)
        started = [r for r in self.requests if r is not None]
        if started:
            self.group._mpi.Request.Testall(started)  # lets MPI move the data meanwhile
        self.pack_seconds += time.perf_counter() - start

    def _pack(self, tensor, bucket, begin, end) -> None:
        grad = tensor.grad
        if isinstance(grad, RowSparseGrad):
            grad = grad.to_dense()
        self.group._buckets[bucket][0][begin:end] = np.asarray(grad).ravel()
        self.packed.add(id(tensor))

    def _start(self, bucket) -> None:
        mpi = self.group._mpi
        self.requests[bucket] = self.group.comm.Iallreduce(
            mpi.IN_PLACE, self.group._buckets[bucket][0], op=mpi.SUM)

    def finish(self, extra) -> np.ndarray:
        """Sum what is left, wait for every bucket and set each gradient to its sum; return
        ``extra`` (a float64 vector) summed over the ranks."""
        start = time.perf_counter()
        without = set()
        for tensor in self.tensors:
            if id(tensor) in self.packed:
                continue
            bucket, begin, end = self.where[id(tensor)]
            if tensor.grad is None:
                without.add(id(tensor))
                self.group._buckets[bucket][0][begin:end] = 0
            else:
                self._pack(tensor, bucket, begin, end)
        self.group.last_buckets = len(self.requests)
        self.group.last_overlapped = sum(r is not None for r in self.requests)
        for bucket, request in enumerate(self.requests):
            if request is None:
                self._start(bucket)
        mpi = self.group._mpi
        extra = np.ascontiguousarray(extra, dtype=np.float64)
        extra_total = np.empty_like(extra)
        self.requests.append(self.group.comm.Iallreduce(extra, extra_total, op=mpi.SUM))
        mpi.Request.Waitall(self.requests)
        for buffer, places in self.group._buckets:  # views: the buffers are refilled each step
            for index, begin, end in places:
                tensor = self.tensors[index]
                tensor.grad = (None if id(tensor) in without
                               else buffer[begin:end].reshape(tensor.data.shape))
        self.group.last_reduce_seconds = self.pack_seconds + time.perf_counter() - start
        return extra_total


def synchronize_batch_norm(model, group: MPIGroup | None) -> int:
    """Make every BatchNorm layer of ``model`` normalise with the whole batch's statistics,
    summed over ``group``'s ranks (None: back to each process's own). Returns how many."""
    from cnnlab.nn import BatchNorm

    layers = [m for m in model.modules() if isinstance(m, BatchNorm)]
    for layer in layers:
        layer.statistics_sum = None if group is None else group.sum
    return len(layers)


def run_or_abort(function, *args, describe=str):
    """``function(*args)``'s result; under MPI, any failure ends the whole job.

    An exception, or a non-zero status returned, on one rank would leave the others waiting
    forever in their next collective: this rank's message is printed (``describe(error)``,
    with the rank) and ``MPI_Abort`` ends every rank with a non-zero status, within seconds.
    Without MPI, ``function`` runs as it is.
    """
    group = world()
    if group is None:
        return function(*args)
    try:
        return function(*args)
    except SystemExit:
        raise
    except BaseException as error:
        print(f"rank {group.rank} of {group.size}: {describe(error)}", file=sys.stderr)
        group.abort(2 if isinstance(error, CnnlabError) else 1)
        raise
