import json

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.data import ArrayDataset, load_dataset
from cnnlab.data.augment import shift_images
from cnnlab.lab import figures
from cnnlab.lab.invariance import InvarianceCurves, format_curves, invariance_curves
from cnnlab.training import evaluate, fit


@pytest.fixture(scope="module")
def digits():
    """Native 8×8 digits: a tiny, fast stand-in for the 28×28 study."""
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained(digits):
    model = nn.Sequential(
        nn.Conv2D(8, 3, seed=0), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10, seed=1)
    )
    model.build((1, 8, 8))
    fit(model, digits.train, epochs=4, batch_size=32, lr=3e-3, seed=0, verbose=0)
    return model


@pytest.fixture(scope="module")
def curves(trained, digits):
    return invariance_curves(
        trained, digits.test, shifts=(0, 1, 3), rotations=(0, 20, 45), scales=(0.6, 1.0, 1.4)
    )


def test_curves_start_at_the_plain_test_accuracy(trained, digits, curves):
    plain = evaluate(trained, digits.test)["accuracy"]
    assert plain > 0.6  # the tiny model did learn something
    assert curves.accuracy == plain
    assert curves.shifts[0] == 0 and curves.shift_accuracy[0] == plain
    assert curves.rotations[0] == 0 and curves.rotation_accuracy[0] == plain
    assert curves.at("scale", 1.0) == plain


def test_large_transformations_hurt(curves):
    assert curves.at("shift", 3) < curves.accuracy - 0.2
    assert curves.at("rotation", 45) < curves.accuracy - 0.1
    assert curves.at("scale", 0.6) < curves.accuracy - 0.1
    assert all(
        0.0 <= a <= 1.0
        for a in curves.shift_accuracy + curves.rotation_accuracy + curves.scale_accuracy
    )


def test_shift_is_the_mean_over_four_directions(trained, digits, curves):
    test = digits.test
    scores = []
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        moved = ArrayDataset(
            shift_images(test.images, dx, dy),
            test.labels,
            test.class_names,
            "moved",
            mean=test.mean,
            std=test.std,
        )
        scores.append(evaluate(trained, moved)["accuracy"])
    assert curves.at("shift", 1) == pytest.approx(np.mean(scores), abs=1e-12)


def test_round_trip_table_and_figure(tmp_path, curves):
    again = InvarianceCurves.from_dict(json.loads(json.dumps(curves.to_dict())))
    assert again == curves
    text = format_curves({"tiny": curves, "same": again})
    assert "shift" in text and "rotation" in text and "scale" in text
    assert f"{curves.accuracy:.4f}" in text
    path = figures.invariance_figure({"tiny": curves}, tmp_path / "inv.png")
    from PIL import Image

    with Image.open(path) as picture:
        assert picture.size == figures.pixel_size(figures.FIGSIZES["invariance"])


def test_arguments_are_checked(trained, digits):
    with pytest.raises(TypeError, match="invariance_curves: expected an ArrayDataset"):
        invariance_curves(trained, (digits.test.images, digits.test.labels))
    with pytest.raises(
        ValueError,
        match=r"invariance_curves: scales\[1\] must be a finite number > 0"
        r"\.0, received scales\[1\]=0\.0",
    ):
        invariance_curves(trained, digits.test, scales=(1.0, 0.0))
    with pytest.raises(
        ValueError, match=r"invariance_curves: rotations\[0\] must be .* in \[0\.0, 360"
    ):
        invariance_curves(trained, digits.test, rotations=(400,))
    with pytest.raises(ValueError, match="invariance_curves: shifts must not be empty"):
        invariance_curves(trained, digits.test, shifts=())
    with pytest.raises(TypeError, match="invariance_curves: batch_size must be an int"):
        invariance_curves(trained, digits.test, batch_size=2.0)
    with pytest.raises(ValueError, match="was not measured"):
        InvarianceCurves(accuracy=1.0, shifts=[0], shift_accuracy=[1.0]).at("shift", 2)
