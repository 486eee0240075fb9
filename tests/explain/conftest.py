"""Models the explanation tests share: a small conv net trained on scikit-learn's 8×8 digits."""

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.data.datasets import load_digits


def digits_net(seed: int = 0) -> nn.Sequential:
    """conv 8 → conv 16 → pool → dense 32 → dense 10 on 1×8×8 (unbuilt weights: seeded)."""
    return nn.Sequential(
        nn.Conv2D(8, 3, padding=1), nn.ReLU(),
        nn.Conv2D(16, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(32), nn.ReLU(), nn.Dense(10), seed=seed,
    ).build((1, 8, 8))


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits split (uint8 images 1×8×8)."""
    return load_digits()


@pytest.fixture(scope="session")
def trained_digits(digits):
    """(model, test images in [0, 1], test labels): ``digits_net`` after 8 epochs of Adam
    (test accuracy above 0.9; a few seconds). Tests must not modify the model."""
    model = digits_net()
    model.fit(digits.train, epochs=8, batch_size=32, lr=3e-3, seed=0, verbose=0)
    images = digits.test.images.astype(np.float32) / 255.0
    return model, images, digits.test.labels


@pytest.fixture
def trained_digits_copy(trained_digits):
    """A fresh copy of the trained model (for tests that change weights)."""
    model, images, labels = trained_digits
    copy = digits_net()
    copy.load_state_dict(model.state_dict())
    copy.normalization = model.normalization
    return copy, images, labels
