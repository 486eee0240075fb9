"""``cnnlab saliency`` and ``cnnlab occlusion``: the files written, and bad input."""

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.io import save_model


@pytest.fixture(scope="module")
def files(trained_digits, tmp_path_factory):
    """(model file, two 8×8 digit PNGs) in a temporary folder."""
    model, images, _labels = trained_digits
    folder = tmp_path_factory.mktemp("attribution")
    save_model(model, folder / "digits.npz")
    paths = []
    for i in range(2):
        path = folder / f"digit{i}.png"
        Image.fromarray(np.round(images[i, 0] * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return str(folder / "digits.npz"), paths


def run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_saliency_writes_a_sheet_per_image_and_the_sanity_figure(files, tmp_path, capsys):
    model, images = files
    status, out, err = run(["saliency", model, *images, "--fit", "resize", "--method", "all",
                            "--samples", "3", "--steps", "4", "--sanity", "--out", str(tmp_path)],
                           capsys)
    assert status == 0, err
    for name in ("digit0-all.png", "digit1-all.png", "saliency-all.png", "sanity-gradient.png",
                 "sanity-gradcam.png",
                 "sanity-smoothgrad.png", "sanity-integrated-gradients.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG"
    assert "rank correlation after randomising dense_1" in out


def test_one_method_with_a_layer_and_a_target(files, tmp_path, capsys):
    model, images = files
    status, out, err = run(["saliency", model, images[0], "--fit", "resize", "--method",
                            "gradcam", "--layer", "conv2d", "--target", "3", "--out",
                            str(tmp_path)], capsys)
    assert status == 0, err
    assert (tmp_path / "digit0-gradcam.png").is_file() and "digit0-gradcam.png" in out


def test_occlusion_writes_its_sheet(files, tmp_path, capsys):
    model, images = files
    status, _out, err = run(["occlusion", model, images[1], "--fit", "resize", "--patch", "3",
                            "--stride", "1", "--baseline", "0.5", "--logit", "--out", str(tmp_path)],
                          capsys)
    assert status == 0, err
    with Image.open(tmp_path / "digit1-occlusion.png") as picture:
        assert picture.format == "PNG"


def test_help_shows_an_example(capsys):
    for command in ("saliency", "occlusion"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "example:" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["saliency", "{model}", "{image}", "--method", "gradcam", "--layer", "conv9"],
     "unknown layer 'conv9'; the model's layers are: conv2d, relu"),
    (["saliency", "{model}", "{image}", "--method", "gradcam", "--layer", "dense"],
     "not (C, H, W)"),
    (["saliency", "{model}", "{image}", "--layer", "conv2d"], "--layer is Grad-CAM's"),
    (["saliency", "{model}", "{image}", "--target", "11"], "unknown target class '11'"),
    (["saliency", "{model}", "{image}", "--target", "cat"], "0 to 9"),
    (["saliency", "{model}", "{broken}"], "broken.png"),
    (["saliency", "{model}", "{missing}"], "missing.png"),
    (["occlusion", "{model}", "{image}", "--patch", "9"], "larger than the model's input"),
    (["occlusion", "{broken}", "{image}"], "broken.png"),
])
def test_bad_input_is_one_line_and_status_2(files, tmp_path, capsys, argv, message):
    model, images = files
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    names = {"model": model, "image": images[0], "broken": str(tmp_path / "broken.png"),
             "missing": str(tmp_path / "missing.png")}
    argv = [a.format(**names) for a in argv] + ["--fit", "resize", "--out", str(tmp_path / "o")]
    status, _out, err = run(argv, capsys)
    assert status == 2
    assert err.startswith(f"cnnlab {argv[0]}: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
