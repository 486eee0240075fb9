"""The im2col route image by image (``conv_routes.im2col_images``): its split across threads,
the BLAS setting it holds and restores, the fused ReLU, and where the planner picks it.
(The forced grid in test_conv_routes.py checks it against naive loops, finite differences
and PyTorch.)"""

import numpy as np
import pytest

from cnnlab.ops.conv import conv2d, conv2d_plan, conv_routes
from cnnlab.ops.conv_routes import batch_threads, im2col_images
from cnnlab.tensor import Tensor

# (N, C_in, H, C_out, kernel, stride, padding, dilation)
CASES = [
    (5, 3, 9, 4, 5, 1, 2, 1),
    (4, 2, 8, 3, 3, 2, 1, 1),
    (3, 4, 10, 5, (3, 2), 1, 0, 2),
]


def _arrays(case, seed=0):
    n, c_in, h, c_out, kernel, *_ = case
    kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, c_in, h, h)),
        rng.standard_normal((c_out, c_in, *kernel)),
        rng.standard_normal(c_out),
    )


def _run(case, loops, activation=None, forward="im2col_images", input_grad="col2im"):
    x, w, b = _arrays(case)
    stride, padding, dilation = case[5:]
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    with conv_routes(forward=forward, input_grad=input_grad, loops=loops):
        y = conv2d(*tensors, stride=stride, padding=padding, dilation=dilation,
                   activation=activation)
    assert y._ctx.plan.forward == forward
    y.backward(np.random.default_rng(1).standard_normal(y.shape))
    return [y.data] + [t.grad for t in tensors]


@pytest.mark.parametrize("loops", ["numpy", "compiled"])
@pytest.mark.parametrize("case", CASES)
def test_split_across_threads_equals_one_thread(case, loops, monkeypatch, recorded_splits):
    """The same GEMMs per image on any thread: the output identical to the last bit, ∂L/∂w
    summed per range in another order (to rounding)."""
    results = {}
    for threads in (1, 3):
        monkeypatch.setattr(batch_threads, "blas_threads", lambda threads=threads: threads)
        results[threads] = _run(case, loops, activation="relu")
    # the forward and ∂L/∂w really split (col2im: one thread)
    assert [threads for threads, _ in recorded_splits].count(3) == 2
    np.testing.assert_array_equal(results[3][0], results[1][0])
    for parallel, serial in zip(results[3][1:], results[1][1:]):
        np.testing.assert_allclose(parallel, serial, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_equals_the_batch_im2col_route_with_relu_and_both_loops(case):
    reference = _run(case, "numpy", activation="relu", forward="im2col")
    for loops in ("numpy", "compiled"):
        for ours, theirs in zip(_run(case, loops, activation="relu"), reference):
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_blas_is_held_to_one_thread_inside_the_split_and_restored(recorded_splits):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if batch_threads.blas_threads() != 2:
            pytest.skip("this BLAS cannot be set to 2 threads")
        _run(CASES[0], "compiled")
        assert batch_threads.blas_threads() == 2
    # the forward's and ∂L/∂w's splits, each with BLAS at one thread
    assert [blas for threads, blas in recorded_splits if threads > 1] == [1, 1]


def test_an_error_inside_the_split_restores_the_blas_threads(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def failing(n_images, threads, work):
        raise RuntimeError("range failed")

    monkeypatch.setattr(batch_threads, "for_each_range", failing)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if batch_threads.blas_threads() != 2:
            pytest.skip("this BLAS cannot be set to 2 threads")
        with pytest.raises(RuntimeError, match="range failed"):
            _run(CASES[0], "compiled")
        assert batch_threads.blas_threads() == 2


def test_the_forward_keeps_the_padded_input_not_the_columns():
    x, w, b = _arrays(CASES[0])
    with conv_routes(forward="im2col_images"):
        y = conv2d(Tensor(x), Tensor(w, requires_grad=True), Tensor(b), padding=2)
    saved = y._ctx.saved
    assert isinstance(saved, im2col_images.PaddedImages)
    assert saved.xp.shape == (5, 3, 13, 13)


def test_planner_picks_it_for_large_buffers_with_wide_images():
    # the Go net's 5×5 first layer (222 MB of columns at batch 128) and conv_c
    assert conv2d_plan((128, 48, 19, 19), (64, 48, 5, 5), padding=2).forward == "im2col_images"
    assert conv2d_plan((128, 3, 32, 32), (64, 3, 5, 5), padding=2).forward == "im2col_images"
    # LeNet's layers, conv_a, a small batch: the batch buffer is small; 10×10 images are narrow
    assert conv2d_plan((64, 1, 28, 28), (6, 1, 5, 5), padding=2).forward == "im2col"
    assert conv2d_plan((64, 6, 14, 14), (16, 6, 5, 5)).forward == "im2col"
    assert conv2d_plan((64, 1, 28, 28), (32, 1, 3, 3)).forward == "im2col"
    assert conv2d_plan((8, 48, 19, 19), (64, 48, 5, 5), padding=2).forward == "im2col"
    assert conv2d_plan((512, 64, 10, 10), (64, 64, 5, 5)).forward == "im2col"
    # one group only
    assert conv2d_plan((128, 4, 32, 32), (64, 2, 5, 5), padding=2, groups=2).forward == "im2col"
    with conv_routes(forward="im2col_images"), pytest.raises(ValueError, match="groups=1"):
        conv2d_plan((1, 4, 6, 6), (2, 2, 3, 3), groups=2)



@pytest.mark.parametrize("loops", ["numpy", "compiled"])
def test_chunks_of_images_with_a_ragged_last_one_equal_one_image_at_a_time(loops, monkeypatch):
    results = {}
    for chunk in (1, 2):  # 5 images: chunks of 2, 2 and 1
        monkeypatch.setattr(im2col_images, "MAX_CHUNK", chunk)
        results[chunk] = _run(CASES[0], loops, activation="relu")
    for chunked, single in zip(results[2], results[1]):
        np.testing.assert_allclose(chunked, single, rtol=1e-12, atol=1e-12)
