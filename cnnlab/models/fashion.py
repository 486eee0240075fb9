"""``fashion``: a small, strong network for 1×28×28 Fashion-MNIST on a CPU."""

from __future__ import annotations

from cnnlab.nn import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
)


def fashion(num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """Two VGG-style stages with batch norm, then a small dense head.

    [Conv 32@3×3 pad 1 → BN → ReLU] ×2 → MaxPool 2 → Dropout 0.25 →
    [Conv 64@3×3 pad 1 → BN → ReLU] ×2 → MaxPool 2 → Dropout 0.25 →
    Flatten (64·7·7 = 3,136) → Dense 256 → BN → ReLU → Dropout 0.5 → Dense 10.

    The convolutions carry no bias (batch norm's β replaces it). About 18 M
    multiply-adds per 28×28 image forward (≈ 37 MFLOP; a training step ≈ 3×).
    Parameters for 10 classes: 871,082 trainable + 896 non-trainable (running statistics).
    """
    def conv_block(filters):
        return [Conv2D(filters, 3, padding=1, use_bias=False), BatchNorm(), ReLU()]

    return Sequential(
        *conv_block(32),
        *conv_block(32),
        MaxPool2D(2),
        Dropout(0.25),
        *conv_block(64),
        *conv_block(64),
        MaxPool2D(2),
        Dropout(0.25),
        Flatten(),
        Dense(256, use_bias=False),
        BatchNorm(),
        ReLU(),
        Dropout(0.5),
        Dense(num_classes),
        name="fashion",
    )
