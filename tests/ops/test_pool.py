"""max_pool2d / avg_pool2d / global_avg_pool2d: naive loops, finite differences, PyTorch oracle."""

import numpy as np
import pytest

from cnnlab.gradcheck import gradcheck
from cnnlab.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d
from cnnlab.tensor import Tensor


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def naive_pool(x, kernel_size, stride=None, padding=0, kind="max"):
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    n, c, h, w = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, dtype=x.dtype)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            y[:, :, i, j] = window.max(axis=(2, 3)) if kind == "max" else window.mean(axis=(2, 3))
    return y


# (N, C, H, W, kernel, stride, padding)
CASES = [
    (1, 1, 4, 4, 2, None, 0),
    (2, 3, 7, 7, 3, 2, 1),
    (2, 2, 6, 5, (2, 3), (1, 2), (1, 1)),
    (1, 2, 7, 6, 2, 2, 0),
    (2, 2, 5, 5, 3, 1, 0),
    (1, 1, 8, 8, 3, 3, 1),
    (2, 3, 9, 9, 3, 2, 0),
]
CASE_IDS = [f"case{i}" for i in range(len(CASES))]
POOLS = {"max": max_pool2d, "avg": avg_pool2d}


def make_case(case, dtype=np.float64, seed=0):
    n, c, h, w, kernel, stride, padding = case
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)
    return x, {"kernel_size": kernel, "stride": stride, "padding": padding}


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_naive_loops(case, kind):
    x, options = make_case(case)
    y = POOLS[kind](Tensor(x), **options)
    np.testing.assert_allclose(y.data, naive_pool(x, kind=kind, **options), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradcheck(case, kind):
    x, options = make_case(case)
    errors = gradcheck(lambda t: POOLS[kind](t, **options), [Tensor(x, requires_grad=True)])
    assert errors[0] < 1e-6, errors


def test_max_pool_gradient_goes_to_the_maximum_only():
    x = Tensor(np.array([[[[1.0, 5.0], [3.0, 2.0]]]]), requires_grad=True)
    max_pool2d(x, 2).backward(np.array([[[[7.0]]]]))
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 7], [0, 0]])


def test_max_pool_ties_go_to_the_first_maximum():
    x = Tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])


def test_overlapping_windows_add_up():
    # 3×3 windows with stride 2 share the middle row/column (AlexNet's pooling)
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0  # the maximum of all four windows
    t = Tensor(x, requires_grad=True)
    max_pool2d(t, 3, stride=2).sum().backward()
    assert t.grad[0, 0, 2, 2] == 4 and t.grad.sum() == 4
    t.grad = None
    avg_pool2d(t, 3, stride=2).sum().backward()
    assert t.grad[0, 0, 2, 2] == pytest.approx(4 / 9) and t.grad[0, 0, 0, 0] == pytest.approx(1 / 9)


def test_rows_never_read_get_zero_gradient():
    x = Tensor(np.random.default_rng(1).standard_normal((1, 1, 7, 6)), requires_grad=True)
    avg_pool2d(x, 2).sum().backward()
    assert np.all(x.grad[0, 0, 6] == 0) and np.all(x.grad[0, 0, :6] == 0.25)


def test_global_avg_pool():
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    y = global_avg_pool2d(Tensor(x))
    assert y.shape == (2, 3)
    np.testing.assert_allclose(y.data, x.mean(axis=(2, 3)))
    errors = gradcheck(global_avg_pool2d, [Tensor(x, requires_grad=True)])
    assert errors[0] < 1e-6


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_float32_stays_float32(kind):
    x, options = make_case(CASES[1], dtype=np.float32)
    t = Tensor(x, requires_grad=True)
    y = POOLS[kind](t, **options)
    y.sum().backward()
    assert y.dtype == np.float32 and t.grad.dtype == np.float32
    g = global_avg_pool2d(t)
    assert g.dtype == np.float32


def _compare(ours, theirs, dtype):
    assert ours.dtype == theirs.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    else:
        assert float(np.abs(ours - theirs).max()) / max(float(np.abs(theirs).max()), 1e-30) < 1e-4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", CASES + [(4, 8, 28, 28, 2, None, 0), (4, 8, 28, 28, 3, 2, 0)],
                         ids=CASE_IDS + ["big2", "big3s2"])
def test_against_torch(case, kind, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for pooling")
    x, options = make_case(case, dtype=dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = (torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d)(tx, **options)
    t = Tensor(x, requires_grad=True)
    y = POOLS[kind](t, **options)
    _compare(y.data, ty.detach().numpy(), dtype)
    upstream = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    y.backward(upstream)
    ty.backward(torch.tensor(upstream))
    _compare(t.grad, tx.grad.numpy(), dtype)


def test_max_pool_ties_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for pooling")
    x = np.random.default_rng(4).integers(0, 3, size=(2, 2, 7, 7)).astype(np.float32)
    for options in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}):
        tx = torch.tensor(x, requires_grad=True)
        torch.nn.functional.max_pool2d(tx, **options).sum().backward()
        t = Tensor(x, requires_grad=True)
        max_pool2d(t, **options).sum().backward()
        np.testing.assert_array_equal(t.grad, tx.grad.numpy())


def _t(*shape, dtype=np.float32):
    return Tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: max_pool2d(_t(3, 8, 8), 2), r"max_pool2d: expected input x of shape \(N, C, H, W\).*got shape \(3, 8, 8\)"),
        (lambda: avg_pool2d(_t(1, 3, 4, 4), 5), r"avg_pool2d: kernel height 5 is larger than the padded input height 4"),
        (lambda: max_pool2d(_t(1, 3, 8, 8), 0), r"max_pool2d: kernel_size must be >= 1, got kernel_size=0"),
        (lambda: max_pool2d(_t(1, 3, 8, 8), 2, stride=0), r"max_pool2d: stride must be >= 1, got stride=0"),
        (lambda: max_pool2d(_t(1, 3, 8, 8), 2, padding=2), r"max_pool2d: padding must be at most half the kernel size"),
        (lambda: avg_pool2d(_t(1, 3, 8, 8), 2, padding=-1), r"avg_pool2d: padding must be >= 0"),
        (lambda: max_pool2d(_t(1, 3, 8, 8), "2"), r"max_pool2d: kernel_size must be an int or a pair"),
        (lambda: global_avg_pool2d(_t(3, 8)), r"global_avg_pool2d: expected input x of shape \(N, C, H, W\)"),
        (lambda: max_pool2d(_t(1, 3, 8, 8, dtype=np.int64), 2), r"max_pool2d: x must be a floating-point"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    "case", [*CASES, (1, 1, 4, 4, 2, None, 0), (2, 3, 6, 6, 3, 3, 0), (1, 2, 9, 8, (2, 3), (3, 1), 0)],
    ids=[*CASE_IDS, "ties", "3x3s3", "2x3s31"],
)
def test_numba_max_pool_matches_numpy_reference(case):
    from cnnlab.ops import _im2col, _kernels_numba
    from cnnlab.ops.pool import _pool_options

    x, options = make_case(case)
    if case[2] == 4:
        x = np.round(x)  # many ties
    kernel, stride, pads, out_size = _pool_options("test", Tensor(x), **options)
    y, argmax = _kernels_numba.max_pool_forward(x, kernel, stride, pads, out_size)
    y_ref, argmax_ref = _im2col.max_pool_forward(x, kernel, stride, pads, out_size)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    grad = np.random.default_rng(8).standard_normal(y.shape)
    np.testing.assert_allclose(
        _kernels_numba.max_pool_backward(grad, argmax, x.shape),
        _im2col.max_pool_backward(grad, argmax_ref, x.shape),
        rtol=1e-12, atol=1e-12,
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_numpy_reference_max_pool_against_torch(case, monkeypatch):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for pooling")
    from cnnlab.ops import _im2col, pool

    monkeypatch.setattr(pool, "kernels", _im2col)
    x, options = make_case(case)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, **options)
    t = Tensor(x, requires_grad=True)
    y = max_pool2d(t, **options)
    _compare(y.data, ty.detach().numpy(), np.float64)
    upstream = np.random.default_rng(3).standard_normal(y.shape)
    y.backward(upstream)
    ty.backward(torch.tensor(upstream))
    _compare(t.grad, tx.grad.numpy(), np.float64)
