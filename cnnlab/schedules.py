"""Learning-rate schedules: set ``optimizer.lr`` from the number of steps taken.

Each follows its PyTorch counterpart (``StepLR``, ``CosineAnnealingLR``, ``OneCycleLR``);
``cnnlab.optim`` re-exports them, so ``cnnlab.optim.CosineLR`` still works.
"""

from __future__ import annotations

import math

from cnnlab._checks import check_int, check_number, check_type

__all__ = ["CosineLR", "OneCycleLR", "Schedule", "StepLR"]


class Schedule:
    """Base class: sets ``optimizer.lr`` from the number of ``step()`` calls so far.

    The learning rate for step t is ``lr_at(t)``; construction sets ``lr_at(0)``,
    each ``step()`` advances t by one. Whether a step is a batch or an epoch is
    the caller's choice (the training loop's ``LearningRateScheduler`` decides).
    """

    def __init__(self, optimizer):
        from cnnlab.optim import Optimizer  # optim imports this module: import at use

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

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = check_int(step_size, "StepLR", "step_size", 1)
        self.gamma = check_number(gamma, "StepLR", "gamma", 0.0, low_open=True)
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineLR(Schedule):
    """η_t = η_min + (η₀ − η_min) · (1 + cos(π t / T)) / 2 for t ≤ T, then η_min.

    T = total_steps. This is PyTorch's ``CosineAnnealingLR`` without restarts.
    """

    def __init__(self, optimizer, total_steps: int, min_lr: float = 0.0):
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

    def __init__(self, optimizer, max_lr: float, total_steps: int,
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
