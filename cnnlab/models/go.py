"""``alphago-policy``: the supervised-learning policy network of AlphaGo (Silver et al. 2016).

The paper's methods: "The input to the policy network is a 19 × 19 × 48 image stack
consisting of 48 feature planes. The first hidden layer zero pads the input into a
23 × 23 image, then convolves k filters of kernel size 5 × 5 with stride 1 with the input
image and applies a rectifier nonlinearity. Each of the subsequent hidden layers 2 to 12
zero pads the respective previous hidden layer into a 21 × 21 image, then convolves k
filters of kernel size 3 × 3 with stride 1, again followed by a rectifier nonlinearity.
The final layer convolves 1 filter of kernel size 1 × 1 with stride 1, with a different
bias for each position, and applies a softmax function." The match version used k = 192.

Here the softmax is left to the loss (``F.cross_entropy`` on the 361 logits), as for every
classifier in the zoo. Every layer sizes itself from the first input, so the builder also
works on smaller boards (one logit per point).
"""

from __future__ import annotations

from cnnlab._checks import check_int, check_type
from cnnlab.nn import (
    Conv2D,
    Flatten,
    MaxPool2D,
    PositionalBias,
    ReLU,
    Sequential,
    Upsample2D,
)

__all__ = ["BOARD_POINTS", "alphago_policy", "alphago_policy_zoo", "pooling_position"]

BOARD_POINTS = 19 * 19


def pooling_position(layers: int) -> int:
    """The hidden layer after which the pooling variant max-pools: the middle one.

    Of the L − 1 hidden 5×5/3×3 layers, the first ⌈(L − 1) / 2⌉ run at full resolution
    (6 of 12 for L = 13), the rest on the pooled 10×10 map. Why the middle: by then each
    feature sees 15×15 points (5 + 2·5), so the local shapes the paper's features are about
    (liberties, ataris, ladders close by) are already computed at full resolution, while
    half of the network still works on the subsampled map, which is the variant's point:
    what pooling costs in accuracy and saves in time. Pooling after layer 2 instead would
    leave 10 of 12 layers on 10×10 and mostly measure a smaller network.
    """
    return layers // 2


def alphago_policy(k: int = 192, layers: int = 13, planes: int = 48,
                   pooling: bool = False) -> Sequential:
    """The policy network, unbuilt: build it with ``(planes, 19, 19)``.

    Conv k@5×5 pad 2 → ReLU → (layers − 2) × [Conv k@3×3 pad 1 → ReLU] → Conv 1@1×1 without
    bias → ``PositionalBias`` (one bias per point) → Flatten: (N, planes, 19, 19) → (N, 361)
    logits. k = 192, 13 layers, 48 planes: 3,882,793 parameters
    (48·25·192 + 192 + 11·(192·9·192 + 192) + 192 + 361).

    Args:
        k: filters of every hidden layer (the paper: 128, 192, 256, 384).
        layers: convolutions in all, ≥ 2 (the paper: 13).
        planes: input feature planes (48 for the paper's features; fewer for the raw board).
        pooling: insert ``MaxPool2D(2, padding=1)`` (19×19 → 10×10) after hidden layer
            ``pooling_position(layers)`` and ``Upsample2D(2, 19, offset=1)`` (nearest, back
            to 19×19, each point over the window it was pooled from) before the 1×1 output
            layer; same parameters, the lecture's "what does pooling cost" experiment.
            Built for a 19×19 board only.
    """
    k = check_int(k, "alphago_policy", "k", minimum=1)
    layers = check_int(layers, "alphago_policy", "layers", minimum=2)
    planes = check_int(planes, "alphago_policy", "planes", minimum=1)
    check_type(pooling, bool, "alphago_policy", "pooling", "True or False")
    hidden = [Conv2D(k, 5, padding=2, in_channels=planes), ReLU()]
    for _ in range(layers - 2):
        hidden += [Conv2D(k, 3, padding=1, in_channels=k), ReLU()]
    if pooling:
        cut = 2 * pooling_position(layers)  # each hidden layer is two entries: conv, ReLU
        hidden = hidden[:cut] + [MaxPool2D(2, padding=1)] + hidden[cut:] + [
            Upsample2D(2, size=19, offset=1)]
    output = [Conv2D(1, 1, use_bias=False, in_channels=k), PositionalBias(), Flatten()]
    name = "alphago_policy_pooling" if pooling else "alphago_policy"
    return Sequential(*hidden, *output, name=name)


def alphago_policy_zoo(num_classes: int = BOARD_POINTS, in_channels: int = 48) -> Sequential:
    """``models.get("alphago-policy")``: k = 192, 13 layers; ``in_channels`` feature planes.

    The outputs are the board's points, so ``num_classes`` must be 361 (19×19).
    """
    if num_classes != BOARD_POINTS:
        raise ValueError(
            f"alphago-policy: one logit per point of the 19×19 board, so num_classes must be "
            f"{BOARD_POINTS}, received num_classes={num_classes}"
        )
    return alphago_policy(planes=in_channels)
