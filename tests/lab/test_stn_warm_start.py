"""scripts/stn_warm_start.py: the localisation net's warm start on R and RTS."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlab import functional as F
from cnnlab import models
from cnnlab.data import load_dataset
from cnnlab.data.distort import distort_images, distort_splits, undoing_theta

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


@pytest.fixture(scope="module")
def warm():
    return _load("stn_warm_start")


@pytest.fixture(scope="module")
def study():
    return _load("stn_study")


@pytest.mark.parametrize("transform", ["affine", "rst", "translation"])
def test_targets_give_the_undoing_theta(warm, transform):
    images = np.zeros((9, 1, 28, 28), np.uint8)
    kind = "R" if transform == "rst" else "RTS"
    _, params = distort_images(images, kind, 4, return_parameters=True)
    if transform == "translation":
        params = {"degrees": np.zeros(9), "scale": np.ones(9), "offset": params["offset"]}
    theta = undoing_theta(kind, params, (28, 28))
    targets = warm.target_parameters(transform, theta)
    np.testing.assert_allclose(F.transform_theta(targets, transform).data, theta, atol=1e-12)


def test_rst_targets_of_a_general_affine_keep_its_scale_and_angle(warm):
    _, params = distort_images(np.zeros((6, 1, 28, 28), np.uint8), "P", 2, return_parameters=True)
    theta = undoing_theta("P", params, (28, 28))
    scale, angle, tx, ty = warm.target_parameters("rst", theta).T
    np.testing.assert_allclose(scale ** 2, np.abs(np.linalg.det(theta[:, :, :2])))
    np.testing.assert_allclose(np.tan(angle), theta[:, 1, 0] / theta[:, 0, 0])
    np.testing.assert_array_equal(np.stack([tx, ty], 1), theta[:, :, 2])


def test_warm_start_teaches_the_localisation_net_to_undo_rotations(warm):
    clean = load_dataset("digits", image_size=28)
    train = clean.train.subset(np.arange(600))
    rotated = distort_splits(clean, "R", 0)
    model = models.st_cnn(10, 1, transform="rst", localization_lr_scale=0.1)
    model.seed = 0
    model.build((1, 28, 28))
    classifier_before = [p.data.copy() for p in model.parameters()[-4:]]
    seconds = warm.warm_start(model, train, rotated.train, "R", epochs=8, seed=0)
    assert seconds > 0
    # held-out test images, rotated by the test split's own draws
    _, params = distort_images(clean.test.images, "R", [0, 1], return_parameters=True)
    theta, _ = model[0].warp(rotated.test.normalize(rotated.test.images))
    angle = np.degrees(np.arctan2(theta[:, 1, 0], theta[:, 0, 0]))
    slope = np.polyfit(params["degrees"], angle, 1)[0]
    assert slope < -0.5, slope                    # 0 before: the identity
    assert np.corrcoef(params["degrees"], angle)[0, 1] < -0.8
    # only the localisation net learned
    for before, after in zip(classifier_before, model.parameters()[-4:]):
        np.testing.assert_array_equal(before, after.data)


def test_warm_start_needs_a_spatial_transformer(warm):
    clean = load_dataset("digits", image_size=28)
    with pytest.raises(ValueError, match="no SpatialTransformer"):
        warm.warm_start(models.get("stn-plain"), clean.train, clean.train, "R", 1)


def test_study_counts_the_warm_epochs_in_the_budget(study, tmp_path, capsys):
    out = tmp_path / "select"
    args = ["--data", "digits", "--only", "RTS", "--epochs", "3", "--train-images", "100",
            "--validation", "0.2", "--arms", "st-cnn", "--st-loc-lr-scale", "0.1",
            "--st-warm-epochs", "1", "--verbose", "0", "--out", str(out)]
    assert study.main(args) == 0
    cell = json.loads((out / "cells" / "digits_RTS_st-cnn-loc0.1-warm1.json").read_text())
    assert cell["st_config"] == {"transform": "affine", "localization_lr_scale": 0.1,
                                 "warm_epochs": 1}
    assert cell["epochs"] == 3 and len(cell["val_curve"]) == 2   # 1 warm + 2 end to end
    table = (out / "stn_study.md").read_text()
    assert "affine, localisation lr × 0.1, warm start 1 epochs" in table
    assert "| digits_RTS_st-cnn-loc0.1-warm1 | – | " in table   # epoch 1 was the warm start
    with pytest.raises(SystemExit):
        study.main(["--data", "digits", "--epochs", "3", "--st-warm-epochs", "3",
                    "--out", str(tmp_path / "x")])
    assert "fewer than --epochs" in capsys.readouterr().err
