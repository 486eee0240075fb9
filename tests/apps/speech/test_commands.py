"""``cnnlab speech`` end to end: train tiny, predict, show, and bad files as one line, exit 2."""

import subprocess
import sys

import numpy as np
import pytest

from cnnlab.cli import main
from tests.apps.speech.conftest import REPO
from tests.apps.speech.wav_files import sine, write_wav


def test_help_lists_the_speech_commands(capsys):
    with pytest.raises(SystemExit):
        main(["speech", "--help"])
    shown = capsys.readouterr().out
    assert all(word in shown for word in ("train", "predict", "show"))
    assert main(["speech"]) == 2  # no sub-command: the usage, status 2


def test_train_tiny_then_predict_and_show_with_its_model(fsdd_root, tmp_path, capsys):
    status = main(["speech", "train", "--model", "2d", "--data-dir", str(fsdd_root),
                   "--takes", "6", "--epochs", "1", "--frames", "32", "--n-mels", "24",
                   "--augment", "none", "--out", str(tmp_path), "--name", "tiny",
                   "--verbose", "0", "--threads", "1"])
    assert status == 0
    run = tmp_path / "tiny"
    assert (run / "model.npz").is_file() and (run / "checkpoint.npz").is_file()
    assert capsys.readouterr().out.startswith(f"{run}: Test accuracy ")
    # another rate and stereo work through the same path
    wave = write_wav(tmp_path / "tone.wav", np.stack([sine(500, 0.5, 16000)] * 2, 1), 16000)
    assert main(["speech", "predict", str(wave), "--model", str(run)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{wave}: ") and "resampled from 16000 Hz" in line
    png = tmp_path / "show.png"
    assert main(["speech", "show", str(wave), "--model", str(run), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_refuses_other_settings(tmp_path, capsys):
    assert main(["speech", "train", "--resume", str(tmp_path), "--lr", "0.1"]) == 2
    assert "only --epochs and --threads" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"not audio at all", b"RIFF\x00\x00"])
def test_a_bad_file_is_one_line_and_status_2(tmp_path, content):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "cnnlab", "speech", "predict", str(bad)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab speech: error: ")
    assert "bad.wav" in lines[0]


def test_a_model_that_is_not_a_speech_model_is_refused(tmp_path, capsys):
    from cnnlab.io import save_model
    from cnnlab.models import get

    model = get("lecture", input_shape=(1, 28, 28))
    save_model(model, tmp_path / "lecture.npz")
    wave = write_wav(tmp_path / "a.wav", sine(300, 0.3))
    assert main(["speech", "predict", str(wave), "--model", str(tmp_path / "lecture.npz")]) == 2
    assert "not a speech model" in capsys.readouterr().err
