"""``python -m cnnlab`` end to end: the README's default run, evaluate, predict, resume, Ctrl-C."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from cnnlab.checkpoint import load_checkpoint
from cnnlab.cli import DEFAULTS, build_parser
from cnnlab.data.augment import parse_augment_spec
from cnnlab.io import load_model

from .helpers import cnnlab_process as cnnlab
from .helpers import interrupt_training


def accuracy_printed(stdout: str) -> float:
    match = re.search(r"Test accuracy: (\d\.\d{4}) \((\d+)/(\d+)\)", stdout)
    assert match, stdout
    return float(match.group(1))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One short training run shared by the tests below (2 epochs of the lecture net on digits)."""
    cwd = tmp_path_factory.mktemp("cli")
    result = cnnlab("train", "--epochs", "2", "--verbose", "2", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd, cwd / "runs" / "lecture-digits-001", result


def test_train_writes_model_checkpoint_and_figures(trained_run):
    _, run_dir, result = trained_run
    assert (
        "Training lecture on digits: 1437 train / 360 test images (1, 28, 28), 137,660 parameters"
        in result.stdout
    )
    assert accuracy_printed(result.stdout) >= 0.9
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert len(epoch_lines) == 2 and "val_accuracy:" in epoch_lines[1]
    for name in (
        "model.npz",
        "checkpoint.npz",
        "history.json",
        "run.json",
        "learning_curve.png",
        "confusion_matrix.png",
    ):
        assert (run_dir / name).is_file(), name
    for name in ("learning_curve.png", "confusion_matrix.png"):
        with Image.open(run_dir / name) as image:
            assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 300
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["val_accuracy"]) == 2
    assert history["val_accuracy"][-1] == pytest.approx(accuracy_printed(result.stdout), abs=1e-4)
    model = load_model(run_dir / "model.npz")
    assert model.input_shape == (1, 28, 28)
    assert model.class_names == [str(i) for i in range(10)]
    assert set(model.normalization) == {"mean", "std"}
    assert load_checkpoint(run_dir / "checkpoint.npz")["epoch"] == 2
    info = json.loads((run_dir / "run.json").read_text())
    assert info["data"] == "digits" and info["settings"]["epochs"] == 2


def test_second_run_gets_the_next_directory_and_same_numbers(trained_run, tmp_path):
    cwd, _, first = trained_run
    result = cnnlab(
        "train", "--epochs", "2", "--verbose", "0", "--out", tmp_path / "elsewhere", cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere" / "lecture-digits-001" / "model.npz").is_file()
    assert accuracy_printed(result.stdout) == accuracy_printed(first.stdout)  # same seed, same run


def test_evaluate_run_directory(trained_run, tmp_path):
    cwd, run_dir, train_result = trained_run
    result = cnnlab("evaluate", run_dir, "--confusion", tmp_path / "cm.png", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert accuracy_printed(result.stdout) == accuracy_printed(train_result.stdout)
    with Image.open(tmp_path / "cm.png") as image:
        assert image.format == "PNG"


def test_predict_images(trained_run, tmp_path):
    from cnnlab.data import load_dataset

    cwd, run_dir, _ = trained_run
    test = load_dataset("digits", image_size=28).test
    paths = []
    for i in range(4):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(test.images[i, 0]).save(path)
        paths.append(path)
    result = cnnlab("predict", run_dir / "model.npz", *paths, "--top-k", "2", cwd=cwd)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    correct = 0
    for line, label in zip(lines, test.labels[:4]):
        match = re.fullmatch(r".*digit\d\.png: (\d) \((\d\.\d{4})\), (\d) \((\d\.\d{4})\)", line)
        assert match, line
        assert float(match.group(2)) >= float(match.group(4))
        correct += int(match.group(1)) == label
    assert correct >= 3


def test_predict_converts_rgb_images_of_any_size(trained_run, tmp_path):
    cwd, run_dir, _ = trained_run
    path = tmp_path / "big.jpg"
    Image.fromarray(np.full((60, 45, 3), 200, dtype=np.uint8)).save(path)
    result = cnnlab("predict", run_dir, path, cwd=cwd)
    assert result.returncode == 0, result.stderr
    probabilities = [float(p) for p in re.findall(r"\((\d\.\d{4})\)", result.stdout)]
    assert len(probabilities) == 3 and sum(probabilities) <= 1.0001


def test_resume_continues_from_the_saved_epoch(trained_run, tmp_path):
    import shutil

    cwd, run_dir, _ = trained_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = json.loads((copy / "history.json").read_text())
    result = cnnlab("train", "--resume", copy, "--epochs", "3", "--verbose", "2", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Resuming from" in result.stderr and "after epoch 2/3" in result.stderr
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert [line.split(" - ")[0] for line in epoch_lines] == ["Epoch 3/3"]
    after = json.loads((copy / "history.json").read_text())
    assert len(after["loss"]) == 3
    assert (
        after["loss"][:2] == before["loss"] and after["val_accuracy"][:2] == before["val_accuracy"]
    )
    assert load_checkpoint(copy / "checkpoint.npz")["epoch"] == 3


def test_ctrl_c_keeps_the_last_checkpoint(tmp_path):
    returncode, stdout, err = interrupt_training(
        tmp_path, "--epochs", 6, "--verbose", 2, "--name", "stopped", after="Epoch 1/6"
    )
    assert returncode == 130, stdout + err
    assert "Interrupted" in stdout and "cnnlab train --resume" in stdout
    run_dir = tmp_path / "runs" / "stopped"
    checkpoint = load_checkpoint(run_dir / "checkpoint.npz")
    assert 1 <= checkpoint["epoch"] < 6
    assert len(checkpoint["history"]["loss"]) == checkpoint["epoch"]
    assert not (run_dir / "model.npz").exists()


def test_summary_of_zoo_model_and_saved_model(trained_run):
    cwd, run_dir, _ = trained_run
    result = cnnlab("summary", "lenet5", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Total params: 61,706" in result.stdout
    result = cnnlab("summary", run_dir / "model.npz", cwd=cwd)
    assert result.returncode == 0 and "Total params: 137,660" in result.stdout


def test_summary_uses_the_published_class_count(tmp_path):
    result = cnnlab("summary", "alexnet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Total params: 60,965,224" in result.stdout  # 1,000 ImageNet classes
    result = cnnlab("summary", "alexnet", "--num-classes", "10", cwd=tmp_path)
    assert "Total params: 56,909,194" in result.stdout


def test_datasets_lists_digits(tmp_path):
    result = cnnlab("datasets", cwd=tmp_path)
    assert result.returncode == 0
    assert re.search(r"^digits\s+built in", result.stdout, re.MULTILINE)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--model", "resnet"], "invalid choice: 'resnet'"),
        (["train", "--epochs", "0"], "--epochs: expected an integer >= 1"),
        (["train", "--augment", "zoom=2"], "unknown option 'zoom'"),
        (["train", "--data", "no-such-dataset"], "no-such-dataset"),
        (["evaluate", "nowhere"], "nowhere: no such model file or run folder"),
        (["predict", "nowhere.npz", "x.png"], "no such model file"),
        (["summary", "resnet"], "neither a zoo model"),
    ],
)
def test_helpful_errors(tmp_path, args, message):
    result = cnnlab(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "summary", "datasets"])
def test_help_for_each_subcommand(command):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0


def test_defaults_and_augment_parsing():
    args = build_parser().parse_args(["train"])
    assert (args.model, args.data, args.epochs, args.batch_size, args.lr) == (
        None,
    ) * 5  # see DEFAULTS
    assert (DEFAULTS["model"], DEFAULTS["data"], DEFAULTS["batch_size"], DEFAULTS["lr"]) == (
        "lecture",
        "digits",
        32,
        2e-3,
    )
    augment = parse_augment_spec("shift=2,rotate=10,flip", seed=3)
    assert (augment.shift, augment.rotate, augment.flip, augment.seed) == (2, 10.0, True, 3)
    assert parse_augment_spec("none") is None


def test_threads_option_is_recorded_and_rejects_zero(tmp_path):
    result = cnnlab("train", "--epochs", "1", "--threads", "1", "--verbose", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "runs" / "lecture-digits-001" / "run.json").read_text())
    assert info["settings"]["threads"] == 1
    result = cnnlab("train", "--threads", "0", cwd=tmp_path)
    assert result.returncode == 2 and "--threads" in result.stderr
