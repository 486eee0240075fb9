"""Layers and models: ``Module``, the built-in layers, ``Sequential`` and ``from_config``.

The math lives in ``cnnlab.functional``; layers only own parameters and call it.
"""

from cnnlab.nn import init
from cnnlab.nn.activation import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from cnnlab.nn.bias import PositionalBias
from cnnlab.nn.config import from_config, register
from cnnlab.nn.container import ModuleList, Parallel, Sequential
from cnnlab.nn.conv import Conv1D, Conv2D
from cnnlab.nn.dense import Dense, Flatten
from cnnlab.nn.embedding import Embedding
from cnnlab.nn.global_max import GlobalMaxPool1D
from cnnlab.nn.layer import Layer, WeightSpec
from cnnlab.nn.module import Module
from cnnlab.nn.normalization import BatchNorm, LocalResponseNorm
from cnnlab.nn.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from cnnlab.nn.regularization import Dropout
from cnnlab.nn.seeding import manual_seed
from cnnlab.nn.spatial import SpatialTransformer
from cnnlab.nn.summary import summary
from cnnlab.nn.upsample import Upsample2D

__all__ = [
    "AvgPool2D", "BatchNorm", "Conv1D", "Conv2D", "Dense", "Dropout", "Embedding", "Flatten",
    "GlobalAvgPool2D", "GlobalMaxPool1D", "Layer", "LeakyReLU", "LocalResponseNorm", "MaxPool2D",
    "Module", "ModuleList", "Parallel", "PositionalBias", "ReLU", "Sequential", "Sigmoid",
    "Softmax", "SpatialTransformer", "Tanh", "Upsample2D",
    "WeightSpec", "from_config", "init", "manual_seed", "register", "summary",
]
