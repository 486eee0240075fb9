"""grid_sample's routes over threads (``sampling_split``): every route gives the same bits,
the automatic choice, forcing, and a forked child that must not start OpenMP regions."""

import multiprocessing

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cnnlab.ops import sampling_split
from cnnlab.ops.sampling import affine_grid, grid_sample
from cnnlab.ops.sampling_split import SPLITS, choose, openmp_available
from cnnlab.ops.sampling_split import sampling_split as split
from cnnlab.tensor import Tensor


def _run(mode, padding, dtype, want_x, want_grid, n=7):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2, 6, 7)).astype(dtype)
    theta = np.array([[1.0, 0, 0], [0, 1.0, 0]]) + rng.normal(scale=0.9, size=(n, 2, 3))
    grid = affine_grid(theta, (n, 2, 4, 5)).data.astype(dtype)
    x_t, grid_t = Tensor(x, requires_grad=want_x), Tensor(grid, requires_grad=want_grid)
    y = grid_sample(x_t, grid_t, mode, padding)
    y.backward(rng.normal(size=y.shape).astype(dtype))
    return y.data, x_t.grad, grid_t.grad


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["zeros", "border"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wanted", [(True, True), (True, False), (False, True)])
def test_every_route_gives_the_same_bits(mode, padding, dtype, wanted):
    with split("caller"):
        reference = _run(mode, padding, dtype, *wanted)
    routes = [r for r in SPLITS if r != "caller" and (r != "openmp" or openmp_available()[0])]
    assert "threads" in routes
    for route in routes:
        with split(route):
            assert choose(10).route == route and choose(10).threads >= 2
            result = _run(mode, padding, dtype, *wanted)
        for a, b in zip(reference, result):
            if a is None:
                assert b is None
            else:
                np.testing.assert_array_equal(a, b)


def test_an_empty_batch_runs_on_every_route():
    for route in SPLITS:
        if route == "openmp" and not openmp_available()[0]:
            continue
        with split(route):
            y = grid_sample(Tensor(np.ones((0, 1, 3, 3)), requires_grad=True),
                            Tensor(np.zeros((0, 2, 2, 2)), requires_grad=True))
        assert y.shape == (0, 1, 2, 2)


def test_the_automatic_choice_follows_the_blas_threads_and_the_size():
    with threadpool_limits(1, user_api="blas"):
        assert choose(1 << 20) == sampling_split.Split("caller", 1)
    with threadpool_limits(2, user_api="blas"):
        assert choose(100).route == "caller"  # a hand-over would cost more than it saves
        big = choose(1 << 20)
        if openmp_available()[0]:
            assert big == sampling_split.Split("openmp", 2)
        else:
            assert big == sampling_split.Split("threads", 2)


def test_an_unknown_route_is_refused():
    with pytest.raises(ValueError, match="sampling_split"), split("gpu"):
        pass


def _child_choice(queue):
    try:
        automatic = choose(1 << 20).route
        with split("openmp"):
            try:
                choose(10)
                forced = "ran"
            except RuntimeError as error:
                forced = str(error)
        with threadpool_limits(2, user_api="blas"):
            y = grid_sample(np.ones((64, 1, 42, 42), np.float32),
                            np.zeros((64, 28, 28, 2), np.float32))
        queue.put((automatic, forced, float(y.data.sum())))
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        queue.put(repr(error))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_a_forked_child_never_starts_openmp_regions():
    # GNU OpenMP aborts a child forked after its parent ran a region, if the child runs one
    if not openmp_available()[0]:
        pytest.skip(f"no OpenMP route here: {openmp_available()[1]}")
    with split("openmp"):
        grid_sample(np.ones((4, 1, 5, 5)), np.zeros((4, 3, 3, 2)))  # the parent ran a region
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_choice, args=(queue,))
    child.start()
    result = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    automatic, forced, total = result
    assert automatic == "threads"
    assert "forked" in forced
    assert total == pytest.approx(64 * 784)  # every point at the centre of a ones image
