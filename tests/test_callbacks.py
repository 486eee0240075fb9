import math

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
)
from cnnlab.checkpoint import load_checkpoint
from cnnlab.data import load_dataset
from cnnlab.optim import SGD, StepLR
from cnnlab.training import fit


@pytest.fixture(scope="module")
def data():
    splits = load_dataset("digits")
    return splits.train.subset(np.arange(256)), splits.test.subset(np.arange(100))


def tiny_net(seed=0):
    return nn.Sequential(nn.Flatten(), nn.Dense(16), nn.ReLU(), nn.Dense(10), seed=seed).build((1, 8, 8))


class Record(Callback):
    def __init__(self):
        self.events = []
        self.lrs = []

    def on_train_begin(self, state):
        self.events.append("train_begin")

    def on_epoch_begin(self, state, epoch):
        self.events.append(f"epoch_begin {epoch}")

    def on_batch_end(self, state, batch, logs):
        self.lrs.append(state.optimizer.lr)
        assert set(logs) <= {"loss", "accuracy"}

    def on_epoch_end(self, state, epoch, logs):
        self.events.append(f"epoch_end {epoch}")

    def on_train_end(self, state):
        self.events.append("train_end")


def test_hooks_are_called_in_order(data):
    train, _ = data
    record = Record()
    fit(tiny_net(), train, epochs=2, batch_size=128, callbacks=[record], verbose=0)
    assert record.events == ["train_begin", "epoch_begin 0", "epoch_end 0", "epoch_begin 1", "epoch_end 1",
                             "train_end"]
    assert len(record.lrs) == 4


def test_early_stopping_stops_after_patience(data):
    train, test = data
    # min_delta so large that nothing after the first epoch counts as an improvement
    stopper = EarlyStopping(patience=1, min_delta=100.0)
    history = fit(tiny_net(), train, epochs=10, batch_size=64, validation=test, callbacks=[stopper], verbose=0)
    assert stopper.monitor == "val_loss" and stopper.mode == "min"
    assert len(history["loss"]) == 3  # best at epoch 1, then two epochs without improvement
    assert stopper.stopped_epoch == 2
    assert "early stopping" in history.stop_reason and not history.diverged


def test_early_stopping_restores_best_weights(data):
    train, test = data

    class Worsen(Callback):
        """Make every epoch after the first one worse by scrambling the weights."""

        def on_epoch_end(self, state, epoch, logs):
            if epoch == 0:
                self.best = {k: v.copy() for k, v in state.model.state_dict().items()}

    worsen = Worsen()
    stopper = EarlyStopping(monitor="val_accuracy", patience=0, min_delta=1.0, restore_best_weights=True)
    model = tiny_net()
    fit(model, train, epochs=5, batch_size=64, validation=test, callbacks=[worsen, stopper], verbose=0)
    assert stopper.mode == "max"
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, worsen.best[name])


def test_early_stopping_rejects_unknown_monitor(data):
    train, _ = data
    with pytest.raises(ValueError, match="val_loss.*available"):
        fit(tiny_net(), train, epochs=1, callbacks=[EarlyStopping(monitor="val_loss")], verbose=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match="EarlyStopping: patience must be an int"):
        EarlyStopping(patience=2.5)
    with pytest.raises(TypeError, match="EarlyStopping: min_delta must be a number"):
        EarlyStopping(min_delta="0.1")


def test_save_best_only_writes_only_improvements(data, tmp_path):
    train, test = data
    path = tmp_path / "best.npz"
    checkpoint = ModelCheckpoint(path, monitor="val_accuracy")
    history = fit(tiny_net(), train, epochs=4, batch_size=64, validation=test, lr=0.01, callbacks=[checkpoint],
                  verbose=0)
    accuracies = history["val_accuracy"]
    best_epoch = int(np.argmax(accuracies)) + 1  # first epoch reaching the maximum
    saved = load_checkpoint(path)
    assert saved["epoch"] == best_epoch == checkpoint.last_saved_epoch
    assert checkpoint.best == pytest.approx(max(accuracies))
    assert saved["history"]["val_accuracy"] == accuracies[:best_epoch]


def test_step_schedule_by_name_changes_lr_per_epoch(data):
    train, _ = data
    history = fit(tiny_net(), train, epochs=4, batch_size=128, optimizer="sgd", lr=0.1,
                  callbacks=[LearningRateScheduler("step", step_size=2, gamma=0.5)], verbose=0)
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_cosine_by_name_steps_per_batch(data):
    train, _ = data
    record = Record()
    fit(tiny_net(), train, epochs=2, batch_size=64, lr=0.01, callbacks=[LearningRateScheduler("cosine"), record],
        verbose=0)
    total = 2 * 4
    # record sees the lr after the scheduler stepped for that batch
    expected = [0.01 * (1 + math.cos(math.pi * t / total)) / 2 for t in range(1, total + 1)]
    assert record.lrs == pytest.approx(expected)
    assert record.lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_onecycle_by_name_peaks_at_the_optimizer_lr(data):
    train, _ = data
    record = Record()
    fit(tiny_net(), train, epochs=3, batch_size=64, lr=0.02, callbacks=[LearningRateScheduler("onecycle"), record],
        verbose=0)
    assert max(record.lrs) == pytest.approx(0.02, rel=0.05)
    assert record.lrs[-1] < 0.02 / 25


def test_function_and_schedule_object(data):
    train, _ = data
    history = fit(tiny_net(), train, epochs=3, batch_size=128, lr=0.1, optimizer="sgd",
                  callbacks=[LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))], verbose=0)
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])

    model = tiny_net()
    optimizer = SGD(model.parameters(), lr=0.2)
    history = fit(model, train, epochs=3, batch_size=128, optimizer=optimizer,
                  callbacks=[LearningRateScheduler(StepLR(optimizer, step_size=1, gamma=0.1))], verbose=0)
    assert history["lr"] == pytest.approx([0.2, 0.02, 0.002])


def test_scheduler_validates():
    with pytest.raises(ValueError, match="schedule must be one of .* received schedule='linear'"):
        LearningRateScheduler("linear")
    with pytest.raises(TypeError, match="a schedule name, a Schedule or a function"):
        LearningRateScheduler(3)


def test_scheduler_state_survives_resume(data, tmp_path):
    train, _ = data
    path = tmp_path / "c.npz"

    def run(epochs, resume=None):
        return fit(tiny_net(), train, epochs=epochs, batch_size=64, lr=0.05, resume=resume, verbose=0,
                   callbacks=[ModelCheckpoint(path, save_best_only=False), LearningRateScheduler("step",
                                                                                             step_size=1)])

    straight = run(3)["lr"]
    run(1)
    resumed = run(3, resume=path)["lr"]
    # The resumed run rebuilds the 'step' schedule for 3 epochs (step_size 1) and restores its position.
    assert resumed == pytest.approx(straight)


def test_callbacks_run_in_the_order_given_and_checkpoints_are_a_separate_later_step(
    data, tmp_path
):
    train, _ = data
    calls = []

    class Named(Callback):
        def __init__(self, name):
            self.name = name

        def on_epoch_end(self, state, epoch, logs):
            calls.append(f"{self.name}.on_epoch_end")

        def on_checkpoint(self, state, epoch, logs):
            calls.append(f"{self.name}.on_checkpoint")

    path = tmp_path / "c.npz"
    checkpoint = ModelCheckpoint(path, save_best_only=False)
    schedule = LearningRateScheduler("step", step_size=1, gamma=0.5)
    fit(tiny_net(), train, epochs=1, batch_size=128, lr=0.1, optimizer="sgd", verbose=0,
        callbacks=[checkpoint, Named("a"), schedule, Named("b")])
    assert calls == ["a.on_epoch_end", "b.on_epoch_end", "a.on_checkpoint", "b.on_checkpoint"]
    saved = load_checkpoint(path)
    # the checkpoint comes first in the list, yet it holds the schedule already stepped
    assert [entry["class"] for entry in saved["callbacks"]] == [
        "ModelCheckpoint", "Named", "LearningRateScheduler", "Named"]
    assert saved["callbacks"][2]["state"]["last_step"] == 1
    assert saved["optimizer"]["lr"] == pytest.approx(0.05)
