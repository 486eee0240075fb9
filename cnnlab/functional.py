"""Every operation of the engine in one namespace: ``import cnnlab.functional as F``.

The math lives in ``cnnlab.ops``; each op's forward and backward sit side by side there.
``conv2d_plan``/``max_pool2d_plan`` say how a convolution or a max pooling will be
computed, and ``conv_routes``/``pool_routes`` force a route.
"""

from cnnlab.ops.activation import (
    leaky_relu,
    log_softmax,
    redirected_relu,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from cnnlab.ops.arithmetic import (
    abs,
    add,
    cast,
    clip,
    div,
    exp,
    log,
    matmul,
    mul,
    neg,
    pow,
    sqrt,
    sub,
)
from cnnlab.ops.conv import conv1d, conv2d, conv2d_plan, conv_routes, output_size
from cnnlab.ops.embedding import embedding
from cnnlab.ops.global_max import global_max_pool1d
from cnnlab.ops.linear import linear
from cnnlab.ops.loss import cross_entropy, l1_loss, mse_loss
from cnnlab.ops.norm import batch_norm, dropout, local_response_norm
from cnnlab.ops.norm_sync import sync_batch_norm
from cnnlab.ops.pool import (
    avg_pool2d,
    global_avg_pool2d,
    max_pool2d,
    max_pool2d_plan,
    pool_routes,
)
from cnnlab.ops.reduce import max, mean, sum
from cnnlab.ops.sampling import affine_grid, grid_sample, transform_theta
from cnnlab.ops.shape import concat, flatten, getitem, pad, reshape, stack, transpose
from cnnlab.ops.upsample import upsample_nearest

__all__ = [
    "abs",
    "add",
    "affine_grid",
    "avg_pool2d",
    "batch_norm",
    "cast",
    "clip",
    "concat",
    "conv1d",
    "conv2d",
    "conv2d_plan",
    "conv_routes",
    "cross_entropy",
    "div",
    "dropout",
    "embedding",
    "exp",
    "flatten",
    "getitem",
    "global_avg_pool2d",
    "global_max_pool1d",
    "grid_sample",
    "l1_loss",
    "leaky_relu",
    "linear",
    "local_response_norm",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "max_pool2d",
    "max_pool2d_plan",
    "mean",
    "mse_loss",
    "mul",
    "neg",
    "output_size",
    "pad",
    "pool_routes",
    "pow",
    "redirected_relu",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "sqrt",
    "stack",
    "sub",
    "sum",
    "sync_batch_norm",
    "tanh",
    "transform_theta",
    "transpose",
    "upsample_nearest",
]
