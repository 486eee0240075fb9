"""``cnnlab train`` in-process: run folders, resume rules, stops, no data loss (issues 9, 10)."""

import json
import os

import pytest

from cnnlab.checkpoint import load_checkpoint
from cnnlab.cli import main

from .helpers import train


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_train_name_that_exists_is_refused_and_the_run_kept(run_copy, capsys):
    before = snapshot(run_copy)
    assert train("--epochs", 1, "--name", "done") == 2
    err = capsys.readouterr().err
    assert "cnnlab train: error:" in err and "--overwrite" in err and "done-001" in err
    assert snapshot(run_copy) == before


def test_train_overwrite_replaces_the_named_run(run_copy):
    assert train("--epochs", 1, "--name", "done", "--overwrite", "--seed", 3) == 0
    info = json.loads((run_copy / "run.json").read_text())
    assert (
        info["settings"]["seed"] == 3
        and load_checkpoint(run_copy / "checkpoint.npz")["epoch"] == 1
    )


def test_resume_without_run_json_refuses_with_the_reason(run_copy, capsys):
    (run_copy / "run.json").unlink()
    before = snapshot(run_copy)
    assert train("--resume", run_copy, "--epochs", 3) == 2
    err = capsys.readouterr().err
    assert "run.json" in err and "which model, data and settings" in err
    assert snapshot(run_copy) == before


def test_resume_with_other_model_or_lr_refuses_naming_the_flags(run_copy, capsys):
    before = snapshot(run_copy)
    assert main(["train", "--resume", str(run_copy), "--model", "lenet5", "--lr", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "--model, --lr can't change" in err and "'lenet5'" in err
    assert snapshot(run_copy) == before


def test_resume_with_nothing_left_to_do_says_so_and_rewrites_nothing(run_copy, capsys):
    before = snapshot(run_copy)
    assert main(["train", "--resume", str(run_copy), "--epochs", "1"]) == 0
    assert "Nothing to do" in capsys.readouterr().out
    assert snapshot(run_copy) == before
    assert json.loads((run_copy / "run.json").read_text())["settings"]["epochs"] == 2


def test_resume_with_more_epochs_extends_the_run(run_copy):
    history = json.loads((run_copy / "history.json").read_text())
    assert main(["train", "--resume", str(run_copy), "--epochs", "3", "--verbose", "0"]) == 0
    assert json.loads((run_copy / "run.json").read_text())["settings"]["epochs"] == 3
    extended = json.loads((run_copy / "history.json").read_text())
    assert len(extended["loss"]) == 3 and extended["loss"][:2] == history["loss"]
    assert load_checkpoint(run_copy / "checkpoint.npz")["epoch"] == 3


def test_resume_through_symlinked_run_files_leaves_the_victim_intact(run_copy, tmp_path):
    """The attack of issue 10: a crafted run folder whose outputs are symlinks to a victim file."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"the victim's own bytes\n")
    for name in ("history.json", "model.npz", "learning_curve.png", "confusion_matrix.png"):
        (run_copy / name).unlink()
        os.symlink(victim, run_copy / name)
    assert main(["train", "--resume", str(run_copy), "--epochs", "3", "--verbose", "0"]) == 0
    assert victim.read_bytes() == b"the victim's own bytes\n"
    for name in (
        "history.json",
        "model.npz",
        "learning_curve.png",
        "confusion_matrix.png",
        "run.json",
    ):
        assert not (run_copy / name).is_symlink() and (run_copy / name).stat().st_size > 0, name


def test_resume_through_a_symlinked_run_json_is_refused(run_copy, tmp_path, capsys):
    victim = tmp_path / "victim.json"
    victim.write_text((run_copy / "run.json").read_text())
    (run_copy / "run.json").unlink()
    os.symlink(victim, run_copy / "run.json")
    before = victim.read_bytes()
    assert main(["train", "--resume", str(run_copy), "--epochs", "3"]) == 2
    assert "symlink" in capsys.readouterr().err
    assert victim.read_bytes() == before


def test_resume_cleans_stale_temporaries(run_copy):
    stale = run_copy / ".checkpoint.npz.0a1b2c3d4e5f.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert main(["train", "--resume", str(run_copy), "--epochs", "1"]) == 0
    assert not stale.exists()


def test_nan_in_epoch_one_does_not_point_at_a_missing_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("--epochs", 2, "--lr", "1e30", "--name", "boom") == 1
    err = capsys.readouterr().err
    assert "Nothing was saved" in err and "--resume" not in err and "is kept" not in err
    assert "was removed." in err and "run the same command again" not in err
    assert not (tmp_path / "runs" / "boom").exists()


def test_train_evaluates_the_test_set_once_at_the_end(tmp_path, monkeypatch):
    """After fit returns, the 360 test images go through the model exactly once."""
    import cnnlab.cli_train

    images_seen = []
    real_fit = cnnlab.cli_train.fit

    def fit_then_count(model, *args, **kwargs):
        history = real_fit(model, *args, **kwargs)
        real_call = type(model).__call__

        def counting_call(self, x, *call_args, **call_kwargs):
            images_seen.append(len(x.data))
            return real_call(self, x, *call_args, **call_kwargs)

        monkeypatch.setattr(type(model), "__call__", counting_call)
        return history

    monkeypatch.setattr(cnnlab.cli_train, "fit", fit_then_count)
    monkeypatch.chdir(tmp_path)
    assert train("--epochs", 1) == 0
    assert sum(images_seen) == 360


def test_train_records_the_new_training_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        train("--epochs", 1, "--clip-norm", "1.5", "--patience", "2", "--optimizer", "momentum")
        == 0
    )
    settings = json.loads((tmp_path / "runs" / "lecture-digits-001" / "run.json").read_text())[
        "settings"
    ]
    assert (settings["clip_norm"], settings["patience"], settings["optimizer"]) == (
        1.5,
        2,
        "momentum",
    )


def test_momentum_with_adam_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("--momentum", "0.5") == 2
    assert "--momentum applies to --optimizer sgd" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1e-3", "abc"])
def test_lr_nan_inf_is_rejected_at_parse_time_and_leaves_no_run_folder(
    tmp_path, monkeypatch, capsys, value
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", f"--lr={value}"])
    assert exit_info.value.code == 2
    assert "argument --lr: expected a finite number > 0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--weight-decay", "-1"),
        ("--momentum", "1"),
        ("--validation-split", "1"),
        ("--clip-norm", "nan"),
        ("--patience", "0"),
        ("--batch-size", "2.5"),
    ],
)
def test_invalid_training_numbers_are_rejected_at_parse_time(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", f"{flag}={value}"])
    assert exit_info.value.code == 2 and f"argument {flag}: expected" in capsys.readouterr().err


def test_seed_minus_one_gets_its_own_error(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--seed", "-1"])
    error_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        error_line
        == "cnnlab train: error: argument --seed: expected an integer >= 0, received '-1'"
    )


@pytest.mark.parametrize(
    "spec", ["flip=maybe", "shift=nan", "rotate=-5", "shift=1,shift=2", "zoom=2"]
)
def test_augment_flip_maybe_and_other_bad_specs_are_refused(tmp_path, monkeypatch, capsys, spec):
    monkeypatch.chdir(tmp_path)
    assert train("--augment", spec) == 2
    assert "cnnlab train: error: --augment:" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_out_given_an_existing_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("x")
    assert train("--out", "taken") == 2
    err = capsys.readouterr().err
    assert "cnnlab train: error: taken" in err and "file is in the way" in err
    assert (tmp_path / "taken").read_text() == "x"


@pytest.mark.parametrize(
    "out", ["/proc/cnnlab-runs", "/sys/cnnlab-runs", "/proc/self/status/runs"]
)
def test_out_under_proc_or_sys_is_a_clear_error(tmp_path, monkeypatch, capsys, out):
    monkeypatch.chdir(tmp_path)
    assert train("--out", out) == 2
    err = capsys.readouterr().err
    assert f"cnnlab train: error: {out}" in err and "cannot create" in err


def test_data_proc_is_a_clear_error_not_a_permission_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("--data", "/proc") == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab train: error: --data /proc") and "PermissionError" not in err


def test_resume_of_a_folder_without_checkpoint_says_no_epoch_ended(tmp_path, monkeypatch, capsys):
    from cnnlab.runs import RunInfo, create_run

    monkeypatch.chdir(tmp_path)
    run = create_run("runs", "lecture", "digits", name="early")
    run.write_info(RunInfo("lecture", "digits", {"epochs": 2}))
    assert main(["train", "--resume", str(run.directory)]) == 2
    assert "before its first epoch ended" in capsys.readouterr().err


def test_resume_of_a_run_killed_before_writing_its_model_finishes_it(run_copy, capsys):
    for name in ("model.npz", "history.json", "learning_curve.png", "confusion_matrix.png"):
        (run_copy / name).unlink()
    checkpoint_before = (run_copy / "checkpoint.npz").read_bytes()
    assert main(["train", "--resume", str(run_copy)]) == 0
    assert "stopped before writing its model; writing it now" in capsys.readouterr().out
    for name in ("model.npz", "history.json", "learning_curve.png", "confusion_matrix.png"):
        assert (run_copy / name).is_file(), name
    assert (run_copy / "checkpoint.npz").read_bytes() == checkpoint_before  # no training


def test_resume_of_another_npz_file_is_refused(run_copy, capsys):
    (run_copy / "other.npz").write_bytes((run_copy / "checkpoint.npz").read_bytes())
    assert main(["train", "--resume", str(run_copy / "other.npz"), "--epochs", "3"]) == 2
    assert "--resume takes a run folder or its checkpoint.npz" in capsys.readouterr().err
    assert main(["train", "--resume", str(run_copy / "checkpoint.npz"), "--epochs", "1"]) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"optimizer": "evil"},
        {"schedule": "test"},
        {"augment": "zoom=1"},
        {"data": "/nowhere/at/all"},
        {"lr": "fast"},
        {"epochs": -1},
        {"batch_size": 1e400},
        {"seed": [1]},
        {"optimizer": "sgd"},  # the checkpoint holds Adam's state
        {"data": 5},
    ],
)
def test_resume_of_a_crafted_run_json_is_a_clean_error(run_copy, capsys, change):
    info = json.loads((run_copy / "run.json").read_text())
    info["settings"].update(change)
    (run_copy / "run.json").write_text(json.dumps(info))
    assert main(["train", "--resume", str(run_copy), "--epochs", "3", "--verbose", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab train: error: ") and "Traceback" not in err
    assert load_checkpoint(run_copy / "checkpoint.npz")["epoch"] == 2


def test_weight_decay_momentum_and_validation_split_reach_the_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--optimizer", "sgd", "--momentum", "0.5", "--weight-decay", "0.001"]
    assert train("--epochs", 1, *args, "--validation-split", "0.2", "--name", "split") == 0
    checkpoint = load_checkpoint(tmp_path / "runs" / "split" / "checkpoint.npz")
    optimizer = checkpoint["optimizer"]
    assert (optimizer["type"], optimizer["momentum"], optimizer["weight_decay"]) == (
        "SGD",
        0.5,
        0.001,
    )
    assert optimizer["step_count"] == 5  # 1,150 of the 1,437 training images in batches of 256


def test_full_disk_during_training_names_the_file_and_keeps_the_last_checkpoint(
    tmp_path, monkeypatch, capsys
):
    import errno

    import cnnlab.atomic

    monkeypatch.chdir(tmp_path)
    real_replace, calls = os.replace, []

    def replace_until_the_disk_fills(source, destination):
        calls.append(destination)
        if str(destination).endswith("checkpoint.npz") and len(
            [c for c in calls if str(c).endswith("checkpoint.npz")]
        ) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(source))
        return real_replace(source, destination)

    monkeypatch.setattr(cnnlab.atomic.os, "replace", replace_until_the_disk_fills)
    assert train("--epochs", 3, "--name", "full") == 2
    err = capsys.readouterr().err
    assert "runs/full/checkpoint.npz: No space left on device" in err
    run = tmp_path / "runs" / "full"
    assert "the checkpoint after epoch 1 is kept" in err and "--resume" in err
    assert load_checkpoint(run / "checkpoint.npz")["epoch"] == 1
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
