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
        float_dtypes = {a.dtype for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"}
        assert len(float_dtypes) == 1, f"expected one float dtype, got {float_dtypes}"
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
