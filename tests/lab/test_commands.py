import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.lab import commands, figures

REPO = Path(__file__).resolve().parents[2]


def cnnlab(*args, cwd, timeout=240):
    """Run ``python -m cnnlab ARGS`` in ``cwd`` with this checkout's package first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _size(path):
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        return picture.size


def _assert_cli_error(status, stderr, command, *fragments):
    """The main CLI's convention: status 2 and 'cnnlab <command>: error: ...', no traceback."""
    assert status == 2, stderr
    assert f"cnnlab {command}: error: " in stderr, stderr
    assert "Traceback" not in stderr, stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


def test_kernels_command_writes_gallery_and_four_panel(tmp_path, capsys):
    status = commands.main(
        ["kernels", "--kernel", "emboss", "--size", "40", "--out", str(tmp_path)]
    )
    assert status == 0
    assert _size(tmp_path / "gallery.png") == figures.pixel_size(figures.FIGSIZES["gallery"])
    four_panel = _size(tmp_path / "four_panel_emboss.png")
    assert four_panel == figures.pixel_size(figures.FIGSIZES["four_panel"])
    for name in (
        "correlation_vs_convolution_emboss.png",
        "colour_kernel.png",
        "one_to_many.png",
        "many_to_one.png",
    ):
        assert (tmp_path / name).stat().st_size > 1000
    table = (tmp_path / "output_sizes.md").read_text()
    assert "| 40 | 3 | 2 | 1 | 20 |" in table
    out = capsys.readouterr().out
    assert "camera 40×40" in out and "sobel-x: " in out


def test_kernels_command_on_an_image_file(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "noise.png")
    status = commands.main(
        ["kernels", str(tmp_path / "noise.png"), "--size", "30", "--out", str(tmp_path / "o")]
    )
    assert status == 0
    expected = figures.pixel_size(figures.FIGSIZES["four_panel"])
    assert _size(tmp_path / "o" / "four_panel_sobel-x.png") == expected


def test_kernels_command_smallest_picture_that_fits_the_figures(tmp_path):
    # 3×3 conv: 4 → 2, then 2×2 max pooling: 2 → 1
    assert commands.main(["kernels", "--size", "4", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "four_panel_sobel-x.png").is_file()


def test_kernels_size_2_is_a_clear_error_not_a_traceback(tmp_path):
    result = cnnlab("kernels", "--size", "2", "--out", tmp_path / "o", cwd=tmp_path)
    _assert_cli_error(result.returncode, result.stderr, "kernels", "2×2", "use a larger --size")
    assert not (tmp_path / "o").exists()


def test_kernels_picture_too_small_for_the_pooling_window(tmp_path, capsys):
    status = commands.main(["kernels", "--size", "5", "--pool", "4", "--out", str(tmp_path)])
    _assert_cli_error(status, capsys.readouterr().err, "kernels", "at least 6 pixels")


@pytest.mark.parametrize(
    ("argv", "command", "fragment"),
    [
        (["kernels", "--kernel", "nope"], "kernels", "unknown kernel 'nope'"),
        (["kernels", "missing.png"], "kernels", "missing.png: no such image file"),
        (
            ["fit-kernel", "not-an-image.png"],
            "fit-kernel",
            "not-an-image.png: cannot read the image",
        ),
        (["fit-kernel", "--size", "5"], "fit-kernel", "at least 8 pixels"),
        (["invariance", "missing"], "invariance", "missing: no such model file or run folder"),
    ],
)
def test_lab_errors_follow_the_cli_convention(
    tmp_path, monkeypatch, capsys, argv, command, fragment
):
    monkeypatch.chdir(tmp_path)
    Path("not-an-image.png").write_text("hello")
    status = commands.main([*argv, "--out", str(tmp_path / "out")])
    _assert_cli_error(status, capsys.readouterr().err, command, fragment)
    assert not (tmp_path / "out").exists()


def test_an_out_folder_that_cannot_be_made_is_a_cli_error(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    status = commands.main(["kernels", "--size", "8", "--out", str(tmp_path / "taken")])
    _assert_cli_error(
        status, capsys.readouterr().err, "kernels", f"{tmp_path / 'taken'}: exists and is not a"
    )
    assert (tmp_path / "taken").read_text() == "a file, not a folder"
    status = commands.main(["kernels", "--size", "8", "--out", "/proc/no-such/folder"])
    _assert_cli_error(status, capsys.readouterr().err, "kernels", "/proc/no-such")


@pytest.mark.parametrize(
    "argv",
    [
        ["kernels", "--size", "0"],
        ["kernels", "--pool", "-1"],
        ["fit-kernel", "--lr", "nan"],
        ["fit-kernel", "--lr", "0"],
        ["fit-kernel", "--momentum", "1"],
        ["fit-kernel", "--steps", "x"],
        ["invariance", "run", "--rotation-step", "0"],
        ["invariance", "run", "--max-shift", "-1"],
    ],
)
def test_bad_flag_values_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        commands.main(argv)
    assert stop.value.code == 2
    assert f"cnnlab {argv[0]}: error: argument {argv[-2]}: expected " in capsys.readouterr().err


def test_fit_kernel_command(tmp_path, capsys):
    status = commands.main(
        [
            "fit-kernel",
            "--kernel",
            "sobel-y",
            "--size",
            "32",
            "--bias",
            "0.5",
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0
    expected = figures.pixel_size(figures.FIGSIZES["fit_kernel"])
    assert _size(tmp_path / "fit_kernel_sobel-y.png") == expected
    record = json.loads((tmp_path / "fit_kernel_sobel-y.json").read_text())
    assert record["max_error"] < 1e-3
    np.testing.assert_allclose(record["learned_kernel"], record["true_kernel"], atol=1e-3)
    assert "max |learned - true|" in capsys.readouterr().out


def test_fit_kernel_takes_the_picture_as_positional_image(tmp_path, capsys):
    pixels = np.random.default_rng(1).integers(0, 256, (24, 24), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "noise.png")
    status = commands.main(
        ["fit-kernel", str(tmp_path / "noise.png"), "--size", "24", "--out", str(tmp_path / "o")]
    )
    assert status == 0
    assert (
        json.loads((tmp_path / "o" / "fit_kernel_horizontal-edge.json").read_text())["image"]
        == "noise"
    )
    assert "on noise 24×24" in capsys.readouterr().out
    # the old spelling still works, and says it is old
    assert (
        commands.main(
            [
                "fit-kernel",
                "--image",
                str(tmp_path / "noise.png"),
                "--size",
                "24",
                "--steps",
                "5",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "--image is deprecated; use IMAGE" in capsys.readouterr().err


def test_fit_kernel_command_reports_failure_to_converge(tmp_path, capsys):
    assert (
        commands.main(["fit-kernel", "--steps", "3", "--size", "32", "--out", str(tmp_path)]) == 1
    )
    assert "not recovered to within 0.001" in capsys.readouterr().err


def test_fit_kernel_lr_5_diverges_with_an_error_no_warnings_no_figure(tmp_path):
    result = cnnlab("fit-kernel", "--lr", "5", "--out", tmp_path / "o", cwd=tmp_path)
    _assert_cli_error(
        result.returncode, result.stderr, "fit-kernel", "descent diverged", "smaller learning rate"
    )
    assert "Warning" not in result.stderr and "overflow" not in result.stderr
    assert "nan" not in result.stdout
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A run folder as ``cnnlab train`` leaves it: model.npz, checkpoint.npz, run.json, ..."""
    base = tmp_path_factory.mktemp("train")
    result = cnnlab(
        "train",
        "--epochs",
        "1",
        "--augment",
        "none",
        "--verbose",
        "0",
        "--out",
        base,
        "--name",
        "digits-run",
        cwd=base,
    )
    assert result.returncode == 0, result.stderr
    return base / "digits-run"


def test_invariance_on_a_run_with_only_a_checkpoint(small_run, tmp_path, capsys):
    run = tmp_path / "stopped-run"
    run.mkdir()
    for name in ("checkpoint.npz", "run.json"):
        (run / name).write_bytes((small_run / name).read_bytes())
    status = commands.main(["invariance", str(run), "--max-shift", "0", "--max-rotation", "0"])
    assert status == 0, capsys.readouterr().err
    record = json.loads((run / "invariance.json").read_text())
    assert record["model"] == str(run / "checkpoint.npz") and record["dataset"] == "digits"
    assert 0.5 < record["accuracy"] <= 1.0
    # the data is the one run.json names, not a default
    info = json.loads((run / "run.json").read_text())
    for holder in (info, info.get("args"), info.get("settings")):
        for key in ("data", "dataset"):
            if isinstance(holder, dict) and key in holder:
                holder[key] = "no-such-data"
    (run / "run.json").write_text(json.dumps(info))
    status = commands.main(["invariance", str(run), "--max-shift", "0", "--max-rotation", "0"])
    _assert_cli_error(status, capsys.readouterr().err, "invariance", "no-such-data")
    # the checkpoint after the last epoch holds the finished run's weights
    from cnnlab.data import load_dataset
    from cnnlab.io import load_model
    from cnnlab.training import evaluate

    finished = load_model(small_run / "model.npz")
    test = load_dataset("digits", image_size=(28, 28)).test
    assert record["accuracy"] == pytest.approx(evaluate(finished, test)["accuracy"], abs=1e-12)


def _tiny_model_on_8x8_digits():
    from cnnlab import nn
    from cnnlab.data import load_dataset
    from cnnlab.training import fit

    digits = load_dataset("digits")
    model = nn.Sequential(
        nn.Conv2D(4, 3, seed=0), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10, seed=1)
    )
    model.build((1, 8, 8))
    fit(model, digits.train, epochs=2, batch_size=32, lr=3e-3, verbose=0)
    return model, digits


@pytest.mark.parametrize("flag", ["--data", "--dataset"])
def test_invariance_command(tmp_path, capsys, flag):
    from cnnlab.io import save_model
    from cnnlab.training import evaluate

    model, digits = _tiny_model_on_8x8_digits()
    run = tmp_path / "run"
    run.mkdir()
    save_model(model, run / "model.npz")
    status = commands.main(
        [
            "invariance",
            str(run),
            flag,
            "digits",
            "--max-shift",
            "2",
            "--max-rotation",
            "10",
            "--rotation-step",
            "10",
        ]
    )
    assert status == 0
    record = json.loads((run / "invariance.json").read_text())
    plain = evaluate(model, digits.test)["accuracy"]
    assert record["accuracy"] == pytest.approx(plain, abs=1e-12)
    assert record["shift"]["pixels"] == [0, 1, 2]
    assert record["shift"]["accuracy"][0] == pytest.approx(plain, abs=1e-12)
    assert record["rotation"]["degrees"] == [0.0, 10.0]
    assert _size(run / "invariance.png") == figures.pixel_size(figures.FIGSIZES["invariance"])
    captured = capsys.readouterr()
    assert "plain accuracy" in captured.out
    assert ("--dataset is deprecated; use --data" in captured.err) == (flag == "--dataset")


def test_invariance_command_errors(tmp_path, capsys):
    (tmp_path / "a.npz").write_bytes(b"x")
    (tmp_path / "b.npz").write_bytes(b"x")
    status = commands.main(["invariance", str(tmp_path)])
    _assert_cli_error(
        status, capsys.readouterr().err, "invariance", "neither model.npz nor checkpoint.npz"
    )
    status = commands.main(["invariance", str(tmp_path / "a.npz")])
    _assert_cli_error(status, capsys.readouterr().err, "invariance", "a.npz")
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.npz").write_bytes(b"PK\x03\x04 truncated")
    status = commands.main(["invariance", str(run)])
    _assert_cli_error(status, capsys.readouterr().err, "invariance", str(run / "model.npz"))


def test_invariance_refuses_a_corrupt_run_json(tmp_path, capsys):
    model, _ = _tiny_model_on_8x8_digits()
    from cnnlab.io import save_model

    save_model(model, tmp_path / "model.npz")
    (tmp_path / "run.json").write_text("{not json")
    status = commands.main(["invariance", str(tmp_path)])
    _assert_cli_error(
        status,
        capsys.readouterr().err,
        "invariance",
        f"{tmp_path / 'run.json'}: the run file is not valid JSON",
    )


def test_invariance_of_several_models_on_one_plot_with_padding(tmp_path, capsys):
    from cnnlab import nn
    from cnnlab.data import ArrayDataset
    from cnnlab.io import save_model
    from cnnlab.training import evaluate, fit

    small, digits = _tiny_model_on_8x8_digits()
    canvas = np.zeros((len(digits.train), 1, 12, 12), dtype=np.uint8)
    canvas[:, :, 2:10, 2:10] = digits.train.images
    padded_train = ArrayDataset(canvas, digits.train.labels, digits.train.class_names, "pad")
    large = nn.Sequential(nn.Conv2D(4, 3, seed=0), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
                          nn.Dense(10, seed=1))
    large.build((1, 12, 12))
    fit(large, padded_train, epochs=2, batch_size=32, lr=3e-3, verbose=0)
    for name, model in (("small", small), ("large", large)):
        save_model(model, tmp_path / f"{name}.npz")
    out = tmp_path / "both"
    status = commands.main(
        ["invariance", str(tmp_path / "small.npz"), str(tmp_path / "large.npz"), "--data",
         "digits", "--fit", "pad", "--max-shift", "1", "--max-rotation", "0", "--out", str(out)]
    )
    assert status == 0, capsys.readouterr().err
    record = json.loads((out / "invariance.json").read_text())
    assert sorted(record["models"]) == ["large", "small"]
    assert record["models"]["small"]["accuracy"] == pytest.approx(
        evaluate(small, digits.test)["accuracy"], abs=1e-12)
    # The 12×12 model sees the 8×8 test images centred on a zero canvas, normalised with the
    # padded training split's statistics.
    test_canvas = np.zeros((len(digits.test), 1, 12, 12), dtype=np.uint8)
    test_canvas[:, :, 2:10, 2:10] = digits.test.images
    padded_test = ArrayDataset(test_canvas, digits.test.labels, digits.test.class_names, "pad",
                               mean=padded_train.mean, std=padded_train.std)
    assert record["models"]["large"]["accuracy"] == pytest.approx(
        evaluate(large, padded_test)["accuracy"], abs=1e-12)
    assert _size(out / "invariance.png") == figures.pixel_size(figures.FIGSIZES["invariance"])
    # --fit pad refuses images larger than the model's input.
    tiny = nn.Sequential(nn.Flatten(), nn.Dense(10, seed=0))
    tiny.build((1, 6, 6))
    save_model(tiny, tmp_path / "tiny.npz")
    status = commands.main(["invariance", str(tmp_path / "tiny.npz"), "--data", "digits",
                            "--fit", "pad", "--out", str(out)])
    _assert_cli_error(status, capsys.readouterr().err, "invariance", "do not fit")
