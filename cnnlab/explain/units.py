"""What one layer holds and what it computes: a conv layer's kernels as pictures, and any
layer's activations (feature maps) for given images."""

from __future__ import annotations

import numpy as np

from cnnlab.explain import probe
from cnnlab.explain.figures import tile
from cnnlab.explain.probe import ExplainError
from cnnlab.nn.conv import Conv2D
from cnnlab.tensor import Tensor, no_grad

__all__ = ["feature_maps", "filters", "kernels", "map_grid"]


def _conv_layer(model, layer: str | None) -> tuple[str, Conv2D]:
    convs = probe.conv_layer_names(model)
    if not convs:
        raise ExplainError("filters: the model has no conv layer (Conv2D)")
    name = convs[0] if layer is None else layer
    module = probe.find_layer(model, name)
    if not isinstance(module, Conv2D):
        raise ExplainError(
            f"filters: layer {name!r} is a {type(module).__name__}, not a conv layer; "
            f"the conv layers are: {', '.join(convs)}"
        )
    return name, module


def kernels(model, layer: str | None = None) -> np.ndarray:
    """The raw weights of a conv layer (default: the first): (C_out, C_in / groups, kh, kw)."""
    _, module = _conv_layer(model, layer)
    if module.weight is None:
        raise ExplainError("filters: the model is not built (its conv layer has no weights)")
    return np.array(module.weight.data, dtype=np.float64, copy=True)


def filters(model, layer: str | None = None, pad: int = 1) -> np.ndarray:
    """A conv layer's kernels (default: the first layer's) as one image grid, 0 at grey 0.5.

    Each filter is scaled on its own, symmetrically: w ↦ 0.5 + 0.5 · w / max|w_filter|, so
    its sign pattern shows whatever its magnitude (the raw numbers: ``kernels``).

    Layout, for weights (C_out, C_in, kh, kw), tiles separated by ``pad`` white pixels:
    - C_in = 3 (a colour image's first layer): (3, H, W), one RGB tile per filter;
    - C_in = 1: (1, H, W), one tile per filter, in a near-square grid (32: 4 rows of 8);
    - otherwise: (1, H, W), one row per filter and one column per input channel.
    """
    weights = kernels(model, layer)
    out_channels, in_channels, kh, kw = weights.shape
    bound = np.abs(weights).max(axis=(1, 2, 3), keepdims=True)
    scaled = 0.5 + 0.5 * np.divide(weights, bound, out=np.zeros_like(weights), where=bound > 0)
    if in_channels in (1, 3):
        return tile(scaled, columns=_columns(out_channels), pad=pad)
    return tile(scaled.reshape(out_channels * in_channels, 1, kh, kw), columns=in_channels, pad=pad)


def _columns(count: int) -> int:
    """A near-square grid's width that fills its last row when it can: 32 → 8 (4 × 8)."""
    side = int(np.ceil(np.sqrt(count)))
    for columns in range(side, 2 * side + 1):
        if count % columns == 0:
            return columns
    return side


def feature_maps(model, layer: str, images) -> np.ndarray:
    """``layer``'s output for ``images`` (C, H, W) or (N, C, H, W) in [0, 1]: (N, C', H', W')
    for a conv-shaped layer, (N, F) for a dense one. The model's normalisation is applied."""
    probe.find_layer(model, layer)
    x = probe.as_images(model, images, "feature_maps")
    with probe.inspecting(model), no_grad():
        return np.array(probe.forward(model, Tensor(x), layer).data, copy=True)


def map_grid(maps: np.ndarray, pad: int = 1) -> np.ndarray:
    """One image's feature maps (C, H, W) as a (1, H', W') grid in [0, 1], one tile per
    channel; each channel scaled from min(0, its min) to its max, so a channel that is zero
    everywhere (a dead ReLU) is black, not grey."""
    maps = np.asarray(maps, dtype=np.float64)
    low = np.minimum(maps.min(axis=(1, 2), keepdims=True), 0.0)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)
    return tile(scaled[:, None], columns=_columns(len(maps)), pad=pad)
