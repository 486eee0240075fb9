"""Batch normalisation with the statistics of a batch that several processes share.

In data-parallel training each process holds some rows of the batch. ``sync_batch_norm``
normalises them with the mean and variance of the *whole* batch, which a given summing
function (``cnnlab.distributed.MPIGroup.sum``) adds up across the processes, so N processes
compute exactly what ``batch_norm`` computes on the whole batch in one process.
"""

from __future__ import annotations

import numpy as np

from cnnlab._checks import check_number
from cnnlab.ops.norm import _running_buffer, update_running_estimates
from cnnlab.tensor import Function, Tensor, as_tensor

__all__ = ["SyncBatchNormFunction", "sync_batch_norm"]


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _per_channel(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(C,) values shaped to broadcast over x (N, C) or (N, C, H, W)."""
    return values.reshape((1, -1) + (1,) * (x.ndim - 2))


class SyncBatchNormFunction(Function):
    """Batch norm per channel over rows spread across processes (Σ_r: the sum over them).

    Forward:  m = Σ_r m_r,  μ = Σ_r Σ x / m,  var = Σ_r Σ (x − μ)² / m   (two reductions:
              the centred second pass is as stable as one process's),
              x̂ = (x − μ) / σ,  σ = √(var + ε),  y = γ x̂ + β
    Backward (δ = ∂L/∂y of this process's rows, L the whole batch's loss):
              ∂L/∂γ = Σ δ x̂,  ∂L/∂β = Σ δ   (this process's part; the gradient sum adds the rest)
              ∂L/∂x = γ/σ · (δ − Σ_r Σ δ / m − x̂ · Σ_r Σ δ x̂ / m)

    ``total(values)`` returns the float64 sum of ``values`` over the processes.
    Shape: x (N, C) or (N, C, H, W); γ, β (C,).
    """

    def forward(self, x, gamma, beta, eps, total, statistics):
        self.total = total
        axes = _axes(x)
        x64 = x.astype(np.float64)
        channels = x.shape[1]
        first = total(np.append(x64.sum(axis=axes), x.size // channels))
        self.count = first[-1]
        mean = first[:-1] / self.count
        centred = x64 - _per_channel(mean, x)
        var = total(np.square(centred).sum(axis=axes)) / self.count
        statistics[0], statistics[1], statistics[2] = mean, var, self.count
        self.inv_std = 1 / np.sqrt(var + eps)
        self.xhat = centred * _per_channel(self.inv_std, x)
        self.gamma = gamma.astype(np.float64)
        self.dtypes = x.dtype, gamma.dtype, beta.dtype
        y = self.xhat * _per_channel(self.gamma, x) + _per_channel(beta.astype(np.float64), x)
        return y.astype(x.dtype)

    def backward(self, grad):
        axes = _axes(grad)
        delta = grad.astype(np.float64)
        sum_delta = delta.sum(axis=axes)
        sum_delta_xhat = (delta * self.xhat).sum(axis=axes)
        sums = self.total(np.concatenate([sum_delta, sum_delta_xhat]))
        channels = len(sum_delta)
        mean_delta = _per_channel(sums[:channels] / self.count, grad)
        mean_delta_xhat = _per_channel(sums[channels:] / self.count, grad)
        scale = _per_channel(self.gamma * self.inv_std, grad)
        dx = scale * (delta - mean_delta - self.xhat * mean_delta_xhat)
        x_dtype, gamma_dtype, beta_dtype = self.dtypes
        return (dx.astype(x_dtype), sum_delta_xhat.astype(gamma_dtype),
                sum_delta.astype(beta_dtype))


def sync_batch_norm(x, gamma, beta, running_mean, running_var, total, momentum: float = 0.1,
                    eps: float = 1e-5) -> Tensor:
    """Training-mode batch norm with the whole batch's statistics, summed by ``total``.

    The running estimates are updated in place as ``batch_norm`` does (unbiased variance,
    var · m/(m − 1), m the whole batch's values per channel), so every process keeps the same.
    With ``total`` the identity (one process) the result is ``batch_norm``'s.

    Shape: (N, C) → (N, C);  (N, C, H, W) → (N, C, H, W).
    """
    x = as_tensor(x)
    if x.ndim not in (2, 4):
        raise ValueError(f"sync_batch_norm: expected an input of shape (N, C) or (N, C, H, W), "
                         f"received {x.shape}")
    channels = x.shape[1]
    gamma, beta = as_tensor(gamma), as_tensor(beta)
    for name, value in (("gamma", gamma), ("beta", beta)):
        if value.shape != (channels,):
            raise ValueError(f"sync_batch_norm: {name} has shape {value.shape}, expected "
                             f"({channels},) for input {x.shape}")
    running_mean = _running_buffer(running_mean, "running_mean", channels)
    running_var = _running_buffer(running_var, "running_var", channels)
    eps = check_number(eps, "sync_batch_norm", "eps", low=0, low_open=True)
    momentum = check_number(momentum, "sync_batch_norm", "momentum", low=0, high=1)
    statistics = np.empty((3, channels))  # filled by the forward: μ, var, m
    y = SyncBatchNormFunction.apply(x, gamma, beta, eps=eps, total=total, statistics=statistics)
    mean, var, count = statistics[0], statistics[1], statistics[2, 0]
    if count < 2:
        raise ValueError(f"sync_batch_norm: expected more than 1 value per channel over the "
                         f"whole batch, received {count:g}")
    update_running_estimates(running_mean, running_var, mean, var, count, momentum)
    return y
