"""``cnnlab dream`` and ``cnnlab style``: PNGs in --out, and bad input as a one-line error."""

import json
import struct

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.io import save_model

from .conftest import digits_net


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:48] / 48
    content = np.stack([0.5 + 0.4 * np.sin(4 * x + c) * np.cos(3 * y) for c in range(3)], -1)
    style = (rng.random((20, 20, 3)) > 0.5).repeat(2, 0).repeat(2, 1) * 1.0
    paths = tmp_path / "content.png", tmp_path / "style.jpg"
    Image.fromarray(np.uint8(content * 255)).save(paths[0])
    Image.fromarray(np.uint8(style * 255)).save(paths[1])
    return paths


def png_size(path):
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        return picture.size


def error_of(capsys, command, argv):
    """Status 2 and 'cnnlab <command>: error: ...' with no traceback; the message."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cnnlab {command}: error: " in err and "Traceback" not in err, err
    return err


def test_dream_with_the_random_extractor(photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["dream", str(photos[0]), "--size", "32", "--octaves", "2", "--steps", "1",
                 "--out", str(out)]) == 0
    assert "dream: layer conv2d_2" in capsys.readouterr().out
    assert png_size(out / "dream.png") == (320, 270)  # 32×27, enlarged 10× by pixel repeats
    assert png_size(out / "dream_sheet.png")[0] > 300


def test_style_writes_the_image_and_the_sheet(photos, tmp_path, capsys):
    out = tmp_path / "style"
    assert main(["style", str(photos[0]), str(photos[1]), "--size", "24", "--steps", "3",
                 "--style-weight", "100", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "style: 3 steps, loss" in printed
    assert png_size(out / "style.png") == (312, 260)  # 24×20 enlarged 13×
    assert png_size(out / "style_sheet.png")[0] > 600


def test_a_cnnlab_model_and_vgg_weights_as_features(photos, tmp_path, capsys):
    model = digits_net()
    save_model(model, tmp_path / "digits.npz")
    out = tmp_path / "d"
    assert main(["dream", str(photos[0]), "--model", str(tmp_path / "digits.npz"), "--layer",
                 "relu_1", "--size", "16", "--octaves", "2", "--steps", "1", "--out", str(out)]) == 0
    with Image.open(out / "dream.png") as picture:
        assert picture.mode == "L"  # the model is grayscale: so is the dream
    rng = np.random.default_rng(0)
    weights = {"features.0.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
               "features.0.bias": np.zeros(4, np.float32),
               "features.3.weight": rng.standard_normal((4, 4, 3, 3)).astype(np.float32),
               "features.3.bias": np.zeros(4, np.float32)}
    np.savez(tmp_path / "vgg.npz", **weights)
    assert main(["style", str(photos[0]), str(photos[1]), "--features", str(tmp_path / "vgg.npz"),
                 "--size", "16", "--steps", "2", "--out", str(tmp_path / "s")]) == 0
    assert "style: 2 steps" in capsys.readouterr().out
    assert png_size(tmp_path / "s" / "style.png") == (320, 260)  # 16×13 enlarged 20×


def test_bad_input_is_one_line_and_status_2(photos, tmp_path, capsys):
    base = ["--size", "16", "--steps", "1", "--out", str(tmp_path / "o")]
    err = error_of(capsys, "dream", ["dream", str(photos[0]), "--layer", "conv9", *base])
    assert "unknown layer 'conv9'" in err and "conv2d, avg_pool2d, conv2d_1" in err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    err = error_of(capsys, "style", ["style", str(photos[0]), str(broken), *base])
    assert "broken.png" in err
    err = error_of(capsys, "style", ["style", str(photos[0]), str(tmp_path / "none.jpg"), *base])
    assert "none.jpg" in err
    err = error_of(capsys, "dream", ["dream", str(photos[0]), "--size", "4", "--out", str(tmp_path)])
    assert "too small" in err
    bad = tmp_path / "vgg.safetensors"
    text = json.dumps({"features.0.weight": {"dtype": "F32", "shape": [4, 3, 3, 3],
                                             "data_offsets": [0, 400]}}).encode()
    bad.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 10)
    err = error_of(capsys, "dream", ["dream", str(photos[0]), "--model", str(bad), *base])
    assert "vgg.safetensors" in err and "outside the file" in err
    err = error_of(capsys, "style", ["style", str(photos[0]), str(photos[1]), "--features",
                                     str(tmp_path / "no-run"), *base])
    assert "no-run" in err
    with pytest.raises(SystemExit) as exit_:
        main(["style", str(photos[0]), str(photos[1]), "--steps", "0"])
    assert exit_.value.code == 2


def test_help_shows_examples(capsys):
    for command in ("dream", "style"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"example:\n  cnnlab {command} " in capsys.readouterr().out
