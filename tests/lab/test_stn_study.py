"""scripts/stn_study.py: cells written atomically and skipped when done, the summary, figures."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from cnnlab import models
from cnnlab.data import ArrayDataset, Splits
from cnnlab.data.distort import distort_images

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stn_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("stn_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cells_summary_resume_and_figures(study, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["--data", "digits", "--only", "R", "--epochs", "2",
            "--train-images", "100", "--invariance-images", "20", "--verbose", "0",
            "--out", str(out)]
    assert study.main(args) == 0
    first = capsys.readouterr().out
    cells = {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    arms = ["augment", "plain"] + (["st-cnn"] if "st-cnn" in models.available() else [])
    assert sorted(cells) == [f"digits_R_{arm}" for arm in arms]
    for cell in cells.values():
        assert cell["train_images"] == 100 and cell["test_images"] == 360
        assert 0.0 <= cell["test_error"] <= 1.0 and (out / cell["model_file"]).is_file()
    plain = cells["digits_R_plain"]
    table = (out / "stn_study.md").read_text()
    assert f"| digits | plain | {100 * plain['test_error']:.2f} | – | – | – |" in table
    assert "| MNIST (paper) | CNN | 1.2 | 0.8 | 1.5 | 1.4 |" in table
    record = json.loads((out / "stn_study.json").read_text())
    assert len(record["cells"]) == len(arms)
    for name in ("distortions_digits.png", "invariance_digits_R.png"):
        assert (out / name).stat().st_size > 1000
    curves = json.loads((out / "invariance_digits_R.json").read_text())
    assert sorted(curves) == [f"{arm} (trained on R)" for arm in arms]
    if "st-cnn" in models.available():
        assert (out / "st_output_digits_R.png").stat().st_size > 1000
    else:
        assert "digits_R_st-cnn: skipped, the zoo has no 'st-cnn' yet" in first
    # A second invocation skips the finished cells and keeps their numbers.
    assert study.main(args) == 0
    second = capsys.readouterr().out
    assert "digits_R_plain: done already" in second
    assert json.loads((out / "cells" / "digits_R_plain.json").read_text()) == plain
    # --report-only trains nothing, not even a missing cell
    assert study.main(args[:3] + ["R,E", "--report-only"] + args[4:]) == 0
    assert not list((out / "cells").glob("digits_E_*")) and "== digits_E" not in capsys.readouterr().out


def test_unknown_distortion_is_refused(study, tmp_path):
    with pytest.raises(SystemExit):
        study.main(["--only", "R,Q", "--out", str(tmp_path)])


def test_standin_has_the_documented_shapes(study):
    model = study.standin_plain_cnn((1, 42, 42), 10)
    assert model.num_parameters() == 16 * 26 + 32 * (16 * 25 + 1) + 3200 * 128 + 128 + 1290


def test_selection_mode_holds_out_training_images_and_names_the_configuration(study, tmp_path,
                                                                              capsys):
    out = tmp_path / "select"
    args = ["--data", "digits", "--only", "R", "--epochs", "2", "--train-images", "100",
            "--validation", "0.2", "--arms", "st-cnn", "--st-transform", "rst",
            "--st-loc-lr-scale", "0.1", "--verbose", "0", "--out", str(out)]
    assert study.main(args) == 0
    cell = json.loads((out / "cells" / "digits_R_st-cnn-rst-loc0.1.json").read_text())
    assert cell["st_config"] == {"transform": "rst", "localization_lr_scale": 0.1}
    assert cell["scored_on"] == "validation" and "test_error" not in cell
    assert cell["train_images"] == 80 and cell["validation_images"] == 20
    assert cell["validation"] == 0.2 and len(cell["val_curve"]) == 2
    assert cell["val_curve"][-1] == pytest.approx(cell["validation_error"])
    theta = cell["theta"]
    assert theta["images"] == 20 and -1.5 < theta["slope_vs_distortion"] < 1.5
    table = (out / "stn_study.md").read_text()
    assert table.startswith("Validation error")
    assert "rst, localisation lr × 0.1" in table
    assert "Chosen for digits R: **st-cnn-rst-loc0.1**" in table
    assert not (out / "distortions_digits.png").exists()   # the test split is not looked at
    capsys.readouterr()
    # the same cell asked for with another budget is reported, not retrained or mixed in
    assert study.main(args[:5] + ["3"] + args[6:]) == 0
    said = capsys.readouterr().out
    assert "made with another budget: epochs 2 (asked 3)" in said
    assert json.loads((out / "cells" / "digits_R_st-cnn-rst-loc0.1.json").read_text()) == cell


def test_hold_out_is_seeded_disjoint_and_keeps_clean_and_distorted_aligned(study):
    images = np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1).repeat(4, 2).repeat(4, 3)
    data = ArrayDataset(images, np.arange(50) % 10, [str(i) for i in range(10)], "t")
    distorted = ArrayDataset(255 - images, np.arange(50) % 10, data.class_names, "t (R)")
    clean = Splits(data, data)
    first = study.hold_out(clean, Splits(distorted, distorted), 0.2, seed=3)
    again = study.hold_out(clean, Splits(distorted, distorted), 0.2, seed=3)
    other = study.hold_out(clean, Splits(distorted, distorted), 0.2, seed=4)
    clean_train, train, held, index = first
    assert len(held) == 10 and len(train) == 40 == len(clean_train)
    assert np.array_equal(index, again[3]) and not np.array_equal(index, other[3])
    assert set(held.images[:, 0, 0, 0]).isdisjoint(train.images[:, 0, 0, 0])
    assert np.array_equal(255 - clean_train.images, train.images)
    assert np.array_equal(held.images[:, 0, 0, 0], 255 - index)


def test_drawn_degrees_are_the_distortions_angles(study):
    images = np.zeros((7, 1, 28, 28), np.uint8)
    for kind in ("R", "RTS"):
        _, params = distort_images(images, kind, [5, 1], return_parameters=True)
        assert np.array_equal(study.drawn_degrees(kind, 7, [5, 1], (28, 28)), params["degrees"])
    assert study.drawn_degrees("E", 7, [5, 1], (28, 28)) is None


def test_theta_stats_read_the_transformers_angle_and_scale(study):
    model = models.st_cnn(10, 1, transform="rst")
    model.seed = 0
    model.build((1, 28, 28))
    last = model[0].localization[-1]
    last.bias.data[...] = [0.8, np.radians(-20.0), 0.0, 0.0]   # scale 0.8, −20°, weights 0
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.integers(0, 255, (30, 1, 28, 28), dtype=np.uint8),
                        np.zeros(30, np.int64), [str(i) for i in range(10)], "t")
    stats = study.theta_stats(model, data, degrees=np.linspace(-90, 90, 30))
    assert stats["images"] == 30
    assert stats["mean_abs_angle"] == pytest.approx(20.0, abs=1e-3)
    assert stats["mean_scale"] == pytest.approx(0.8, abs=1e-5)
    assert stats["slope_vs_distortion"] == pytest.approx(0.0, abs=1e-6)   # a constant angle
    assert stats["correlation_vs_distortion"] is None
    # a limit that cuts the last chunk short reads exactly that many images
    assert study.theta_stats(model, data, degrees=np.linspace(-90, 90, 30), limit=10)["images"] == 10
    assert study.theta_stats(models.get("stn-plain"), data) is None


def test_an_angle_of_minus_the_distortion_undoes_it(study):
    """The sign the report reads: θ at angle −d (atan2(θ₁₀, θ₀₀), as theta_stats measures it)
    straightens an image that distortion R rotated by d, and +d does not."""
    import cnnlab.functional as F
    from cnnlab.data.distort import affine_place
    from cnnlab.tensor import Tensor

    y, x = np.mgrid[:28, :28]
    image = ((np.abs(x - 9) < 3) & (y > 4) & (y < 24)).astype(np.uint8)[None, None] * 255
    rotated = affine_place(image, 30.0, 1.0, (0.0, 0.0)).astype(np.float64)
    errors = {}
    for angle in (-30.0, 30.0):
        t = np.radians(angle)
        theta = np.array([[[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0]]])
        grid = F.affine_grid(Tensor(theta), (1, 1, 28, 28))
        errors[angle] = np.abs(F.grid_sample(Tensor(rotated), grid).data - image).mean()
    assert errors[-30.0] < 0.25 * errors[30.0]   # 5 against 43: interpolation twice
