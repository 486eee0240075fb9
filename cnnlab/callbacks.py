"""Callbacks for ``cnnlab.training.fit``: early stopping, checkpoints, learning-rate schedules.

A callback sees the running ``TrainingState`` (model, optimizer, history, epoch,
``stop_training``) at these points::

    on_train_begin(state)
    on_epoch_begin(state, epoch)            # epoch counts from 0
    on_batch_end(state, batch, logs)        # logs: running 'loss', 'accuracy' of the epoch
    on_epoch_end(state, epoch, logs)        # logs: the epoch's 'loss', 'accuracy', 'val_*', 'lr'
    on_checkpoint(state, epoch, logs)       # a separate step after every on_epoch_end
    on_train_end(state)

Callbacks run in the order given to ``fit``, never reordered. Writing checkpoints is its
own step of the loop (``on_checkpoint``, which ``ModelCheckpoint`` uses), after every
callback's ``on_epoch_end``: a checkpoint therefore holds the state that all callbacks
(a stepped LR schedule, early-stopping counters) leave for the next epoch, wherever the
``ModelCheckpoint`` sits in the list. ``on_checkpoint`` runs only for an epoch that finished.

Setting ``state.stop_training = True`` ends training after the current batch.
``state_dict()``/``load_state_dict()`` carry a callback's progress (best value
so far, patience used) through a checkpoint, so that a resumed run behaves as
an uninterrupted one.
"""

from __future__ import annotations

import math

import numpy as np

from cnnlab import optim
from cnnlab._checks import check_choice, check_int, check_number, check_type
from cnnlab.checkpoint import save_checkpoint

__all__ = ["Callback", "EarlyStopping", "LearningRateScheduler", "ModelCheckpoint"]


class Callback:
    """Base class; every hook does nothing."""

    def on_train_begin(self, state) -> None:
        pass

    def on_epoch_begin(self, state, epoch: int) -> None:
        pass

    def on_batch_end(self, state, batch: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, state, epoch: int, logs: dict) -> None:
        pass

    def on_checkpoint(self, state, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, state) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class _Monitor(Callback):
    """Shared logic: follow one logged quantity and decide whether it improved."""

    def __init__(self, monitor: str | None, mode: str, min_delta: float = 0.0):
        check_choice(mode, ("auto", "min", "max"), type(self).__name__, "mode")
        self.monitor = monitor
        self.mode = mode
        # Keras's convention: the sign of min_delta does not matter, its size does.
        self.min_delta = abs(check_number(min_delta, type(self).__name__, "min_delta"))
        self.best: float | None = None

    def _resolve(self, state) -> None:
        if self.monitor is None:
            self.monitor = "val_loss" if state.has_validation else "loss"
        if self.mode == "auto":
            self.mode = "max" if "acc" in self.monitor else "min"

    def _value(self, logs: dict) -> float:
        if self.monitor not in logs:
            raise ValueError(
                f"{type(self).__name__}: monitor={self.monitor!r} is not logged; "
                f"available: {sorted(logs)}"
            )
        return float(logs[self.monitor])

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def state_dict(self) -> dict:
        return {"monitor": self.monitor, "mode": self.mode, "best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.monitor = state.get("monitor", self.monitor)
        self.mode = state.get("mode", self.mode)
        self.best = state.get("best")


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    Args:
        monitor: logged quantity; default 'val_loss' with validation data, else 'loss'.
        patience: epochs without improvement tolerated before stopping.
        min_delta: smallest change that counts as an improvement.
        mode: 'min', 'max' or 'auto' (max for accuracies, min otherwise).
        restore_best_weights: at the end, put back the weights of the best epoch.
    """

    def __init__(self, monitor: str | None = None, patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False):
        super().__init__(monitor, mode, min_delta)
        self.patience = check_int(patience, "EarlyStopping", "patience", 0)
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch: int | None = None
        self._best_weights: dict[str, np.ndarray] | None = None

    def on_train_begin(self, state):
        self._resolve(state)

    def on_epoch_end(self, state, epoch, logs):
        value = self._value(logs)
        if self._improved(value):
            self.best = value
            self.wait = 0
            if self.restore_best_weights:
                self._best_weights = state.model.state_dict()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            state.stop(
                f"early stopping: {self.monitor} has not improved on {self.best:.4f} "
                f"for {self.wait} epochs (patience {self.patience})"
            )

    def on_train_end(self, state):
        stopped = self.stopped_epoch is not None
        if self.restore_best_weights and self._best_weights is not None and stopped:
            state.model.load_state_dict(self._best_weights)

    def state_dict(self):
        return {**super().state_dict(), "wait": self.wait}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.wait = int(state.get("wait", 0))


class ModelCheckpoint(_Monitor):
    """Write a training checkpoint at the end of an epoch.

    The checkpoint (``cnnlab.checkpoint.save_checkpoint``) holds the model config and
    weights, the optimiser state, the epoch, the history and the callbacks' state,
    written atomically: an interrupted write never leaves a broken file. A model
    with non-finite weights or loss is never written. It is written in the loop's checkpoint
    step, after every callback's ``on_epoch_end`` (see the module docstring).

    Args:
        path: file to write (``.npz``).
        save_best_only: write only when ``monitor`` improves; otherwise every epoch.
        monitor: default 'val_loss' with validation data, else 'loss'.
        mode: 'min', 'max' or 'auto'.
    """

    def __init__(self, path, save_best_only: bool = True, monitor: str | None = None,
                 mode: str = "auto"):
        super().__init__(monitor, mode)
        self.path = path
        self.save_best_only = bool(save_best_only)
        self.last_saved_epoch: int | None = None

    def on_train_begin(self, state):
        self._resolve(state)

    def on_checkpoint(self, state, epoch, logs):
        value = self._value(logs) if self.save_best_only else None
        if self.save_best_only and not self._improved(value):
            return
        if not all(math.isfinite(float(v)) for v in logs.values()) or not state.weights_finite():
            state.stop(f"ModelCheckpoint: epoch {epoch + 1} has non-finite loss or weights; "
                       "not saving it")
            return
        if self.save_best_only:
            self.best = value
        self.last_saved_epoch = epoch + 1
        save_checkpoint(self.path, state)

    def state_dict(self):
        return {**super().state_dict(), "last_saved_epoch": self.last_saved_epoch}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.last_saved_epoch = state.get("last_saved_epoch")


class LearningRateScheduler(Callback):
    """Change the optimiser's learning rate during training.

    Args:
        schedule: one of
            - 'step', 'cosine' or 'onecycle': build ``StepLR`` / ``CosineLR`` /
              ``OneCycleLR`` for fit's optimiser, over the whole run (``options``
              go to the constructor; one-cycle peaks at the optimiser's lr unless
              ``max_lr`` is given; step defaults to ×0.1 every third of the epochs);
            - a ``cnnlab.optim.Schedule`` already built on the optimiser given to fit;
            - a function ``(epoch, lr) -> new lr`` called before every epoch (Keras).
        per_batch: step the schedule after every batch instead of every epoch.
            Default: True for 'cosine' and 'onecycle', False otherwise.

    A named schedule is sized for fit's ``epochs``. Resuming (``fit(..., resume=)``) rebuilds
    it for the ``epochs`` of the resumed call and continues from the saved step:

    - with the same ``epochs`` as the first run was given, the learning rates, and so the
      weights, are exactly those of the uninterrupted run (2 epochs straight == 1 + 1 resumed,
      when both calls say ``epochs=2``);
    - with more ``epochs``, the schedule continues as if the run had been planned for the new
      total from the start: from the saved step on, the learning rate is what that plan gives
      at that step (the epochs already done keep the rates they had). A run planned for 1
      epoch and extended to 2 is therefore not the same as a run planned for 2.
    """

    NAMES = ("step", "cosine", "onecycle")

    def __init__(self, schedule, per_batch: bool | None = None, **options):
        if isinstance(schedule, str):
            check_choice(schedule, self.NAMES, "LearningRateScheduler", "schedule")
            if per_batch is None:
                per_batch = schedule != "step"
        elif not callable(schedule):
            check_type(schedule, optim.Schedule, "LearningRateScheduler", "schedule",
                       "a schedule name, a Schedule or a function (epoch, lr) -> lr")
        self.schedule = schedule
        self.per_batch = bool(per_batch)
        self.options = options
        self.scheduler: optim.Schedule | None = None
        if isinstance(schedule, optim.Schedule):
            self.scheduler = schedule

    def on_train_begin(self, state):
        if not isinstance(self.schedule, str):
            return
        steps = state.epochs * state.steps_per_epoch if self.per_batch else state.epochs
        options = dict(self.options)
        if self.schedule == "step":
            options.setdefault("step_size", max(1, steps // 3))
            self.scheduler = optim.StepLR(state.optimizer, **options)
        elif self.schedule == "cosine":
            self.scheduler = optim.CosineLR(state.optimizer, total_steps=max(1, steps), **options)
        else:
            # initial_lr, not lr: on resume the optimiser already holds the schedule's last rate.
            options.setdefault("max_lr", state.optimizer.initial_lr)
            self.scheduler = optim.OneCycleLR(state.optimizer, total_steps=max(2, steps),
                                              **options)

    def on_epoch_begin(self, state, epoch):
        if self.scheduler is None:
            lr = self.schedule(epoch, state.optimizer.lr)
            if not isinstance(lr, (int, float, np.floating)) or not math.isfinite(lr) or lr < 0:
                raise ValueError(f"LearningRateScheduler: the schedule returned lr={lr!r} "
                                 f"for epoch {epoch}")
            state.optimizer.lr = float(lr)

    def on_batch_end(self, state, batch, logs):
        if self.scheduler is not None and self.per_batch:
            self.scheduler.step()

    def on_epoch_end(self, state, epoch, logs):
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state):
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)
