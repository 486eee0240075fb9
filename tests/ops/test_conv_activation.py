"""conv2d(..., activation="relu"): the ReLU fused into the convolution, on every route;
and results of consecutive calls that never share memory."""

import numpy as np
import pytest

from cnnlab.ops.activation import relu
from cnnlab.ops.conv import conv2d, conv_routes
from cnnlab.tensor import Tensor

# (forward, input_grad, loops) and (N, C_in, H, C_out, kernel, stride, padding, groups)
ROUTES = [
    ("im2col", "col2im", "compiled"),
    ("im2col", "col2im", "numpy"),
    ("im2col", "full_convolution", "compiled"),
    ("shifted_gemm", "shifted_gemm", None),
    ("winograd_2x2", "winograd_2x2", None),
    ("winograd_4x4", "winograd_4x4", None),
]
CASES = [(2, 3, 7, 4, 3, 1, 1, 1), (3, 1, 8, 5, 5, 1, 2, 1), (2, 4, 9, 6, 3, 2, 1, 2)]


def _arrays(case, dtype=np.float64, seed=0):
    n, c_in, h, c_out, k, _, _, groups = case
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, c_in, h, h)).astype(dtype),
        rng.standard_normal((c_out, c_in // groups, k, k)).astype(dtype),
        rng.standard_normal(c_out).astype(dtype),
    )


def _options(case):
    return {"stride": case[5], "padding": case[6], "groups": case[7]}


@pytest.mark.parametrize("routes", ROUTES)
@pytest.mark.parametrize("case", CASES)
def test_fused_relu_equals_conv_then_relu(case, routes, forced):
    """Output and all three gradients, against the unfused pair on the same route."""
    arrays, options = _arrays(case), _options(case)
    forward, input_grad, loops = routes
    results = []
    for fused in (True, False):
        tensors = [Tensor(a, requires_grad=True) for a in arrays]

        def call(tensors=tensors, fused=fused):
            if fused:
                return conv2d(*tensors, **options, activation="relu")
            return relu(conv2d(*tensors, **options))

        y = forced(conv_routes(forward=forward, input_grad=input_grad, loops=loops), call)
        y.backward(np.random.default_rng(1).standard_normal(y.shape))
        results.append([y.data] + [t.grad for t in tensors])
    assert (results[0][0] == 0).any() and (results[0][0] > 0).any()  # the ReLU really cuts
    for fused, separate in zip(*results):
        np.testing.assert_allclose(fused, separate, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("routes", ROUTES)
@pytest.mark.parametrize("case", CASES)
def test_fused_relu_passes_finite_differences(case, routes, forced, check_gradients):
    options = _options(case)
    forward, input_grad, loops = routes
    errors = forced(
        conv_routes(forward=forward, input_grad=input_grad, loops=loops),
        lambda: check_gradients(
            lambda x, w, b: conv2d(x, w, b, **options, activation="relu"), *_arrays(case)
        ),
    )
    assert set(errors) == {0, 1, 2}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES)
def test_fused_relu_against_torch(case, dtype, torch, torch_check):
    options = _options(case)
    torch_check(
        lambda x, w, b: conv2d(x, w, b, **options, activation="relu"),
        lambda x, w, b: torch.relu(torch.nn.functional.conv2d(x, w, b, **options)),
        *_arrays(case, dtype, seed=2),
    )


def test_only_relu_fuses():
    x, w, b = _arrays(CASES[0])
    with pytest.raises(ValueError, match="activation"):
        conv2d(x, w, b, activation="tanh")


@pytest.mark.parametrize("routes", ROUTES)
def test_two_forward_results_in_a_row_stay_distinct(routes, forced):
    """Buffers are never shared between calls: the first output is not overwritten by the
    second, and the first graph's backward, run after the second forward, is still right."""
    case = (4, 3, 9, 5, 3, 1, 1, 1)
    x1, w, b = _arrays(case, seed=3)
    x2 = _arrays(case, seed=4)[0]
    forward, input_grad, loops = routes
    inputs = [Tensor(a, requires_grad=True) for a in (x1, w, b, x2)]

    def route():
        return conv_routes(forward=forward, input_grad=input_grad, loops=loops)

    y1 = forced(route(), lambda: conv2d(*inputs[:3], padding=1, activation="relu"))
    kept = y1.data.copy()
    y2 = forced(route(), lambda: conv2d(inputs[3], inputs[1], inputs[2], padding=1))
    assert not np.shares_memory(y1.data, y2.data)
    np.testing.assert_array_equal(y1.data, kept)
    delta = np.random.default_rng(5).standard_normal(y1.shape)
    y1.backward(delta)
    reference = [Tensor(a, requires_grad=True) for a in (x1, w, b)]
    relu(conv2d(*reference, padding=1)).backward(delta)
    for ours, expected in zip(inputs[:3], reference):
        np.testing.assert_allclose(ours.grad, expected.grad, rtol=1e-12, atol=1e-12)
