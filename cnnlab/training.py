"""The training loop: ``fit``, ``evaluate`` and ``predict`` (checkpoints: ``cnnlab.checkpoint``).

``fit`` runs mini-batch gradient descent with a Keras-like progress bar that fits 80
columns (``cnnlab.progress``)::

    Epoch 3/10
    45/45 [==============================] - 2.1s 47ms/step - 684 img/s
    loss: 0.0812 - accuracy: 0.9756 - val_loss: 0.0731 - val_accuracy: 0.9778

and returns a ``History``: per-epoch lists of loss, accuracy, val_loss, val_accuracy, lr and
time. The same seed gives the same weights and numbers. Training stops early, cleanly, at
the end of a batch, and says why in ``history.stop_reason``, when:

- Ctrl-C or SIGTERM arrives (``history.interrupted``; see ``cnnlab.interrupts``);
- the loss becomes NaN or infinite, or explodes: a batch's loss exceeds
  ``divergence_threshold`` (default 1e3) times the reference loss, which is the mean loss of
  the run's first epoch once that epoch has finished and the loss of the run's first batch
  before (``history.diverged``; only checked while the reference is > 0);
- a callback asks for it (``EarlyStopping``, ``patience=``).

An epoch that did not finish is never checkpointed. A checkpoint (``ModelCheckpoint``)
holds everything needed to continue: ``fit(..., resume=path)`` picks up at the saved epoch
with the optimiser, callbacks and random generators as they were (what a learning-rate
schedule does when the resumed run asks for more epochs: ``LearningRateScheduler``).

Before a long run, ``fit`` prints an estimate from its first batches, e.g.
``estimate: 3 h 12 min per epoch, checkpoint 683 MB``, when an epoch will take more than
10 minutes or a checkpoint will exceed 100 MB (``cnnlab.progress.estimate_line``).
"""

from __future__ import annotations

import sys

import numpy as np

from cnnlab import _memory, checkpoint, optim
from cnnlab._checks import check_choice, check_int, check_number, check_type
from cnnlab.batches import Batches, split_validation
from cnnlab.callbacks import Callback, EarlyStopping, LearningRateScheduler
from cnnlab.interrupts import stop_signals
from cnnlab.loop import DIVERGENCE_THRESHOLD, Run, run_epochs
from cnnlab.nn import BatchNorm
from cnnlab.scoring import (
    ends_in_softmax,
    evaluate_batches,
    forward_batches,
    loss_function,
    softmax,
)
from cnnlab.threads import BlasThreads

__all__ = ["DIVERGENCE_THRESHOLD", "History", "TrainingState", "evaluate", "fit", "predict"]


class History(dict):
    """Per-epoch training record: ``history['loss'][e]`` is the mean loss of epoch e + 1.

    Keys: 'loss', 'accuracy', 'val_loss', 'val_accuracy' (with validation data),
    'lr' (learning rate at the start of the epoch) and 'time' (seconds).

    Attributes:
        stop_reason: why training ended early, one sentence (None when all epochs ran).
        interrupted: True when Ctrl-C or SIGTERM stopped it (``signal`` says which).
        diverged: True when the loss became NaN, infinite or exploded, or the weights non-finite.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop_reason: str | None = None
        self.interrupted = False
        self.signal: str | None = None
        self.diverged = False

    @property
    def epochs(self) -> int:
        return len(self.get("loss", []))

    def append(self, logs: dict) -> None:
        for key, value in logs.items():
            self.setdefault(key, []).append(float(value))

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4f}" for k, v in self.items() if v)
        return f"History(epochs={self.epochs}{', ' + last if last else ''})"


class TrainingState:
    """What callbacks see while ``fit`` runs.

    Attributes:
        model, optimizer, history, callbacks: the objects in use.
        epochs: the total number of epochs asked for; epoch: the current one (from 0).
        steps_per_epoch: batches per epoch; has_validation: whether val_* is logged.
        stop_training: set (or call ``stop``) to end training after the current batch.
    """

    def __init__(self, model, optimizer, epochs, steps_per_epoch, has_validation, callbacks, seed,
                 augment=None, normalization=None):
        self.model = model
        self.optimizer = optimizer
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.has_validation = has_validation
        self.callbacks = list(callbacks)
        self.seed = seed
        self.augment = augment
        self.normalization = normalization
        self.history = History()
        self.epoch = 0
        self.epochs_done = 0
        self.stop_training = False
        self.interrupted = False
        self.estimate: dict | None = None

    def stop(self, reason: str) -> None:
        self.stop_training = True
        if self.history.stop_reason is None:
            self.history.stop_reason = reason

    def weights_finite(self) -> bool:
        return all(np.isfinite(p.data).all() for p in self.model.parameters())


def fit(model, train_data, epochs: int = 10, batch_size: int = 64, validation=None,
        optimizer="adam", lr: float = 1e-3, loss="cross_entropy", callbacks=(), augment=None,
        seed: int = 0, verbose: int = 1, *, clip_norm: float | None = None, resume=None,
        weight_decay: float | None = None, momentum: float | None = None,
        validation_split: float = 0.0, patience: int | None = None,
        divergence_threshold: float | None = DIVERGENCE_THRESHOLD,
        keep_freed_memory: bool | None = None, parallel=None) -> History:
    """Train ``model`` by mini-batch gradient descent; return the per-epoch ``History``.

    Args:
        model: a ``cnnlab.nn.Module`` (built, or built here from the data's sample shape).
        train_data: an ArrayDataset (shuffled each epoch, normalised with its mean/std),
            a DataLoader (used as it is) or (x, y) arrays: uint8 x are raw pixels (scaled to
            [0, 1], then normalised with ``model.normalization`` if it has one), float x are
            used as they are (see ``cnnlab.batches``).
        epochs: total number of epochs (a resumed run continues up to this number).
        batch_size: samples per batch (not used for a DataLoader).
        validation: data evaluated after each epoch (val_loss, val_accuracy), same forms.
        optimizer: 'adam', 'adamw', 'sgd', 'momentum', 'nesterov' (built with ``lr``,
            ``weight_decay`` and ``momentum``) or a ``cnnlab.optim.Optimizer`` built on
            ``model.parameters()``.
        lr: learning rate for an optimiser given by name; each parameter gets lr × its
            ``model.parameter_lr_scales()`` entry (a given Optimizer has its own ``lr_scales``).
        loss: 'cross_entropy' (on the model's logits), 'mse', 'l1' or ``fn(output, y) -> Tensor``.
        callbacks: ``cnnlab.callbacks.Callback`` instances, run in the order given.
        augment: a ``cnnlab.data.Augmentation`` applied to training batches.
        seed: seeds the shuffling (and ``validation_split``); same seed, same run.
        verbose: 0 silent, 1 a progress bar per epoch (clean lines when not a terminal),
            2 one line per epoch.
        clip_norm: clip the global gradient norm to this value before each step.
        resume: path of a checkpoint written by ``ModelCheckpoint``/``save_checkpoint``:
            continue from its epoch with its weights, optimiser state, history and callbacks.
        weight_decay: L2 penalty for an optimiser given by name (default: the optimiser's,
            0 except AdamW's 0.01).
        momentum: for 'sgd', 'momentum' and 'nesterov' (default 0 for 'sgd', else 0.9).
        validation_split: when ``validation`` is None, hold out this fraction of
            ``train_data`` (seeded by ``seed``; ``cnnlab.batches.split_validation``).
        patience: stop when the validation loss (the training loss without validation) has
            not improved for this many epochs (adds an ``EarlyStopping`` after ``callbacks``).
        divergence_threshold: stop when a batch's loss exceeds this times the reference loss
            (module docstring); None checks only for NaN and infinity.
        keep_freed_memory: tune malloc to keep freed memory for the next batch (faster;
            ``cnnlab._memory``). None: on unless ``CNNLAB_KEEP_FREED_MEMORY=0``.
        parallel: None, or a data-parallel group of ranks (``cnnlab.distributed.world()``
            under ``mpirun``): every rank calls ``fit`` with the same arguments; rank 0's
            weights and buffers are broadcast first (after ``resume``); each step's batch holds
            ``batch_size`` samples per rank, and N ranks train exactly as one process with
            ``batch_size`` × N (``cnnlab.loop``). Only rank 0 prints; the callers decide which
            ranks write files (``cnnlab train`` writes on rank 0 only).

    The model is in training mode during the epochs and in evaluation mode for validation.
    Training stops early on a signal, a diverging loss or a callback's request (module
    docstring); ``history.stop_reason`` says why and, when ``verbose``, is printed once.
    A batch-norm model whose last training batch would hold a single image gets that image
    merged into the batch before (batch statistics need two), and fit says so once.
    The matrix products use every usable core, fewer while other processes keep some busy
    (``cnnlab.threads``; the count never changes the results); ``with
    cnnlab.threads.BlasThreads(n):`` around ``fit`` fixes it.
    """
    # The signal handlers come first, so that Ctrl-C during the slow preparation is a clean stop.
    with stop_signals(verbose) as stop_request:
        _memory.keep_freed_memory(keep_freed_memory)
        if parallel is not None and parallel.rank != 0:
            verbose = 0
        run = _prepare(model, train_data, epochs, batch_size, validation, optimizer, lr, loss,
                       callbacks, augment, seed, verbose, clip_norm, weight_decay, momentum,
                       validation_split, patience, divergence_threshold, stop_request, parallel)
        _resume(run, resume)
        if parallel is not None:
            parallel.broadcast_state(model)
        with BlasThreads() as blas:  # an enclosing BlasThreads' count, else chosen now
            if blas.reduced and verbose:
                print(f"note: {blas.describe()}", file=sys.stderr, flush=True)
            run_epochs(run)
    history = run.state.history
    model.train(False)
    if history.stop_reason and verbose:
        print(history.stop_reason, file=sys.stderr, flush=True)
    return history


def _prepare(model, train_data, epochs, batch_size, validation, optimizer, lr, loss, callbacks,
             augment, seed, verbose, clip_norm, weight_decay, momentum, validation_split, patience,
             divergence_threshold, stop_request, parallel=None) -> Run:
    """Check the arguments, build the data streams, the model and the optimiser."""
    epochs = check_int(epochs, "fit", "epochs", 1)
    batch_size = check_int(batch_size, "fit", "batch_size", 1)
    seed = check_int(seed, "fit", "seed", 0)
    verbose = check_choice(verbose, (0, 1, 2), "fit", "verbose")
    callbacks = list(callbacks)
    for cb in callbacks:
        check_type(cb, Callback, "fit", "callbacks[i]", "a cnnlab.callbacks.Callback")
    if clip_norm is not None:
        clip_norm = check_number(clip_norm, "fit", "clip_norm", 0.0, low_open=True)
    if divergence_threshold is not None:
        divergence_threshold = check_number(
            divergence_threshold, "fit", "divergence_threshold", 1.0, low_open=True)
    if patience is not None:
        callbacks.append(EarlyStopping(patience=check_int(patience, "fit", "patience", 0)))
    if validation_split:
        if validation is not None:
            raise ValueError("fit: give validation= or validation_split=, not both")
        train_data, validation = split_validation(train_data, validation_split, seed)
    normalization = getattr(model, "normalization", None)
    train = Batches(train_data, batch_size, "fit: train_data", normalization=normalization)
    if train.loader is not None and augment is not None:
        raise ValueError("fit: augment cannot be applied to a DataLoader; "
                         "give the DataLoader augment= instead")
    val = None
    if validation is not None:
        val = Batches(validation, batch_size, "fit: validation", normalization=normalization)
    loss_fn = loss_function(loss)

    _ensure_built(model, train.sample_shape)
    if getattr(model, "class_names", None) is None and train.class_names is not None:
        model.class_names = train.class_names
    if train.normalization is not None:
        model.normalization = train.normalization
    opt = _optimizer(optimizer, model, lr, weight_decay, momentum)
    ranks = 1 if parallel is None else parallel.size
    # batch norm needs 2 values per channel on each rank; a rank with nothing falls out of step
    min_share = 2 if _has_batch_norm(model) else 1
    steps = train.steps(ranks, min_share)
    state = TrainingState(model, opt, epochs, steps, val is not None, callbacks, seed, augment,
                          normalization=getattr(model, "normalization", None))
    state.validation = val
    if steps < train.steps(ranks) and verbose:
        what = ("1 image, which batch norm cannot normalise" if ranks == 1 else
                f"too few images for {ranks} ranks ({min_share} each)")
        print(f"note: the last training batch would hold {what}; it joins the batch before "
              f"({steps} batches per epoch)", file=sys.stderr, flush=True)
    return Run(state, train, val, loss_fn, augment, clip_norm, verbose, min_share,
               divergence_threshold, stop_request, parallel)


def _optimizer(optimizer, model, lr, weight_decay, momentum) -> optim.Optimizer:
    if isinstance(optimizer, optim.Optimizer):
        if weight_decay is not None or momentum is not None:
            raise ValueError("fit: weight_decay and momentum apply to an optimizer given by name; "
                             "set them on the Optimizer instance instead")
        return optimizer
    name = check_choice(optimizer, optim.OPTIMIZER_NAMES, "fit", "optimizer")
    options = {}
    if weight_decay is not None:
        options["weight_decay"] = check_number(weight_decay, "fit", "weight_decay", 0.0)
    if momentum is not None:
        if name not in ("sgd", "momentum", "nesterov"):
            raise ValueError(f"fit: momentum applies to 'sgd', 'momentum' and 'nesterov', "
                             f"not optimizer={name!r}")
        options["momentum"] = check_number(momentum, "fit", "momentum", 0.0, 1.0, high_open=True)
        if name == "sgd" and options["momentum"] == 0:
            del options["momentum"]
    # each parameter's rate is lr × the scale the model declares (1 for most)
    return optim.get_optimizer(name, model.parameters(), lr,
                               lr_scales=model.parameter_lr_scales(), **options)


def _resume(run: Run, resume) -> None:
    """Restore the checkpoint ``resume`` (if any) and start the callbacks."""
    state = run.state
    saved = checkpoint.load_checkpoint(resume) if resume is not None else None
    if saved is not None:
        checkpoint.restore_training(state, saved)
    for cb in state.callbacks:
        cb.on_train_begin(state)
    if saved is None:
        return
    checkpoint.restore_callbacks(state, saved)
    if run.verbose:
        print(f"Resuming from {resume} after epoch {state.epochs_done}/{state.epochs}",
              file=sys.stderr)
        planned = saved.get("epochs")
        scheduled = any(isinstance(cb, LearningRateScheduler) for cb in state.callbacks)
        if scheduled and isinstance(planned, int) and state.epochs > planned:
            print(f"note: the run was planned for {planned} epochs; the learning-rate "
                  f"schedule now continues as if planned for {state.epochs}", file=sys.stderr)
    if state.epochs_done >= state.epochs:
        state.stop(f"nothing to do: {resume} has already trained {state.epochs_done} of "
                   f"{state.epochs} epochs")


def _has_batch_norm(model) -> bool:
    return any(isinstance(m, BatchNorm) for m in model.modules())


def _ensure_built(model, sample_shape) -> None:
    # A model built at construction (Dense(in_features=...)) still gets its input shape recorded,
    # so that a later save_model has it.
    if model.built and (model.input_shape is not None or sample_shape is None):
        return
    if sample_shape is None:
        raise ValueError("fit: the model has no weights yet and the input shape is unknown; "
                         "call model.build()")
    model.build(tuple(sample_shape))


def evaluate(model, data, batch_size: int = 256, loss="cross_entropy") -> dict:
    """Mean loss and accuracy of ``model`` on ``data``, in evaluation mode under ``no_grad``.

    ``data``: an ArrayDataset, a DataLoader (its dataset is read in order, without
    augmentation; the loader is left as it was) or ``(x, y)`` arrays, where uint8 x are raw
    pixels normalised with ``model.normalization`` and float x are used as they are.
    Returns ``{'loss': float, 'accuracy': float}`` (accuracy only for class labels).
    """
    batch_size = check_int(batch_size, "evaluate", "batch_size", 1)
    batches = Batches(data, batch_size, "evaluate: data",
                      normalization=getattr(model, "normalization", None))
    return evaluate_batches(model, batches, loss_function(loss, "evaluate"))


def predict(model, x, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K), one row per sample in the data's order, in evaluation mode.

    ``x``: uint8 images (N, C, H, W) are raw pixels: scaled to [0, 1] and normalised with
    ``model.normalization``, as ``cnnlab predict`` does with image files; float images are
    taken as already normalised; an ArrayDataset or a DataLoader is read in order (never
    shuffled or augmented, the loader's epoch untouched; labels ignored). The outputs go
    through softmax unless the model already ends in a ``Softmax`` layer.
    """
    batch_size = check_int(batch_size, "predict", "batch_size", 1)
    batches = Batches(x, batch_size, "predict: x", labels_required=False,
                      normalization=getattr(model, "normalization", None))
    probabilities = ends_in_softmax(model)
    outputs = [output if probabilities else softmax(output)
               for output, _ in forward_batches(model, batches)]
    return np.concatenate(outputs, axis=0)


