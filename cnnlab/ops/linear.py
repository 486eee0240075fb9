"""The fully connected (dense) layer's operation: y = x Wᵀ + b."""

from __future__ import annotations

from cnnlab._checks import check_choice
from cnnlab.ops.activation import relu_grad, relu_in_place
from cnnlab.tensor import Function, Tensor, as_tensor


class LinearFunction(Function):
    """Affine map with the weight stored as (out_features, in_features), as in PyTorch.

    Forward:  y = x Wᵀ + b
    Backward: ∂L/∂x = δ W,   ∂L/∂W = δᵀ x,   ∂L/∂b = Σ_n δ_n,   with δ = ∂L/∂y;
              leading batch axes of x are flattened into n for ∂L/∂W and ∂L/∂b.
    With ``activation="relu"``: y = relu(x Wᵀ + b) in place, and δ is first masked by
    1[y > 0] (``relu_grad``).

    Shape: x (..., in), W (out, in), b (out,) → y (..., out).
    """

    def forward(self, x, w, b=None, activation=None):
        self.x, self.w = x, w
        out = x @ w.T
        if b is not None:
            out += b  # out is a fresh array: no second allocation
        self.out = None
        if activation == "relu":
            self.out = relu_in_place(out)
        return out

    def backward(self, grad):
        x, w = self.x, self.w
        if self.out is not None:
            grad = relu_grad(grad, self.out)
        dx = grad @ w if self.needs_input_grad[0] else None
        grad_rows = grad.reshape(-1, w.shape[0])
        dw = grad_rows.T @ x.reshape(-1, w.shape[1]) if self.needs_input_grad[1] else None
        if len(self.needs_input_grad) == 2:
            return dx, dw
        db = grad_rows.sum(axis=0) if self.needs_input_grad[2] else None
        return dx, dw, db


def linear(x, w, b=None, activation=None) -> Tensor:
    """y = x Wᵀ + b.

    Args:
        x: input, shape (N, in_features) or (..., in_features).
        w: weight, shape (out_features, in_features).
        b: optional bias, shape (out_features,).
        activation: None, or "relu" for relu(x Wᵀ + b) fused into the product.

    Shape: (..., in_features) → (..., out_features).

    Example: ``linear(x, w, b)`` with x (64, 800), w (500, 800), b (500,) gives (64, 500).
    """
    x, w = as_tensor(x), as_tensor(w)
    if w.ndim != 2:
        raise ValueError(
            f"linear: weight must be 2-D (out_features, in_features), received shape {w.shape}"
        )
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match weight of shape {w.shape}: "
            f"expected an input of shape (..., {w.shape[1]})"
        )
    if activation is not None:
        check_choice(activation, ("relu",), "linear", "activation")
    if b is None:
        return LinearFunction.apply(x, w, activation=activation)
    b = as_tensor(b)
    if b.shape != (w.shape[0],):
        raise ValueError(f"linear: bias has shape {b.shape}, expected ({w.shape[0]},) for weight {w.shape}")
    return LinearFunction.apply(x, w, b, activation=activation)

