"""Element-wise arithmetic and the matrix product, with broadcasting."""

from __future__ import annotations

import numpy as np

from cnnlab.tensor import Function, Tensor, unbroadcast


def _pair(a, b) -> tuple[Tensor, Tensor]:
    """Make both operands tensors; a Python number takes the other's dtype (no float64 upcast)."""
    if not isinstance(a, Tensor):
        a = _operand(a, b.dtype if isinstance(b, Tensor) else None)
    if not isinstance(b, Tensor):
        b = _operand(b, a.dtype)
    return a, b


def _operand(value, dtype) -> Tensor:
    value = np.asarray(value)
    if dtype is not None and (dtype.kind == "f" or value.dtype.kind in "iub"):
        value = value.astype(dtype, copy=False)
    # A float next to an integer tensor stays float (0.5 must not become 0).
    return Tensor(value)


class AddFunction(Function):
    """z = a + b;  dz/da = 1, dz/db = 1 (summed over broadcast axes)."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, grad):
        sa, sb = self.shapes
        return (
            unbroadcast(grad, sa) if self.needs_input_grad[0] else None,
            unbroadcast(grad, sb) if self.needs_input_grad[1] else None,
        )


class SubFunction(Function):
    """z = a - b;  dz/da = 1, dz/db = -1."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, grad):
        sa, sb = self.shapes
        return (
            unbroadcast(grad, sa) if self.needs_input_grad[0] else None,
            unbroadcast(-grad, sb) if self.needs_input_grad[1] else None,
        )


class MulFunction(Function):
    """z = a * b;  dz/da = b, dz/db = a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        a, b = self.a, self.b
        return (
            unbroadcast(grad * b, a.shape) if self.needs_input_grad[0] else None,
            unbroadcast(grad * a, b.shape) if self.needs_input_grad[1] else None,
        )


class DivFunction(Function):
    """z = a / b;  dz/da = 1/b, dz/db = -a/b²."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        a, b = self.a, self.b
        return (
            unbroadcast(grad / b, a.shape) if self.needs_input_grad[0] else None,
            unbroadcast(-grad * a / (b * b), b.shape) if self.needs_input_grad[1] else None,
        )


class NegFunction(Function):
    """z = -a."""

    def forward(self, a):
        return -a

    def backward(self, grad):
        return (-grad,)


class PowFunction(Function):
    """z = a ** p for a constant exponent p;  dz/da = p a^(p-1)."""

    def forward(self, a, exponent: float):
        self.a, self.exponent = a, exponent
        return a**exponent

    def backward(self, grad):
        p = self.exponent
        return (grad * p * self.a ** (p - 1),)


class ExpFunction(Function):
    """z = e^a;  dz/da = z."""

    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


class LogFunction(Function):
    """z = ln a;  dz/da = 1/a."""

    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, grad):
        return (grad / self.a,)


class SqrtFunction(Function):
    """z = √a;  dz/da = 1 / (2√a)."""

    def forward(self, a):
        self.out = np.sqrt(a)
        return self.out

    def backward(self, grad):
        return (grad / (2 * self.out),)


class AbsFunction(Function):
    """z = |a|;  dz/da = sign(a) (0 at 0)."""

    def forward(self, a):
        self.a = a
        return np.abs(a)

    def backward(self, grad):
        return (grad * np.sign(self.a),)


class ClipFunction(Function):
    """z = min(max(a, low), high);  dz/da = 1 inside [low, high], else 0."""

    def forward(self, a, low, high):
        self.inside = np.ones(a.shape, dtype=bool)
        if low is not None:
            self.inside &= a >= low
        if high is not None:
            self.inside &= a <= high
        return np.clip(a, low, high)

    def backward(self, grad):
        return (grad * self.inside,)


class MatMulFunction(Function):
    """Z = A @ B;  dA = dZ @ Bᵀ, dB = Aᵀ @ dZ (batched over leading axes)."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must be at least 1-D, received shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(
                f"matmul: inner dimensions differ, received shapes {a.shape} and {b.shape} "
                f"(expected a.shape[-1] == b.shape[-2])"
            )
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad):
        a, b = self.a, self.b
        # Promote 1-D operands to matrices so one formula serves every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if b.ndim == 1:
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = g2[..., None, :]
        da = db = None
        if self.needs_input_grad[0]:
            da = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            db = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return da, db


class CastFunction(Function):
    """z = a converted to another dtype; the gradient is converted back."""

    def forward(self, a, dtype):
        self.dtype = a.dtype
        return a.astype(dtype)

    def backward(self, grad):
        return (grad.astype(self.dtype),)


def add(a, b) -> Tensor:
    return AddFunction.apply(*_pair(a, b))


def sub(a, b) -> Tensor:
    return SubFunction.apply(*_pair(a, b))


def mul(a, b) -> Tensor:
    return MulFunction.apply(*_pair(a, b))


def div(a, b) -> Tensor:
    return DivFunction.apply(*_pair(a, b))


def neg(a) -> Tensor:
    return NegFunction.apply(a)


def pow(a, exponent: float) -> Tensor:
    if isinstance(exponent, Tensor):
        raise TypeError("pow: the exponent must be a Python number, not a Tensor")
    if isinstance(exponent, np.generic):
        exponent = exponent.item()  # a NumPy float64 scalar would upcast float32
    return PowFunction.apply(a, exponent=exponent)


def exp(a) -> Tensor:
    return ExpFunction.apply(a)


def log(a) -> Tensor:
    return LogFunction.apply(a)


def sqrt(a) -> Tensor:
    return SqrtFunction.apply(a)


def abs(a) -> Tensor:
    return AbsFunction.apply(a)


def clip(a, low=None, high=None) -> Tensor:
    return ClipFunction.apply(a, low=low, high=high)


def matmul(a, b) -> Tensor:
    return MatMulFunction.apply(*_pair(a, b))


def cast(a, dtype) -> Tensor:
    return CastFunction.apply(a, dtype=np.dtype(dtype))
