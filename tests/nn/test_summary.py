"""summary(): the Keras-like table and the published parameter counts."""

from __future__ import annotations

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import models, nn

LECTURE_TABLE = """\
Model: "lecture"
_________________________________________________________________
 Layer (type)                Output Shape              Param #
=================================================================
 conv2d (Conv2D)             (None, 25, 26, 26)        250

 max_pool2d (MaxPool2D)      (None, 25, 13, 13)        0

 conv2d_1 (Conv2D)           (None, 50, 11, 11)        11,300

 max_pool2d_1 (MaxPool2D)    (None, 50, 5, 5)          0

 flatten (Flatten)           (None, 1250)              0

 dense (Dense)               (None, 100)               125,100

 dense_1 (Dense)             (None, 10)                1,010
=================================================================
Total params: 137,660
Trainable params: 137,660
Non-trainable params: 0
_________________________________________________________________"""


def _totals(text):
    lines = {
        line.split(":")[0]: int(line.split(":")[1].replace(",", ""))
        for line in text.splitlines()
        if line.endswith(tuple("0123456789")) and ":" in line
    }
    return lines["Total params"], lines["Trainable params"], lines["Non-trainable params"]


def test_lecture_net_table_exactly():
    model = models.get("lecture")
    assert model.summary() == LECTURE_TABLE
    # 25 filters of 3·3 weights + 25 biases; 50 filters of 25·3·3 = 225 weights + 50 biases
    assert 25 * 9 + 25 == 250 and 50 * 225 + 50 == 11_300
    assert 1250 * 100 + 100 == 125_100 and 100 * 10 + 10 == 1_010
    assert model.num_parameters() == 137_660


def test_lenet5_count():
    text = models.lenet5().summary((1, 28, 28))
    assert _totals(text) == (61_706, 61_706, 0)
    hand = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert hand == 61_706
    assert "(None, 6, 28, 28)" in text and "(None, 400)" in text


def test_alexnet_count_without_allocating():
    model = models.alexnet(num_classes=1000)
    text = model.summary((3, 227, 227))
    assert _totals(text) == (60_965_224, 60_965_224, 0)
    assert model.parameters() == []  # counted from shapes: nothing was allocated
    for shape in [
        "(None, 96, 55, 55)",
        "(None, 96, 27, 27)",
        "(None, 256, 27, 27)",
        "(None, 256, 13, 13)",
        "(None, 256, 6, 6)",
        "(None, 9216)",
        "(None, 4096)",
        "(None, 1000)",
    ]:
        assert shape in text
    hand = (
        (96 * 3 * 121 + 96)
        + (256 * 48 * 25 + 256)
        + (384 * 256 * 9 + 384)
        + (384 * 192 * 9 + 384)
        + (256 * 192 * 9 + 256)
        + (9216 * 4096 + 4096)
        + (4096 * 4096 + 4096)
        + (4096 * 1000 + 1000)
    )
    assert hand == 60_965_224


def test_vgg16_count_without_allocating():
    model = models.vgg16(num_classes=1000)
    text = model.summary((3, 224, 224))
    assert _totals(text) == (138_357_544, 138_357_544, 0)
    assert model.parameters() == []
    assert "(None, 512, 7, 7)" in text and "(None, 25088)" in text


def test_lenet32_and_fashion_counts_by_hand():
    lenet32 = (20 * 25 + 20) + (50 * 20 * 25 + 50) + (50 * 5 * 5 * 500 + 500) + (500 * 10 + 10)
    assert _totals(models.lenet32().summary((1, 32, 32))) == (lenet32, lenet32, 0)
    convs = 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 64 * 64 * 9  # no conv bias: batch norm follows
    bn_channels = 32 + 32 + 64 + 64 + 256
    dense = 64 * 7 * 7 * 256 + (256 * 10 + 10)
    trainable = convs + 2 * bn_channels + dense
    assert _totals(models.fashion().summary((1, 28, 28))) == (
        trainable + 2 * bn_channels,
        trainable,
        2 * bn_channels,
    )
    assert models.get("fashion").num_parameters() == trainable


def test_summary_of_unbuilt_model_needs_an_input_shape():
    model = nn.Sequential(nn.Dense(3))
    with pytest.raises(ValueError, match="pass input_shape"):
        model.summary()


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.branches = nn.ModuleList([nn.Conv1D(3, 2), nn.Conv1D(3, 4)])
        self.head = nn.Sequential(nn.Dense(5), nn.ReLU(), nn.Dense(2))

    def forward(self, x):
        pooled = [branch(x).max(axis=2) for branch in self.branches]
        return self.head(F.concat(pooled, axis=1))


def test_summary_of_a_custom_module_traces_its_children():
    model = TwoTower()
    text = model.summary((4, 9))
    rows = [
        line.split()[0] for line in text.splitlines() if line.startswith(" ") and "(None" in line
    ]
    assert rows == ["branches.0", "branches.1", "head"]
    assert "(None, 3, 8)" in text and "(None, 3, 6)" in text and "(None, 2)" in text
    expected = (3 * 4 * 2 + 3) + (3 * 4 * 4 + 3) + (6 * 5 + 5) + (5 * 2 + 2)
    assert _totals(text) == (expected, expected, 0)
    assert model.training


def test_summary_counts_batchnorm_statistics_as_non_trainable():
    model = nn.Sequential(nn.Conv2D(4, 3, use_bias=False), nn.BatchNorm())
    out = model.summary((2, 5, 5))
    assert _totals(out) == (4 * 2 * 9 + 16, 4 * 2 * 9 + 8, 8)
    model.build((2, 5, 5))
    assert _totals(model.summary()) == _totals(out)
    assert np.all(model.batch_norm.running_var == 1)
