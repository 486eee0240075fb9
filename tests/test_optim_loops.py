"""SGD's compiled update (``optim_loops``) gives the bits of its NumPy form, on one thread
or split across several."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cnnlab import optim
from cnnlab.ops import pass_threads
from cnnlab.tensor import Tensor


def _train(dtype, momentum, weight_decay, compiled, shapes=((7, 5), (300,), (2, 3, 4, 4))):
    rng = np.random.default_rng(0)
    params = [Tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]
    opt = optim.SGD(params, lr=0.03, momentum=momentum, weight_decay=weight_decay)
    if not compiled:
        opt._compiled_update = lambda index, param, grad: False
    for _ in range(4):
        for p in params:
            p.grad = rng.standard_normal(p.shape).astype(dtype)
        opt.step()
    return [p.data for p in params] + [s["momentum_buffer"] for s in opt.state if s]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.5, 1e-3),
                                                    (0.0, 1e-2)])
def test_compiled_sgd_gives_the_bits_of_numpy(dtype, momentum, weight_decay, monkeypatch):
    numpy_form = _train(dtype, momentum, weight_decay, compiled=False)
    assert len(numpy_form) == (6 if momentum else 3)
    with threadpool_limits(1, user_api="blas"):
        one_thread = _train(dtype, momentum, weight_decay, compiled=True)
    monkeypatch.setattr(pass_threads, "MIN_PARALLEL_ELEMENTS", 0)
    with threadpool_limits(2, user_api="blas"):
        split = _train(dtype, momentum, weight_decay, compiled=True)
    for a, b, c in zip(numpy_form, one_thread, split):
        assert a.dtype == b.dtype == c.dtype
        np.testing.assert_array_equal(b, a)
        np.testing.assert_array_equal(c, a)


def test_compiled_sgd_leaves_non_contiguous_and_sparse_cases_to_numpy():
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    param = Tensor(base.T, requires_grad=True)  # a transposed view: not C-contiguous
    opt = optim.SGD([param], lr=0.5)
    param.grad = np.ones((4, 3), dtype=np.float32)
    assert not opt._compiled_update(0, param, param.grad)
    expected = base.T - 0.5
    opt.step()
    np.testing.assert_array_equal(param.data, expected)
