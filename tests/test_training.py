import inspect
import os
import signal
import warnings

import numpy as np
import pytest

from cnnlab import Tensor, loop, nn, no_grad, progress, training
from cnnlab.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
)
from cnnlab.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from cnnlab.data import Augmentation, DataLoader, load_dataset
from cnnlab.io import load_arrays, load_model, save_model
from cnnlab.optim import SGD, Adam, AdamW
from cnnlab.training import History, TrainingState, evaluate, fit, predict


@pytest.fixture(scope="module")
def digits():
    """The 8×8 digits: small enough for many short runs."""
    return load_dataset("digits")


def small_net(seed=0, dropout=0.2, filters=8, units=32):
    layers = [nn.Conv2D(filters, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Dense(units), nn.ReLU(), nn.Dense(10)]
    model = nn.Sequential(*layers, seed=seed)
    return model.build((1, 8, 8))


def weights(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def without_time(history):
    return {k: v for k, v in history.items() if k != "time"}


class OnBatch(Callback):
    """Run ``action(state)`` once, after batch ``batch`` of epoch ``epoch`` (both from 0)."""

    def __init__(self, epoch, batch, action):
        self.epoch, self.batch, self.action = epoch, batch, action

    def on_batch_end(self, state, batch, logs):
        if state.epoch == self.epoch and batch == self.batch:
            self.action(state)


def test_digits_cnn_reaches_95_percent(digits):
    model = small_net(dropout=0.0, filters=16, units=64)
    history = fit(model, digits.train, epochs=6, batch_size=32, validation=digits.test, lr=3e-3, verbose=0)
    assert isinstance(history, History)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert all(len(v) == 6 for v in history.values())
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] >= 0.95
    result = evaluate(model, digits.test)
    assert result["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    assert result["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-5)
    assert model.class_names == digits.train.class_names
    assert model.normalization == {"mean": digits.train.mean, "std": digits.train.std}


def test_progress_bar_shows_keras_style_metrics(digits, capsys):
    model = small_net(dropout=0.0)
    fit(model, digits.train.subset(np.arange(200)), epochs=2, batch_size=50, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/2" in err and "Epoch 2/2" in err
    assert "4/4 - " in err and "\r" not in err  # stderr is not a terminal here: clean lines
    assert "ms/step" in err or "s/step" in err
    assert "img/s" in err
    lines = err.splitlines()
    final = lines.index([line for line in lines if line.startswith("4/4")][-1])
    loss_text = lines[final + 1].split("loss: ")[1].split(" ")[0]
    assert len(loss_text.split(".")[1]) == 4


def test_verbose_2_prints_one_line_per_epoch(digits, capsys):
    fit(small_net(), digits.train.subset(np.arange(100)), epochs=3, batch_size=50, verbose=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 3 and "accuracy:" in lines[0]


def test_fit_accepts_arrays_and_dataloader(digits):
    x = digits.train.normalize(digits.train.images[:256])
    y = digits.train.labels[:256]
    history = fit(small_net(), (x, y), epochs=2, batch_size=64, validation=(x, y), verbose=0)
    assert len(history["val_loss"]) == 2
    loader = DataLoader(digits.train.subset(np.arange(256)), batch_size=64, seed=3)
    history = fit(small_net(), loader, epochs=2, verbose=0)
    assert len(history["loss"]) == 2 and "val_loss" not in history


def test_train_mode_in_epochs_eval_mode_for_validation_and_predict(digits):
    modes = []

    class Spy(nn.Module):
        def forward(self, x):
            modes.append(self.training)
            return x

    model = nn.Sequential(nn.Flatten(), nn.Dense(10), Spy(), seed=0).build((1, 8, 8))
    modes.clear()
    data = digits.train.subset(np.arange(64))
    fit(model, data, epochs=1, batch_size=32, validation=data, verbose=0)
    assert modes == [True, True, False, False]  # two training batches, then two validation batches
    modes.clear()
    model.train()
    probabilities = predict(model, data)
    assert modes == [False] and model.training  # predict restores the mode it found
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_and_evaluate_build_no_graph(digits):
    model = small_net()
    data = digits.test.subset(np.arange(20))
    x, _ = next(iter(DataLoader(data, batch_size=20, shuffle=False)))
    probabilities = predict(model, x)
    assert probabilities.shape == (20, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, predict(model, data), rtol=1e-6)
    assert all(p.grad is None for p in model.parameters())
    accuracy = np.mean(probabilities.argmax(axis=1) == data.labels)
    assert evaluate(model, data)["accuracy"] == pytest.approx(accuracy)


def test_same_seed_gives_identical_runs(digits):
    data = digits.train.subset(np.arange(300))
    runs = []
    for _ in range(2):
        model = small_net(seed=5, dropout=0.3)
        augment = Augmentation(shift=1, rotate=10, seed=2)
        history = fit(model, data, epochs=2, batch_size=32, validation=digits.test, augment=augment, seed=7,
                      verbose=0)
        runs.append((model, history))
    (a, ha), (b, hb) = runs
    assert without_time(ha) == without_time(hb)
    assert_same_weights(a, b)
    other = small_net(seed=5, dropout=0.3)
    fit(other, data, epochs=2, batch_size=32, augment=Augmentation(shift=1, rotate=10, seed=2), seed=8, verbose=0)
    assert not np.array_equal(weights(a)["dense_1.weight"], weights(other)["dense_1.weight"])


def test_resume_gives_the_same_weights_as_training_straight(digits, tmp_path):
    data = digits.train.subset(np.arange(320))
    options = {"batch_size": 32, "validation": digits.test, "optimizer": "adam", "lr": 2e-3, "seed": 1,
               "verbose": 0}

    straight = small_net(seed=3, dropout=0.3)
    h_straight = fit(straight, data, epochs=3, augment=Augmentation(shift=1, seed=4), **options)

    path = tmp_path / "checkpoint.npz"
    first = small_net(seed=3, dropout=0.3)
    fit(first, data, epochs=1, augment=Augmentation(shift=1, seed=4),
        callbacks=[ModelCheckpoint(path, save_best_only=False)], **options)
    assert load_checkpoint(path)["epoch"] == 1

    resumed = small_net(seed=3, dropout=0.3)
    h_resumed = fit(resumed, data, epochs=3, augment=Augmentation(shift=1, seed=4), resume=path,
                    callbacks=[ModelCheckpoint(path, save_best_only=False)], **options)
    assert_same_weights(straight, resumed)
    assert without_time(h_straight) == without_time(h_resumed)
    assert load_checkpoint(path)["epoch"] == 3


def test_checkpoint_contents_and_model_round_trip(digits, tmp_path):
    model = small_net()
    path = tmp_path / "best.npz"
    fit(model, digits.train, epochs=2, batch_size=64, validation=digits.test, optimizer="sgd", lr=0.05,
        callbacks=[ModelCheckpoint(path)], verbose=0)
    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] in (1, 2)
    assert checkpoint["optimizer"]["type"] == "SGD"
    assert len(checkpoint["history"]["loss"]) == checkpoint["epoch"]
    assert checkpoint["normalization"]["std"] == pytest.approx(digits.train.std)
    restored = model_from_checkpoint(path)
    if checkpoint["epoch"] == 2:
        np.testing.assert_array_equal(predict(restored, digits.test), predict(model, digits.test))

    # save_model → load_model gives identical predictions
    save_model(model, tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    np.testing.assert_array_equal(predict(loaded, digits.test), predict(model, digits.test))


def test_resume_refuses_a_different_optimizer(digits, tmp_path):
    path = tmp_path / "c.npz"
    data = digits.train.subset(np.arange(64))
    fit(small_net(), data, epochs=1, optimizer="adam", callbacks=[ModelCheckpoint(path)], verbose=0)
    with pytest.raises(ValueError, match="Adam.*SGD"):
        fit(small_net(), data, epochs=2, optimizer="sgd", resume=path, verbose=0)


def test_nan_loss_stops_training_and_writes_no_garbage(digits, tmp_path):
    path = tmp_path / "checkpoint.npz"

    def poison(state):
        state.model.parameters()[0].data[...] = np.nan

    model = small_net()
    history = fit(model, digits.train, epochs=4, batch_size=64, verbose=0,
                  callbacks=[ModelCheckpoint(path, save_best_only=False), OnBatch(1, 2, poison)])
    assert history.diverged and not history.interrupted
    assert "loss became nan at epoch 2" in history.stop_reason
    assert len(history["loss"]) == 1
    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 1
    assert all(np.isfinite(v).all() for v in checkpoint["model"].values())
    # and a checkpoint is never written from non-finite weights (the model is poisoned now)
    state = TrainingState(model, SGD(model.parameters()), epochs=1, steps_per_epoch=1, has_validation=False,
                          callbacks=[], seed=0)
    with pytest.raises(ValueError, match="NaN"):
        save_checkpoint(tmp_path / "bad.npz", state)
    assert not (tmp_path / "bad.npz").exists()


def test_exploding_learning_rate_is_caught(digits):
    model = small_net(dropout=0.0)
    history = fit(model, digits.train, epochs=3, batch_size=64, optimizer=SGD(model.parameters(), lr=1e12),
                  verbose=0)
    assert history.diverged and history.stop_reason.startswith("Training stopped")
    assert history.epochs < 3


def test_ctrl_c_stops_after_the_batch_and_keeps_the_last_checkpoint(digits, tmp_path):
    path = tmp_path / "checkpoint.npz"
    handler_before = signal.getsignal(signal.SIGINT)
    batches_seen = []

    class Count(Callback):
        def on_batch_end(self, state, batch, logs):
            batches_seen.append((state.epoch, batch))

    def press_ctrl_c(state):
        os.kill(os.getpid(), signal.SIGINT)

    history = fit(small_net(), digits.train, epochs=3, batch_size=64, verbose=0,
                  callbacks=[ModelCheckpoint(path, save_best_only=False), Count(), OnBatch(1, 4, press_ctrl_c)])
    assert history.interrupted and not history.diverged
    assert "interrupted (SIGINT) at epoch 2, batch 5/" in history.stop_reason
    assert history.signal == "SIGINT"
    assert batches_seen[-1] == (1, 4)  # stopped right after the batch that saw Ctrl-C
    assert len(history["loss"]) == 1
    assert load_checkpoint(path)["epoch"] == 1
    arrays, _ = load_arrays(path)
    assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")
    assert signal.getsignal(signal.SIGINT) is handler_before


@pytest.mark.parametrize("kwargs, error, match", [
    ({"epochs": 0}, ValueError, "fit: epochs must be an int >= 1, received epochs=0"),
    ({"epochs": 2.0}, TypeError, "fit: epochs must be an int"),
    ({"batch_size": -1}, ValueError, "batch_size"),
    ({"verbose": 5}, ValueError, "verbose"),
    ({"loss": "hinge"}, ValueError, "fit: loss must be one of .*received loss='hinge'"),
    ({"optimizer": "rmsprop"}, ValueError, "fit: optimizer must be one of"),
    ({"callbacks": [print]}, TypeError, "Callback"),
    ({"clip_norm": -1.0}, ValueError, "clip_norm"),
    ({"clip_norm": "1"}, TypeError, "clip_norm"),
    ({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ({"momentum": 0.9}, ValueError, "momentum applies to 'sgd'"),
    ({"momentum": 1.0, "optimizer": "sgd"}, ValueError, "momentum"),
    ({"patience": -1}, ValueError, "patience"),
    ({"validation_split": 1.0}, ValueError, "validation_split"),
    ({"divergence_threshold": 0.5}, ValueError, "divergence_threshold"),
])
def test_fit_validates_arguments(digits, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(small_net(), digits.train, **{"verbose": 0, **kwargs})


def test_fit_rejects_unknown_data():
    with pytest.raises(TypeError, match="train_data: expected an ArrayDataset"):
        fit(small_net(), "digits", verbose=0)
    with pytest.raises(ValueError, match=r"\(x, y\)"):
        fit(small_net(), (np.zeros((4, 1, 8, 8)), np.zeros(3, dtype=int)), verbose=0)


def test_clip_norm_and_mse_loss_run(digits):
    data = digits.train.subset(np.arange(128))
    history = fit(small_net(), data, epochs=1, loss="mse", clip_norm=1.0, verbose=0)
    assert np.isfinite(history["loss"][0]) and "accuracy" in history
    result = evaluate(small_net(), (np.zeros((2, 1, 8, 8), np.float32), np.array([1, 2])), loss="l1")
    assert result["loss"] > 0 and result["accuracy"] in (0.0, 0.5, 1.0)


def test_predict_with_a_shuffling_loader_keeps_dataset_order_and_its_epoch(digits):
    data = digits.test.subset(np.arange(100))
    loader = DataLoader(data, batch_size=16, shuffle=True, seed=3, augment=Augmentation(shift=2, seed=1))
    loader.set_epoch(5)
    model = small_net()
    expected = predict(model, data, batch_size=16)  # the loader's batch size: the same sums
    np.testing.assert_array_equal(predict(model, loader), expected)
    np.testing.assert_array_equal(predict(model, loader), expected)
    assert loader.epoch == 5
    result = evaluate(model, loader)
    assert result == evaluate(model, data, batch_size=16) and loader.epoch == 5


def test_predict_does_not_apply_softmax_again_after_a_softmax_layer(digits):
    model = nn.Sequential(nn.Flatten(), nn.Dense(10), nn.Softmax(), seed=0).build((1, 8, 8))
    x = digits.test.normalize(digits.test.images[:8])
    with no_grad():
        expected = model(Tensor(x)).data
    np.testing.assert_allclose(predict(model, x), expected, rtol=1e-6)
    assert predict(model, x).max() > 0.2  # softmax of probabilities would squash rows towards 0.1


def test_predict_on_uint8_images_applies_the_model_normalization(digits):
    model = small_net(dropout=0.0)
    fit(model, digits.train, epochs=2, batch_size=64, lr=3e-3, verbose=0)
    images = digits.test.images
    normalised = (images / 255.0 - model.normalization["mean"]) / model.normalization["std"]  # as the CLI
    expected = predict(model, normalised.astype(np.float32))
    np.testing.assert_allclose(predict(model, images), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.predict(images), expected, rtol=1e-4, atol=1e-6)
    accuracy = evaluate(model, digits.test)["accuracy"]
    assert evaluate(model, (images, digits.test.labels))["accuracy"] == pytest.approx(accuracy)
    assert np.mean(model.predict(images).argmax(1) == digits.test.labels) == pytest.approx(accuracy)


def test_nan_stop_message_is_printed_once_without_a_python_warning(digits, capsys):
    def poison(state):
        state.model.parameters()[0].data[...] = np.nan

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = fit(small_net(), digits.train.subset(np.arange(256)), epochs=2, batch_size=64, verbose=1,
                      callbacks=[OnBatch(0, 1, poison)])
    err = capsys.readouterr().err
    assert history.diverged and err.count("Training stopped") == 1
    assert "clip_norm=" in history.stop_reason and "--clip-norm" in history.stop_reason
    assert "checkpoint" not in history.stop_reason.lower()  # it names no file that may not exist


def test_adam_with_lr_1e6_stops_on_the_exploding_loss(digits, tmp_path):
    path = tmp_path / "checkpoint.npz"
    history = fit(small_net(dropout=0.0), digits.train, epochs=3, batch_size=64, lr=1e6, verbose=0,
                  callbacks=[ModelCheckpoint(path, save_best_only=False)])
    assert history.diverged and "exploded" in history.stop_reason
    assert history.epochs == 0 and not path.exists()


def test_divergence_threshold_is_relative_to_the_first_epoch(digits):
    reference = []

    class Explode(Callback):
        def on_epoch_end(self, state, epoch, logs):
            reference.append(logs["loss"])
            for p in state.model.parameters():
                p.data *= 40.0  # the next batch's loss jumps far above the first epoch's

    data = digits.train.subset(np.arange(256))
    history = fit(small_net(dropout=0.0), data, epochs=3, batch_size=64, verbose=0, callbacks=[Explode()])
    assert history.diverged and history.epochs == 1
    assert f"{reference[0]:.4g}" in history.stop_reason and "1000 times" in history.stop_reason
    history = fit(small_net(dropout=0.0), data, epochs=2, batch_size=64, verbose=0, callbacks=[Explode()],
                  divergence_threshold=None)
    assert not history.diverged or "exploded" not in history.stop_reason


def test_batch_norm_model_with_a_single_image_last_batch_merges_it(capsys):
    model = nn.Sequential(nn.Flatten(), nn.Dense(6), nn.BatchNorm(), nn.ReLU(), nn.Dense(3),
                          seed=0).build((1, 2, 2))
    x = np.random.default_rng(0).standard_normal((9, 1, 2, 2)).astype(np.float32)
    y = np.arange(9) % 3
    seen = []

    class Sizes(Callback):
        def on_batch_end(self, state, batch, logs):
            seen.append(state.steps_per_epoch)

    history = fit(model, (x, y), epochs=2, batch_size=8, verbose=1, callbacks=[Sizes()])
    assert history.epochs == 2 and seen == [1, 1]
    err = capsys.readouterr().err
    assert err.count("1 image") == 1 and "joins the batch before" in err
    plain = nn.Sequential(nn.Flatten(), nn.Dense(3), seed=0).build((1, 2, 2))
    seen.clear()
    fit(plain, (x, y), epochs=1, batch_size=8, verbose=0, callbacks=[Sizes()])
    assert seen == [2, 2]  # without batch norm the batches are left as they are


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, state, epoch, logs):
        state.stop("stopped for the test")


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "step"])
def test_scheduled_run_2_epochs_straight_equals_1_plus_1_resumed(digits, tmp_path, schedule):
    data = digits.train.subset(np.arange(256))
    options = {"batch_size": 32, "lr": 3e-3, "seed": 2, "verbose": 0}
    path = tmp_path / "c.npz"

    def callbacks():
        return [ModelCheckpoint(path, save_best_only=False), LearningRateScheduler(schedule)]

    straight = small_net(seed=1)
    h_straight = fit(straight, data, epochs=2, callbacks=callbacks(), **options)
    first = small_net(seed=1)
    fit(first, data, epochs=2, callbacks=[*callbacks(), StopAfterFirstEpoch()], **options)
    assert load_checkpoint(path)["epoch"] == 1
    resumed = small_net(seed=1)
    h_resumed = fit(resumed, data, epochs=2, callbacks=callbacks(), resume=path, **options)
    assert_same_weights(straight, resumed)
    assert without_time(h_straight) == without_time(h_resumed)


def test_resume_extending_a_cosine_schedule_continues_as_planned_for_the_new_total(digits, tmp_path, capsys):
    data = digits.train.subset(np.arange(256))
    path = tmp_path / "c.npz"
    fit(small_net(), data, epochs=1, batch_size=32, lr=0.01, verbose=0,
        callbacks=[ModelCheckpoint(path, save_best_only=False), LearningRateScheduler("cosine")])
    history = fit(small_net(), data, epochs=2, batch_size=32, lr=0.01, verbose=1, resume=path,
                  callbacks=[ModelCheckpoint(path, save_best_only=False), LearningRateScheduler("cosine")])
    assert history["lr"][0] == 0.01
    # a cosine over 2 × 8 steps, at step 8: half the base rate
    assert history["lr"][1] == pytest.approx(0.005, rel=1e-12)
    assert "planned for 1 epochs; the learning-rate schedule now continues as if planned for 2" in (
        capsys.readouterr().err)


def test_resume_with_nothing_left_to_do_says_so(digits, tmp_path):
    data = digits.train.subset(np.arange(64))
    path = tmp_path / "c.npz"
    fit(small_net(), data, epochs=2, callbacks=[ModelCheckpoint(path, save_best_only=False)], verbose=0)
    model = small_net()
    history = fit(model, data, epochs=2, resume=path, verbose=0,
                  callbacks=[ModelCheckpoint(path, save_best_only=False)])
    assert history.epochs == 2 and history.stop_reason.startswith("nothing to do")
    assert_same_weights(model, model_from_checkpoint(path))


def test_a_long_epoch_is_announced_from_the_first_batches(digits, monkeypatch, capsys):
    ticks = iter(range(0, 10_000, 100))
    monkeypatch.setattr(loop, "_clock", lambda: next(ticks))  # 100 s between the two readings
    model = small_net()
    fit(model, digits.train, epochs=1, batch_size=64, verbose=1)  # 23 batches: 23 × 100 / 3 s
    err = capsys.readouterr().err
    assert "estimate: 13 min per epoch, checkpoint 0 MB" in err


def test_a_large_checkpoint_is_announced(digits, monkeypatch, capsys):
    model = small_net()
    data = digits.train.subset(np.arange(320))
    fit(model, data, epochs=1, batch_size=64, verbose=1)
    assert "estimate:" not in capsys.readouterr().err  # a fast epoch and a small file: nothing to say
    monkeypatch.setattr(progress, "ESTIMATE_CHECKPOINT_BYTES", 1000)
    fit(model, data, epochs=1, batch_size=64, verbose=1)
    expected = progress.checkpoint_bytes(model, Adam(model.parameters()))
    assert f"checkpoint {expected / 1e6:.0f} MB" in capsys.readouterr().err


def test_checkpoint_bytes_counts_parameters_times_optimizer_slots():
    model = nn.Sequential(nn.Flatten(), nn.Dense(1000), nn.BatchNorm(), nn.Dense(10), seed=0).build((1, 10, 10))
    params = sum(p.data.size for p in model.parameters())
    buffers = 2 * 1000 + sum(np.asarray(v).size for k, v in model.state_dict().items() if "num_batches" in k)
    assert progress.checkpoint_bytes(model, Adam(model.parameters())) == 4 * (3 * params + buffers)
    assert progress.checkpoint_bytes(model, SGD(model.parameters())) == 4 * (params + buffers)
    assert progress.estimate_line(11_520, 683e6) == "estimate: 3 h 12 min per epoch, checkpoint 683 MB"
    assert progress.estimate_line(60, 1e6) is None


def test_module_methods_show_the_real_signature_and_documentation():
    for name in ("fit", "evaluate", "predict"):
        method = getattr(nn.Module, name)
        function = getattr(training, name)
        ours = list(inspect.signature(method).parameters.values())[1:]
        theirs = list(inspect.signature(function).parameters.values())[1:]
        assert [(p.name, p.kind, p.default) for p in ours] == [(p.name, p.kind, p.default) for p in theirs]
        assert method.__doc__ and len(method.__doc__.strip()) > 40


def test_validation_split_is_seeded_and_reported(digits):
    data = digits.train.subset(np.arange(200))
    a = fit(small_net(), data, epochs=1, batch_size=50, validation_split=0.25, seed=3, verbose=0)
    b = fit(small_net(), data, epochs=1, batch_size=50, validation_split=0.25, seed=3, verbose=0)
    c = fit(small_net(), data, epochs=1, batch_size=50, validation_split=0.25, seed=4, verbose=0)
    assert "val_loss" in a and a["val_loss"] == b["val_loss"] and a["val_loss"] != c["val_loss"]
    with pytest.raises(ValueError, match="not both"):
        fit(small_net(), data, validation=data, validation_split=0.2, verbose=0)


def test_weight_decay_momentum_and_patience_reach_the_optimizer_and_callbacks(digits):
    seen = {}

    class Look(Callback):
        def on_train_begin(self, state):
            seen["optimizer"] = state.optimizer
            seen["callbacks"] = state.callbacks

    data = digits.train.subset(np.arange(64))
    fit(small_net(), data, epochs=1, optimizer="sgd", momentum=0.5, weight_decay=1e-4, patience=2,
        callbacks=[Look()], verbose=0)
    opt = seen["optimizer"]
    assert isinstance(opt, SGD) and opt.momentum == 0.5 and opt.weight_decay == 1e-4 and not opt.nesterov
    assert isinstance(seen["callbacks"][-1], EarlyStopping) and seen["callbacks"][-1].patience == 2
    fit(small_net(), data, epochs=1, optimizer="nesterov", callbacks=[Look()], verbose=0)
    assert seen["optimizer"].nesterov and seen["optimizer"].momentum == 0.9
    fit(small_net(), data, epochs=1, optimizer="adamw", weight_decay=0.2, callbacks=[Look()], verbose=0)
    assert isinstance(seen["optimizer"], AdamW) and seen["optimizer"].weight_decay == 0.2


def test_patience_stops_training_when_the_loss_stops_improving(digits):
    data = digits.train.subset(np.arange(64))
    history = fit(small_net(dropout=0.0), data, epochs=30, lr=0.0, optimizer="sgd", patience=1, verbose=0)
    # lr 0: the loss stays put (up to rounding), so patience 1 ends the run after a few epochs
    assert 3 <= history.epochs < 30 and history.stop_reason.startswith("early stopping")
