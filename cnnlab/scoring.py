"""Losses by name, mean loss and accuracy, and the evaluation-mode pass over a data stream.

Shared by ``fit`` (training metrics and validation), ``evaluate`` and ``predict``.
"""

from __future__ import annotations

import numpy as np

from cnnlab._checks import check_choice
from cnnlab.batches import Batches
from cnnlab.nn import Sequential, Softmax
from cnnlab.ops.loss import cross_entropy, l1_loss, mse_loss
from cnnlab.tensor import Tensor, no_grad

__all__ = ["Metrics", "batch_metrics", "ends_in_softmax", "evaluate_batches", "forward_batches",
           "loss_function", "softmax"]

LOSSES = ("cross_entropy", "mse", "l1")


def loss_function(loss, owner: str = "fit"):
    """``fn(output Tensor, y) -> Tensor`` for 'cross_entropy' (logits), 'mse', 'l1' or a function.

    For 'mse' and 'l1', integer labels (N,) against outputs (N, K) become one-hot targets.
    """
    if callable(loss):
        return loss
    check_choice(loss, LOSSES, owner, "loss")
    if loss == "cross_entropy":
        return cross_entropy

    def regression(out, y):
        y = np.asarray(y)
        if y.ndim == 1 and out.ndim == 2 and y.dtype.kind in "iu":
            y = np.eye(out.shape[1], dtype=out.dtype)[y]  # labels → one-hot targets
        fn = mse_loss if loss == "mse" else l1_loss
        return fn(out, y.astype(out.dtype, copy=False))

    return regression


class Metrics:
    """Mean loss and accuracy over the samples of the batches seen so far."""

    def __init__(self):
        self.total_loss, self.seen, self.correct, self.labelled = 0.0, 0, 0, 0

    def add(self, loss: float, output: np.ndarray, y) -> None:
        n = len(output)
        self.seen += n
        self.total_loss += loss * n
        batch_correct = _correct(output, y)
        if batch_correct is not None:
            self.correct += batch_correct
            self.labelled += n

    def counts(self) -> np.ndarray:
        """(Σ loss·n, seen, correct, labelled) as float64: what ranks add up (``add_counts``)."""
        return np.array([self.total_loss, self.seen, self.correct, self.labelled], np.float64)

    def add_counts(self, counts) -> None:
        """Add another ``counts()`` (a batch's, or the sum over ranks)."""
        total_loss, seen, correct, labelled = (float(c) for c in counts)
        self.total_loss += total_loss
        self.seen += round(seen)
        self.correct += round(correct)
        self.labelled += round(labelled)

    def logs(self) -> dict[str, float]:
        logs = {"loss": self.total_loss / self.seen}
        if self.labelled:
            logs["accuracy"] = self.correct / self.labelled
        return logs


def _correct(output: np.ndarray, y) -> int | None:
    """Number of correct arg-max predictions, or None when y are not class labels."""
    if y is None:
        return None
    y = np.asarray(y)
    if output.ndim != 2:
        return None
    if y.ndim == 2 and y.shape == output.shape:
        y = y.argmax(axis=1)
    if y.ndim != 1 or y.dtype.kind not in "iuf":
        return None
    return int(np.sum(output.argmax(axis=1) == y))


def forward_batches(model, batches: Batches):
    """(output ndarray, y) per batch in dataset order, in evaluation mode without a graph."""
    was_training = getattr(model, "training", False)
    model.train(False)
    try:
        with no_grad():
            for x, y in batches.batches(shuffle=False):
                yield model(Tensor(x)).data, y
    finally:
        model.train(was_training)


def evaluate_batches(model, batches: Batches, loss_fn) -> dict:
    """``{'loss', 'accuracy'}`` of ``model`` over ``batches`` (accuracy only for class labels)."""
    return batch_metrics(model, batches, loss_fn).logs()


def batch_metrics(model, batches: Batches, loss_fn) -> Metrics:
    """The ``Metrics`` of ``model`` over ``batches`` (none for an empty share of a split pass)."""
    metrics = Metrics()
    if batches.num_samples:
        for output, y in forward_batches(model, batches):
            metrics.add(float(loss_fn(Tensor(output), y).data), output, y)
    return metrics


def ends_in_softmax(model) -> bool:
    """Whether the model's last layer (through nested Sequentials) is a ``Softmax``."""
    while isinstance(model, Sequential) and len(model) > 0:
        model = model[len(model) - 1]
    return isinstance(model, Softmax)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, shifted by the row maximum for stability."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)
