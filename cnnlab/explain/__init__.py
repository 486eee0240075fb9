"""What a CNN learned: filters, feature maps, activation maximisation, saliency, Grad-CAM,
occlusion, the sanity check, Deep Dream and style transfer, for any cnnlab model.

NumPy arrays in and out, NCHW, images as float pixels in [0, 1] (the model's normalisation is
applied inside). Layers are named as ``summary()`` prints them. The modules:

- ``probe``: layers by name, the input space, gradients to the input or to a layer;
- ``units``: ``filters``, ``kernels``, ``feature_maps``; ``maximization``: ``maximize`` (+ ``param``:
  pixel and Fourier parameterisations, transformation robustness);
- ``attribution``: ``saliency`` by gradient, SmoothGrad, integrated gradients, Grad-CAM;
  ``occlusion_maps``: ``occlusion``;
  ``sanity``: Adebayo et al.'s parameter-randomisation check;
- ``dream``: Deep Dream; ``style``: Gatys et al.'s style transfer; ``extractor``: the random-weight
  multi-scale features; ``importers``: VGG weights from torchvision files, never unpickled;
- ``figures``: grids, heat-maps, sheets, PNG files; ``commands``: the ``cnnlab`` commands.
"""

from cnnlab.explain.attribution import (
    IntegratedGradients,
    gradcam,
    integrated_gradients,
    saliency,
)
from cnnlab.explain.dream import DreamResult, deep_dream
from cnnlab.explain.extractor import random_extractor
from cnnlab.explain.importers import load_vgg_weights
from cnnlab.explain.maximization import Maximized, maximize
from cnnlab.explain.occlusion_maps import occlusion
from cnnlab.explain.probe import (
    ExplainError,
    conv_layer_names,
    dense_layer_names,
    layer_names,
)
from cnnlab.explain.sanity import SanityResult, sanity_check
from cnnlab.explain.style import StyleResult, gram, style_transfer
from cnnlab.explain.units import feature_maps, filters, kernels

__all__ = [
    "DreamResult",
    "ExplainError",
    "IntegratedGradients",
    "Maximized",
    "SanityResult",
    "StyleResult",
    "conv_layer_names",
    "deep_dream",
    "dense_layer_names",
    "feature_maps",
    "filters",
    "gradcam",
    "gram",
    "integrated_gradients",
    "kernels",
    "layer_names",
    "load_vgg_weights",
    "maximize",
    "occlusion",
    "random_extractor",
    "saliency",
    "sanity_check",
    "style_transfer",
]
