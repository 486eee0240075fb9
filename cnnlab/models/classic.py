"""Small classic networks: the lecture's Keras net, LeNet-5 and the 32×32 LeNet variant."""

from __future__ import annotations

from cnnlab.nn import Conv2D, Dense, Flatten, MaxPool2D, Sequential


def lecture(num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """The lecture's Keras CNN for 1×28×28 digits (137,660 parameters with 10 classes).

    Conv 25@3×3 → MaxPool 2 → Conv 50@3×3 → MaxPool 2 → Flatten → Dense 100 ReLU → Dense 10.
    Each first-layer filter has 3·3 = 9 weights, each second-layer filter 25·3·3 = 225.
    Shapes: 28 → 26 → 13 → 11 → 5, so Flatten gives 50·5·5 = 1,250 features.
    """
    return Sequential(
        Conv2D(25, 3, activation="relu"),
        MaxPool2D(2),
        Conv2D(50, 3, activation="relu"),
        MaxPool2D(2),
        Flatten(),
        Dense(100, activation="relu"),
        Dense(num_classes),
        name="lecture",
    )


def lenet5(num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """LeNet-5 (LeCun et al. 1998) on 28×28 inputs padded by 2, in its modern form
    (ReLU and max pooling instead of scaled tanh and trainable subsampling): 61,706 parameters.

    Conv 6@5×5 pad 2 (28) → MaxPool 2 (14) → Conv 16@5×5 (10) → MaxPool 2 (5) →
    Flatten 400 → Dense 120 → Dense 84 → Dense 10.
    """
    return Sequential(
        Conv2D(6, 5, padding=2, activation="relu"),
        MaxPool2D(2),
        Conv2D(16, 5, activation="relu"),
        MaxPool2D(2),
        Flatten(),
        Dense(120, activation="relu"),
        Dense(84, activation="relu"),
        Dense(num_classes),
        name="lenet5",
    )


def lenet32(num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """The 32×32 LeNet variant (Caffe's LeNet filter counts): two conv–pool stages, dense 500, dense 10.

    Conv 20@5×5 (28) → MaxPool 2 (14) → Conv 50@5×5 (10) → MaxPool 2 (5) → Flatten 1,250 →
    Dense 500 ReLU → Dense 10: 656,080 parameters for 1×32×32 inputs and 10 classes.
    """
    return Sequential(
        Conv2D(20, 5),
        MaxPool2D(2),
        Conv2D(50, 5),
        MaxPool2D(2),
        Flatten(),
        Dense(500, activation="relu"),
        Dense(num_classes),
        name="lenet32",
    )
