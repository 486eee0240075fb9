"""The training loop: ``fit``, ``evaluate`` and ``predict`` (checkpoints: ``cnnlab.checkpoint``).

``fit`` runs mini-batch gradient descent with a Keras-like progress bar::

    Epoch 3/10
    23/23 [==============================] - 2.1s 91ms/step - loss: 0.0812 - accuracy: 0.9756
          - val_loss: 0.0731 - val_accuracy: 0.9778 - 684 img/s

and returns a ``History``: per-epoch lists of loss, accuracy, val_loss,
val_accuracy, lr and time. The run is reproducible (the same seed gives the
same weights and numbers), Ctrl-C stops it cleanly at the end of the current
batch, and a loss that becomes NaN or infinite stops it with a message before
anything is written. A checkpoint (``ModelCheckpoint`` or ``save_checkpoint``)
holds everything needed to continue: ``fit(..., resume=path)`` picks up at the
saved epoch with the optimiser, callbacks and random generators as they were,
so 2 epochs straight and 1 + 1 resumed give identical weights.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
import warnings

import numpy as np

from cnnlab import optim
from cnnlab.callbacks import Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint
from cnnlab.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    model_from_checkpoint,
    restore_callbacks,
    restore_training,
    save_checkpoint,
)
from cnnlab.progress import ProgressBar
from cnnlab.tensor import Tensor, no_grad

__all__ = [
    "CHECKPOINT_FORMAT",
    "Callback",
    "EarlyStopping",
    "History",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "TrainingState",
    "evaluate",
    "fit",
    "load_checkpoint",
    "model_from_checkpoint",
    "predict",
    "save_checkpoint",
]



class History(dict):
    """Per-epoch training record: ``history['loss'][e]`` is the mean loss of epoch e + 1.

    Keys: 'loss', 'accuracy', 'val_loss', 'val_accuracy' (with validation data),
    'lr' (learning rate at the start of the epoch) and 'time' (seconds).

    Attributes:
        stop_reason: why training ended early (None when all epochs ran).
        interrupted: True when Ctrl-C stopped it.
        diverged: True when the loss or the weights became NaN or infinite.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop_reason: str | None = None
        self.interrupted = False
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

    def stop(self, reason: str) -> None:
        self.stop_training = True
        if self.history.stop_reason is None:
            self.history.stop_reason = reason

    def weights_finite(self) -> bool:
        return all(np.isfinite(p.data).all() for p in self.model.parameters())


# ---------------------------------------------------------------------- data
class _Batches:
    """One view of the accepted data forms: an ArrayDataset, a DataLoader or (x, y) arrays."""

    def __init__(self, data, batch_size: int, what: str, labels_required: bool = True):
        from cnnlab.data import ArrayDataset, DataLoader

        self.batch_size = batch_size
        self.dataset = self.loader = None
        self.x = self.y = None
        self.class_names = None
        self.normalization = None
        if isinstance(data, ArrayDataset):
            self.dataset = data
            self.sample_shape = data.image_shape
            self.num_samples = len(data)
            self.class_names = list(data.class_names)
            self.normalization = {"mean": data.mean, "std": data.std}
        elif isinstance(data, DataLoader):
            self.loader = data
            dataset = getattr(data, "dataset", None)
            self.sample_shape = getattr(dataset, "image_shape", None)
            self.num_samples = len(dataset) if dataset is not None else None
            if dataset is not None and hasattr(dataset, "class_names"):
                self.class_names = list(dataset.class_names)
                self.normalization = {"mean": dataset.mean, "std": dataset.std}
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            x, y = np.asarray(data[0]), np.asarray(data[1])
            if x.ndim < 2 or len(x) != len(y):
                raise ValueError(
                    f"{what}: expected (x, y) with x (N, ...) and y (N,), received shapes {x.shape} and {y.shape}"
                )
            self.x, self.y = _as_float(x, what), y
            self.sample_shape = x.shape[1:]
            self.num_samples = len(x)
        elif isinstance(data, np.ndarray) and not labels_required:
            if data.ndim < 2:
                raise ValueError(f"{what}: expected an array (N, ...), received shape {data.shape}")
            self.x = _as_float(data, what)
            self.sample_shape = data.shape[1:]
            self.num_samples = len(data)
        else:
            expected = "an ArrayDataset, a DataLoader or (x, y) arrays"
            if not labels_required:
                expected += " or an array x"
            raise ValueError(f"{what}: expected {expected}, received {type(data).__name__}")
        if self.num_samples == 0:
            raise ValueError(f"{what}: the data is empty")

    def __len__(self) -> int:
        if self.loader is not None:
            return len(self.loader)
        return math.ceil(self.num_samples / self.batch_size)

    def batches(self, shuffle: bool = False, seed: int = 0, epoch: int = 0, augment=None):
        """Yield (x float ndarray, y ndarray or None) batches; epoch e's order depends only on (seed, e)."""
        from cnnlab.data import DataLoader

        if self.loader is not None:
            if shuffle and hasattr(self.loader, "set_epoch"):
                self.loader.set_epoch(epoch)
            yield from self.loader
            return
        if self.dataset is not None:
            loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=shuffle, seed=seed,
                                augment=augment)
            loader.set_epoch(epoch)
            yield from loader
            return
        order = np.random.default_rng([seed, epoch]).permutation(self.num_samples) if shuffle else None
        for start in range(0, self.num_samples, self.batch_size):
            index = slice(start, start + self.batch_size) if order is None else order[start:start + self.batch_size]
            x = self.x[index]
            if augment is not None:
                x = np.asarray(augment(x), dtype=x.dtype)
            yield x, (None if self.y is None else self.y[index])


def _as_float(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype == np.uint8:
        return x.astype(np.float32) * np.float32(1 / 255)
    if x.dtype.kind != "f":
        raise ValueError(f"{what}: images must be floating point or uint8, received dtype {x.dtype}")
    return x


# ---------------------------------------------------------------------- loss
def _loss_function(loss):
    from cnnlab.ops.loss import cross_entropy, l1_loss, mse_loss

    if callable(loss):
        return loss
    if loss == "cross_entropy":
        return lambda out, y: cross_entropy(out, y)

    def regression(fn):
        def apply(out, y):
            y = np.asarray(y)
            if y.ndim == 1 and out.ndim == 2 and y.dtype.kind in "iu":
                y = np.eye(out.shape[1], dtype=out.dtype)[y]  # labels → one-hot targets
            return fn(out, y.astype(out.dtype, copy=False))

        return apply

    if loss == "mse":
        return regression(mse_loss)
    if loss == "l1":
        return regression(l1_loss)
    raise ValueError(
        f"fit: unknown loss {loss!r}, expected 'cross_entropy', 'mse', 'l1' or a function (output, y) -> Tensor"
    )


class _Metrics:
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


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------- interrupts
@contextlib.contextmanager
def _stop_on_interrupt(state: TrainingState, verbose: int):
    """During fit, Ctrl-C sets a flag (training stops after the batch); a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if state.interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        state.interrupted = True
        if verbose:
            print("\nInterrupted: stopping at the end of this batch (Ctrl-C again to abort now)",
                  file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


# ---------------------------------------------------------------------- fit
def _check_positive_int(name: str, value, op: str = "fit") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{op}: {name} must be an integer >= 1, received {name}={value!r}")
    return int(value)


def _ensure_built(model, sample_shape) -> None:
    if model.parameters() and getattr(model, "built", True):
        return
    if sample_shape is None:
        raise ValueError("fit: the model has no weights yet and the input shape is unknown; call model.build()")
    model.build(tuple(sample_shape))


def fit(model, train_data, epochs: int = 10, batch_size: int = 64, validation=None, optimizer="adam",
        lr: float = 1e-3, loss="cross_entropy", callbacks=(), augment=None, seed: int = 0, verbose: int = 1,
        *, clip_norm: float | None = None, resume=None) -> History:
    """Train ``model`` by mini-batch gradient descent; return the per-epoch ``History``.

    Args:
        model: a ``cnnlab.nn.Module`` (built, or built here from the data's sample shape).
        train_data: an ArrayDataset (shuffled each epoch, normalised with its mean/std),
            a DataLoader (used as it is) or (x, y) arrays (x float, or uint8 scaled to [0, 1]).
        epochs: total number of epochs (a resumed run continues up to this number).
        batch_size: samples per batch (not used for a DataLoader).
        validation: data evaluated after each epoch (val_loss, val_accuracy), same forms.
        optimizer: 'adam', 'adamw', 'sgd', 'momentum', 'nesterov' (built with ``lr``) or a
            ``cnnlab.optim.Optimizer`` built on ``model.parameters()``.
        lr: learning rate for an optimiser given by name.
        loss: 'cross_entropy' (on the model's logits), 'mse', 'l1' or ``fn(output, y) -> Tensor``.
        callbacks: ``cnnlab.callbacks.Callback`` instances.
        augment: a ``cnnlab.data.Augmentation`` applied to training batches.
        seed: seeds the shuffling; the same seed (and model seed) gives the same run.
        verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        clip_norm: clip the global gradient norm to this value before each step.
        resume: path of a checkpoint written by ``ModelCheckpoint``/``save_checkpoint``:
            continue from its epoch with its weights, optimiser state and history.

    The model is in training mode during the epochs and in evaluation mode for
    validation. Ctrl-C ends training after the current batch (``history.interrupted``);
    a non-finite loss ends it before the bad step (``history.diverged``) with a warning.
    """
    epochs = _check_positive_int("epochs", epochs)
    batch_size = _check_positive_int("batch_size", batch_size)
    if verbose not in (0, 1, 2):
        raise ValueError(f"fit: verbose must be 0, 1 or 2, received verbose={verbose!r}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise ValueError(  # noqa: TRY004 - bad arguments are ValueErrors throughout cnnlab
                f"fit: callbacks must be cnnlab.callbacks.Callback instances, received {cb!r}"
            )
    # Checkpoints are written last at each epoch's end, so they hold the state the other
    # callbacks (a stepped LR schedule, early-stopping counters) leave for the next epoch.
    callbacks.sort(key=lambda cb: isinstance(cb, ModelCheckpoint))
    if clip_norm is not None and not (isinstance(clip_norm, (int, float)) and clip_norm > 0):
        raise ValueError(f"fit: clip_norm must be a number > 0 or None, received clip_norm={clip_norm!r}")
    train = _Batches(train_data, batch_size, "fit: train_data")
    if train.loader is not None and augment is not None:
        raise ValueError("fit: augment cannot be applied to a DataLoader; give the DataLoader augment= instead")
    val = _Batches(validation, batch_size, "fit: validation") if validation is not None else None
    loss_fn = _loss_function(loss)

    _ensure_built(model, train.sample_shape)
    if getattr(model, "class_names", None) is None and train.class_names is not None:
        model.class_names = train.class_names
    if train.normalization is not None:
        model.normalization = train.normalization
    if isinstance(optimizer, optim.Optimizer):
        opt = optimizer
    else:
        opt = optim.get_optimizer(optimizer, model.parameters(), lr)

    state = TrainingState(model, opt, epochs, len(train), val is not None, callbacks, seed, augment,
                          normalization=train.normalization)
    state.validation = val
    checkpoint = load_checkpoint(resume) if resume is not None else None
    if checkpoint is not None:
        restore_training(state, checkpoint)
    history = state.history
    for cb in callbacks:
        cb.on_train_begin(state)
    if checkpoint is not None:
        restore_callbacks(state, checkpoint)
        if verbose:
            print(f"Resuming from {resume} after epoch {state.epochs_done}/{epochs}", file=sys.stderr)

    with _stop_on_interrupt(state, verbose):
        for epoch in range(state.epochs_done, epochs):
            state.epoch = epoch
            for cb in callbacks:
                cb.on_epoch_begin(state, epoch)
            logs = _train_one_epoch(state, train, loss_fn, augment, clip_norm, verbose)
            if logs is None:
                break
            state.epochs_done = epoch + 1
            history.append(logs)
            for cb in callbacks:
                cb.on_epoch_end(state, epoch, logs)
            if state.stop_training:
                break
    for cb in callbacks:
        cb.on_train_end(state)
    model.train(False)
    if history.stop_reason and verbose and not history.diverged:
        print(history.stop_reason, file=sys.stderr)
    return history


def _train_one_epoch(state: TrainingState, train: _Batches, loss_fn, augment, clip_norm, verbose):
    """One pass over the data; the epoch's logs, or None when it did not finish."""
    model, opt, history = state.model, state.optimizer, state.history
    lr = opt.lr
    bar = ProgressBar(state.epoch, state.epochs, len(train), verbose)
    start = time.perf_counter()
    metrics, step = _Metrics(), 0
    logs: dict[str, float] = {}
    model.train(True)
    batches = train.batches(shuffle=True, seed=state.seed, epoch=state.epoch, augment=augment)
    # Overflow is reported once, clearly, by the finiteness checks below instead of NumPy warnings.
    errstate = np.errstate(over="ignore", invalid="ignore")
    errstate.__enter__()
    try:
        for x, y in batches:
            opt.zero_grad()
            model.zero_grad()
            output = model(Tensor(x))
            loss = loss_fn(output, y)
            value = float(loss.data)
            if not math.isfinite(value):
                _diverged(state, f"loss became {value} at epoch {state.epoch + 1}, batch {step + 1}")
                break
            loss.backward()
            if clip_norm is not None:
                optim.clip_grad_norm(model.parameters(), clip_norm)
            opt.step()
            step += 1
            metrics.add(value, output.data, y)
            logs = metrics.logs()
            for cb in state.callbacks:
                cb.on_batch_end(state, step - 1, logs)
            bar.update(step, metrics.seen, logs)
            if state.interrupted:
                state.stop(f"interrupted at epoch {state.epoch + 1}, batch {step}/{len(train)}")
                history.interrupted = True
                break
            if state.stop_training:
                break
    except KeyboardInterrupt:
        state.interrupted = True
        history.interrupted = True
        state.stop(f"interrupted at epoch {state.epoch + 1}, batch {step + 1}/{len(train)}")
    finally:
        batches.close()
        errstate.__exit__(None, None, None)
    finished = step == len(train) and not history.diverged and not history.interrupted
    if finished and not state.weights_finite():
        _diverged(state, f"the weights became NaN or infinite at epoch {state.epoch + 1}")
        finished = False
    if not finished:
        bar.close(step, metrics.seen, logs)
        return None
    if state.has_validation:
        result = _evaluate_batches(model, state.validation, loss_fn)
        logs["val_loss"] = result["loss"]
        if "accuracy" in result:
            logs["val_accuracy"] = result["accuracy"]
        if not math.isfinite(result["loss"]):
            _diverged(state, f"the validation loss became {result['loss']} at epoch {state.epoch + 1}")
            bar.close(step, metrics.seen, logs)
            return None
        model.train(True)
    logs["lr"] = lr
    logs["time"] = time.perf_counter() - start
    bar.close(step, metrics.seen, logs)
    return logs


def _diverged(state: TrainingState, what: str) -> None:
    message = (
        f"Training stopped: {what}. Nothing was saved for this epoch; lower the learning rate "
        "or clip gradients (clip_norm=)."
    )
    state.history.diverged = True
    state.stop(message)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


# --------------------------------------------------------- evaluate/predict
def _forward_batches(model, batches: _Batches):
    """(output ndarray, y) per batch, in evaluation mode without a graph; restores the mode."""
    was_training = getattr(model, "training", False)
    model.train(False)
    try:
        with no_grad():
            for x, y in batches.batches(shuffle=False):
                yield model(Tensor(x)).data, y
    finally:
        model.train(was_training)


def evaluate(model, data, batch_size: int = 256, loss="cross_entropy") -> dict:
    """Mean loss and accuracy of ``model`` on ``data`` (ArrayDataset, DataLoader or (x, y)).

    Returns ``{'loss': float, 'accuracy': float}`` (accuracy only for class labels).
    Runs in evaluation mode under ``no_grad``.
    """
    batch_size = _check_positive_int("batch_size", batch_size, "evaluate")
    return _evaluate_batches(model, _Batches(data, batch_size, "evaluate: data"), _loss_function(loss))


def _evaluate_batches(model, batches: _Batches, loss_fn) -> dict:
    metrics = _Metrics()
    for output, y in _forward_batches(model, batches):
        metrics.add(float(loss_fn(Tensor(output), y).data), output, y)
    return metrics.logs()


def predict(model, x, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K) = softmax of the model's outputs, in evaluation mode.

    ``x``: a float array (N, C, H, W) normalised as in training, an ArrayDataset or a
    DataLoader (their labels are ignored).
    """
    batch_size = _check_positive_int("batch_size", batch_size, "predict")
    batches = _Batches(x, batch_size, "predict: x", labels_required=False)
    outputs = [_softmax(output) for output, _ in _forward_batches(model, batches)]
    return np.concatenate(outputs, axis=0)
