"""evaluate, predict and summary in-process, and the CLI's pipes and signals in subprocesses."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnnlab.checkpoint import CHECKPOINT_FORMAT
from cnnlab.cli import main, model_input
from cnnlab.io import save_arrays

from .helpers import TINY, environment, interrupt_training


def digit_images(tmp_path, count=3):
    """The first test digits at 12×12 as PNG files, and their labels."""
    from cnnlab.data import load_dataset

    test = load_dataset("digits", image_size=12).test
    paths = []
    for i in range(count):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(test.images[i, 0]).save(paths[-1])
    return paths, test.labels[:count]


def test_predict_one_unreadable_file_does_not_abort_the_batch(finished_run, tmp_path, capsys):
    paths, _ = digit_images(tmp_path, 2)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    status = main(["predict", str(finished_run), str(paths[0]), str(broken), str(paths[1])])
    captured = capsys.readouterr()
    assert status == 2
    assert [line.split(":")[0] for line in captured.out.splitlines()] == [
        str(paths[0]),
        str(paths[1]),
    ]
    assert f"cnnlab predict: error: {broken}" in captured.err
    assert "1 of 3 images could not be read" in captured.err and "Traceback" not in captured.err


def test_predict_detects_dark_ink_on_light_paper_and_invert_overrides(
    finished_run, tmp_path, capsys
):
    paths, _ = digit_images(tmp_path, 3)
    dark_on_light = []
    for path in paths:
        inverted = tmp_path / f"paper-{path.name}"
        Image.fromarray(255 - np.asarray(Image.open(path))).save(inverted)
        dark_on_light.append(str(inverted))
    assert main(["predict", str(finished_run), *map(str, paths), "--top-k", "1"]) == 0
    plain = [line.split(": ")[1] for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", str(finished_run), *dark_on_light, "--top-k", "1"]) == 0
    automatic = [line.split(": ")[1] for line in capsys.readouterr().out.splitlines()]
    assert automatic == plain  # detected and inverted back: the same classes, the same numbers
    assert main(["predict", str(finished_run), *dark_on_light, "--top-k", "1", "--no-invert"]) == 0
    forced = [line.split(": ")[1] for line in capsys.readouterr().out.splitlines()]
    assert forced != plain
    assert main(["predict", str(finished_run), *map(str, paths), "--top-k", "1", "--invert"]) == 0
    assert [line.split(": ")[1] for line in capsys.readouterr().out.splitlines()] == forced


def test_evaluate_warns_when_the_data_has_other_class_names(finished_run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in "abcdefghij":
        (tmp_path / "letters" / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (12, 12), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "letters" / name / f"{i}.png")
    assert main(["evaluate", str(finished_run), "--data", str(tmp_path / "letters")]) == 0
    err = capsys.readouterr().err
    assert "warning: the model's classes (0, 1, 2" in err and "(a, b, c" in err
    assert main(["evaluate", str(finished_run)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_evaluate_of_a_checkpoint_with_a_type_error_is_a_clean_error(tmp_path, capsys):
    path = tmp_path / "checkpoint.npz"
    save_arrays(path, {}, {"format": CHECKPOINT_FORMAT, "optimizer": 5, "model_config": []})
    assert main(["evaluate", str(path), "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cnnlab evaluate: error: {path}") and "Traceback" not in err


def test_evaluate_of_a_run_with_only_a_checkpoint(run_copy, capsys):
    (run_copy / "model.npz").unlink()
    assert main(["evaluate", str(run_copy)]) == 0
    assert "checkpoint.npz on digits test (360 images)" in capsys.readouterr().out


def test_evaluate_without_run_json_asks_for_data(run_copy, capsys):
    (run_copy / "run.json").unlink()
    assert main(["evaluate", str(run_copy)]) == 2
    assert "give --data" in capsys.readouterr().err


def test_version(capsys):
    import cnnlab

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert (
        exit_info.value.code == 0
        and capsys.readouterr().out.strip() == f"cnnlab {cnnlab.__version__}"
    )


def test_model_help_lists_the_zoo(capsys):
    from cnnlab import models

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "zoo model: " + ", ".join(models.available()) in help_text


def shell(command: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env=environment(),
        check=False,
    )


def test_summary_piped_into_head_has_no_broken_pipe_traceback(tmp_path):
    result = shell(f"{sys.executable} -m cnnlab summary vgg16 | head -1", tmp_path)
    assert result.stdout == 'Model: "vgg16"\n'
    assert result.stderr == ""


def test_train_piped_into_head_has_no_broken_pipe_traceback(tmp_path):
    args = " ".join(TINY)
    result = shell(f"{sys.executable} -m cnnlab train --epochs 1 {args} | head -1", tmp_path)
    assert result.stdout.startswith("Training lecture on digits")
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr


def test_ctrl_c_in_epoch_one_does_not_suggest_a_resume_that_fails(tmp_path):
    # Epoch 1 of the 28×28 lecture net takes seconds: the signal lands inside it.
    returncode, stdout, err = interrupt_training(
        tmp_path, "--epochs", 3, "--verbose", 0, "--name", "early", after="Run directory"
    )
    assert returncode == 130, stdout + err
    assert "Nothing was saved" in stdout and "--resume" not in stdout
    assert "run the same command again" in stdout
    assert not (tmp_path / "runs" / "early").exists()  # nothing half-made is left to trip over
    assert "Traceback" not in err


def test_model_input_normalises_each_channel_with_its_own_statistics(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(8, 5, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "colour.png")
    stats = {"mean": [0.1, 0.5, 0.9], "std": [0.2, 0.4, 0.8]}
    x = model_input(tmp_path / "colour.png", (3, 8, 5), stats, fit="resize")[0]
    plain = model_input(tmp_path / "colour.png", (3, 8, 5), None, fit="resize")[0]
    for c in range(3):
        expected = (plain[c] - stats["mean"][c]) / stats["std"][c]
        np.testing.assert_allclose(x[c], expected, rtol=1e-5, atol=1e-6)
