"""Models and a runs folder the explorer's tests share (untrained, seeded: the checks compare
the explorer's numbers with cnnlab's own, which needs no training)."""

import numpy as np
import pytest

from cnnlab import models, nn
from cnnlab.io import save_model
from cnnlab.runs import RunInfo, create_run


def _ready(model, seed: int = 0):
    """Normalisation and class names as a trained run has them; batch-norm statistics that
    are not the identity, so that evaluation mode matters."""
    rng = np.random.default_rng(seed)
    model.normalization = {"mean": 0.3, "std": 0.35}
    model.class_names = [f"class {i}" for i in range(10)]
    for name, layer in model.named_modules():
        if isinstance(layer, nn.BatchNorm):
            layer.running_mean[...] = rng.normal(0, 0.1, layer.running_mean.shape)
            layer.running_var[...] = rng.uniform(0.5, 2.0, layer.running_var.shape)
    return model


@pytest.fixture(scope="session")
def lecture():
    """The lecture's net (conv-pool-conv-pool-dense-dense, fused ReLUs) on 1×28×28."""
    return _ready(models.get("lecture", input_shape=(1, 28, 28)))


@pytest.fixture(scope="session")
def fashion():
    """The fashion net (conv-BN-ReLU pairs, pooling, dropout) on 1×28×28."""
    return _ready(models.get("fashion", input_shape=(1, 28, 28)))


def strided_net(dtype=np.float32):
    """Two strided convs (stride 2 with padding 1, then stride 2 that doesn't divide), 1×11×11."""
    model = nn.Sequential(
        nn.Conv2D(4, 3, stride=2, padding=1, activation="relu"),
        nn.Conv2D(3, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Dense(10), seed=3,
    ).build((1, 11, 11))
    return _ready(model.astype(dtype))


@pytest.fixture(scope="session")
def image():
    """A 28×28 image in [0, 1]: a bright ring on black, like a drawn 0."""
    y, x = np.mgrid[:28, :28]
    radius = np.hypot(y - 14, x - 14)
    return (np.exp(-((radius - 8) ** 2) / 4.0)[None]).astype(np.float32)


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory, lecture):
    """A runs folder with one lecture run on digits (model.npz + run.json)."""
    root = tmp_path_factory.mktemp("runs")
    run = create_run(root, "lecture", "digits", name="digits-run")
    save_model(lecture, run.model_file)
    run.write_info(RunInfo("lecture", "digits", {"model": "lecture", "data": "digits"}))
    return root
