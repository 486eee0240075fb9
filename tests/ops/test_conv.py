"""conv2d / conv1d / output_size: lecture golden values, a naive loop reference,
float64 finite differences and PyTorch as an oracle over a grid of cases."""

import numpy as np
import pytest

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


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "d", "expected"),
    [
        (6, 3, 1, 0, 1, 4),
        (6, 3, 2, 0, 1, 2),
        (28, 5, 1, 2, 1, 28),
        (7, 3, 2, 1, 1, 4),
        (9, 3, 1, 0, 2, 5),
        (224, 11, 4, 2, 1, 55),
        (5, 5, 1, 0, 1, 1),
    ],
)
def test_output_size(n, k, s, p, d, expected):
    assert output_size(n, k, s, p, d) == expected


def test_output_size_rejects_kernel_larger_than_input():
    with pytest.raises(ValueError, match="does not fit"):
        output_size(4, 3, dilation=2)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_naive_loops(case, naive_conv2d):
    x, w, b, options = make_case(case)
    y = conv2d(Tensor(x), Tensor(w), Tensor(b), **options)
    np.testing.assert_allclose(y.data, naive_conv2d(x, w, b, **options), rtol=1e-12, atol=1e-12)


def test_same_padding_keeps_size_at_stride_1():
    x, w, _b, _ = make_case((2, 3, 7, 6, 4, (4, 3), 1, 0, 1, 1))
    for dilation in (1, 2):
        assert conv2d(Tensor(x), Tensor(w), padding="same", dilation=dilation).shape == (
            2,
            4,
            7,
            6,
        )


def test_same_padding_with_stride_follows_tensorflow(naive_conv2d):
    # TF 'same': out = ceil(n / s), total padding (out−1)s + k − n, the odd pixel after.
    x, w, _, _ = make_case((1, 2, 7, 8, 3, 4, 1, 0, 1, 1))
    y = conv2d(Tensor(x), Tensor(w), stride=2, padding="same")
    assert y.shape == (1, 3, 4, 4)
    # H: total (4−1)·2 + 4 − 7 = 3 → (1, 2); W: total (4−1)·2 + 4 − 8 = 2 → (1, 1)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 2), (1, 1)))
    np.testing.assert_allclose(y.data, naive_conv2d(xp, w, stride=2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradcheck(case, check_gradients):
    x, w, b, options = make_case(case)
    errors = check_gradients(lambda x, w, b: conv2d(x, w, b, **options), x, w, b)
    assert set(errors) == {0, 1, 2}


def test_gradcheck_without_bias(check_gradients):
    x, w, _, options = make_case(CASES[3])
    assert set(check_gradients(lambda x, w: conv2d(x, w, **options), x, w)) == {0, 1}


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
def test_conv1d_matches_conv2d_and_gradcheck(case, naive_conv2d, check_gradients):
    x, w, b, options = make_case_1d(case)
    y = conv1d(Tensor(x), Tensor(w), Tensor(b), **options)
    if not isinstance(options["padding"], str):
        opts2 = dict(
            options,
            stride=(1, options["stride"]),
            padding=(0, options["padding"]),
            dilation=(1, options["dilation"]),
        )
        y2 = naive_conv2d(x[:, :, None], w[:, :, None], b, **opts2)[:, :, 0]
        np.testing.assert_allclose(y.data, y2, rtol=1e-12, atol=1e-12)
    assert set(check_gradients(lambda x, w, b: conv1d(x, w, b, **options), x, w, b)) == {0, 1, 2}


def _torch_options(options):
    return {k: options[k] for k in ("stride", "padding", "dilation", "groups")}


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_against_torch(case, dtype, torch, torch_check):
    x, w, b, options = make_case(case, dtype=dtype)
    torch_check(
        lambda x, w, b: conv2d(x, w, b, **options),
        lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **_torch_options(options)),
        x,
        w,
        b,
        seed=5,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "case", [c for c in CASES_1D if c[5] == 1 or not isinstance(c[6], str)], ids=lambda c: str(c)
)
def test_conv1d_against_torch(case, dtype, torch, torch_check):
    x, w, b, options = make_case_1d(case, dtype=dtype)
    torch_check(
        lambda x, w, b: conv1d(x, w, b, **options),
        lambda x, w, b: torch.nn.functional.conv1d(x, w, b, **_torch_options(options)),
        x,
        w,
        b,
        seed=6,
    )


def test_large_float32_against_torch(torch, torch_check):
    # a realistic layer: the automatic plan picks the shifted-GEMM route here
    case = (8, 16, 14, 14, 32, 3, 1, 1, 1, 1)
    x, w, b, options = make_case(case, dtype=np.float32, seed=3)
    torch_check(
        lambda x, w, b: conv2d(x, w, b, **options),
        lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **_torch_options(options)),
        x,
        w,
        b,
        seed=7,
    )


def _t(*shape, dtype=np.float32):
    return Tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: conv2d(_t(3, 8, 8), _t(4, 3, 3, 3)),
            r"conv2d: expected input x of shape \(N, C_in, H, W\).*received shape \(3, 8, 8\)",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3)),
            r"conv2d: expected weights w .*received shape \(4, 3, 3\)",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 2, 3, 3)),
            (
                r"conv2d: weights w of shape \(4, 2, 3, 3\) have 2 input channels, "
                r"expected C_in/groups = 3/1 = 3"
            ),
        ),
        (
            lambda: conv2d(_t(1, 4, 8, 8), _t(3, 2, 3, 3), groups=2),
            r"conv2d: output channels C_out=3 .*not divisible by groups=2",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 1, 3, 3), groups=2),
            r"conv2d: input channels C_in=3 are not divisible by groups=2",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), groups=0),
            r"conv2d: groups must be an int >= 1, received groups=0",
        ),
        (
            lambda: conv2d(_t(1, 3, 4, 4), _t(4, 3, 5, 5)),
            r"conv2d: kernel height 5 .*larger than the padded input height 4",
        ),
        (
            lambda: conv2d(_t(1, 3, 4, 4), _t(4, 3, 3, 3), dilation=2),
            r"conv2d: kernel height 3 \(dilated extent 5\)",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), stride=0),
            r"conv2d: stride must be an int >= 1, received stride=0",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), stride=(1, 2, 3)),
            r"conv2d: stride must be an int or a pair of ints, received stride=\(1, 2, 3\)",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), padding=-1),
            r"conv2d: padding must be an int >= 0, received padding=-1",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), padding="full"),
            r"conv2d: padding must be one of 'valid', 'same', received padding='full'",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), _t(3)),
            r"conv2d: bias b must have shape \(C_out,\) = \(4,\), received shape \(3,\)",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3, dtype=np.float64)),
            r"conv2d: x, w and b must share one dtype",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8, dtype=np.int64), _t(4, 3, 3, 3)),
            r"conv2d: x must be a floating-point",
        ),
        (
            lambda: conv1d(_t(1, 3, 8, 8), _t(4, 3, 3)),
            r"conv1d: expected input x of shape \(N, C_in, L\)",
        ),
        (
            lambda: conv1d(_t(1, 3, 4), _t(4, 3, 5)),
            r"conv1d: kernel size 5 .*larger than the padded input length 4",
        ),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), padding=1.5),
            r"conv2d: padding must be an int, received padding=1.5",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), stride=(1, "2")),
            r"conv2d: stride\[1\] must be an int, received stride\[1\]='2'",
        ),
        (
            lambda: conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), groups=1.0),
            r"conv2d: groups must be an int, received groups=1.0",
        ),
        (
            lambda: conv1d(_t(1, 3, 8), _t(4, 3, 3), stride=(1, 2)),
            r"conv1d: stride must be an int, received stride=\(1, 2\)",
        ),
    ],
)
def test_wrong_argument_types_raise_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        call()
