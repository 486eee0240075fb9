"""Check hand-written backward passes against central finite differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cnnlab.tensor import Tensor, no_grad


def numerical_gradient(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(f(x + ε) − f(x − ε)) / 2ε for each element of ``array``, perturbed in place."""
    grad = np.zeros_like(array)
    # Index the array itself: reshape(-1) would perturb a copy of a non-contiguous array.
    for i in np.ndindex(array.shape):
        saved = array[i]
        array[i] = saved + eps
        plus = f()
        array[i] = saved - eps
        minus = f()
        array[i] = saved
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |a − n| / max(max |n|, 1): relative for large gradients, absolute near zero."""
    scale = max(float(np.max(np.abs(numeric), initial=0.0)), 1.0)
    return float(np.max(np.abs(analytic - numeric), initial=0.0)) / scale


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    seed: int = 0,
) -> dict[int, float]:
    """Compare ``fn``'s backward with finite differences for every input that requires grad.

    The output is projected on a fixed random tensor ``v`` so every output
    element contributes: L = Σ fn(*inputs) · v. Inputs should be float64.
    Returns the relative error of each checked input, by position.
    """
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    projection = rng.standard_normal(out.shape).astype(out.dtype)
    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    (out * Tensor(projection)).sum().backward()

    def loss() -> float:
        with no_grad():
            return float(np.sum(fn(*inputs).data * projection))

    errors = {}
    for position, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        numeric = numerical_gradient(loss, x.data, eps)
        errors[position] = relative_error(analytic, numeric)
    return errors
