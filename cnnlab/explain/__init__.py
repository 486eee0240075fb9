"""What a CNN learned: filters, feature maps, activation maximisation, saliency, Grad-CAM,
occlusion, the sanity check, Deep Dream and style transfer, for any cnnlab model.

NumPy arrays in and out, NCHW, images as float pixels in [0, 1] (the model's normalisation is
applied inside). Layers are named as ``summary()`` prints them; ``probe`` has the machinery.
"""

from cnnlab.explain.probe import (
    ExplainError,
    conv_layer_names,
    dense_layer_names,
    layer_names,
)

__all__ = ["ExplainError", "conv_layer_names", "dense_layer_names", "layer_names"]
