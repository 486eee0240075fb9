"""ImageNet classics: AlexNet (2012), VGG-16 and VGG-19 (2014)."""

from __future__ import annotations

from cnnlab.nn import (
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LocalResponseNorm,
    MaxPool2D,
    Sequential,
)


def alexnet(num_classes: int = 1000, in_channels: int = 3) -> Sequential:
    """AlexNet as in Krizhevsky, Sutskever & Hinton (2012), for 3×227×227 images.

    The two-GPU split is kept as groups=2 in conv2, conv4 and conv5 (each half sees
    only its GPU's channels); LRN (n=5, α=1e-4, β=0.75, k=2) follows the ReLU of conv1
    and conv2; max pooling overlaps (3×3, stride 2); dropout 0.5 after fc6 and fc7.
    60,965,224 parameters with 1,000 classes.

    Shapes: 227 → 55 → 27 → 27 → 13 → 13 → 13 → 13 → 6, so Flatten gives 256·6·6 = 9,216.
    """
    return Sequential(
        Conv2D(96, 11, stride=4, activation="relu"),
        LocalResponseNorm(5, 1e-4, 0.75, 2.0),
        MaxPool2D(3, stride=2),
        Conv2D(256, 5, padding=2, groups=2, activation="relu"),
        LocalResponseNorm(5, 1e-4, 0.75, 2.0),
        MaxPool2D(3, stride=2),
        Conv2D(384, 3, padding=1, activation="relu"),
        Conv2D(384, 3, padding=1, groups=2, activation="relu"),
        Conv2D(256, 3, padding=1, groups=2, activation="relu"),
        MaxPool2D(3, stride=2),
        *_classifier(num_classes),
        name="alexnet",
    )


VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
VGG19_STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))


def vgg16(num_classes: int = 1000, in_channels: int = 3) -> Sequential:
    """VGG-16 (configuration D of Simonyan & Zisserman 2014) for 3×224×224 images.

    Thirteen 3×3 convolutions (padding 1) in five stages of 64, 128, 256, 512, 512
    filters, each stage closed by 2×2 max pooling (224 → 7), then Dense 4096 →
    Dense 4096 → Dense 1000 with dropout 0.5: 138,357,544 parameters.
    """
    return vgg(VGG16_STAGES, num_classes, name="vgg16")


def vgg19(num_classes: int = 1000, in_channels: int = 3) -> Sequential:
    """VGG-19 (configuration E of Simonyan & Zisserman 2014) for 3×224×224 images.

    Sixteen 3×3 convolutions in stages of 2, 2, 4, 4, 4 (64 … 512 filters), each closed by
    2×2 max pooling, then the same head as VGG-16: 143,667,240 parameters. Gatys et al.'s
    style transfer uses its conv1_1 … conv5_1 (here conv2d, conv2d_2, conv2d_4, conv2d_8,
    conv2d_12) and conv4_2 (conv2d_9).
    """
    return vgg(VGG19_STAGES, num_classes, name="vgg19")


def vgg(stages, num_classes: int | None = 1000, hidden: int = 4096, name: str = "vgg") -> Sequential:
    """A VGG of any ``stages`` ((filters, convolutions) per stage, each closed by 2×2 max
    pooling): the layout torchvision's VGG configurations share. ``num_classes=None`` leaves
    out the head (convolutions and pooling only, for features)."""
    layers = []
    for filters, repeats in stages:
        layers += [Conv2D(filters, 3, padding=1, activation="relu") for _ in range(repeats)]
        layers.append(MaxPool2D(2))
    head = [] if num_classes is None else _classifier(num_classes, hidden)
    return Sequential(*layers, *head, name=name)


def _classifier(num_classes: int, hidden: int = 4096) -> list:
    """The head AlexNet and VGG share: Flatten → Dense 4096 → Dense 4096 → Dense classes, dropout 0.5."""
    return [
        Flatten(),
        Dense(hidden, activation="relu"),
        Dropout(0.5),
        Dense(hidden, activation="relu"),
        Dropout(0.5),
        Dense(num_classes),
    ]
