"""Reductions: sum, mean and max over axes."""

from __future__ import annotations

import numpy as np

from cnnlab._checks import check_int
from cnnlab.tensor import Function, Tensor


def _normalise_axis(axis, ndim: int, op: str = "reduce") -> tuple[int, ...] | None:
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        axes = tuple(check_int(a, op, "axis") for a in axis)
    else:
        axes = (check_int(axis, op, "axis"),)
    if any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return tuple(a % ndim for a in axes)


def _expand(grad: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """Re-insert the reduced axes so ``grad`` broadcasts against the input."""
    if keepdims or axis is None:
        return grad
    return np.expand_dims(grad, axis)


class SumFunction(Function):
    """z = Σ_axis a;  dz/da = 1 broadcast back over the summed axes."""

    def forward(self, a, axis, keepdims):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, grad):
        return (np.broadcast_to(_expand(grad, self.axis, self.keepdims), self.shape),)


class MeanFunction(Function):
    """z = (1/n) Σ_axis a;  dz/da = 1/n."""

    def forward(self, a, axis, keepdims):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        out = np.asarray(a.mean(axis=axis, keepdims=keepdims))
        self.count = a.size // out.size if out.size else 1
        return out

    def backward(self, grad):
        grad = _expand(grad, self.axis, self.keepdims) / self.count
        return (np.broadcast_to(grad, self.shape),)


class MaxFunction(Function):
    """z = max_axis a;  the gradient goes to the maximum (shared equally among ties)."""

    def forward(self, a, axis, keepdims):
        out = np.asarray(a.max(axis=axis, keepdims=keepdims))
        if self.needs_input_grad[0]:
            expanded = _expand(out, axis, keepdims)
            mask = (a == expanded).astype(a.dtype)
            self.weights = mask / mask.sum(axis=axis, keepdims=True)
            self.axis, self.keepdims = axis, keepdims
        return out

    def backward(self, grad):
        return (_expand(grad, self.axis, self.keepdims) * self.weights,)


def sum(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return SumFunction.apply(a, axis=_normalise_axis(axis, a.ndim, "sum"), keepdims=keepdims)


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return MeanFunction.apply(a, axis=_normalise_axis(axis, a.ndim, "mean"), keepdims=keepdims)


def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    if a.size == 0:
        raise ValueError(f"max: cannot reduce an empty tensor of shape {a.shape}")
    return MaxFunction.apply(a, axis=_normalise_axis(axis, a.ndim, "max"), keepdims=keepdims)
