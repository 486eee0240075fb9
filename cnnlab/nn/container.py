"""Containers: ``Sequential`` (a stack of layers), ``Parallel`` (branches whose outputs are
concatenated) and ``ModuleList`` (for branches in plain Python)."""

from __future__ import annotations

import re

import cnnlab.functional as F
from cnnlab._checks import check_int, check_type
from cnnlab.nn.activation import ReLU
from cnnlab.nn.arguments import as_input_shape, check_seed
from cnnlab.nn.config import from_config, register
from cnnlab.nn.layer import Layer
from cnnlab.nn.module import Module, recording_calls


def default_layer_name(module: Module) -> str:
    """Keras's naming: Conv2D → conv2d, MaxPool2D → max_pool2d, ReLU → relu."""
    cls = type(module)
    if cls.__dict__.get("default_name"):
        return cls.default_name
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", cls.__name__).lower()


@register
class Sequential(Module):
    """Layers applied one after the other: ``Sequential(Conv2D(25, 3), MaxPool2D(2), ...)``.

    Each layer is registered under a Keras-style unique name (conv2d, conv2d_1, …),
    which is also the prefix of its weights in ``state_dict`` ("conv2d_1.weight").
    ``build`` propagates the input shape through the layers with pure shape logic,
    so it needs no forward pass.

    Args:
        *layers: modules, applied in order.
        name: the model's name (shown by ``summary``).
        seed: root seed of the weight initialisers (per-layer streams derive from it).
    """

    def __init__(self, *layers, name=None, seed=None):
        super().__init__()
        if name is not None:
            check_type(name, str, "Sequential", "name", "None or a str")
        self.name = name
        self.seed = check_seed(seed, "Sequential")
        self._order: list[str] = []
        for layer in layers:
            self.add(layer)

    def add(self, layer: Module) -> Sequential:
        """Append a layer (under its Keras-style unique name)."""
        check_type(layer, Module, "Sequential", "layer", "a Module")
        base = getattr(layer, "name", None) if isinstance(layer, Sequential) else None
        base = base or default_layer_name(layer)
        name, i = base, 0
        while name in self._modules or name in self.__dict__:
            i += 1
            name = f"{base}_{i}"
        if isinstance(layer, Layer):
            layer.layer_name = name
        setattr(self, name, layer)
        self._order.append(name)
        return self

    @property
    def layers(self) -> list[Module]:
        return [self._modules[name] for name in self._order]

    def named_layers(self) -> list[tuple[str, Module]]:
        return [(name, self._modules[name]) for name in self._order]

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        if isinstance(index, str):
            return self._modules[index]
        return self.layers[index]

    def forward(self, x):
        """The layers in order; a layer followed by a ``ReLU`` layer that it can fuse
        (``Layer.relu_fusable``: Conv2D, Dense, BatchNorm) computes both in one op.

        The values and gradients are the same bits as with the two layers apart; the fused
        op saves a pass over memory and a graph node each way (one thread, interleaved
        medians, on a machine busy with other work: a fashion-net step 0.94×, a LeNet step
        0.97× the time of the layers called one by one; batch norm: ``ops.norm``).
        While ``summary`` records every layer's output (``recording_calls``), nothing is fused.
        """
        layers = self.layers
        fuse = not recording_calls()
        i = 0
        while i < len(layers):
            layer = layers[i]
            if (fuse and i + 1 < len(layers) and type(layers[i + 1]) is ReLU
                    and isinstance(layer, Layer) and layer.relu_fusable()):
                x = layer(x, fused_relu=True)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x

    def build(self, input_shape) -> Sequential:
        """Create every layer's weights by propagating ``input_shape`` (per sample) through the stack."""
        shape = as_input_shape(input_shape, "Sequential.build")
        self._prepare_seeds()
        self.input_shape = shape
        for layer in self.layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        return self

    def _build_on_call(self, input_shape) -> None:
        self.build(input_shape)

    def compute_output_shape(self, input_shape) -> tuple[int, ...]:
        shape = as_input_shape(input_shape, "Sequential.compute_output_shape")
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def count_parameters(self, input_shape=None) -> tuple[int, int]:
        if input_shape is None:
            return super().count_parameters()
        trainable = frozen = 0
        shape = as_input_shape(input_shape, "Sequential.count_parameters")
        for layer in self.layers:
            t, f = layer.count_parameters(shape)
            trainable, frozen = trainable + t, frozen + f
            shape = layer.compute_output_shape(shape)
        return trainable, frozen

    def get_config(self) -> dict:
        return {
            "class_name": type(self).__name__,
            "config": {"name": self.name, "seed": self.seed, "layers": [m.get_config() for m in self.layers]},
        }

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        owner = "Sequential.from_config"
        check_type(config, dict, owner, "config", "a dict")
        layers = check_type(config.get("layers", []), list, owner, "layers", "a list")
        layers = [from_config(c) for c in layers]
        return cls(*layers, name=config.get("name"), seed=config.get("seed"))


@register
class ModuleList(Module):
    """A list of sub-modules, registered as "0", "1", … (parallel branches of a plain-Python model).

    Not callable itself: iterate over it in the owner's ``forward``.
    """

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        check_type(module, Module, "ModuleList", "module", "a Module")
        setattr(self, str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def forward(self, *inputs):
        raise TypeError("ModuleList is not callable: iterate over it in forward()")

    def get_config(self) -> dict:
        return {"class_name": "ModuleList", "config": {"modules": [m.get_config() for m in self]}}

    @classmethod
    def from_config(cls, config: dict) -> ModuleList:
        owner = "ModuleList.from_config"
        check_type(config, dict, owner, "config", "a dict")
        modules = check_type(config.get("modules", []), list, owner, "modules", "a list")
        return cls([from_config(c) for c in modules])


@register
class Parallel(Module):
    """Branches applied to the same input, their outputs concatenated along ``axis``.

    y = concat([branch_1(x), …, branch_k(x)], axis). Kim (2014)'s sentence CNN is one:
    three ``Sequential(Conv1D(100, h, activation='relu'), GlobalMaxPool1D())`` branches
    with h = 3, 4, 5 over the same embedded sentence give (N, 300).

    Each branch is registered as "0", "1", … (weights ``parallel.0.conv1d.weight``); the
    branches build from the same input shape, by pure shape logic when they are layers or
    ``Sequential`` (as ``Sequential.build``).

    Args:
        *branches: modules, each applied to the input.
        axis: the axis of the batched output (0 is the batch) along which to concatenate;
            1 (features, or channels) by default. The outputs must agree on every other axis.

    Shape: (N, *S) → (N, *O) with O[axis − 1] = Σ_i O_i[axis − 1].

    Example:
        >>> Parallel(Dense(3), Dense(5)).compute_output_shape((4,))
        (8,)
    """

    def __init__(self, *branches, axis=1):
        super().__init__()
        self.axis = check_int(axis, "Parallel", "axis", minimum=1)
        if not branches:
            raise ValueError("Parallel: needs at least one branch, received none")
        for branch in branches:
            check_type(branch, Module, "Parallel", "branch", "a Module")
            setattr(self, str(len(self._modules)), branch)

    @property
    def branches(self) -> list[Module]:
        return list(self._modules.values())

    def named_branches(self) -> list[tuple[str, Module]]:
        return list(self._modules.items())

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return self.branches[index]

    def concatenated_shape(self, shapes) -> tuple[int, ...]:
        """The per-sample output shape of branch outputs of per-sample ``shapes``; ValueError
        naming the shapes when they differ off the concatenation axis."""
        shapes = [tuple(shape) for shape in shapes]
        axis = self.axis - 1
        if any(len(shape) <= axis for shape in shapes):
            raise ValueError(f"Parallel: cannot concatenate per-sample outputs {shapes} "
                             f"along axis {self.axis}: too few axes")
        rest = {shape[:axis] + shape[axis + 1:] for shape in shapes}
        if len(rest) > 1:
            raise ValueError(f"Parallel: the branches' outputs {shapes} differ off the "
                             f"concatenation axis {self.axis}")
        first = shapes[0]
        return (*first[:axis], sum(shape[axis] for shape in shapes), *first[axis + 1:])

    def compute_output_shape(self, input_shape) -> tuple[int, ...]:
        shape = as_input_shape(input_shape, "Parallel.compute_output_shape")
        return self.concatenated_shape(branch.compute_output_shape(shape)
                                       for branch in self.branches)

    def build(self, input_shape) -> Parallel:
        """Build every branch for per-sample ``input_shape``."""
        shape = as_input_shape(input_shape, "Parallel.build")
        self._prepare_seeds()
        for branch in self.branches:
            branch.build(shape)
        self.compute_output_shape(shape)
        self.input_shape = shape
        return self

    def _build_on_call(self, input_shape) -> None:
        self.build(input_shape)

    def count_parameters(self, input_shape=None) -> tuple[int, int]:
        if input_shape is None or self.built:
            return super().count_parameters()
        counts = [branch.count_parameters(input_shape) for branch in self.branches]
        return sum(t for t, _ in counts), sum(f for _, f in counts)

    def forward(self, x):
        return F.concat([branch(x) for branch in self.branches], axis=self.axis)

    def get_config(self) -> dict:
        return {"class_name": "Parallel",
                "config": {"axis": self.axis, "branches": [b.get_config() for b in self.branches]}}

    @classmethod
    def from_config(cls, config: dict) -> Parallel:
        owner = "Parallel.from_config"
        check_type(config, dict, owner, "config", "a dict")
        branches = check_type(config.get("branches", []), list, owner, "branches", "a list")
        return cls(*[from_config(c) for c in branches], axis=config.get("axis", 1))
