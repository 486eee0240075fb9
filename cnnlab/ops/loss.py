"""Loss functions: cross-entropy (fused with log-softmax), mean squared error, mean absolute error.

``reduction`` is 'mean' (average over the batch for cross-entropy, over every element for
the regression losses), 'sum', or 'none' (one value per sample / element).
"""

from __future__ import annotations

import numpy as np

from cnnlab._checks import check_choice
from cnnlab.ops.arithmetic import cast
from cnnlab.tensor import Function, Tensor, as_tensor

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, op: str) -> None:
    check_choice(reduction, _REDUCTIONS, op, "reduction")


def _reduce(values: np.ndarray, reduction: str, count: int) -> np.ndarray:
    if reduction == "none":
        return values
    total = values.sum()
    return np.asarray(total / values.dtype.type(count) if reduction == "mean" else total)


def _upstream(grad: np.ndarray, reduction: str, count: int, shape) -> np.ndarray:
    """∂L/∂(per-item loss) as an array of ``shape``, from the gradient of the reduced loss."""
    if reduction == "none":
        return grad
    if reduction == "mean":
        grad = grad / grad.dtype.type(count)
    return np.broadcast_to(grad, shape)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class CrossEntropyLabelsFunction(Function):
    """Cross-entropy of logits against integer class labels, fused with log-softmax.

    Forward:  ℓ_n = −log softmax(x_n)_{y_n} = log Σ_k e^(x_nk − m_n) − (x_{n,y_n} − m_n),
              m_n = max_k x_nk (log-sum-exp trick);  L = (1/N) Σ_n ℓ_n for 'mean'.
    Backward: ∂L/∂x_nk = (softmax(x_n)_k − 1[k = y_n]) · ∂L/∂ℓ_n   (= (p − onehot)/N for 'mean')

    Shape: x (N, K), labels (N,) → () or (N,) for reduction='none'.
    """

    def forward(self, logits, labels, reduction):
        self.labels, self.reduction = labels, reduction
        log_probs = _log_softmax(logits)
        self.log_probs = log_probs
        losses = -log_probs[np.arange(len(labels)), labels]
        return _reduce(losses, reduction, len(labels))

    def backward(self, grad):
        n = len(self.labels)
        upstream = _upstream(grad, self.reduction, n, (n,))
        dx = np.exp(self.log_probs)
        dx[np.arange(n), self.labels] -= 1
        return (dx * upstream[:, None],)


class CrossEntropySoftFunction(Function):
    """Cross-entropy of logits against soft (or one-hot) target distributions t.

    Forward:  ℓ_n = −Σ_k t_nk log softmax(x_n)_k;  L = (1/N) Σ_n ℓ_n for 'mean'.
    Backward: ∂L/∂x_nk = (softmax(x_n)_k Σ_j t_nj − t_nk) · ∂L/∂ℓ_n   (p − t when rows of t sum to 1)
              ∂L/∂t_nk = −log softmax(x_n)_k · ∂L/∂ℓ_n

    Shape: x (N, K), t (N, K) → () or (N,) for reduction='none'.
    """

    def forward(self, logits, target, reduction):
        self.target, self.reduction = target, reduction
        self.log_probs = _log_softmax(logits)
        losses = -(target * self.log_probs).sum(axis=1)
        return _reduce(losses, reduction, len(logits))

    def backward(self, grad):
        n = len(self.target)
        upstream = _upstream(grad, self.reduction, n, (n,))[:, None]
        dx = dt = None
        if self.needs_input_grad[0]:
            t = self.target
            dx = (np.exp(self.log_probs) * t.sum(axis=1, keepdims=True) - t) * upstream
        if self.needs_input_grad[1]:
            dt = -self.log_probs * upstream
        return dx, dt


def cross_entropy(logits, target, reduction: str = "mean") -> Tensor:
    """Cross-entropy loss on raw scores (logits), with the log-softmax built in.

    Args:
        logits: (N, K) unnormalised class scores.
        target: either (N,) integer class labels in [0, K), or (N, K) one-hot / soft
            target distributions (a numpy array or a Tensor; a soft target that requires
            grad receives one, ∂L/∂t = −log softmax(x)).
        reduction: 'mean' (over the N samples), 'sum', or 'none' (per-sample losses).

    Shape: (N, K) and (N,) or (N, K) → () , or (N,) for reduction='none'.

    Example: ``cross_entropy(model(x), y)`` with y int64 (N,) gives the mean loss.
    """
    _check_reduction(reduction, "cross_entropy")
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, K), received {logits.shape}")
    n, k = logits.shape
    if logits.dtype.kind != "f":
        raise ValueError(f"cross_entropy: logits must be floating point, received dtype {logits.dtype}")
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.ndim == 1:
        if target_array.dtype.kind not in "iu":
            raise ValueError(
                f"cross_entropy: labels of shape {target_array.shape} must be integers, "
                f"received dtype {target_array.dtype}"
            )
        if target_array.shape != (n,):
            raise ValueError(
                f"cross_entropy: labels have shape {target_array.shape}, expected ({n},) for logits {logits.shape}"
            )
        bad = (target_array < 0) | (target_array >= k)
        if bad.any():
            raise ValueError(
                f"cross_entropy: label {target_array[bad][0]} is out of range for K={k} classes "
                f"(expected labels in [0, {k}))"
            )
        labels = target_array.astype(np.intp)
        return CrossEntropyLabelsFunction.apply(logits, labels=labels, reduction=reduction)
    if target_array.shape != (n, k):
        raise ValueError(
            f"cross_entropy: target has shape {target_array.shape}, expected labels ({n},) "
            f"or a distribution ({n}, {k}) for logits {logits.shape}"
        )
    return CrossEntropySoftFunction.apply(logits, _same_dtype(target, logits), reduction=reduction)


def _same_dtype(target, like: Tensor) -> Tensor:
    """The target as a Tensor of ``like``'s dtype (a cast keeps its graph, if it has one)."""
    if isinstance(target, Tensor):
        return target if target.dtype == like.dtype else cast(target, like.dtype)
    return Tensor(np.asarray(target, dtype=like.dtype))


class MSELossFunction(Function):
    """Mean squared error.

    Forward:  ℓ_i = (x_i − t_i)²;  L = (1/n) Σ_i ℓ_i for 'mean' (n = number of elements).
    Backward: ∂L/∂x_i = 2 (x_i − t_i) ∂L/∂ℓ_i,   ∂L/∂t_i = −∂L/∂x_i.
    """

    def forward(self, pred, target, reduction):
        self.diff, self.reduction = pred - target, reduction
        return _reduce(self.diff * self.diff, reduction, pred.size)

    def backward(self, grad):
        upstream = _upstream(grad, self.reduction, self.diff.size, self.diff.shape)
        dpred = 2 * self.diff * upstream
        return (
            dpred if self.needs_input_grad[0] else None,
            -dpred if self.needs_input_grad[1] else None,
        )


class L1LossFunction(Function):
    """Mean absolute error.

    Forward:  ℓ_i = |x_i − t_i|;  L = (1/n) Σ_i ℓ_i for 'mean'.
    Backward: ∂L/∂x_i = sign(x_i − t_i) ∂L/∂ℓ_i (0 where x_i = t_i),   ∂L/∂t_i = −∂L/∂x_i.
    """

    def forward(self, pred, target, reduction):
        diff = pred - target
        self.sign, self.reduction = np.sign(diff), reduction
        return _reduce(np.abs(diff), reduction, pred.size)

    def backward(self, grad):
        upstream = _upstream(grad, self.reduction, self.sign.size, self.sign.shape)
        dpred = self.sign * upstream
        return (
            dpred if self.needs_input_grad[0] else None,
            -dpred if self.needs_input_grad[1] else None,
        )


def _regression_operands(pred, target, reduction, op: str) -> tuple[Tensor, Tensor]:
    _check_reduction(reduction, op)
    pred = as_tensor(pred)
    if pred.dtype.kind != "f":
        raise ValueError(f"{op}: predictions must be floating point, received dtype {pred.dtype}")
    target_shape = target.shape if isinstance(target, Tensor) else np.shape(target)
    if target_shape != pred.shape:
        raise ValueError(f"{op}: target has shape {target_shape}, expected the prediction's shape {pred.shape}")
    return pred, _same_dtype(target, pred)


def mse_loss(pred, target, reduction: str = "mean") -> Tensor:
    """Mean squared error (x − t)², averaged over every element for 'mean'.

    Shape: pred and target of one shape → (), or that shape for reduction='none'.
    """
    pred, target = _regression_operands(pred, target, reduction, "mse_loss")
    return MSELossFunction.apply(pred, target, reduction=reduction)


def l1_loss(pred, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error |x − t|, averaged over every element for 'mean'.

    Shape: pred and target of one shape → (), or that shape for reduction='none'.
    """
    pred, target = _regression_operands(pred, target, reduction, "l1_loss")
    return L1LossFunction.apply(pred, target, reduction=reduction)
