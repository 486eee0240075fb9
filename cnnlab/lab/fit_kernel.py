"""Learning a kernel: recover a hidden 3×3 kernel from (image, filtered image) pairs.

The target is made by filtering a real picture with a hidden kernel K* and
bias b*:  T = I ⋆ K* + b*. A kernel K and bias b start at small random values
and follow gradient descent on the mean squared error

    L(K, b) = (1 / M) Σ_ij ((I ⋆ K)(i, j) + b − T(i, j))²,

with the gradients from the engine's backward passes (``conv2d`` then
``mse_loss``):  ∂L/∂K(m, n) = (2 / M) Σ_ij r(i, j) I(i + m, j + n) and
∂L/∂b = (2 / M) Σ_ij r(i, j), where r = I ⋆ K + b − T is the residual.

L is a convex quadratic in (K, b), and T is exactly reachable, so the minimum
is K = K*, b = b*. How fast descent gets there depends on how correlated
neighbouring pixels are (the conditioning of the 3×3 patches' second-moment
matrix, whose condition number is about 2,000–3,000 for the camera man): the
picture is standardised (zero mean, unit variance, which bounds the largest
curvature by about 20, so lr = 0.1 is stable) and heavy-ball momentum 0.95 makes
every mode shrink by about √0.95 per step. 1,000 steps recover each of the nine
classic kernels to about 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab import functional as F
from cnnlab import kernels as kernel_bank
from cnnlab.lab.apply import load_image
from cnnlab.optim import SGD
from cnnlab.tensor import Tensor, no_grad


@dataclass
class KernelFit:
    """The outcome of ``fit_kernel``."""

    kernel: np.ndarray  # (K_h, K_w) learned kernel
    bias: float
    losses: list[float] = field(default_factory=list)  # loss before each step
    steps: int = 0
    true_kernel: np.ndarray | None = None
    true_bias: float | None = None

    @property
    def max_error(self) -> float:
        """max |K − K*| (and |b − b*|), when the hidden kernel is known."""
        if self.true_kernel is None:
            raise ValueError("KernelFit.max_error: the true kernel is not known")
        error = float(np.abs(self.kernel - self.true_kernel).max())
        if self.true_bias is not None:
            error = max(error, abs(self.bias - self.true_bias))
        return error


def standardise(image: np.ndarray) -> np.ndarray:
    """(I − mean) / std, as float64; a grayscale (H, W) picture is expected."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"fit_kernel: expected a (H, W) grayscale image, got shape {image.shape}")
    std = image.std()
    if std == 0:
        raise ValueError("fit_kernel: the image is constant; a kernel cannot be learned from it")
    return (image - image.mean()) / std


def make_target(image: np.ndarray, kernel, bias: float = 0.0) -> np.ndarray:
    """T = I ⋆ K + b with the engine's ``conv2d`` (valid padding): (H, W) → (H − 2, W − 2) for 3×3."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"make_target: expected a (H, W) grayscale image, got shape {image.shape}")
    dtype = image.dtype if image.dtype in (np.float32, np.float64) else np.float64
    k = kernel_bank.get(kernel, dtype) if isinstance(kernel, str) else np.asarray(kernel, dtype=dtype)
    with no_grad():
        out = F.conv2d(
            Tensor(image.astype(dtype)[None, None]), Tensor(k[None, None]), Tensor(np.array([bias], dtype))
        )
    return out.data[0, 0]


def fit_kernel(
    image: np.ndarray,
    target: np.ndarray,
    kernel_size: int = 3,
    steps: int = 1000,
    lr: float = 0.1,
    momentum: float = 0.95,
    tol: float = 1e-14,
    seed: int = 0,
) -> KernelFit:
    """Learn K (kernel_size × kernel_size) and b with T ≈ I ⋆ K + b by gradient descent on the MSE.

    Args:
        image: (H, W) input picture, float64 recommended.
        target: (H − k + 1, W − k + 1) filtered picture.
        steps: the most descent steps; it stops earlier once the loss is below ``tol``.
        lr, momentum: ``cnnlab.optim.SGD`` with heavy-ball momentum (v ← μv + g; θ ← θ − ηv).
        seed: for the initial kernel (normal, std 0.1).

    Returns:
        a ``KernelFit`` with the learned kernel, bias and the loss curve.
    """
    image = np.asarray(image)
    target = np.asarray(target)
    if image.ndim != 2:
        raise ValueError(f"fit_kernel: expected a (H, W) grayscale image, got shape {image.shape}")
    expected = (image.shape[0] - kernel_size + 1, image.shape[1] - kernel_size + 1)
    if target.shape != expected:
        raise ValueError(
            f"fit_kernel: for an image of shape {image.shape} and a {kernel_size}×{kernel_size} kernel the "
            f"target must have shape {expected}, got {target.shape}"
        )
    if steps < 1 or lr <= 0:
        raise ValueError(f"fit_kernel: expected steps >= 1 and lr > 0, got steps={steps}, lr={lr}")
    dtype = image.dtype if image.dtype in (np.float32, np.float64) else np.float64
    rng = np.random.default_rng(seed)
    x = Tensor(image.astype(dtype)[None, None])
    t = Tensor(target.astype(dtype)[None, None])
    weight = Tensor(rng.normal(0.0, 0.1, (1, 1, kernel_size, kernel_size)).astype(dtype), requires_grad=True)
    bias = Tensor(np.zeros(1, dtype=dtype), requires_grad=True)
    optimiser = SGD([weight, bias], lr=lr, momentum=momentum)
    losses = []
    step = 0
    for step in range(1, steps + 1):
        optimiser.zero_grad()
        loss = F.mse_loss(F.conv2d(x, weight, bias), t)
        losses.append(float(loss.data))
        if losses[-1] < tol:
            step -= 1
            break
        loss.backward()
        optimiser.step()
    return KernelFit(kernel=weight.data[0, 0].copy(), bias=float(bias.data[0]), losses=losses, steps=step)


def recover_kernel(
    hidden="horizontal-edge",
    image: np.ndarray | None = None,
    bias: float = 0.0,
    size: int = 96,
    steps: int = 1000,
    lr: float = 0.1,
    momentum: float = 0.95,
    seed: int = 0,
) -> KernelFit:
    """Hide a kernel in a filtered real picture and learn it back.

    Args:
        hidden: a name from ``cnnlab.kernels`` or a (k, k) array.
        image: (H, W) grayscale picture in [0, 1]; default the camera man resized to ``size``.
        bias: the hidden bias b*.

    Returns:
        a ``KernelFit`` whose ``true_kernel``/``true_bias`` are the hidden ones.
    """
    if image is None:
        image, _ = load_image(grayscale=True, size=size)
    hidden_kernel = kernel_bank.get(hidden, np.float64) if isinstance(hidden, str) \
        else np.asarray(hidden, dtype=np.float64)
    if hidden_kernel.ndim != 2 or hidden_kernel.shape[0] != hidden_kernel.shape[1]:
        raise ValueError(f"recover_kernel: expected a square (k, k) kernel, got shape {hidden_kernel.shape}")
    x = standardise(image)
    target = make_target(x, hidden_kernel, bias)
    result = fit_kernel(x, target, kernel_size=hidden_kernel.shape[0], steps=steps, lr=lr,
                        momentum=momentum, seed=seed)
    result.true_kernel = hidden_kernel
    result.true_bias = float(bias)
    return result
