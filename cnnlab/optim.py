"""Optimisers, learning-rate schedules and gradient clipping.

Every optimiser updates ``param.data`` in place, under ``no_grad``, in the
parameter's own dtype (a float32 model stays float32). The update rules follow
PyTorch's ``torch.optim`` exactly, so that the tests can compare step by step.

Example::

    opt = Adam(model.parameters(), lr=1e-3)
    schedule = CosineLR(opt, total_steps=1000)
    for x, y in loader:
        opt.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        clip_grad_norm(model.parameters(), max_norm=5.0)
        opt.step()
        schedule.step()
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from cnnlab._checks import check_int, check_number, check_type
from cnnlab.tensor import Tensor, no_grad

__all__ = [
    "OPTIMIZERS", "OPTIMIZER_NAMES", "SGD", "Adam", "AdamW", "CosineLR", "OneCycleLR", "Optimizer",
    "Schedule",
    "StepLR",
    "clip_grad_norm", "get_optimizer",
]


class Optimizer:
    """Base class: holds the parameters, the learning rate ``lr`` and per-parameter state.

    Subclasses implement ``_update(index, param, grad)``; ``step`` calls it for
    every parameter that has a gradient. ``state[index]`` is a dict of arrays.
    """

    #: hyperparameters saved by ``state_dict`` besides ``lr`` (names of attributes)
    hyperparameters: tuple[str, ...] = ()

    @property
    def state_slots(self) -> int:
        """Arrays of state kept per parameter (momentum, Adam's two moments): sizes checkpoints."""
        return 0

    def __init__(self, params: Iterable[Tensor], lr: float):
        name = type(self).__name__
        params = list(params)
        if not params:
            raise ValueError(f"{name}: received an empty parameter list")
        unique, seen = [], set()
        for p in params:
            check_type(p, Tensor, name, "params[i]", "a cnnlab.Tensor")
            if id(p) not in seen:
                seen.add(id(p))
                unique.append(p)
        self.params: list[Tensor] = unique
        self.lr = check_number(lr, name, "lr", 0.0)
        self.initial_lr = self.lr
        self.step_count = 0
        self.state: list[dict[str, np.ndarray]] = [{} for _ in unique]

    def zero_grad(self) -> None:
        """Forget the gradients of all parameters (``grad = None``)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        self.step_count += 1
        with no_grad():
            for index, p in enumerate(self.params):
                if p.grad is None:
                    continue
                grad = np.asarray(p.grad).astype(p.data.dtype, copy=False)
                self._update(index, p, grad)

    def _update(self, index: int, param: Tensor, grad: np.ndarray) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """``{'type', 'lr', 'initial_lr', 'step_count', <hyperparameters>, 'state'}``.

        ``state`` maps ``'i.key'`` (parameter index, slot name) to an ndarray.

        Only numbers, strings and NumPy arrays, so it can be stored without pickle.
        """
        state = {
            f"{index}.{key}": value.copy()
            for index, entries in enumerate(self.state)
            for key, value in entries.items()
        }
        out = {
            "type": type(self).__name__,
            "lr": self.lr,
            "initial_lr": self.initial_lr,
            "step_count": self.step_count,
            "state": state,
        }
        for name in self.hyperparameters:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (same parameters, same order)."""
        name = type(self).__name__
        if state.get("type", name) != name:
            raise ValueError(f"{name}.load_state_dict: received the state of a "
                             f"{state.get('type')}")
        restored: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        for key, value in state.get("state", {}).items():
            index_text, _, entry = key.partition(".")
            index = int(index_text)
            if index >= len(self.params):
                raise ValueError(
                    f"{name}.load_state_dict: state for parameter {index}, but the optimiser has "
                    f"{len(self.params)} parameters"
                )
            param = self.params[index]
            value = np.asarray(value)
            if value.shape != param.shape:
                raise ValueError(
                    f"{name}.load_state_dict: state {key!r} has shape {value.shape}, "
                    f"parameter {index} has shape {param.shape}"
                )
            restored[index][entry] = value.astype(param.data.dtype, copy=True)
        self.state = restored
        self.lr = float(state["lr"])
        self.initial_lr = float(state.get("initial_lr", self.lr))
        self.step_count = int(state.get("step_count", 0))
        for hp in self.hyperparameters:
            if hp in state:
                value = state[hp]
                setattr(self, hp, tuple(value) if isinstance(value, list) else value)

    def __repr__(self) -> str:
        options = ", ".join(f"{hp}={getattr(self, hp)!r}" for hp in self.hyperparameters)
        return f"{type(self).__name__}(lr={self.lr:g}, {options})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    With g = ∇L(θ) + λθ (λ = weight_decay), μ = momentum and η = lr::

        v ← μ v + g            (v = g at the first step)
        θ ← θ − η (g + μ v)    if nesterov
        θ ← θ − η v            otherwise (plain SGD when μ = 0: θ ← θ − η g)

    This is PyTorch's formulation (the velocity holds gradients, not steps).
    """

    hyperparameters = ("momentum", "nesterov", "weight_decay")

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = check_number(momentum, "SGD", "momentum", 0.0, 1.0, high_open=True)
        self.weight_decay = check_number(weight_decay, "SGD", "weight_decay", 0.0)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, received momentum=0")
        self.nesterov = bool(nesterov)

    @property
    def state_slots(self) -> int:
        return 1 if self.momentum else 0

    def _update(self, index, param, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * param.data
        if self.momentum:
            state = self.state[index]
            velocity = state.get("momentum_buffer")
            if velocity is None:
                velocity = state["momentum_buffer"] = grad.copy()
            else:
                velocity *= self.momentum
                velocity += grad
            grad = grad + self.momentum * velocity if self.nesterov else velocity
        param.data -= self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction and optional L2 weight decay.

    With g = ∇L(θ) + λθ, step t = 1, 2, …::

        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        θ ← θ − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
    """

    hyperparameters = ("betas", "eps", "weight_decay")
    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        name = type(self).__name__
        check_type(betas, (tuple, list), name, "betas", "a pair (beta1, beta2)")
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), "
                             f"received betas={betas!r}")
        self.betas = (
            check_number(betas[0], name, "betas[0]", 0.0, 1.0, high_open=True),
            check_number(betas[1], name, "betas[1]", 0.0, 1.0, high_open=True),
        )
        self.eps = check_number(eps, name, "eps", 0.0)
        self.weight_decay = check_number(weight_decay, name, "weight_decay", 0.0)

    @property
    def state_slots(self) -> int:
        return 2

    def _update(self, index, param, grad):
        beta1, beta2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                param.data *= 1.0 - self.lr * self.weight_decay
            else:
                grad = grad + self.weight_decay * param.data
        state = self.state[index]
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(param.data)
            state["exp_avg_sq"] = np.zeros_like(param.data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * grad * grad
        t = self.step_count
        step_size = self.lr / (1.0 - beta1**t)
        denominator = np.sqrt(v) / math.sqrt(1.0 - beta2**t) + self.eps
        param.data -= step_size * (m / denominator)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    θ ← θ (1 − ηλ) first, then the Adam step with the plain gradient g = ∇L(θ).
    The default λ = 0.01 is PyTorch's.
    """

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
#: every name ``get_optimizer`` takes ('momentum' and 'nesterov' are SGD variants)
OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "momentum", "nesterov")


def get_optimizer(name: str, params, lr: float, **options) -> Optimizer:
    """An optimiser by name: 'sgd', 'momentum' (SGD, μ = 0.9), 'nesterov', 'adam', 'adamw'."""
    key = str(name).lower()
    if key == "momentum":
        return SGD(params, lr=lr, momentum=options.pop("momentum", 0.9), **options)
    if key == "nesterov":
        return SGD(params, lr=lr, momentum=options.pop("momentum", 0.9), nesterov=True, **options)
    if key not in OPTIMIZERS:
        known = sorted([*OPTIMIZERS, "momentum", "nesterov"])
        raise ValueError(f"get_optimizer: unknown optimizer {name!r}, expected one of {known}")
    return OPTIMIZERS[key](params, lr=lr, **options)


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    ‖g‖ = √(Σ_p Σ_i g_{p,i}²); if ‖g‖ > max_norm every gradient is multiplied by
    max_norm / (‖g‖ + 1e-6) (PyTorch's ``clip_grad_norm_``). Returns ‖g‖ before
    clipping (inf or nan when a gradient is not finite; nothing is scaled then).
    """
    max_norm = check_number(max_norm, "clip_grad_norm", "max_norm", 0.0, low_open=True)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    if not math.isfinite(total):
        return total
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1.0:
        for g in grads:
            g *= np.asarray(coefficient, dtype=g.dtype)
    return total


class Schedule:
    """Base class: sets ``optimizer.lr`` from the number of ``step()`` calls so far.

    The learning rate for step t is ``lr_at(t)``; construction sets ``lr_at(0)``,
    each ``step()`` advances t by one. Whether a step is a batch or an epoch is
    the caller's choice (the training loop's ``LearningRateScheduler`` decides).
    """

    def __init__(self, optimizer: Optimizer):
        check_type(optimizer, Optimizer, type(self).__name__, "optimizer",
                   "a cnnlab.optim.Optimizer")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_step = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, step: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)
        return self.optimizer.lr

    def state_dict(self) -> dict:
        return {"type": type(self).__name__, "base_lr": self.base_lr, "last_step": self.last_step}

    def load_state_dict(self, state: dict) -> None:
        self.base_lr = float(state["base_lr"])
        self.last_step = int(state["last_step"])
        self.optimizer.lr = self.lr_at(self.last_step)


class StepLR(Schedule):
    """η_t = η₀ · γ^⌊t / step_size⌋: the learning rate times γ every ``step_size`` steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = check_int(step_size, "StepLR", "step_size", 1)
        self.gamma = check_number(gamma, "StepLR", "gamma", 0.0, low_open=True)
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineLR(Schedule):
    """η_t = η_min + (η₀ − η_min) · (1 + cos(π t / T)) / 2 for t ≤ T, then η_min.

    T = total_steps. This is PyTorch's ``CosineAnnealingLR`` without restarts.
    """

    def __init__(self, optimizer: Optimizer, total_steps: int, min_lr: float = 0.0):
        self.total_steps = check_int(total_steps, "CosineLR", "total_steps", 1)
        self.min_lr = check_number(min_lr, "CosineLR", "min_lr", 0.0)
        super().__init__(optimizer)

    def lr_at(self, step):
        t = min(step, self.total_steps)
        cosine = (1 + math.cos(math.pi * t / self.total_steps)) / 2
        return self.min_lr + (self.base_lr - self.min_lr) * cosine


class OneCycleLR(Schedule):
    """The one-cycle policy (Smith 2018), as PyTorch's ``OneCycleLR`` with cosine annealing.

    Warm up from η_max / div_factor to η_max over the first pct_start of the
    steps, then anneal to η_max / (div_factor · final_div_factor) at step T − 1::

        cos_anneal(a, b, p) = b + (a − b) (1 + cos(π p)) / 2,  p ∈ [0, 1]

    (PyTorch also cycles momentum by default; this schedule changes only η.)
    """

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int,
                 pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4):
        self.total_steps = check_int(total_steps, "OneCycleLR", "total_steps", 2)
        self.max_lr = check_number(max_lr, "OneCycleLR", "max_lr", 0.0, low_open=True)
        self.pct_start = check_number(pct_start, "OneCycleLR", "pct_start", 0.0, 1.0,
                                      low_open=True, high_open=True)
        self.div_factor = check_number(div_factor, "OneCycleLR", "div_factor", 0.0, low_open=True)
        self.final_div_factor = check_number(final_div_factor, "OneCycleLR",
                                             "final_div_factor", 0.0, low_open=True)
        super().__init__(optimizer)

    @staticmethod
    def _cos_anneal(start: float, end: float, fraction: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)

    def lr_at(self, step):
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        warmup_end = float(self.pct_start * self.total_steps) - 1
        last = float(self.total_steps - 1)
        step = min(step, self.total_steps - 1)
        if step <= warmup_end:
            fraction = step / warmup_end if warmup_end > 0 else 1.0
            return self._cos_anneal(initial, self.max_lr, fraction)
        return self._cos_anneal(self.max_lr, final, (step - warmup_end) / (last - warmup_end))
