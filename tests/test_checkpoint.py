"""cnnlab.checkpoint: round trips; every crafted field refused, naming the file and the field."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cnnlab import io, nn
from cnnlab.callbacks import EarlyStopping, LearningRateScheduler, ModelCheckpoint
from cnnlab.checkpoint import (
    load_checkpoint,
    model_from_checkpoint,
    restore_training,
    save_checkpoint,
)
from cnnlab.data.augment import Augmentation
from cnnlab.errors import CnnlabError, FileFormatError
from cnnlab.training import fit


def small_net(seed=0):
    return nn.Sequential(
        nn.Conv2D(2, 3, activation="relu"), nn.Dropout(0.5), nn.Flatten(), nn.Dense(3), seed=seed
    ).build((1, 8, 8))


def small_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((32, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 32)


def train(path, epochs, resume=None, optimizer="adam"):
    model = small_net()
    callbacks = [
        ModelCheckpoint(path, save_best_only=False),
        EarlyStopping(patience=5),
        LearningRateScheduler("step"),
    ]
    fit(
        model,
        small_data(),
        epochs=epochs,
        batch_size=8,
        optimizer=optimizer,
        callbacks=callbacks,
        augment=Augmentation(shift=1, seed=2),
        verbose=0,
        resume=resume,
    )
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "checkpoint.npz"
    train(path, 1)
    return path


@pytest.fixture
def checkpoint(saved, tmp_path):
    path = tmp_path / "checkpoint.npz"
    shutil.copy(saved, path)
    return path


def _rewrite(path, edit_metadata=None, edit_arrays=None):
    arrays, metadata = io.load_arrays(path)
    if edit_metadata:
        edit_metadata(metadata)
    if edit_arrays:
        edit_arrays(arrays)
    io.save_arrays(path, arrays, metadata)


def test_checkpoint_holds_every_part_of_the_training_state(checkpoint):
    loaded = load_checkpoint(checkpoint)
    assert loaded["epoch"] == 1 and loaded["epochs"] == 1
    assert sorted(loaded["rng"]) == ["augment.rng", "model.dropout._generator"]
    assert loaded["optimizer"]["type"] == "Adam"
    assert sorted(loaded["optimizer"]["state"]) == [
        f"{i}.{k}" for i in range(4) for k in ("exp_avg", "exp_avg_sq")
    ]
    assert sorted(entry["class"] for entry in loaded["callbacks"]) == [
        "EarlyStopping",
        "LearningRateScheduler",
        "ModelCheckpoint",
    ]
    assert set(loaded["history"]) >= {"loss", "accuracy", "lr"}
    model = model_from_checkpoint(checkpoint)
    for name, value in loaded["model"].items():
        np.testing.assert_array_equal(model.state_dict()[name], value)


def test_resume_restores_the_generators_exactly(checkpoint, tmp_path):
    straight = train(tmp_path / "straight.npz", 2)
    resumed = train(checkpoint, 2, resume=checkpoint)
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value)


def test_restore_training_puts_back_generator_states(checkpoint):
    from cnnlab.training import TrainingState

    loaded = load_checkpoint(checkpoint)
    model = small_net()
    optimizer = __import__("cnnlab.optim", fromlist=["Adam"]).Adam(model.parameters())
    augment = Augmentation(shift=1, seed=99)
    state = TrainingState(model, optimizer, 2, 4, False, [], 0, augment)
    restore_training(state, loaded)
    assert augment.rng.bit_generator.state == loaded["rng"]["augment.rng"]
    assert (
        model.dropout._generator.bit_generator.state == loaded["rng"]["model.dropout._generator"]
    )
    assert state.epochs_done == 1


def test_checkpoint_bit_generator_name_cannot_run_code(checkpoint, tmp_path, monkeypatch):
    """Issue 10's attack: bit_generator "test" ran NumPy's tests, which load ./conftest.py."""
    attack = tmp_path / "cwd"
    attack.mkdir()
    marker = attack / "pwned"
    (attack / "conftest.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    _rewrite(
        checkpoint, lambda m: m["rng"]["model.dropout._generator"].update(bit_generator="test")
    )
    monkeypatch.chdir(attack)
    with pytest.raises(
        FileFormatError, match=r"checkpoint.npz: .*bit_generator must be one of 'PCG64'"
    ):
        load_checkpoint(checkpoint)
    with pytest.raises(FileFormatError, match="checkpoint.npz"):
        train(tmp_path / "other.npz", 2, resume=checkpoint)
    assert not marker.exists()


def test_checkpoint_generator_cannot_replace_a_layer_attribute(checkpoint):
    def add_stream(metadata):
        metadata["rng"]["model.dense.weight"] = metadata["rng"]["model.dropout._generator"]

    _rewrite(checkpoint, add_stream)
    model = small_net()
    weight = model.dense.weight
    with pytest.raises(
        FileFormatError, match="random stream 'model.dense.weight' is not one this model declares"
    ):
        fit(model, small_data(), epochs=2, batch_size=8, verbose=0, resume=checkpoint)
    assert model.dense.weight is weight


def _set_history(metadata, value):
    metadata["history"] = value


def _optimizer(**fields):
    return lambda m: m["optimizer"].update(fields)


def _callbacks(value):
    return lambda m: m.update(callbacks=value)


def _rng(**fields):
    return lambda m: m["rng"]["augment.rng"].update(fields)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(epoch=-1), "epoch must be an int in"),
        (lambda m: m.update(epoch=10**30), "epoch must be an int in"),
        (lambda m: m.update(epoch=1.5), "epoch must be an int"),
        (lambda m: m.update(epoch="1"), "epoch must be an int"),
        (lambda m: m.update(epochs=0), "epochs must be an int in"),
        (lambda m: m.update(seed="zero"), "seed must be an int"),
        (lambda m: _set_history(m, [1, 2]), "history must be an object"),
        (lambda m: _set_history(m, {"loss": "low"}), r"history\['loss'\] must be a list"),
        (
            lambda m: _set_history(m, {"loss": [0.5, "x"]}),
            r"history\['loss'\] item must be a number",
        ),
        (lambda m: m.update(optimizer=[]), "optimizer must be an object"),
        (_optimizer(type="Evil"), "optimizer.type must be one of"),
        (_optimizer(lr="fast"), "optimizer.lr must be a number"),
        (_optimizer(lr=float("nan")), "optimizer.lr must be a finite"),
        (_optimizer(evil=1), r"unknown hyperparameters \['evil'\]"),
        (_optimizer(momentum=0.9), r"unknown hyperparameters \['momentum'\]"),
        (_optimizer(betas=[0.9]), r"len\(optimizer.betas\) must be one of 2"),
        (_optimizer(betas=[0.9, 1.5]), r"optimizer.betas\[1\] must be"),
        (_optimizer(eps=0), "optimizer.eps must be"),
        (_optimizer(step_count=-3), "optimizer.step_count must be"),
        (_callbacks("all"), "callbacks must be a list"),
        (_callbacks(["EarlyStopping"]), r"callbacks\[0\] must be an object"),
        (_callbacks([{"class": 1}]), r"callbacks\[0\].class must be a class name"),
        (_callbacks([{"class": "EarlyStopping", "state": {"wait": -1}}]), "wait must be an int"),
        (_callbacks([{"class": "EarlyStopping", "state": {"mode": "up"}}]), "mode must be one of"),
        (
            _callbacks([{"class": "LearningRateScheduler", "state": {"last_step": "x"}}]),
            "last_step must be",
        ),
        (lambda m: m.update(rng=[]), "rng must be an object"),
        (_rng(bit_generator="MT19937"), "bit_generator must be one of 'PCG64'"),
        (_rng(has_uint32=2), "has_uint32 must be an int in"),
        (_rng(uinteger=-1), "uinteger must be an int in"),
        (_rng(state={"state": 2**200, "inc": 1}), r"state.state must be an int in"),
        (_rng(state={"state": 1}), "state has fields"),
        (_rng(extra=1), "has fields"),
        (lambda m: m.update(version=2), "version must be one of 1"),
        (lambda m: m.update(model_config="Sequential"), "expected a dict with keys 'class_name'"),
        (lambda m: m.update(input_shape=[1, 8, -0.0]), "input_shape must be a list"),
        (lambda m: m.update(normalization={"mean": 0.0, "std": 0.0}), r"\['std'\] must be > 0"),
    ],
)
def test_crafted_checkpoint_field_refused_naming_file_and_field(checkpoint, edit, message):
    _rewrite(checkpoint, edit)
    with pytest.raises(FileFormatError, match=f"checkpoint.npz: .*{message}"):
        load_checkpoint(checkpoint)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda a: a.update({"optimizer.0.exp_avg": np.zeros((7, 7), np.float32)}),
            "does not fit the model",
        ),
        (
            lambda a: a.update({"optimizer.9.exp_avg": np.zeros(3, np.float32)}),
            "no such parameter",
        ),
        (lambda a: a.update({"optimizer.0.evil": np.zeros(3, np.float32)}), "is not Adam state"),
        (lambda a: a.update({"stray": np.zeros(3, np.float32)}), r"unexpected arrays \['stray'\]"),
        (
            lambda a: a["optimizer.1.exp_avg"].__setitem__(0, np.nan),
            "tensor 'optimizer.1.exp_avg' holds NaN",
        ),
        (
            lambda a: a["model.dense.bias"].__setitem__(0, np.inf),
            "tensor 'model.dense.bias' holds NaN",
        ),
        (
            lambda a: a.update({"model.dense.bias": np.zeros(5, np.float32)}),
            r"'dense.bias' has shape \(3,\)",
        ),
        (
            lambda a: a.update({"model.dense.bias": a["model.dense.bias"].astype(np.complex64)}),
            "complex64",
        ),
    ],
)
def test_crafted_checkpoint_arrays_refused(checkpoint, edit, message):
    _rewrite(checkpoint, edit_arrays=edit)
    with pytest.raises(FileFormatError, match=f"checkpoint.npz: .*{message}"):
        load_checkpoint(checkpoint)


def test_resume_with_another_optimizer_is_a_file_format_error(checkpoint):
    with pytest.raises(
        FileFormatError, match="checkpoint.npz: .*trained with Adam, this run uses SGD"
    ):
        train(checkpoint, 2, resume=checkpoint, optimizer="sgd")


def test_save_refuses_a_generator_it_could_not_restore(tmp_path):
    model = small_net()
    model.dropout._generator = np.random.Generator(np.random.MT19937(0))
    with pytest.raises(ValueError, match="uses MT19937"):
        fit(
            model,
            small_data(),
            epochs=1,
            batch_size=8,
            verbose=0,
            callbacks=[ModelCheckpoint(tmp_path / "c.npz", save_best_only=False)],
        )
    assert not (tmp_path / "c.npz").exists()


def test_only_cnnlab_errors_leave_the_checkpoint_loaders(checkpoint):
    data = checkpoint.read_bytes()
    for cut in (10, len(data) // 3, len(data) - 30):
        checkpoint.write_bytes(data[:cut])
        for load in (load_checkpoint, model_from_checkpoint):
            with pytest.raises(CnnlabError, match="checkpoint.npz"):
                load(checkpoint)


def test_save_checkpoint_refuses_non_finite_weights(tmp_path):
    from cnnlab.optim import Adam
    from cnnlab.training import TrainingState

    model = small_net()
    model.dense.bias.data[0] = np.nan
    state = TrainingState(model, Adam(model.parameters()), 1, 1, False, [], 0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_checkpoint(tmp_path / "c.npz", state)
    assert not (tmp_path / "c.npz").exists()


def test_callback_state_is_restored_by_class_whatever_the_order(checkpoint):
    from cnnlab.checkpoint import restore_callbacks
    from cnnlab.training import TrainingState

    loaded = load_checkpoint(checkpoint)
    saved = {entry["class"]: entry["state"] for entry in loaded["callbacks"]}
    model = small_net()
    optimizer = __import__("cnnlab.optim", fromlist=["Adam"]).Adam(model.parameters())
    # The reverse of the order the checkpoint was written with.
    callbacks = [LearningRateScheduler("step"), EarlyStopping(patience=5),
                 ModelCheckpoint(checkpoint, save_best_only=False)]
    state = TrainingState(model, optimizer, 2, 4, False, callbacks, 0)
    for callback in callbacks:  # as fit does: the schedule exists before its state is loaded
        callback.on_train_begin(state)
    restore_callbacks(state, loaded)
    for callback in callbacks:
        assert callback.state_dict() == saved[type(callback).__name__]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "adadelta"])
def test_every_optimizer_resumes_to_the_same_weights_as_one_run(optimizer, tmp_path):
    """Adadelta (issue 17) resumes like the others: its state slots are in the allow-list."""
    whole = train(tmp_path / "whole.npz", 2, optimizer=optimizer)
    path = tmp_path / "pieces.npz"
    train(path, 1, optimizer=optimizer)
    resumed = train(path, 2, resume=path, optimizer=optimizer)
    for (name, a), (_, b) in zip(whole.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
