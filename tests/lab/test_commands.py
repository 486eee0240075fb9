import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.lab import commands, figures


def _size(path):
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        return picture.size


def test_kernels_command_writes_gallery_and_four_panel(tmp_path, capsys):
    status = commands.main(["kernels", "--kernel", "emboss", "--size", "40", "--out", str(tmp_path)])
    assert status == 0
    assert _size(tmp_path / "gallery.png") == figures.pixel_size(figures.FIGSIZES["gallery"])
    assert _size(tmp_path / "four_panel_emboss.png") == figures.pixel_size(figures.FIGSIZES["four_panel"])
    for name in ("correlation_vs_convolution_emboss.png", "colour_kernel.png", "one_to_many.png", "many_to_one.png"):
        assert (tmp_path / name).stat().st_size > 1000
    table = (tmp_path / "output_sizes.md").read_text()
    assert "| 40 | 3 | 2 | 1 | 20 |" in table
    out = capsys.readouterr().out
    assert "camera 40×40" in out and "sobel-x: " in out


def test_kernels_command_on_an_image_file(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "noise.png")
    status = commands.main(["kernels", str(tmp_path / "noise.png"), "--size", "30", "--out", str(tmp_path / "o")])
    assert status == 0
    assert _size(tmp_path / "o" / "four_panel_sobel-x.png") == figures.pixel_size(figures.FIGSIZES["four_panel"])


def test_kernels_command_rejects_unknown_kernels(tmp_path):
    with pytest.raises(SystemExit, match="unknown kernel 'nope'"):
        commands.main(["kernels", "--kernel", "nope", "--out", str(tmp_path)])


def test_fit_kernel_command(tmp_path, capsys):
    status = commands.main(["fit-kernel", "--kernel", "sobel-y", "--size", "32", "--bias", "0.5",
                            "--out", str(tmp_path)])
    assert status == 0
    assert _size(tmp_path / "fit_kernel_sobel-y.png") == figures.pixel_size(figures.FIGSIZES["fit_kernel"])
    record = json.loads((tmp_path / "fit_kernel_sobel-y.json").read_text())
    assert record["max_error"] < 1e-3
    np.testing.assert_allclose(record["learned_kernel"], record["true_kernel"], atol=1e-3)
    assert "max |learned - true|" in capsys.readouterr().out


def test_fit_kernel_command_reports_failure_to_converge(tmp_path):
    assert commands.main(["fit-kernel", "--steps", "3", "--size", "32", "--out", str(tmp_path)]) == 1


def test_invariance_command(tmp_path, capsys):
    from cnnlab import nn
    from cnnlab.data import load_dataset
    from cnnlab.io import save_model
    from cnnlab.training import evaluate, fit

    digits = load_dataset("digits")
    model = nn.Sequential(nn.Conv2D(4, 3, seed=0), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10, seed=1))
    model.build((1, 8, 8))
    fit(model, digits.train, epochs=2, batch_size=32, lr=3e-3, verbose=0)
    run = tmp_path / "run"
    run.mkdir()
    save_model(model, run / "model.npz")
    status = commands.main(["invariance", str(run), "--dataset", "digits", "--max-shift", "2",
                            "--max-rotation", "10", "--rotation-step", "10"])
    assert status == 0
    record = json.loads((run / "invariance.json").read_text())
    plain = evaluate(model, digits.test)["accuracy"]
    assert record["accuracy"] == pytest.approx(plain, abs=1e-12)
    assert record["shift"]["pixels"] == [0, 1, 2]
    assert record["shift"]["accuracy"][0] == pytest.approx(plain, abs=1e-12)
    assert record["rotation"]["degrees"] == [0.0, 10.0]
    assert _size(run / "invariance.png") == figures.pixel_size(figures.FIGSIZES["invariance"])
    assert "plain accuracy" in capsys.readouterr().out


def test_invariance_command_errors(tmp_path):
    with pytest.raises(SystemExit, match="no model file or run directory"):
        commands.main(["invariance", str(tmp_path / "missing")])
    (tmp_path / "a.npz").write_bytes(b"x")
    (tmp_path / "b.npz").write_bytes(b"x")
    with pytest.raises(SystemExit, match="cannot tell which model"):
        commands.main(["invariance", str(tmp_path)])
    with pytest.raises(SystemExit, match="a.npz"):
        commands.main(["invariance", str(tmp_path / "a.npz")])
