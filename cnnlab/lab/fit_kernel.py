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

Too large a learning rate makes descent diverge: the loss grows geometrically
until it overflows. ``fit_kernel`` stops before the step whose loss is not
finite or exceeds ``DIVERGENCE_FACTOR`` times the first loss (converging runs
rise to at most about 10 times it on the way down), keeps the last kernel that
gave an acceptable loss and says so in ``KernelFit.diverged``/``stop_reason``,
as ``cnnlab.training.fit`` does in its history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab import functional as F
from cnnlab import kernels as kernel_bank
from cnnlab._checks import check_int, check_number
from cnnlab.lab.apply import load_image
from cnnlab.optim import SGD
from cnnlab.tensor import Tensor, no_grad

DIVERGENCE_FACTOR = 1e4


@dataclass
class KernelFit:
    """The outcome of ``fit_kernel``."""

    kernel: np.ndarray  # (K_h, K_w) learned kernel
    bias: float
    losses: list[float] = field(default_factory=list)  # loss before each step
    steps: int = 0  # descent steps that made ``kernel``
    true_kernel: np.ndarray | None = None
    true_bias: float | None = None
    diverged: bool = False  # descent was stopped because the loss exploded or became NaN/inf
    stop_reason: str | None = None

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
        raise ValueError(f"fit_kernel: expected a (H, W) grayscale image, received shape {image.shape}")
    std = image.std()
    if std == 0:
        raise ValueError("fit_kernel: the image is constant; a kernel cannot be learned from it")
    return (image - image.mean()) / std


def make_target(image: np.ndarray, kernel, bias: float = 0.0) -> np.ndarray:
    """T = I ⋆ K + b with the engine's ``conv2d``, valid padding.

    Shape: (H, W) → (H − 2, W − 2) for a 3×3 kernel.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(
            f"make_target: expected a (H, W) grayscale image, received shape {image.shape}"
        )
    dtype = image.dtype if image.dtype in (np.float32, np.float64) else np.float64
    k = (
        kernel_bank.get(kernel, dtype)
        if isinstance(kernel, str)
        else np.asarray(kernel, dtype=dtype)
    )
    with no_grad():
        out = F.conv2d(
            Tensor(image.astype(dtype)[None, None]),
            Tensor(k[None, None]),
            Tensor(np.array([bias], dtype)),
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
    """Learn K (kernel_size × kernel_size) and b with T ≈ I ⋆ K + b by descent on the MSE.

    Args:
        image: (H, W) input picture, float64 recommended.
        target: (H − k + 1, W − k + 1) filtered picture.
        steps: the most descent steps; it stops earlier once the loss is below ``tol``.
        lr, momentum: ``cnnlab.optim.SGD`` with heavy-ball momentum
            (v ← μv + g; θ ← θ − ηv).
        seed: for the initial kernel (normal, std 0.1).

    Returns:
        a ``KernelFit`` with the learned kernel, bias and the loss curve.
    """
    image = np.asarray(image)
    target = np.asarray(target)
    if image.ndim != 2:
        raise ValueError(f"fit_kernel: expected a (H, W) grayscale image, received shape {image.shape}")
    kernel_size = check_int(kernel_size, "fit_kernel", "kernel_size", minimum=1)
    steps = check_int(steps, "fit_kernel", "steps", minimum=1)
    lr = check_number(lr, "fit_kernel", "lr", low=0, low_open=True)
    momentum = check_number(momentum, "fit_kernel", "momentum", low=0, high=1, high_open=True)
    tol = check_number(tol, "fit_kernel", "tol", low=0)
    seed = check_int(seed, "fit_kernel", "seed", minimum=0)
    expected = (image.shape[0] - kernel_size + 1, image.shape[1] - kernel_size + 1)
    if target.shape != expected:
        raise ValueError(
            f"fit_kernel: for an image of shape {image.shape} and a "
            f"{kernel_size}×{kernel_size} kernel the "
            f"target must have shape {expected}, received {target.shape}"
        )
    if not (np.isfinite(image).all() and np.isfinite(target).all()):
        raise ValueError("fit_kernel: the image and the target must be finite (no NaN or inf)")
    dtype = image.dtype if image.dtype in (np.float32, np.float64) else np.float64
    rng = np.random.default_rng(seed)
    x = Tensor(image.astype(dtype)[None, None])
    t = Tensor(target.astype(dtype)[None, None])
    weight = Tensor(
        rng.normal(0.0, 0.1, (1, 1, kernel_size, kernel_size)).astype(dtype), requires_grad=True
    )
    bias = Tensor(np.zeros(1, dtype=dtype), requires_grad=True)
    optimiser = SGD([weight, bias], lr=lr, momentum=momentum)
    result = KernelFit(kernel=weight.data[0, 0].copy(), bias=float(bias.data[0]))
    # A diverging run overflows; that is detected below, so NumPy need not warn about it.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step in range(1, steps + 1):
            optimiser.zero_grad()
            loss = F.mse_loss(F.conv2d(x, weight, bias), t)
            value = float(loss.data)
            reason = _divergence(value, result.losses[0] if result.losses else None, step, lr)
            if reason is not None:
                result.diverged, result.stop_reason = True, reason
                result.steps = max(0, len(result.losses) - 1)  # the steps that made result.kernel
                return result
            result.losses.append(value)
            result.kernel, result.bias = weight.data[0, 0].copy(), float(bias.data[0])
            if value < tol:
                return result
            loss.backward()
            optimiser.step()
            result.steps = step
    result.kernel, result.bias = weight.data[0, 0].copy(), float(bias.data[0])
    return result


def _divergence(loss: float, first_loss: float | None, step: int, lr: float) -> str | None:
    """Why descent must stop at this loss (None to go on): not finite, or exploded."""
    if not np.isfinite(loss):
        what = f"the loss became {loss}"
    elif first_loss is not None and loss > DIVERGENCE_FACTOR * first_loss:
        what = (
            f"the loss exploded to {loss:.3g}, more than {DIVERGENCE_FACTOR:g} times the first "
            f"loss {first_loss:.3g}"
        )
    else:
        return None
    return (
        f"descent diverged: {what} after {step - 1} steps with lr={lr:g}; "
        "try a smaller learning rate"
    )


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
    bias = check_number(bias, "recover_kernel", "bias")
    if image is None:
        image, _ = load_image(grayscale=True, size=size)
    hidden_kernel = (
        kernel_bank.get(hidden, np.float64)
        if isinstance(hidden, str)
        else np.asarray(hidden, dtype=np.float64)
    )
    if hidden_kernel.ndim != 2 or hidden_kernel.shape[0] != hidden_kernel.shape[1]:
        raise ValueError(
            f"recover_kernel: expected a square (k, k) kernel, received shape {hidden_kernel.shape}"
        )
    if not np.isfinite(hidden_kernel).all():
        raise ValueError("recover_kernel: the hidden kernel must be finite (no NaN or inf)")
    x = standardise(image)
    target = make_target(x, hidden_kernel, bias)
    result = fit_kernel(
        x,
        target,
        kernel_size=hidden_kernel.shape[0],
        steps=steps,
        lr=lr,
        momentum=momentum,
        seed=seed,
    )
    result.true_kernel = hidden_kernel
    result.true_bias = float(bias)
    return result
