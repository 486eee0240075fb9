"""``summary``: a Keras-like table of a model's layers, output shapes and parameter counts.

A ``Sequential`` model is summarised by pure shape propagation (each layer's
``compute_output_shape`` and weight shapes), so even an unbuilt VGG-16 is
summarised without allocating its weights. Any other module is summarised by
one forward pass of a zero sample that records the output of each direct child.
"""

from __future__ import annotations

import numpy as np

from cnnlab.nn.arguments import as_input_shape
from cnnlab.nn.container import Sequential
from cnnlab.nn.layer import Layer
from cnnlab.nn.module import Module, eval_mode, record_calls
from cnnlab.tensor import Tensor, no_grad


def _rows_sequential(model: Sequential, shape):
    rows = []
    for name, layer in model.named_layers():
        trainable, frozen = layer.count_parameters(shape)
        shape = layer.compute_output_shape(shape)
        rows.append((name, type(layer).__name__, shape, trainable + frozen))
    return rows


def _rows_traced(model: Module, shape):
    """One row per call of a sub-module none of whose ancestors (below ``model``) was called too:
    a direct child, or an item of a ``ModuleList`` that ``forward`` iterates over."""
    if not model.built:
        model.build(shape)
    names = {id(m): name for name, m in model.named_modules() if name}
    with no_grad(), eval_mode(model), record_calls() as calls:
        model(Tensor(np.zeros((1, *shape), dtype=model.dtype)))
    called = {names[id(m)] for m, _ in calls if id(m) in names}
    rows = []
    for module, out in calls:
        name = names.get(id(module))
        if name is None:
            continue
        parts = name.split(".")
        if any(".".join(parts[:i]) in called for i in range(1, len(parts))):
            continue
        t, f = module.count_parameters()
        rows.append((name, type(module).__name__, tuple(out.shape[1:]), t + f))
    return rows


def _format_shape(shape) -> str:
    return "(None, " + ", ".join(str(n) for n in shape) + ")"


def summary(model: Module, input_shape=None) -> str:
    """The table as a string: Layer (type) | Output Shape | Param #, then total, trainable and
    non-trainable parameter counts (non-trainable: batch-norm running statistics, as in Keras)."""
    shape = input_shape if input_shape is not None else model.input_shape
    if shape is None:
        raise ValueError(
            f"summary: {type(model).__name__} has no input shape yet; pass input_shape "
            "(per sample, e.g. (1, 28, 28)) or build the model first"
        )
    shape = as_input_shape(shape, "summary")
    if isinstance(model, Sequential):
        rows = _rows_sequential(model, shape)
        trainable, frozen = model.count_parameters(shape)
    elif isinstance(model, Layer):
        trainable, frozen = model.count_parameters(shape)
        name = model.layer_name or type(model).__name__.lower()
        rows = [(name, type(model).__name__, model.compute_output_shape(shape), trainable + frozen)]
    else:
        rows = _rows_traced(model, shape)
        trainable, frozen = model.count_parameters()

    cells = [(f"{name} ({kind})", _format_shape(out), f"{count:,}") for name, kind, out, count in rows]
    widths = [
        max([28] + [len(c[0]) + 2 for c in cells]),
        max([26] + [len(c[1]) + 2 for c in cells]),
        max([10] + [len(c[2]) for c in cells]),
    ]
    total_width = sum(widths) + 1

    def line(a, b, c):
        return (" " + a.ljust(widths[0]) + b.ljust(widths[1]) + c).rstrip()

    title = getattr(model, "name", None) or type(model).__name__.lower()
    out = [f'Model: "{title}"', "_" * total_width, line("Layer (type)", "Output Shape", "Param #"), "=" * total_width]
    for i, cell in enumerate(cells):
        out.append(line(*cell))
        if i < len(cells) - 1:
            out.append("")
    out += [
        "=" * total_width,
        f"Total params: {trainable + frozen:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {frozen:,}",
        "_" * total_width,
    ]
    return "\n".join(out)
