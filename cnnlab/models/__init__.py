"""The model zoo: ``cnnlab.models.get(name)`` returns a built, seeded network.

==========  =============  ==========================================================
name        input          architecture
==========  =============  ==========================================================
lecture     1×28×28        the lecture's Keras net (137,660 parameters)
lenet5      1×28×28        LeNet-5 with padding 2 (61,706)
lenet32     1×32×32        LeNet variant: conv 20 / conv 50 / dense 500 / dense 10 (656,080)
alexnet     3×227×227      AlexNet 2012 with grouped convs and LRN (60,965,224 for 1,000 classes)
vgg16       3×224×224      VGG-16 (138,357,544 for 1,000 classes)
vgg19       3×224×224      VGG-19 (143,667,240 for 1,000 classes)
fashion     1×28×28        two conv–conv–pool stages with batch norm, for Fashion-MNIST
st-cnn      1×28×28        spatial transformer (affine) + the stn-plain classifier (227,216);
                           1×42×42 too (RTS)
stn-plain   1×28×28        conv 16@5 / pool / conv 32@5 / pool / dense 128 / dense 10
                           (215,370; the classifier of st-cnn)
alphago-policy 48×19×19  AlphaGo's policy net: k=192, 13 conv layers, 361 logits
                           (3,882,793)
==========  =============  ==========================================================

The builders (``cnnlab.models.lecture(num_classes, in_channels)``, …) return the
unbuilt ``Sequential``: ``vgg16().summary((3, 224, 224))`` counts parameters from
shapes without allocating them.
"""

from __future__ import annotations

from cnnlab._checks import check_choice, check_int, check_type
from cnnlab.models.classic import lecture, lenet5, lenet32
from cnnlab.models.fashion import fashion
from cnnlab.models.go import alphago_policy, alphago_policy_zoo
from cnnlab.models.imagenet import alexnet, vgg16, vgg19
from cnnlab.models.stn import st_cnn, stn_plain
from cnnlab.nn.arguments import as_input_shape

# name: (builder, input shape, number of classes it was published with)
_MODELS = {
    "lecture": (lecture, (1, 28, 28), 10),
    "lenet5": (lenet5, (1, 28, 28), 10),
    "lenet32": (lenet32, (1, 32, 32), 10),
    "alexnet": (alexnet, (3, 227, 227), 1000),
    "vgg16": (vgg16, (3, 224, 224), 1000),
    "vgg19": (vgg19, (3, 224, 224), 1000),
    "fashion": (fashion, (1, 28, 28), 10),
    "st-cnn": (st_cnn, (1, 28, 28), 10),
    "stn-plain": (stn_plain, (1, 28, 28), 10),
    "alphago-policy": (alphago_policy_zoo, (48, 19, 19), 361),
}


def available() -> list[str]:
    """Names accepted by ``get``."""
    return list(_MODELS)


def default_input_shape(name: str) -> tuple[int, int, int]:
    return _lookup(name)[1]


def _lookup(name):
    check_type(name, str, "models.get", "name", "a model name")
    return _MODELS[check_choice(name, available(), "models.get", "name")]


def default_num_classes(name: str) -> int:
    """Classes the model was published with: 1,000 (ImageNet) for alexnet and the VGGs, 361 for
    alphago-policy (the board's points), else 10."""
    return _lookup(name)[2]


def get(name: str, num_classes: int | None = None, input_shape=None, seed: int = 0, class_names=None):
    """A built model from the zoo, its weights drawn from ``seed``.

    Args:
        name: one of ``available()``.
        num_classes: outputs of the last layer (logits; train with cross_entropy); default
            ``len(class_names)`` when given, else ``default_num_classes(name)``.
        input_shape: per-sample (C, H, W); defaults to the model's own (see the table above).
        seed: root seed; each layer draws from its own stream derived from it.
        class_names: optional list of names, stored on the model (sets num_classes if it
            was left at its default).
    """
    builder, default_shape, published_classes = _lookup(name)
    seed = check_int(seed, "models.get", "seed", minimum=0)
    if class_names is not None:
        check_type(class_names, (list, tuple), "models.get", "class_names", "a list of names")
        class_names = [str(c) for c in class_names]
        if num_classes is None:
            num_classes = len(class_names)
        elif len(class_names) != num_classes:
            raise ValueError(
                f"models.get: received {len(class_names)} class_names for num_classes={num_classes}"
            )
    if num_classes is None:
        num_classes = published_classes
    num_classes = check_int(num_classes, "models.get", "num_classes", minimum=1)
    shape = default_shape if input_shape is None else as_input_shape(input_shape, "models.get")
    if len(shape) != 3:
        raise ValueError(
            f"models.get: input_shape must be (C, H, W), received input_shape={input_shape!r}"
        )
    model = builder(num_classes=num_classes, in_channels=shape[0])
    model.seed = seed
    model.class_names = class_names
    return model.build(shape)


__all__ = [
    "alexnet",
    "alphago_policy",
    "available",
    "default_input_shape",
    "default_num_classes",
    "fashion",
    "get",
    "lecture",
    "lenet5",
    "lenet32",
    "st_cnn",
    "stn_plain",
    "vgg16",
    "vgg19",
]
