"""Shared fixtures: the PyTorch oracle and gradient checks used by the engine tests."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.gradcheck import gradcheck, relative_error
from cnnlab.tensor import Tensor

# Agreed tolerances: float64 central differences, and agreement with PyTorch.
GRADCHECK_TOLERANCE = 1e-6
TORCH_TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the test oracle; install the dev extra")


@pytest.fixture
def check_gradients():
    """check_gradients(fn, *arrays): float64 finite differences for every float array.

    Float arrays become float64 tensors that require grad; other arguments (integer
    labels, options) are passed through unchanged.
    """

    def check(fn, *arrays, seed: int = 0):
        inputs = [
            Tensor(np.array(a, dtype=np.float64), requires_grad=True)
            if isinstance(a, np.ndarray) and a.dtype.kind == "f"
            else a
            for a in arrays
        ]
        errors = gradcheck(fn, inputs, seed=seed)
        assert errors, "no input was checked"
        for position, error in errors.items():
            assert error < GRADCHECK_TOLERANCE, f"input {position}: relative error {error:.2e}"
        return errors

    return check


@pytest.fixture
def torch_check(torch):
    """torch_check(ours, theirs, *arrays): forward and gradients of our op against PyTorch.

    Float arrays become tensors that require grad on both sides (in their own dtype);
    other arrays are passed as they are to ours and as ``torch.from_numpy`` to theirs.
    The output is projected on a fixed random array so every element's gradient counts.
    Checks agreement within 1e-10 (float64) or 1e-4 relative (float32), and that our
    outputs and gradients keep the inputs' dtype.
    """

    def check(ours, theirs, *arrays, seed: int = 0, grad: bool = True):
        float_dtypes = {
            a.dtype for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"
        }
        assert len(float_dtypes) == 1, f"expected one float dtype, received {float_dtypes}"
        (dtype,) = float_dtypes
        tolerance = TORCH_TOLERANCE[dtype]
        ours_in, theirs_in = [], []
        for a in arrays:
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                ours_in.append(Tensor(a.copy(), requires_grad=grad))
                theirs_in.append(torch.tensor(a.copy(), requires_grad=grad))
            elif isinstance(a, np.ndarray):
                ours_in.append(a)
                theirs_in.append(torch.from_numpy(a))
            else:
                ours_in.append(a)
                theirs_in.append(a)
        out = ours(*ours_in)
        expected = theirs(*theirs_in)
        assert out.dtype == dtype, f"output dtype {out.dtype}, input dtype {dtype}"
        assert out.shape == tuple(expected.shape)
        error = relative_error(out.data, expected.detach().numpy())
        assert error < tolerance, f"forward: relative error {error:.2e}"
        if not grad:
            return out
        projection = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
        (out * Tensor(projection)).sum().backward()
        (expected * torch.from_numpy(projection)).sum().backward()
        for position, (mine, reference) in enumerate(zip(ours_in, theirs_in)):
            if not isinstance(mine, Tensor):
                continue
            assert mine.grad is not None, f"input {position}: no gradient"
            assert mine.grad.dtype == dtype, f"input {position}: gradient dtype {mine.grad.dtype}"
            error = relative_error(mine.grad, reference.grad.numpy())
            assert error < tolerance, f"input {position}: gradient relative error {error:.2e}"
        return out

    return check


@pytest.fixture
def forced():
    """forced(routes, call): ``call()`` inside the routes override (``conv_routes(...)`` or
    ``pool_routes(...)``); a route the planner says does not apply skips the test with the
    planner's reason, so nothing falls back silently."""
    from cnnlab.ops.conv import RouteNotApplicableError

    def run(routes, call):
        with routes:
            try:
                return call()
            except RouteNotApplicableError as error:
                pytest.skip(f"route does not apply: {error}")

    return run


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _explicit_pads(padding, size, kernel, stride, dilation):
    """((top, bottom), (left, right)); 'same' by TensorFlow's rule, out = ceil(n / s)."""
    if padding == "same":
        pads = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    ph, pw = (0, 0) if padding == "valid" else _pair(padding)
    return (ph, ph), (pw, pw)


@pytest.fixture
def naive_conv2d():
    """naive_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1): one loop per
    output element, written for clarity (int, pair, 'valid' or 'same' padding)."""

    def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        sh, sw = _pair(stride)
        dh, dw = _pair(dilation)
        n, c_in, h, width = x.shape
        c_out, c_per_group, kh, kw = w.shape
        (top, bottom), (left, right) = _explicit_pads(
            padding, (h, width), (kh, kw), (sh, sw), (dh, dw)
        )
        xp = np.zeros((n, c_in, h + top + bottom, width + left + right), dtype=x.dtype)
        xp[:, :, top : top + h, left : left + width] = x
        oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
        ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
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
                                    pixel = xp[
                                        b_i, g * c_per_group + c, sh * i + dh * u, sw * j + dw * v
                                    ]
                                    total += w[o, c, u, v] * pixel
                        y[b_i, o, i, j] = total
        return y

    return conv


@pytest.fixture
def naive_conv2d_grads():
    """naive_conv2d_grads(x, w, delta, stride=1, padding=0, dilation=1, groups=1) -> (dx, dw, db):
    the chain rule one product at a time: every y[n, o, i, j] adds δ[n, o, i, j] times each
    input pixel it read to ∂L/∂w, and times each weight to ∂L/∂x (padding dropped)."""

    def grads(x, w, delta, stride=1, padding=0, dilation=1, groups=1):
        sh, sw = _pair(stride)
        dh, dw_ = _pair(dilation)
        n, c_in, h, width = x.shape
        c_out, c_per_group, kh, kw = w.shape
        (top, bottom), (left, right) = _explicit_pads(
            padding, (h, width), (kh, kw), (sh, sw), (dh, dw_)
        )
        xp = np.zeros((n, c_in, h + top + bottom, width + left + right), dtype=x.dtype)
        xp[:, :, top : top + h, left : left + width] = x
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        out_per_group = c_out // groups
        for b_i, o, i, j in np.ndindex(delta.shape):
            g = o // out_per_group
            for c, u, v in np.ndindex(c_per_group, kh, kw):
                row, col = sh * i + dh * u, sw * j + dw_ * v
                dw[o, c, u, v] += delta[b_i, o, i, j] * xp[b_i, g * c_per_group + c, row, col]
                dxp[b_i, g * c_per_group + c, row, col] += delta[b_i, o, i, j] * w[o, c, u, v]
        dx = dxp[:, :, top : top + h, left : left + width]
        return dx, dw, delta.sum(axis=(0, 2, 3))

    return grads


@pytest.fixture
def naive_pool():
    """naive_pool(x, kernel_size, stride=None, padding=0, kind="max"|"avg"): one window at a time
    (max pads with −∞; avg counts the padded zeros, as PyTorch's count_include_pad)."""

    def pool(x, kernel_size, stride=None, padding=0, kind="max"):
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
                y[:, :, i, j] = (
                    window.max(axis=(2, 3)) if kind == "max" else window.mean(axis=(2, 3))
                )
        return y

    return pool
