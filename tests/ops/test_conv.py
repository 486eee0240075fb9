"""conv2d / conv1d / output_size: lecture golden values, a naive loop reference,
float64 finite differences and PyTorch as an oracle over a grid of cases."""

import numpy as np
import pytest

from cnnlab.gradcheck import gradcheck
from cnnlab.ops.conv import conv1d, conv2d, output_size
from cnnlab.tensor import Tensor

LECTURE_IMAGE = np.array(
    [
        [1, 0, 0, 0, 0, 1],
        [0, 1, 0, 0, 1, 0],
        [0, 0, 1, 1, 0, 0],
        [1, 0, 0, 0, 1, 0],
        [0, 1, 0, 0, 1, 0],
        [0, 0, 1, 0, 1, 0],
    ],
    dtype=np.float64,
)
LECTURE_FILTER = np.array([[1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def naive_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Loops over every output element, written for clarity (symmetric int/pair padding only)."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    n, c_in, h, width = x.shape
    c_out, c_per_group, kh, kw = w.shape
    xp = np.zeros((n, c_in, h + 2 * ph, width + 2 * pw), dtype=x.dtype)
    xp[:, :, ph : ph + h, pw : pw + width] = x
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out_per_group = c_out // groups
    y = np.zeros((n, c_out, oh, ow), dtype=x.dtype)
    for b_i in range(n):
        for o in range(c_out):
            g = o // out_per_group
            for i in range(oh):
                for j in range(ow):
                    total = 0.0 if b is None else b[o]
                    for c in range(c_per_group):
                        for u in range(kh):
                            for v in range(kw):
                                total += w[o, c, u, v] * xp[b_i, g * c_per_group + c, sh * i + dh * u, sw * j + dw * v]
                    y[b_i, o, i, j] = total
    return y


# (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups)
CASES = [
    (1, 1, 5, 5, 1, 3, 1, 0, 1, 1),
    (2, 2, 6, 6, 3, 3, 2, 1, 1, 1),
    (2, 3, 7, 5, 2, (2, 3), 1, "same", 1, 1),
    (1, 2, 8, 7, 4, 3, 3, 2, 1, 2),
    (2, 4, 6, 6, 4, 3, 1, 1, 1, 4),
    (1, 2, 9, 9, 2, 3, 2, 2, 2, 1),
    (2, 2, 5, 6, 3, 1, 1, 0, 1, 1),
    (1, 1, 7, 7, 2, 5, 1, 2, 1, 1),
    (2, 2, 6, 5, 2, (3, 1), (2, 1), (1, 0), (2, 1), 1),
    (1, 4, 6, 6, 2, 3, 1, "same", 2, 2),
    (1, 2, 5, 5, 2, 4, 1, "same", 1, 1),
    (2, 3, 8, 8, 6, 3, 2, 0, 1, 3),
    (1, 3, 5, 6, 2, 5, 1, "valid", 1, 1),
]
CASE_IDS = [f"case{i}" for i in range(len(CASES))]


def make_case(case, dtype=np.float64, seed=0):
    n, c_in, h, width, c_out, kernel, stride, padding, dilation, groups = case
    kh, kw = _pair(kernel)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, width)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return x, w, b, options


# ---------------------------------------------------------------- lecture golden values
def test_lecture_stride_1():
    y = conv2d(Tensor(LECTURE_IMAGE[None, None]), Tensor(LECTURE_FILTER[None, None]))
    expected = [[3, -1, -3, -1], [-3, 1, 0, -3], [-3, -3, 0, 1], [3, -2, -2, -1]]
    np.testing.assert_array_equal(y.data[0, 0], expected)


def test_lecture_stride_2():
    y = conv2d(Tensor(LECTURE_IMAGE[None, None]), Tensor(LECTURE_FILTER[None, None]), stride=2)
    np.testing.assert_array_equal(y.data[0, 0], [[3, -3], [-3, 0]])


def test_lecture_stride_1_then_max_pool():
    from cnnlab.ops.pool import max_pool2d

    y = conv2d(Tensor(LECTURE_IMAGE[None, None]), Tensor(LECTURE_FILTER[None, None]))
    np.testing.assert_array_equal(max_pool2d(y, 2).data[0, 0], [[3, 0], [3, 1]])


# ---------------------------------------------------------------- output size
@pytest.mark.parametrize(
    ("n", "k", "s", "p", "d", "expected"),
    [(6, 3, 1, 0, 1, 4), (6, 3, 2, 0, 1, 2), (28, 5, 1, 2, 1, 28), (7, 3, 2, 1, 1, 4), (9, 3, 1, 0, 2, 5),
     (224, 11, 4, 2, 1, 55), (5, 5, 1, 0, 1, 1)],
)
def test_output_size(n, k, s, p, d, expected):
    assert output_size(n, k, s, p, d) == expected


def test_output_size_rejects_kernel_larger_than_input():
    with pytest.raises(ValueError, match="does not fit"):
        output_size(4, 3, dilation=2)


# ---------------------------------------------------------------- naive reference
@pytest.mark.parametrize("case", [c for c in CASES if not isinstance(c[7], str)], ids=lambda c: str(c))
def test_forward_matches_naive_loops(case):
    x, w, b, options = make_case(case)
    y = conv2d(Tensor(x), Tensor(w), Tensor(b), **options)
    np.testing.assert_allclose(y.data, naive_conv2d(x, w, b, **options), rtol=1e-12, atol=1e-12)


def test_same_padding_keeps_size_at_stride_1():
    x, w, _b, _ = make_case((2, 3, 7, 6, 4, (4, 3), 1, 0, 1, 1))
    for dilation in (1, 2):
        assert conv2d(Tensor(x), Tensor(w), padding="same", dilation=dilation).shape == (2, 4, 7, 6)


def test_same_padding_with_stride_follows_tensorflow():
    # TF 'same': out = ceil(n / s), total padding (out−1)s + k − n, the odd pixel after.
    x, w, _, _ = make_case((1, 2, 7, 8, 3, 4, 1, 0, 1, 1))
    y = conv2d(Tensor(x), Tensor(w), stride=2, padding="same")
    assert y.shape == (1, 3, 4, 4)
    # H: total (4−1)·2 + 4 − 7 = 3 → (1, 2); W: total (4−1)·2 + 4 − 8 = 2 → (1, 1)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 2), (1, 1)))
    np.testing.assert_allclose(y.data, naive_conv2d(xp, w, stride=2), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- finite differences
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradcheck(case):
    x, w, b, options = make_case(case)
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    errors = gradcheck(lambda x, w, b: conv2d(x, w, b, **options), inputs)
    assert set(errors) == {0, 1, 2}
    assert max(errors.values()) < 1e-6, errors


def test_gradcheck_without_bias():
    x, w, _, options = make_case(CASES[3])
    errors = gradcheck(lambda x, w: conv2d(x, w, **options), [Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)])
    assert max(errors.values()) < 1e-6, errors


def test_rows_never_read_get_zero_gradient():
    # 8×7 input, 3×3 kernel, stride 3, no padding: rows/columns 6 and 7 (resp. 6) are never read.
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((1, 1, 8, 7)), requires_grad=True)
    w = Tensor(rng.standard_normal((1, 1, 3, 3)))
    y = conv2d(x, w, stride=3)
    assert y.shape == (1, 1, 2, 2)
    y.sum().backward()
    assert np.all(x.grad[0, 0, 6:, :] == 0) and np.all(x.grad[0, 0, :, 6:] == 0)
    assert np.all(x.grad[0, 0, :6, :6] != 0)
    np.testing.assert_allclose(x.grad[0, 0, :3, :3], w.data[0, 0])


def test_backward_twice_accumulates():
    x, w, _b, options = make_case(CASES[1])
    tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    y = conv2d(tx, tw, **options).sum()
    y.backward()
    first = tx.grad.copy(), tw.grad.copy()
    y.backward()
    np.testing.assert_allclose(tx.grad, 2 * first[0])
    np.testing.assert_allclose(tw.grad, 2 * first[1])


def test_float32_stays_float32():
    x, w, b, options = make_case(CASES[1], dtype=np.float32)
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = conv2d(*tensors, **options)
    assert y.dtype == np.float32
    y.sum().backward()
    assert all(t.grad.dtype == np.float32 for t in tensors)


# ---------------------------------------------------------------- conv1d
CASES_1D = [
    # (N, C_in, L, C_out, K, stride, padding, dilation, groups)
    (2, 3, 9, 4, 3, 1, 0, 1, 1),
    (1, 4, 10, 2, 2, 2, 1, 1, 2),
    (2, 2, 11, 3, 3, 3, "same", 1, 1),
    (1, 5, 7, 5, 3, 1, "same", 2, 5),
]


def make_case_1d(case, dtype=np.float64, seed=0):
    n, c_in, length, c_out, k, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, length)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, k)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    return x, w, b, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def test_conv1d_sentence_filter_spans_embedding():
    # 7 words with 5-dim embeddings: a 3-word filter over the whole embedding gives 5 numbers.
    rng = np.random.default_rng(2)
    sentence = rng.standard_normal((1, 5, 7))
    w = rng.standard_normal((1, 5, 3))
    y = conv1d(Tensor(sentence), Tensor(w))
    expected = [np.sum(sentence[0, :, i : i + 3] * w[0]) for i in range(5)]
    np.testing.assert_allclose(y.data[0, 0], expected, rtol=1e-12)


@pytest.mark.parametrize("case", CASES_1D, ids=lambda c: str(c))
def test_conv1d_matches_conv2d_and_gradcheck(case):
    x, w, b, options = make_case_1d(case)
    y = conv1d(Tensor(x), Tensor(w), Tensor(b), **options)
    if not isinstance(options["padding"], str):
        opts2 = dict(options, stride=(1, options["stride"]), padding=(0, options["padding"]),
                     dilation=(1, options["dilation"]))
        y2 = naive_conv2d(x[:, :, None], w[:, :, None], b, **opts2)[:, :, 0]
        np.testing.assert_allclose(y.data, y2, rtol=1e-12, atol=1e-12)
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    errors = gradcheck(lambda x, w, b: conv1d(x, w, b, **options), inputs)
    assert max(errors.values()) < 1e-6, errors


# ---------------------------------------------------------------- PyTorch oracle
def _torch_conv(torch, x, w, b, options, dim=2):
    F = torch.nn.functional
    padding = options["padding"]
    conv = F.conv2d if dim == 2 else F.conv1d
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv(tx, tw, tb, stride=options["stride"], padding=padding, dilation=options["dilation"],
             groups=options["groups"])
    return y, (tx, tw, tb)


def _compare(ours, theirs, dtype):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    else:
        scale = max(float(np.abs(theirs).max()), 1e-30)
        assert float(np.abs(ours - theirs).max()) / scale < 1e-4


def _forward_backward_against_torch(torch, op, arrays, options, dim, seed):
    """op's output and the gradients of every input agree with torch's for one upstream gradient."""
    dtype = arrays[0].dtype.type
    ty, torch_inputs = _torch_conv(torch, *arrays, options, dim=dim)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    y = op(*tensors, **options)
    _compare(y.data, ty.detach().numpy(), dtype)
    upstream = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    y.backward(upstream)
    ty.backward(torch.tensor(upstream))
    for ours, theirs in zip(tensors, torch_inputs):
        _compare(ours.grad, theirs.grad.numpy(), dtype)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_against_torch(case, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for conv2d")
    x, w, b, options = make_case(case, dtype=dtype)
    _forward_backward_against_torch(torch, conv2d, (x, w, b), options, dim=2, seed=5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [c for c in CASES_1D if c[5] == 1 or not isinstance(c[6], str)],
                         ids=lambda c: str(c))
def test_conv1d_against_torch(case, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for conv1d")
    x, w, b, options = make_case_1d(case, dtype=dtype)
    _forward_backward_against_torch(torch, conv1d, (x, w, b), options, dim=1, seed=6)


def test_large_float32_against_torch():
    # a realistic layer, so the fast paths (not only tiny shapes) are checked
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for conv2d")
    case = (8, 16, 14, 14, 32, 3, 1, 1, 1, 1)
    x, w, b, options = make_case(case, dtype=np.float32, seed=3)
    ty, torch_inputs = _torch_conv(torch, x, w, b, options)
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = conv2d(*tensors, **options)
    _compare(y.data, ty.detach().numpy(), np.float32)
    upstream = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
    y.backward(upstream)
    ty.backward(torch.tensor(upstream))
    for ours, theirs in zip(tensors, torch_inputs):
        _compare(ours.grad, theirs.grad.numpy(), np.float32)


# ---------------------------------------------------------------- errors
def _t(*shape, dtype=np.float32):
    return Tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: conv2d(_t(3, 8, 8), _t(4, 3, 3, 3)), r"conv2d: expected input x of shape \(N, C_in, H, W\).*got shape \(3, 8, 8\)"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3)), r"conv2d: expected weights w .*got shape \(4, 3, 3\)"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 2, 3, 3)), r"conv2d: weights w of shape \(4, 2, 3, 3\) have 2 input channels, expected C_in/groups = 3/1 = 3"),
        (lambda: conv2d(_t(1, 4, 8, 8), _t(3, 2, 3, 3), groups=2), r"conv2d: output channels C_out=3 .*not divisible by groups=2"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 1, 3, 3), groups=2), r"conv2d: input channels C_in=3 are not divisible by groups=2"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), groups=0), r"conv2d: groups must be a positive int, got groups=0"),
        (lambda: conv2d(_t(1, 3, 4, 4), _t(4, 3, 5, 5)), r"conv2d: kernel height 5 .*larger than the padded input height 4"),
        (lambda: conv2d(_t(1, 3, 4, 4), _t(4, 3, 3, 3), dilation=2), r"conv2d: kernel height 3 \(dilated extent 5\)"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), stride=0), r"conv2d: stride must be >= 1, got stride=0"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), stride=(1, 2, 3)), r"conv2d: stride must be an int or a pair"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), padding=-1), r"conv2d: padding must be >= 0, got padding=-1"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), padding="full"), r"conv2d: padding must be .*'same', got padding='full'"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), padding=1.5), r"conv2d: padding must be an int or a pair"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), _t(3)), r"conv2d: bias b must have shape \(C_out,\) = \(4,\), got shape \(3,\)"),
        (lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3, dtype=np.float64)), r"conv2d: x, w and b must share one dtype"),
        (lambda: conv2d(_t(1, 3, 8, 8, dtype=np.int64), _t(4, 3, 3, 3)), r"conv2d: x must be a floating-point"),
        (lambda: conv1d(_t(1, 3, 8, 8), _t(4, 3, 3)), r"conv1d: expected input x of shape \(N, C_in, L\)"),
        (lambda: conv1d(_t(1, 3, 4), _t(4, 3, 5)), r"conv1d: kernel size 5 .*larger than the padded input length 4"),
        (lambda: conv1d(_t(1, 3, 8), _t(4, 3, 3), stride=(1, 2)), r"conv1d: stride must be an int"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- im2col / col2im
def _im2col_arguments(case):
    """(x, kernel, stride, pads, dilation, out_size) of a CASES entry, as conv2d resolves them."""
    from cnnlab.ops.conv import _resolve_padding

    x, w, _, options = make_case(case)
    kernel = w.shape[2:]
    stride, dilation = _pair(options["stride"]), _pair(options["dilation"])
    pads = _resolve_padding(options["padding"], x.shape[2:], kernel, stride, dilation, "test")
    out_size = tuple(
        output_size(x.shape[2 + a], kernel[a], stride[a], pads[a], dilation[a]) for a in range(2)
    )
    return x, kernel, stride, pads, dilation, out_size


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_col2im_is_the_adjoint_of_im2col(case):
    # <im2col(x), c> == <x, col2im(c)> for every x, c: col2im is im2col's transpose
    from cnnlab.ops import _im2col

    x, kernel, stride, pads, dilation, out_size = _im2col_arguments(case)
    col = _im2col.im2col(x, kernel, stride, pads, dilation, out_size)
    c = np.random.default_rng(9).standard_normal(col.shape)
    dx = _im2col.col2im(c, x.shape, stride, pads, dilation)
    assert dx.shape == x.shape
    assert np.sum(col * c) == pytest.approx(np.sum(x * dx), rel=1e-12)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_compiled_im2col_and_col2im_match_numpy_reference(case):
    from cnnlab.ops import _im2col, _kernels_numba

    x, kernel, stride, pads, dilation, out_size = _im2col_arguments(case)
    col = _kernels_numba.im2col(x, kernel, stride, pads, dilation, out_size)
    np.testing.assert_array_equal(col, _im2col.im2col(x, kernel, stride, pads, dilation, out_size))
    c = np.random.default_rng(9).standard_normal(col.shape)
    np.testing.assert_allclose(_kernels_numba.col2im(c, x.shape, stride, pads, dilation),
                               _im2col.col2im(c, x.shape, stride, pads, dilation), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("input_grad", ["col2im", "full_convolution"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_both_input_grad_paths_against_torch(case, input_grad, monkeypatch):
    """Both evaluations of the lecture's ∂L/∂x (col2im of wᵀδ, full convolution of δ)."""
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for conv2d")
    from cnnlab.ops import conv

    full = input_grad == "full_convolution"
    monkeypatch.setattr(conv.Conv2d, "_full_convolution_is_smaller", lambda self, shape: full)
    x, w, b, options = make_case(case)
    ty, torch_inputs = _torch_conv(torch, x, w, b, options)
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = conv2d(*tensors, **options)
    _compare(y.data, ty.detach().numpy(), np.float64)
    upstream = np.random.default_rng(5).standard_normal(y.shape)
    y.backward(upstream)
    ty.backward(torch.tensor(upstream))
    for ours, theirs in zip(tensors, torch_inputs):
        _compare(ours.grad, theirs.grad.numpy(), np.float64)


def test_input_grad_picks_the_smaller_buffer():
    from cnnlab.ops.conv import Conv2d

    fn = Conv2d()
    fn.options = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    fn.x_shape = (2, 64, 8, 8)
    fn.w = np.zeros((8, 64, 3, 3))
    assert fn._full_convolution_is_smaller((2, 8, 8, 8))  # C_out ≪ C_in
    fn.x_shape = (2, 8, 8, 8)
    fn.w = np.zeros((64, 8, 3, 3))
    assert not fn._full_convolution_is_smaller((2, 64, 8, 8))


# (N, C_in, H, W, C_out, kernel, padding, dilation): odd/even/non-square, padding 0/1/2/'same', dilation
SHIFTED_CASES = [
    (2, 3, 7, 5, 4, 3, 1, 1),
    (2, 9, 6, 8, 5, (2, 3), 2, 1),
    (3, 8, 9, 9, 6, 3, 0, 2),
    (1, 16, 5, 4, 3, 1, 0, 1),
    (2, 4, 6, 6, 3, 3, (0, 2), (1, 2)),
    (2, 5, 8, 7, 2, (2, 2), "same", 1),
    (1, 2, 3, 3, 2, 3, 2, (2, 1)),
]


def _conv_with_path(monkeypatch, path, x, w, b, **options):
    from cnnlab.ops import _shifted_gemm

    monkeypatch.setattr(_shifted_gemm, "STRIDE1_PATH", path)
    tensors = [Tensor(a, requires_grad=True) for a in ((x, w) if b is None else (x, w, b))]
    y = conv2d(*tensors, **options)
    upstream = np.random.default_rng(11).standard_normal(y.shape).astype(x.dtype)
    y.backward(upstream)
    assert y.data.dtype == x.dtype
    assert y._ctx.shifted == (path == "shifted" and options.get("groups", 1) == 1)
    return [y.data] + [t.grad for t in tensors]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", SHIFTED_CASES)
def test_shifted_gemm_path_matches_im2col_path(case, bias, monkeypatch):
    """Stride 1: the shifted-GEMM forward, ∂L/∂w and full-convolution ∂L/∂x equal im2col's (float64)."""
    n, c_in, h, width, c_out, kernel, padding, dilation = case
    kernel = _pair(kernel)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c_in, h, width))
    w = rng.standard_normal((c_out, c_in) + kernel)
    b = rng.standard_normal(c_out) if bias else None
    options = {"padding": padding, "dilation": dilation}
    reference = _conv_with_path(monkeypatch, "im2col", x, w, b, **options)
    shifted = _conv_with_path(monkeypatch, "shifted", x, w, b, **options)
    for ours, theirs in zip(shifted, reference):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_shifted_gemm_path_keeps_im2col_for_groups_and_strides(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 6, 6))
    w = rng.standard_normal((6, 2, 3, 3))
    grouped = _conv_with_path(monkeypatch, "shifted", x, w, None, padding=1, groups=2)
    reference = _conv_with_path(monkeypatch, "im2col", x, w, None, padding=1, groups=2)
    for ours, theirs in zip(grouped, reference):
        np.testing.assert_array_equal(ours, theirs)
    from cnnlab.ops import _shifted_gemm

    monkeypatch.setattr(_shifted_gemm, "STRIDE1_PATH", "shifted")
    y = conv2d(Tensor(x), Tensor(np.ones((3, 4, 3, 3))), stride=2, padding=1)
    assert y.shape == (2, 3, 3, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shifted_gemm_path_against_torch(dtype, monkeypatch):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for conv2d")
    from cnnlab.ops import _shifted_gemm

    monkeypatch.setattr(_shifted_gemm, "STRIDE1_PATH", "shifted")
    monkeypatch.setattr(_shifted_gemm, "BLOCK_BYTES", 4096)  # many column blocks
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 5, 9, 7)).astype(dtype)
    w = rng.standard_normal((4, 5, 3, 2)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    options = {"stride": 1, "padding": (2, 1), "dilation": (1, 2), "groups": 1}
    ty, torch_inputs = _torch_conv(torch, x, w, b, options)
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = conv2d(*tensors, **options)
    _compare(y.data, ty.detach().numpy(), dtype)
    upstream = rng.standard_normal(y.shape).astype(dtype)
    y.backward(upstream)
    ty.backward(torch.tensor(upstream))
    for ours, theirs in zip(tensors, torch_inputs):
        _compare(ours.grad, theirs.grad.numpy(), dtype)


def test_auto_path_picks_shifted_gemm_for_wide_frames_only():
    from cnnlab.ops._shifted_gemm import use_shifted_gemm

    pads1 = ((1, 1), (1, 1))
    assert use_shifted_gemm((8, 32, 28, 28), (32, 32, 3, 3), (1, 1), pads1, (1, 1), 1)
    assert not use_shifted_gemm((8, 1, 28, 28), (32, 1, 3, 3), (1, 1), pads1, (1, 1), 1)  # one channel
    assert not use_shifted_gemm((8, 32, 14, 14), (32, 32, 3, 3), (1, 1), pads1, (1, 1), 1)  # 31% waste
    assert not use_shifted_gemm((8, 32, 28, 28), (32, 32, 3, 3), (2, 2), pads1, (1, 1), 1)
    assert not use_shifted_gemm((8, 32, 28, 28), (32, 16, 3, 3), (1, 1), pads1, (1, 1), 2)
