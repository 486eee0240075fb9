"""cnnlab.manual_seed: the stream of layers built at construction without a seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnnlab
from cnnlab import models, nn
from cnnlab.nn import seeding

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_the_stream():
    # manual_seed changes process-wide state: leave it as the other tests found it.
    saved = (seeding._base, dict(seeding._created))
    yield
    seeding._base, seeding._created = saved[0], saved[1]


def _eager_layers():
    return [
        nn.Dense(5, in_features=4),
        nn.Conv2D(3, 3, in_channels=2),
        nn.Dense(2, in_features=5),
        nn.Conv1D(4, 2, in_channels=3),
    ]


def _weights(layers):
    return [p.data.copy() for layer in layers for p in layer.parameters()]


def test_manual_seed_makes_a_rerun_cell_reproduce_its_weights():
    cnnlab.manual_seed(11)
    first = _weights(_eager_layers())
    _eager_layers()  # whatever else the process creates in between ...
    nn.Dense(7, in_features=7)
    cnnlab.manual_seed(11)  # ... the re-run cell starts the stream again
    again = _weights(_eager_layers())
    assert len(first) == 8
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_without_manual_seed_the_weights_depend_on_what_came_before():
    cnnlab.manual_seed(11)
    first = _weights(_eager_layers())
    second = _weights(_eager_layers())  # the stream moved on
    assert not any(np.array_equal(a, b) for a, b in zip(first, second) if a.ndim > 1)


def test_different_manual_seeds_give_different_weights():
    cnnlab.manual_seed(1)
    one = nn.Conv2D(3, 3, in_channels=2).weight.data
    cnnlab.manual_seed(2)
    two = nn.Conv2D(3, 3, in_channels=2).weight.data
    assert not np.array_equal(one, two)


def test_manual_seed_0_gives_the_weights_of_a_fresh_process(tmp_path):
    script = (
        "import sys, numpy as np, cnnlab\n"
        "assert 'cnnlab.nn' not in sys.modules  # import cnnlab stays light\n"
        "from cnnlab import nn\n"
        "layers = [nn.Dense(5, in_features=4), nn.Conv2D(3, 3, in_channels=2)]\n"
        "weights = [p.data.ravel() for layer in layers for p in layer.parameters()]\n"
        "np.save(sys.argv[1], np.concatenate(weights))\n"
    )
    out = tmp_path / "fresh.npy"
    subprocess.run(
        [sys.executable, "-c", script, str(out)],
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    fresh = np.load(out)
    _eager_layers()  # this process has created layers before
    cnnlab.manual_seed(0)
    layers = [nn.Dense(5, in_features=4), nn.Conv2D(3, 3, in_channels=2)]
    ours = np.concatenate([p.data.ravel() for layer in layers for p in layer.parameters()])
    np.testing.assert_array_equal(ours, fresh)


def test_explicit_seeds_and_model_seeds_do_not_depend_on_manual_seed():
    cnnlab.manual_seed(1)
    seeded = nn.Dense(3, in_features=4, seed=7).weight.data
    model = models.get("lecture", seed=0)
    lazy = nn.Sequential(nn.Dense(3), seed=5).build((4,))
    cnnlab.manual_seed(2)
    np.testing.assert_array_equal(nn.Dense(3, in_features=4, seed=7).weight.data, seeded)
    for (name, p), (_, q) in zip(
        model.named_parameters(), models.get("lecture", seed=0).named_parameters()
    ):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    np.testing.assert_array_equal(
        nn.Sequential(nn.Dense(3), seed=5).build((4,)).dense.weight.data, lazy.dense.weight.data
    )


def test_manual_seed_is_the_one_in_nn_and_checks_its_argument():
    assert cnnlab.manual_seed is seeding.manual_seed
    with pytest.raises(
        ValueError, match=r"manual_seed: seed must be an int >= 0, received seed=-1"
    ):
        cnnlab.manual_seed(-1)
    with pytest.raises(TypeError, match=r"manual_seed: seed must be an int, received seed='3'"):
        cnnlab.manual_seed("3")
    with pytest.raises(TypeError, match=r"seed must be an int, received seed=True"):
        cnnlab.manual_seed(True)
    cnnlab.manual_seed(np.int64(3))  # NumPy integers are ints
