"""``cnnlab filters``, ``features`` and ``maximize`` on a saved 8×8 digits model: the files
they write, and a clear one-line error (status 2, no traceback) for each bad input."""

import numpy as np
import pytest
from PIL import Image

from cnnlab import nn
from cnnlab.cli import main
from cnnlab.io import save_model


@pytest.fixture(scope="module")
def saved(trained_digits, tmp_path_factory):
    """(model file, a digit PNG)."""
    model, images, _ = trained_digits
    folder = tmp_path_factory.mktemp("saved")
    save_model(model, folder / "digits.npz")
    Image.fromarray(np.round(images[0, 0] * 255).astype(np.uint8)).save(folder / "digit.png")
    return folder / "digits.npz", folder / "digit.png"


def _error(capsys, command):
    err = capsys.readouterr().err
    assert err.startswith(f"cnnlab {command}: error: ") and "Traceback" not in err
    return err


def test_filters_writes_the_first_layers_grid(saved, tmp_path, capsys):
    path, _ = saved
    assert main(["filters", str(path), "--out", str(tmp_path)]) == 0
    picture = np.asarray(Image.open(tmp_path / "filters_conv2d.png"))
    # 8 filters of 3×3: 2 rows of 4 tiles, 7 × 15 px, enlarged by whole pixel repeats
    assert picture.shape[0] % 7 == 0 and picture.shape[1] == picture.shape[0] // 7 * 15
    assert "filters_conv2d.png" in capsys.readouterr().out
    assert main(["filters", str(path), "--layer", "conv2d_1", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "filters_conv2d_1.png").is_file()


def test_filters_of_a_dense_layer_or_an_unreadable_run(saved, tmp_path, capsys):
    path, image = saved
    assert main(["filters", str(path), "--layer", "dense", "--out", str(tmp_path)]) == 2
    assert "the conv layers are: conv2d, conv2d_1" in _error(capsys, "filters")
    assert main(["filters", str(image), "--out", str(tmp_path)]) == 2
    assert "digit.png" in _error(capsys, "filters")
    assert main(["filters", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "missing" in _error(capsys, "filters")


def test_features_draws_every_conv_layer_for_an_image(saved, tmp_path):
    path, image = saved
    assert main(["features", str(path), str(image), "--fit", "resize", "--no-invert",
                 "--out", str(tmp_path)]) == 0
    for name in ("input.png", "features_conv2d.png", "features_conv2d_1.png"):
        assert (tmp_path / name).is_file()
    assert main(["features", str(path), str(image), "--layer", "dense",
                 "--out", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "features_dense.png").is_file()


def test_features_bad_inputs(saved, tmp_path, capsys):
    path, image = saved
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["features", str(path), str(broken), "--out", str(tmp_path)]) == 2
    assert "broken.png" in _error(capsys, "features")
    assert main(["features", str(path), str(image), "--layer", "conv9", "--out",
                 str(tmp_path)]) == 2
    assert "unknown layer 'conv9'" in _error(capsys, "features")
    two = nn.Sequential(nn.Conv2D(2, 3), nn.Flatten(), nn.Dense(3), seed=0).build((2, 6, 6))
    save_model(two, tmp_path / "two.npz")
    assert main(["features", str(tmp_path / "two.npz"), str(image), "--out", str(tmp_path)]) == 2
    assert "2-channel images" in _error(capsys, "features")


def test_maximize_draws_the_lectures_three_grids(saved, tmp_path, capsys):
    path, _ = saved
    assert main(["maximize", str(path), "--steps", "4", "--out", str(tmp_path)]) == 0
    for name in ("conv2d_1", "dense", "classes"):
        assert (tmp_path / f"maximize_{name}.png").is_file()
    out = capsys.readouterr().out
    # the lecture's feature maps are after the ReLU that follows each layer
    assert "conv2d_1 (after relu_1) filter 11:" in out and "filter 12:" not in out
    assert "dense (after relu_2) neuron 8:" in out and "logits class 9:" in out
    assert main(["maximize", str(path), "--layer", "dense", "--units", "0,3", "--l1", "0.5",
                 "--steps", "3", "--fourier", "--out", str(tmp_path / "one")]) == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["maximize_dense.png"]


def test_maximize_bad_inputs(saved, tmp_path, capsys):
    path, image = saved
    argv = ["maximize", str(path), "--steps", "1", "--out", str(tmp_path)]
    assert main([*argv, "--layer", "conv2d_1", "--units", "10-16"]) == 2
    assert "valid units are 0 to 15" in _error(capsys, "maximize")
    assert main([*argv, "--units", "3-1"]) == 2
    assert "expected units like '0-11'" in _error(capsys, "maximize")
    assert main([*argv, "--layer", "conv9"]) == 2
    assert "the model's layers are: conv2d, relu" in _error(capsys, "maximize")
    assert main(["maximize", str(image), "--out", str(tmp_path)]) == 2
    assert "digit.png" in _error(capsys, "maximize")
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--l1", "-1"])
    assert exit_.value.code == 2


@pytest.mark.parametrize("command", ["filters", "features", "maximize"])
def test_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"  cnnlab {command} runs/fashion" in capsys.readouterr().out


def test_a_layer_name_from_a_file_cannot_leave_the_out_folder(tmp_path):
    from cnnlab.explain.cli_units import _file_name

    for name in ("../../escape", "/etc/passwd", "a\\b", "dense"):
        path = (tmp_path / _file_name("maximize", name)).resolve()
        assert path.parent == tmp_path.resolve()
    assert _file_name("filters", "block.conv2d") == "filters_block.conv2d.png"


def test_a_batch_too_large_for_the_array_limit_is_refused(trained_digits):
    from cnnlab.explain.cli_units import _check_batch
    from cnnlab.explain.probe import ExplainError
    from cnnlab.limits import override

    model = trained_digits[0]
    with override(max_array_bytes=10 * 64 * 8):  # room for 10 images of 1×8×8 in float64
        _check_batch(model, 10)
        with pytest.raises(ExplainError, match="11 images of shape .* draw fewer --units"):
            _check_batch(model, 11)
