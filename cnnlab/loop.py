"""The training loop behind ``fit``: epochs, batches, and the checks that stop them.

Each epoch: ``on_epoch_begin``, the batches (forward, loss, divergence check, backward,
optional clipping, step, ``on_batch_end``, progress, signal check), validation, then every
callback's ``on_epoch_end`` and, as a separate later step, every ``on_checkpoint``.

Data-parallel (``Run.parallel``, a group of ranks such as ``cnnlab.distributed.MPIGroup``):
each rank runs its part of every step's batch (``Batches.parts``) under ``batch_part``, and
backpropagates its share n_r/n of the batch's mean loss, so that the gradients summed over
the ranks (``parallel.gradient_sum``, overlapped with the backward, with the step's metrics
and stop requests in the same reduction) are those of the whole batch's mean loss, however unevenly it was split. Then the
divergence check reads the batch's loss (the same on every rank, so all stop together), and
every rank takes the same step. Validation splits the samples across the ranks and adds up.
An epoch that did not finish (a signal, a diverging loss) returns no logs and is never
checkpointed. The reasons are written to ``history.stop_reason`` (see ``cnnlab.training``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from cnnlab import optim, threads
from cnnlab.nn.batch_part import batch_part
from cnnlab.progress import ProgressBar, checkpoint_bytes, estimate_line
from cnnlab.scoring import Metrics, batch_metrics
from cnnlab.tensor import Tensor

__all__ = ["DIVERGENCE_THRESHOLD", "Run", "run_epochs"]

DIVERGENCE_THRESHOLD = 1e3
#: batches timed for the estimate, after the first one (which includes compilation)
ESTIMATE_BATCHES = 3
_clock = time.perf_counter

class Run:
    """fit's settings for the loop: the data, the loss, and the stop and report options."""

    def __init__(self, state, train, validation, loss_fn, augment, clip_norm, verbose,
                 min_share, divergence_threshold, stop_request, parallel=None):
        self.state, self.train, self.validation = state, train, validation
        self.loss_fn, self.augment, self.clip_norm = loss_fn, augment, clip_norm
        self.verbose = verbose
        self.min_share = min_share
        self.parallel = parallel
        self.rank, self.ranks = (0, 1) if parallel is None else (parallel.rank, parallel.size)
        #: data-parallel: whether some rank asked to stop in the last step's reduction (all
        #: ranks stop after the same batch; a rank's own request waits for the next reduction)
        self.stop_agreed = False
        self.divergence_threshold = divergence_threshold
        self.stop_request = stop_request
        self.first_batch_loss: float | None = None
        self.estimate_start = 0.0

    def reference_loss(self) -> float | None:
        losses = self.state.history.get("loss")
        return losses[0] if losses else self.first_batch_loss


def run_epochs(run: Run) -> None:
    """The epochs, then ``on_train_end``; each epoch ends with the callbacks, then checkpoints."""
    state = run.state
    for epoch in range(state.epochs_done, state.epochs):
        if state.stop_training or _signalled(run, 0):
            break
        state.epoch = epoch
        for cb in state.callbacks:
            cb.on_epoch_begin(state, epoch)
        logs = _train_one_epoch(run)
        if logs is None:
            break
        state.epochs_done = epoch + 1
        state.history.append(logs)
        threads.recheck()  # this epoch's foreign load sets the next one's BLAS threads
        for cb in state.callbacks:
            cb.on_epoch_end(state, epoch, logs)
        for cb in state.callbacks:
            cb.on_checkpoint(state, epoch, logs)
    for cb in state.callbacks:
        cb.on_train_end(state)


def _signalled(run: Run, step: int) -> bool:
    """Whether a signal asked to stop; records it in the state and history."""
    request, state = run.stop_request, run.state
    if not (request.requested if run.parallel is None else run.stop_agreed):
        return False
    if step:
        where = f"at epoch {state.epoch + 1}, batch {step}/{state.steps_per_epoch}"
    elif state.epochs_done:
        where = f"before epoch {state.epochs_done + 1}"
    else:
        where = "before training started"
    state.interrupted = state.history.interrupted = True
    name = request.signal_name or "a signal to another rank"
    state.history.signal = name
    state.stop(f"interrupted ({name}) {where}")
    return True


def _train_one_epoch(run: Run):
    """One pass over the data; the epoch's logs, or None when it did not finish."""
    state = run.state
    model, opt, history = state.model, state.optimizer, state.history
    lr = opt.lr
    bar = ProgressBar(state.epoch, state.epochs, state.steps_per_epoch, run.verbose)
    start = time.perf_counter()
    metrics, step = Metrics(), 0
    logs: dict[str, float] = {}
    model.train(True)
    batches = run.train.parts(state.seed, state.epoch, run.augment, run.rank, run.ranks,
                              run.min_share)
    # Overflow is reported once, clearly, by the divergence checks instead of NumPy warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for x, y, (offset, total) in batches:
                opt.zero_grad()
                model.zero_grad()
                if run.parallel is None:
                    output = model(Tensor(x))
                    loss = run.loss_fn(output, y)
                    value = float(loss.data)
                    if _loss_diverged(run, value, step):
                        break
                    loss.backward()
                    metrics.add(value, output.data, y)
                else:
                    value = _parallel_batch(run, metrics, x, y, offset, total)
                    if _loss_diverged(run, value, step):
                        break
                if run.clip_norm is not None:
                    optim.clip_grad_norm(model.parameters(), run.clip_norm)
                opt.step()
                step += 1
                logs = metrics.logs()
                for cb in state.callbacks:
                    cb.on_batch_end(state, step - 1, logs)
                bar.update(step, metrics.seen, logs)
                _maybe_estimate(run, step, bar)
                if _signalled(run, step) or state.stop_training:
                    break
        except KeyboardInterrupt:  # a second Ctrl-C: abort the batch, still stop cleanly
            state.interrupted = history.interrupted = True
            history.signal = "SIGINT"
            state.stop(f"interrupted (SIGINT twice) at epoch {state.epoch + 1}, batch {step + 1}")
        finally:
            batches.close()
        stopped = history.diverged or history.interrupted
        finished = step == state.steps_per_epoch and not stopped
        if finished and not state.weights_finite():
            _diverged(state, f"the weights became NaN or infinite at epoch {state.epoch + 1}")
            finished = False
        if finished and run.validation is not None:
            finished = _validate(run, logs)
    if not finished:
        bar.close(step, metrics.seen, logs)
        return None
    logs["lr"] = lr
    logs["time"] = time.perf_counter() - start
    bar.close(step, metrics.seen, logs)
    return logs


def _parallel_batch(run: Run, metrics: Metrics, x, y, offset: int, total: int) -> float:
    """Forward and backward of this rank's rows of a batch, gradients summed over the ranks;
    the batch's mean loss (the same on every rank). ``metrics`` gets the whole batch's counts."""
    model = run.state.model
    with batch_part(offset, total):
        output = model(Tensor(x))
        loss = run.loss_fn(output, y)
    # ∂(n_r/n · L_r) summed over the ranks is ∂ of the batch's mean loss; each bucket of
    # gradients is summed as soon as the backward completes it
    gradients = run.parallel.gradient_sum(model.parameters())
    loss.backward(np.full_like(loss.data, len(x) / total), leaf_done=gradients.leaf_done)
    local = Metrics()
    local.add(float(loss.data), output.data, y)
    stop = run.stop_request.requested
    counts = gradients.finish(np.append(local.counts(), stop))
    run.stop_agreed = bool(counts[-1])
    metrics.add_counts(counts[:-1])
    return counts[0] / counts[1]


def _validate(run: Run, logs: dict) -> bool:
    """Add val_loss (and val_accuracy) to ``logs``; False when the loss is not finite."""
    model, validation = run.state.model, run.validation
    if run.parallel is None:
        result = batch_metrics(model, validation, run.loss_fn).logs()
    else:  # each rank evaluates its share of the samples
        share = validation.part(run.rank, run.ranks)
        counts = run.parallel.sum(batch_metrics(model, share, run.loss_fn).counts())
        metrics = Metrics()
        metrics.add_counts(counts)
        result = metrics.logs()
    logs["val_loss"] = result["loss"]
    if "accuracy" in result:
        logs["val_accuracy"] = result["accuracy"]
    run.state.model.train(True)
    if not math.isfinite(result["loss"]):
        where = f"at epoch {run.state.epoch + 1}"
        _diverged(run.state, f"the validation loss became {result['loss']} {where}")
        return False
    return True


def _loss_diverged(run: Run, value: float, step: int) -> bool:
    state = run.state
    where = f"at epoch {state.epoch + 1}, batch {step + 1}"
    if not math.isfinite(value):
        _diverged(state, f"the loss became {value} {where}")
        return True
    if run.first_batch_loss is None:
        run.first_batch_loss = value
    reference = run.reference_loss()
    if run.divergence_threshold is None or reference is None or reference <= 0:
        return False
    if value > run.divergence_threshold * reference:
        _diverged(state, f"the loss exploded to {value:.4g} {where}, more than "
                         f"{run.divergence_threshold:g} times the first epoch's {reference:.4g}")
        return True
    return False


def _diverged(state, what: str) -> None:
    state.history.diverged = True
    state.stop(f"Training stopped: {what}. This epoch was not saved. Lower the learning rate, "
               "or clip the gradient norm (fit's clip_norm=, cnnlab train's --clip-norm).")


def _maybe_estimate(run: Run, step: int, bar: ProgressBar) -> None:
    """After the first batches of the run, estimate the epoch's time and print it if long."""
    state = run.state
    if state.estimate is not None:
        return
    if step == 1:
        run.estimate_start = _clock()
    timed = min(ESTIMATE_BATCHES, state.steps_per_epoch - 1)
    if timed < 1 or step != 1 + timed:
        return
    per_batch = (_clock() - run.estimate_start) / timed
    state.estimate = {"epoch_seconds": per_batch * state.steps_per_epoch,
                      "checkpoint_bytes": checkpoint_bytes(state.model, state.optimizer)}
    line = estimate_line(state.estimate["epoch_seconds"], state.estimate["checkpoint_bytes"])
    if line and run.verbose:
        bar.message(line)


