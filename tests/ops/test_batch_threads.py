"""The batch split across threads (``conv_routes.batch_threads``) and the im2col route on it."""

import threading

import numpy as np
import pytest

from cnnlab.ops.conv import conv2d, conv_routes
from cnnlab.ops.conv_routes import batch_threads
from cnnlab.tensor import Tensor


@pytest.mark.parametrize("n_images, threads", [(1, 2), (2, 2), (5, 3), (64, 2), (7, 8)])
def test_every_image_is_worked_on_exactly_once(n_images, threads):
    seen = []
    lock = threading.Lock()

    def work(start, stop):
        with lock:
            seen.extend(range(start, stop))

    batch_threads.for_each_range(n_images, threads, work)
    assert sorted(seen) == list(range(n_images))


def test_ranges_run_on_worker_threads_too():
    caller = threading.current_thread()
    names = set()
    worker_took_one = threading.Event()

    def work(start, stop):
        names.add(threading.current_thread().name)
        if threading.current_thread() is caller:
            assert worker_took_one.wait(timeout=60)  # hold the caller until a worker has a range
        else:
            worker_took_one.set()

    batch_threads.for_each_range(8, 2, work)
    assert len(names) == 2 and caller.name in names


def test_an_error_in_a_range_is_raised_after_all_ranges_finish():
    finished = []

    def work(start, stop):
        if start == 3:
            raise ValueError("range 3 failed")
        finished.append(start)

    with pytest.raises(ValueError, match="range 3 failed"):
        batch_threads.for_each_range(6, 2, work)
    assert 3 not in finished


def test_chunk_count_follows_the_blas_threads_and_the_sizes(monkeypatch):
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 2)
    assert batch_threads.chunk_count(64, 200_000, 64 * 200_000) == 2
    assert batch_threads.chunk_count(1, 200_000, 200_000) == 1  # one image
    assert batch_threads.chunk_count(64, 1 << 20, 64 << 20) == 1  # BLAS threads these itself
    assert batch_threads.chunk_count(4, 1000, 4000) == 1  # too little work to hand over
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 1)
    assert batch_threads.chunk_count(64, 200_000, 64 * 200_000) == 1


def test_blas_threads_reads_the_blas_setting():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert batch_threads.blas_threads() == 1


# (N, C_in, H, C_out, kernel, stride, padding, groups): per-image GEMMs (buffer column ≤ half an
# output) and batch GEMMs, one and more groups, unit and other strides
CASES = [
    (5, 1, 9, 4, 3, 1, 0, 1),
    (5, 3, 8, 4, 3, 1, 1, 1),
    (4, 4, 9, 6, 3, 2, 1, 2),
    (6, 2, 7, 3, 5, 1, 2, 1),
    (5, 4, 10, 4, 1, 1, 0, 4),
]


@pytest.mark.parametrize("loops", ["numpy", "compiled"])
@pytest.mark.parametrize("input_grad", ["col2im", "full_convolution"])
@pytest.mark.parametrize("case", CASES)
def test_im2col_route_split_across_threads_equals_one_thread(
    case, input_grad, loops, monkeypatch, recorded_splits
):
    """The same GEMMs per image, in any order on any thread: identical to the last bit."""
    n, c_in, h, c_out, k, stride, padding, groups = case
    rng = np.random.default_rng(0)
    arrays = (
        rng.standard_normal((n, c_in, h, h)),
        rng.standard_normal((c_out, c_in // groups, k, k)),
        rng.standard_normal(c_out),
    )
    results = {}
    for threads in (1, 3):
        monkeypatch.setattr(batch_threads, "blas_threads", lambda threads=threads: threads)
        monkeypatch.setattr(batch_threads, "MIN_PARALLEL_MACS", 0)
        tensors = [Tensor(a, requires_grad=True) for a in arrays]
        with conv_routes(forward="im2col", input_grad=input_grad, loops=loops):
            y = conv2d(*tensors, stride=stride, padding=padding, groups=groups, activation="relu")
        y.backward(np.random.default_rng(1).standard_normal(y.shape))
        results[threads] = [y.data] + [t.grad for t in tensors]
    assert 3 in [threads for threads, _ in recorded_splits]  # the split really ran
    for parallel, serial in zip(results[3], results[1]):
        np.testing.assert_array_equal(parallel, serial)


def test_per_image_gemms_only_where_blas_runs_each_on_one_thread(monkeypatch):
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 2)
    assert batch_threads.per_image_gemms(batch_threads.BLAS_SINGLE_THREAD_MACS)
    assert not batch_threads.per_image_gemms(batch_threads.BLAS_SINGLE_THREAD_MACS + 1)
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 1)
    assert batch_threads.per_image_gemms(1 << 30)


@pytest.mark.parametrize("input_grad", ["col2im", "full_convolution"])
@pytest.mark.parametrize("case", CASES)
def test_batch_gemms_and_per_image_gemms_agree(case, input_grad, monkeypatch):
    """The im2col route's two ways (one GEMM per image, or per group for the whole batch)."""
    n, c_in, h, c_out, k, stride, padding, groups = case
    rng = np.random.default_rng(7)
    arrays = (
        rng.standard_normal((n, c_in, h, h)),
        rng.standard_normal((c_out, c_in // groups, k, k)),
        rng.standard_normal(c_out),
    )
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 2)
    results = []
    for single_thread_macs in (1 << 30, 0):  # every GEMM per image, then none
        monkeypatch.setattr(batch_threads, "BLAS_SINGLE_THREAD_MACS", single_thread_macs)
        tensors = [Tensor(a, requires_grad=True) for a in arrays]
        with conv_routes(forward="im2col", input_grad=input_grad):
            y = conv2d(*tensors, stride=stride, padding=padding, groups=groups, activation="relu")
        y.backward(np.random.default_rng(1).standard_normal(y.shape))
        results.append([y.data] + [t.grad for t in tensors])
    for per_image, batch in zip(*results):
        np.testing.assert_allclose(per_image, batch, rtol=1e-12, atol=1e-12)
