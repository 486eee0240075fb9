"""``st-cnn`` and ``stn-plain``: the spatial transformer CNN of Jaderberg et al. (2015) at
cnnlab scale, and the plain CNN with the same classifier to compare it against.

The paper's ST-CNN puts a spatial transformer (a localisation net of conv–pool–conv–pool–
dense–dense, then a bilinear sampler) in front of a plain CNN classifier. Both models here
share the classifier exactly, so a difference in error is the transformer's. Every layer
sizes itself from the first input: the builders work for 1×28×28 digits and Fashion-MNIST as
for the 1×42×42 canvases of the RTS experiment.
"""

from __future__ import annotations

from cnnlab.nn import (
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    SpatialTransformer,
)
from cnnlab.nn.spatial import TRANSFORMS

__all__ = ["st_cnn", "st_localization", "stn_classifier", "stn_plain"]


def stn_classifier(num_classes: int = 10) -> list:
    """The classifier both models share (layers, in order; sized by the first input):

    Conv 16@5×5 pad 2 → ReLU → MaxPool 2 → Conv 32@5×5 pad 2 → ReLU → MaxPool 2 →
    Flatten → Dense 128 → ReLU → Dense num_classes.

    On 1×28×28: 3.0 M multiply-adds a forward image, 215,370 parameters (10 classes);
    on 1×42×42 (10·10·32 = 3,200 features after the poolings): 424,266 parameters.
    """
    return [
        Conv2D(16, 5, padding=2),
        ReLU(),
        MaxPool2D(2),
        Conv2D(32, 5, padding=2),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(128),
        ReLU(),
        Dense(num_classes),
    ]


def st_localization(transform: str = "affine") -> Sequential:
    """The localisation net: Conv 8@5×5 → ReLU → MaxPool 2 → Conv 16@5×5 → ReLU → MaxPool 2 →
    Flatten → Dense 32 → ReLU → Dense K (K = 6 for "affine", 4 "rst", 2 "translation";
    ``SpatialTransformer`` sets this last layer to the identity transform)."""
    return Sequential(
        Conv2D(8, 5), ReLU(), MaxPool2D(2),
        Conv2D(16, 5), ReLU(), MaxPool2D(2),
        Flatten(), Dense(32), ReLU(), Dense(TRANSFORMS[transform]),
        name="localization",
    )


def st_cnn(num_classes: int = 10, in_channels: int = 1, transform: str = "affine",
           output_size=None, localization_lr_scale=None) -> Sequential:
    """SpatialTransformer(st_localization(transform)) followed by ``stn_classifier``.

    Args:
        num_classes, in_channels: as the other builders (every layer takes its input
            channels from the first input).
        transform: "affine", "rst" or "translation" (``SpatialTransformer``).
        output_size: the transformer's output (H, W); None: the input's size.
        localization_lr_scale: the localisation net's learning rate as a multiple of the
            optimiser's (None: the same).
    """
    transformer = SpatialTransformer(st_localization(transform), output_size=output_size,
                                     transform=transform,
                                     localization_lr_scale=localization_lr_scale)
    return Sequential(transformer, *stn_classifier(num_classes), name="st_cnn")


def stn_plain(num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """The plain CNN to compare ``st_cnn`` against: ``stn_classifier`` alone
    (``in_channels`` as in ``st_cnn``)."""
    return Sequential(*stn_classifier(num_classes), name="stn_plain")
