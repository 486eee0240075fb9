"""Feature extractors for Deep Dream and style transfer that need no download.

``random_extractor`` is a multi-scale convolutional net whose weights are never trained:
He, Wang & Hopcroft (NIPS 2016) and Ustyuzhaninov, Brendel, Gatys & Bethge (2016) showed
that the Gram matrices of random filters already capture textures well enough for
texture synthesis and style transfer. Scale comes from depth: each stage sees a region
twice as wide as the one before (receptive fields 5, 10, 20, 40 px with the defaults), so
the style layers together describe the image from fine grain to large strokes.

The architecture was chosen by measurement (docs/explain/art.md: style transfer judged by
two other random nets, and by eye): max pooling left speckle noise that avg pooling
doesn't; two convs per stage or twice the width cost 2–4× the time for no better result;
3 stages gave less style, 3×3 first filters more noise than 5×5.

Layer names are those ``summary()`` prints: "conv2d", "conv2d_1", ... (each with its ReLU
fused, so a conv's output is already rectified), "avg_pool2d", ...
``style_layer_names`` and ``content_layer_name`` choose defaults for it and for any model.
"""

from __future__ import annotations

import numpy as np

from cnnlab._checks import check_choice, check_int
from cnnlab.explain.probe import ExplainError, conv_layer_names, find_layer, layer_names
from cnnlab.nn import AvgPool2D, BatchNorm, Conv2D, MaxPool2D, ReLU, Sequential
from cnnlab.nn.module import Module

__all__ = ["content_layer_name", "random_extractor", "style_layer_names"]

#: the measured choice (docs/explain/art.md)
DEFAULT_WIDTHS = (32, 64, 128, 128)


def random_extractor(channels: int = 3, seed: int = 0, widths=DEFAULT_WIDTHS,
                     convs_per_stage: int = 1, kernel_size: int = 3, pool: str = "avg",
                     first_kernel_size: int = 5) -> Sequential:
    """A random-weight multi-scale feature extractor (He-normal filters, zero biases).

    Stage i: ``convs_per_stage`` convolutions of ``widths[i]`` filters (ReLU fused, 'same'
    padding), then 2×2 pooling (``pool``: "avg" or "max") before the next stage. The first
    convolution is ``first_kernel_size`` wide: on a random net a larger first kernel sees
    colour blobs and strokes, not only pixel-to-pixel edges.

    Images are pixels in [0, 1]; the stored normalisation centres them ((x − 0.5) / 0.25),
    as random zero-mean filters respond best to a zero-mean input.
    Built for (channels, 64, 64) but size-free: any image of at least 2^(stages−1) px.
    """
    channels = check_int(channels, "random_extractor", "channels", minimum=1)
    seed = check_int(seed, "random_extractor", "seed", minimum=0)
    pool = check_choice(pool, ["avg", "max"], "random_extractor", "pool")
    widths = [check_int(w, "random_extractor", "widths", minimum=1) for w in widths]
    if not widths:
        raise ExplainError("random_extractor: widths must name at least one stage, received ()")
    convs_per_stage = check_int(convs_per_stage, "random_extractor", "convs_per_stage", minimum=1)
    layers = []
    for stage, width in enumerate(widths):
        if stage:
            layers.append(AvgPool2D(2) if pool == "avg" else MaxPool2D(2))
        for i in range(convs_per_stage):
            size = first_kernel_size if stage == 0 and i == 0 else kernel_size
            layers.append(Conv2D(width, size, padding="same", activation="relu"))
    model = Sequential(*layers, name="random_extractor", seed=seed).build((channels, 64, 64))
    model.normalization = {"mean": 0.5, "std": 0.25}
    return model


def _rectified_name(model: Module, name: str) -> str:
    """A conv's name, or the ReLU layer right after it, past a batch norm (Gatys' features
    are rectified)."""
    if isinstance(model, Sequential) and name in model._order:
        order = model._order
        i = order.index(name) + 1
        while i < len(order) and isinstance(model[order[i]], BatchNorm):
            i += 1
        if i < len(order) and isinstance(model[order[i]], ReLU):
            return order[i]
    return name


def style_layer_names(model: Module, count: int | None = None) -> list[str]:
    """Default style layers: the first convolution of each scale (after each pooling; all
    convolutions when that gives fewer than ``count``), rectified; at most ``count``
    (default 5, as Gatys' conv1_1 … conv5_1)."""
    count = 5 if count is None else check_int(count, "style_layer_names", "count", minimum=1)
    convs = conv_layer_names(model)
    if not convs:
        raise ExplainError(
            f"the model has no convolution layers to take style from; its layers are: "
            f"{', '.join(layer_names(model))}"
        )
    firsts, previous_pooled = [], True
    for name in layer_names(model):
        module = find_layer(model, name)
        if isinstance(module, Conv2D):
            if previous_pooled:
                firsts.append(name)
            previous_pooled = False
        elif isinstance(module, (AvgPool2D, MaxPool2D)) or getattr(module, "stride", (1,)) != (1, 1):
            previous_pooled = True
    chosen = firsts if len(firsts) >= min(count, len(convs)) else convs
    return [_rectified_name(model, n) for n in chosen[:count]]


def content_layer_name(model: Module) -> str:
    """Default content layer: a conv in the middle of the network (Gatys' conv4_2 is the
    10th of VGG-19's 16), rectified; deep enough to leave style free to change textures."""
    convs = conv_layer_names(model)
    if not convs:
        raise ExplainError(
            f"the model has no convolution layers to take content from; its layers are: "
            f"{', '.join(layer_names(model))}"
        )
    return _rectified_name(model, convs[min(len(convs) - 1, int(np.ceil(len(convs) * 0.6)) - 1)])
