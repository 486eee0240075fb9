"""The Fashion-MNIST images the epoch cases train on (NumPy only: the memory children use it)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

#: fashion_epoch's training, the same in both frameworks: SGD with momentum, train mode.
FASHION_BATCH_SIZE, FASHION_LEARNING_RATE, FASHION_MOMENTUM = 64, 0.01, 0.9

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
FASHION_MNIST_LABELS = Path("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz")


def fashion_mnist(count: int = 10_000) -> tuple[np.ndarray, np.ndarray, str]:
    """The first ``count`` training images (N, 1, 28, 28) float32, standardised, their int64
    labels, and the source: "fashion-mnist", or "random" (seeded) where it is not installed."""
    if FASHION_MNIST.exists() and FASHION_MNIST_LABELS.exists():
        with gzip.open(FASHION_MNIST) as f:
            images = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
            images = images.reshape(-1, 1, 28, 28)[:count]
        with gzip.open(FASHION_MNIST_LABELS) as f:
            labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:count].astype(np.int64)
        source = "fashion-mnist"
    else:
        rng = np.random.default_rng(3)
        images = rng.integers(0, 256, size=(count, 1, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count).astype(np.int64)
        source = "random"
    x = images.astype(np.float32) / np.float32(255)
    x = (x - x.mean()) / x.std()
    return x.astype(np.float32), labels, source


def he_normal(rng: np.random.Generator, shape, dtype=np.float32) -> np.ndarray:
    """N(0, 2 / fan_in) weights, fan_in = the product of all axes but the first."""
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(dtype)
