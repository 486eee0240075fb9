"""cnnlab.runs: creating, reading and loading run folders; every file read is untrusted."""

import json
import os

import numpy as np
import pytest

from cnnlab import models
from cnnlab.errors import FileFormatError, LimitExceededError
from cnnlab.io import save_model
from cnnlab.limits import override
from cnnlab.runs import (
    ResumeConflictError,
    Run,
    RunError,
    RunExistsError,
    RunInfo,
    create_run,
    find_model_file,
    load_any_model,
    merge_resume_settings,
    next_free_name,
    open_run,
    read_json,
    run_stem,
)

HEAD = '{"format": "cnnlab-run", "version": 1, "model": "m", "data": "d", "settings": '
SETTINGS = {
    "epochs": 3,
    "batch_size": 32,
    "lr": 0.002,
    "optimizer": "adam",
    "schedule": "cosine",
    "augment": "none",
    "seed": 0,
}


def test_create_run_takes_the_next_free_counter(tmp_path):
    first = create_run(tmp_path / "runs", "lecture", "digits")
    second = create_run(tmp_path / "runs", "lecture", "digits")
    assert (
        first.directory.name == "lecture-digits-001"
        and second.directory.name == "lecture-digits-002"
    )
    assert next_free_name(tmp_path / "runs", "lecture-digits") == "lecture-digits-003"


def test_data_folder_is_labelled_by_its_name(tmp_path):
    (tmp_path / "my photos").mkdir()
    assert run_stem("lenet5", str(tmp_path / "my photos")) == "lenet5-my_photos"


def test_existing_name_is_refused_and_a_free_name_suggested(tmp_path):
    run = create_run(tmp_path, "lecture", "digits", name="keep")
    (run.model_file).write_bytes(b"precious")
    with pytest.raises(RunExistsError, match="--overwrite.*keep-001") as info:
        create_run(tmp_path, "lecture", "digits", name="keep")
    assert info.value.suggestion == "keep-001"
    assert run.model_file.read_bytes() == b"precious"


def test_overwrite_removes_the_old_run_files(tmp_path):
    run = create_run(tmp_path, "lecture", "digits", name="keep")
    run.model_file.write_bytes(b"old")
    (run.directory / ".checkpoint.npz.abc123.tmp").write_bytes(b"partial")
    again = create_run(tmp_path, "lecture", "digits", name="keep", overwrite=True)
    assert again.directory == run.directory
    assert not run.model_file.exists()
    assert not (run.directory / ".checkpoint.npz.abc123.tmp").exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", ".."])
def test_run_names_with_folders_are_refused(tmp_path, name):
    with pytest.raises(RunError, match="plain folder name"):
        create_run(tmp_path, "lecture", "digits", name=name)


def test_output_folder_that_is_a_file_gives_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="file is in the way"):
        create_run(tmp_path / "file", "lecture", "digits")


def test_output_folder_under_proc_gives_a_clear_error():
    with pytest.raises(RunError, match="/proc/"):
        create_run("/proc/cnnlab-out", "lecture", "digits")


def test_run_info_round_trip(tmp_path):
    run = create_run(tmp_path, "lecture", "digits")
    run.write_info(RunInfo("lecture", "digits", SETTINGS, "cnnlab train"))
    info = run.read_info()
    assert (info.model, info.data, info.settings, info.command) == (
        "lecture",
        "digits",
        SETTINGS,
        "cnnlab train",
    )


def test_old_run_json_without_format_is_read(tmp_path):
    (tmp_path / "run.json").write_text(
        json.dumps({"dataset": "digits", "model": "lecture", "args": SETTINGS})
    )
    info = Run(tmp_path).read_info()
    assert info.data == "digits" and info.settings["epochs"] == 3


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "expected a JSON object"),
        (
            '{"format": "cnnlab-run", "version": 9, "model": "m", "data": "d", "settings": {}}',
            "version 9",
        ),
        (
            HEAD + '{"lr": NaN}}',
            "not valid JSON",
        ),
        (
            HEAD + '{"lr": -1}}',
            "lr must be a finite number > 0",
        ),
        (
            HEAD + '{"epochs": "3"}}',
            "epochs must be an int",
        ),
        (
            HEAD + '{"evil": 1}}',
            "unknown setting 'evil'",
        ),
        (
            '{"format": "cnnlab-run", "version": 1, "model": 5, "data": "d", "settings": {}}',
            "'model' must be a string",
        ),
        ("{not json", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nest"),
    ],
)
def test_bad_run_json_is_a_clear_error_naming_the_file(tmp_path, content, message):
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(RunError, match=message) as info:
        Run(tmp_path).read_info()
    assert str(tmp_path / "run.json") in str(info.value)


def test_run_json_size_is_bounded(tmp_path):
    (tmp_path / "run.json").write_text(" " * 2000 + "{}")
    with override(max_json_bytes=1000), pytest.raises(LimitExceededError, match="max_json_bytes"):
        read_json(tmp_path / "run.json")


def test_missing_run_json_says_so(tmp_path):
    with pytest.raises(RunError, match="no run file here"):
        Run(tmp_path).read_info()


def test_symlinked_run_json_is_refused_when_read(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("secret")
    (tmp_path / "run").mkdir()
    os.symlink(victim, tmp_path / "run" / "run.json")
    with pytest.raises(RunError, match="symlink"):
        Run(tmp_path / "run").read_info()


def test_symlinked_outputs_are_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the victim's bytes")
    run = create_run(tmp_path, "lecture", "digits", name="crafted")
    os.symlink(victim, run.run_file)
    os.symlink(victim, run.history_file)
    run.write_info(RunInfo("lecture", "digits", SETTINGS))
    run.write_history({"loss": [1.0]})
    assert victim.read_text() == "the victim's bytes"
    assert not run.run_file.is_symlink() and run.read_info().model == "lecture"
    assert run.read_history() == {"loss": [1.0]}


@pytest.mark.parametrize("name", ["../x.json", "/etc/passwd", "a/b.png"])
def test_run_paths_stay_inside_the_folder(tmp_path, name):
    with pytest.raises(ValueError, match="plain file name"):
        Run(tmp_path).path(name)


def test_clean_temporaries_removes_only_stale_temporaries(tmp_path):
    run = create_run(tmp_path, "lecture", "digits")
    (run.directory / ".checkpoint.npz.0123abcd.tmp").write_bytes(b"x")
    run.checkpoint_file.write_bytes(b"keep")
    assert [p.name for p in run.clean_temporaries()] == [".checkpoint.npz.0123abcd.tmp"]
    assert run.checkpoint_file.read_bytes() == b"keep"


@pytest.fixture(scope="module")
def small_model():
    return models.get(
        "lecture", input_shape=(1, 12, 12), seed=0, class_names=[str(i) for i in range(10)]
    )


def test_find_and_load_the_model_of_a_run(tmp_path, small_model):
    run = create_run(tmp_path, "lecture", "digits")
    save_model(small_model, run.model_file)
    assert find_model_file(run.directory) == run.model_file
    loaded = load_any_model(run.directory)
    for name, value in small_model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)


def test_a_run_with_only_a_checkpoint_loads_its_model(tmp_path, small_model):
    from cnnlab import optim
    from cnnlab.checkpoint import save_checkpoint
    from cnnlab.training import TrainingState

    run = create_run(tmp_path, "lecture", "digits")
    state = TrainingState(
        small_model,
        optim.get_optimizer("adam", small_model.parameters(), 1e-3),
        epochs=2,
        steps_per_epoch=1,
        has_validation=False,
        callbacks=[],
        seed=0,
    )
    save_checkpoint(run.checkpoint_file, state)
    assert find_model_file(run.directory) == run.checkpoint_file
    loaded = load_any_model(run.directory)
    assert loaded.class_names == small_model.class_names


def test_loading_garbage_is_a_file_format_error_naming_it(tmp_path):
    (tmp_path / "model.npz").write_bytes(b"not a zip at all")
    with pytest.raises(FileFormatError, match="model.npz"):
        load_any_model(tmp_path)


def test_empty_folder_is_not_a_run(tmp_path):
    with pytest.raises(RunError, match="neither model.npz nor checkpoint.npz"):
        find_model_file(tmp_path)
    with pytest.raises(RunError, match="no such"):
        open_run(tmp_path / "nowhere")


def test_open_run_of_a_file_inside_it(tmp_path):
    run = create_run(tmp_path, "lecture", "digits")
    run.checkpoint_file.write_bytes(b"x")
    assert open_run(run.checkpoint_file).directory == run.directory


def test_resume_may_extend_epochs_but_not_change_the_model():
    merged = merge_resume_settings(SETTINGS, {"epochs": 5, "threads": 1})
    assert merged["epochs"] == 5 and merged["threads"] == 1 and merged["lr"] == 0.002
    assert (
        merge_resume_settings(SETTINGS, {"lr": 0.002}) == SETTINGS
    )  # the same value is no change
    with pytest.raises(ResumeConflictError, match="lr .*0.002.*0.1.*optimizer") as info:
        merge_resume_settings(SETTINGS, {"lr": 0.1, "optimizer": "sgd", "epochs": 4})
    assert info.value.names == ["lr", "optimizer"]


def test_planted_links_among_the_outputs_are_removed_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    run = create_run(tmp_path, "lecture", "digits", name="crafted")
    for name in ("history.json", "model.npz", "learning_curve.png"):
        os.symlink(victim, run.path(name))
    removed = run.remove_planted_links()
    assert sorted(p.name for p in removed) == ["history.json", "learning_curve.png", "model.npz"]
    assert victim.read_text() == "mine" and not any(run.directory.iterdir())
