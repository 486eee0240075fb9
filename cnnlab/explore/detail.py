"""One unit up close: a conv unit's products, sum, bias, activation and pooling (forward), a
dense unit's largest weights, and the lecture's backward pass through a conv layer, step by step,
next to cnnlab's own backward.

Images are float (C, H, W) in [0, 1] as in ``cnnlab.explore.compute``; a conv layer reads the
previous layer's output (the first one: the normalised image), which is what its window covers.
"""

from __future__ import annotations

import numpy as np

import cnnlab.functional as F
from cnnlab.explain import probe
from cnnlab.explore.compute import (
    ExploreError,
    conv_pads,
    encode,
    layer_outputs,
    layers_of,
    logits_of,
    softmax,
)
from cnnlab.nn.activation import LeakyReLU, ReLU, Sigmoid, Tanh
from cnnlab.nn.conv import Conv2D
from cnnlab.nn.dense import Dense, Flatten
from cnnlab.nn.layer import activate
from cnnlab.nn.normalization import BatchNorm
from cnnlab.nn.pooling import AvgPool2D, MaxPool2D
from cnnlab.nn.regularization import Dropout
from cnnlab.tensor import Tensor

__all__ = ["backward", "conv_unit", "dense_unit", "receptive_field"]

#: layers that act on each value alone (in eval mode), so a unit keeps its position through them
ELEMENTWISE = (BatchNorm, ReLU, LeakyReLU, Sigmoid, Tanh, Dropout)


def _index(value, name: str, size: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
        raise ExploreError(f"{name} must be an integer 0..{size - 1}, received {value!r}")
    return value


def _find(model, layer, kind, what: str) -> int:
    named = layers_of(model)
    names = [n for n, m in named if isinstance(m, kind)]
    if layer not in names:
        raise ExploreError(f"{layer!r} is not a {what} layer of this model; its {what} layers "
                           f"are: {', '.join(names) or 'none'}")
    return [n for n, _ in named].index(layer)


def _conv_geometry(conv, size):
    """(kernel, stride, ((top, bottom), (left, right)) padding, dilation) for an input of
    spatial ``size``: 'same' may pad one more after than before."""
    kernel, stride, dilation = tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.dilation)
    pads = conv_pads(conv, size)
    return kernel, stride, pads, dilation


def receptive_field(model, index: int, y0: int, x0: int, y1: int, x1: int) -> dict:
    """The input-image box (end-exclusive, clipped) that output rows y0..y1−1 and columns
    x0..x1−1 of layer ``index`` depend on: back through each conv and pooling window,
    lo' = lo·s − p, hi' = hi·s − p + d(K − 1)."""
    lo, hi = [y0, x0], [y1 - 1, x1 - 1]
    sizes, shape = [], tuple(model.input_shape)
    for _, layer in layers_of(model)[:index + 1]:
        sizes.append(shape[1:])
        shape = layer.compute_output_shape(shape)
    for (_, layer), size in zip(reversed(layers_of(model)[:index + 1]), reversed(sizes)):
        if isinstance(layer, Conv2D):
            kernel, stride, pads, dil = _conv_geometry(layer, size)
            pad = (pads[0][0], pads[1][0])
        elif isinstance(layer, (MaxPool2D, AvgPool2D)):
            kernel, stride, pad, dil = layer.pool_size, layer.stride, layer.padding, (1, 1)
        elif isinstance(layer, ELEMENTWISE):
            continue
        else:  # a flatten or dense layer sees everything
            lo, hi = [0, 0], [1 << 30, 1 << 30]
            continue
        for a in range(2):
            lo[a] = lo[a] * stride[a] - pad[a]
            hi[a] = hi[a] * stride[a] - pad[a] + dil[a] * (kernel[a] - 1)
    _, height, width = (int(n) for n in model.input_shape)
    return {"y0": max(lo[0], 0), "x0": max(lo[1], 0),
            "y1": min(hi[0], height - 1) + 1, "x1": min(hi[1], width - 1) + 1}


def _chain(records, index: int, select) -> tuple[list[dict], int]:
    """The element-wise layers after ``index`` with ``select(output)`` of each; the index of the
    last layer of the chain."""
    after, last = [], index
    for name, layer, _, out in records[index + 1:]:
        if not isinstance(layer, ELEMENTWISE):
            break
        after.append({"layer": name, "type": type(layer).__name__,
                      "value": float(select(out.data[0]))})
        last += 1
    return after, last


def _pool(records, index: int, channel: int, y: int, x: int):
    """The pooling window (in its input's coordinates) that holds (y, x), and what it chose."""
    if index + 1 >= len(records):
        return None
    name, pool, inp, out = records[index + 1]
    if not isinstance(pool, (MaxPool2D, AvgPool2D)):
        return None
    size, stride, pad = pool.pool_size, pool.stride, pool.padding
    plane = inp.data[0, channel]
    where = []
    for a, v in enumerate((y, x)):
        # the first window that covers v: the largest start ≤ v, then kept inside the output
        o = max(0, min((v + pad[a]) // stride[a], out.shape[2 + a] - 1))
        while o > 0 and o * stride[a] - pad[a] > v:
            o -= 1
        where.append(o)
    py, px = where
    y0, x0 = py * stride[0] - pad[0], px * stride[1] - pad[1]
    ys, xs = slice(max(y0, 0), y0 + size[0]), slice(max(x0, 0), x0 + size[1])
    values = plane[ys, xs]
    arg = np.unravel_index(int(np.argmax(values)), values.shape)
    return {"layer": name, "kind": "max" if isinstance(pool, MaxPool2D) else "avg",
            "pool_size": list(size), "stride": list(stride), "y": py, "x": px,
            "window": {"y0": ys.start, "x0": xs.start, "y1": ys.start + values.shape[0],
                       "x1": xs.start + values.shape[1]},
            "values": encode(values), "argmax": [int(arg[0]), int(arg[1])],
            "max": float(values.max()), "output": float(out.data[0, channel, py, px])}


def conv_unit(model, image, layer: str, channel: int, y: int, x: int) -> dict:
    """A conv unit at output position (y, x), as the lecture draws it:

        z = Σ_{c,u,v} W[f, c, u, v] · X_pad[c, s·y + d·u, s·x + d·v] + b[f]

    then the element-wise layers that follow (fused ReLU, batch norm, ReLU) and the pooling
    window that holds the unit. ``sum`` and ``pre_activation`` are computed here in float64
    from the displayed products; ``engine`` is cnnlab's conv2d at that position.
    """
    index = _find(model, layer, Conv2D, "conv")
    records = layer_outputs(model, image)
    _, conv, inp, _ = records[index]
    kernel, stride, pads, dil = _conv_geometry(conv, inp.shape[2:])
    pad = (pads[0][0], pads[1][0])
    weight = conv.weight.data
    bias_all = conv.bias.data if conv.use_bias else np.zeros(conv.filters, weight.dtype)
    z = F.conv2d(inp, conv.weight, conv._bias(), stride, conv._padding, dil, conv.groups).data[0]
    channel = _index(channel, "channel", z.shape[0])
    y, x = _index(y, "y", z.shape[1]), _index(x, "x", z.shape[2])
    per_group = weight.shape[1]
    group = channel // (conv.filters // conv.groups)
    x_in = inp.data[0, group * per_group:(group + 1) * per_group]
    padded = np.pad(x_in, ((0, 0), *pads))
    rows = y * stride[0] + dil[0] * np.arange(kernel[0])
    cols = x * stride[1] + dil[1] * np.arange(kernel[1])
    patch = padded[:, rows[:, None], cols[None, :]]
    products = weight[channel].astype(np.float64) * patch
    total = float(products.sum())
    bias = float(bias_all[channel])
    after = []
    if conv.activation is not None:
        after.append({"layer": layer, "type": conv.activation,
                      "value": float(records[index][3].data[0, channel, y, x])})
    chain, last = _chain(records, index, lambda out: out[channel, y, x])
    after += chain
    value = float(records[last][3].data[0, channel, y, x])
    window = {"y0": int(rows[0] - pad[0]), "x0": int(cols[0] - pad[1]),
              "y1": int(rows[-1] - pad[0] + 1), "x1": int(cols[-1] - pad[1] + 1)}
    return {
        "layer": layer, "channel": channel, "y": y, "x": x, "kernel_size": list(kernel),
        "stride": list(stride), "padding": list(pad), "dilation": list(dil),
        "padding_end": [pads[0][1], pads[1][1]],
        "input_layer": "input" if index == 0 else records[index - 1][0],
        "window": window, "receptive_field": receptive_field(model, index, y, x, y + 1, x + 1),
        "patch": encode(patch), "kernel": encode(weight[channel]), "products": encode(products),
        "sum": total, "bias": bias, "pre_activation": total + bias,
        "engine": float(z[channel, y, x]), "after": after, "activation": value,
        "pool": _pool(records, last, channel, y, x), "map": encode(z[channel]),
    }


def dense_unit(model, image, layer: str, unit: int, top: int = 10) -> dict:
    """A dense unit z_u = Σ_i W[u, i] x_i + b_u: its ``top`` largest weights by magnitude (with
    the input each multiplies, and where a flattened input sat in the feature map), the
    element-wise layers after it, and the model's logits and probabilities."""
    index = _find(model, layer, Dense, "dense")
    records = layer_outputs(model, image)
    _, dense, inp, out = records[index]
    weight = dense.weight.data
    unit = _index(unit, "unit", weight.shape[0])
    top = _index(top, "top", 51) or 1
    x_in = inp.data[0].astype(np.float64)
    w = weight[unit].astype(np.float64)
    bias = float(dense.bias.data[unit]) if dense.use_bias else 0.0
    source = None
    if index > 0 and isinstance(records[index - 1][1], Flatten):
        source = tuple(records[index - 1][2].shape[1:])
    order = np.argsort(-np.abs(w), kind="stable")[:top]
    weights = [{"index": int(i),
                "position": [int(v) for v in np.unravel_index(i, source)] if source else None,
                "weight": float(w[i]), "input": float(x_in[i]), "product": float(w[i] * x_in[i])}
               for i in order]
    after = []
    if dense.activation is not None:
        after.append({"layer": layer, "type": dense.activation,
                      "value": float(out.data[0, unit])})
    chain, last = _chain(records, index, lambda o: o[unit])
    after += chain
    logits = logits_of(model, records).data[0].astype(np.float64)
    names = getattr(model, "class_names", None)
    return {
        "layer": layer, "unit": unit, "bias": bias, "pre_activation": float(w @ x_in) + bias,
        "activation_name": dense.activation, "after": after + [],
        "activation": float(records[last][3].data[0, unit]), "weights": weights,
        "input_layer": "input" if index == 0 else records[index - 1][0],
        "logits": logits.tolist(), "probabilities": softmax(logits).tolist(),
        "class_names": [str(n) for n in names] if names else None,
    }


def _windows(array: np.ndarray, shape) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(array, shape, axis=(-2, -1))


def backward(model, image, target: int, layer: str, filter: int,
             objective: str = "loss") -> dict:
    """The gradient through conv layer ``layer`` for class ``target``, by the lecture's formula
    and by cnnlab's backward.

    E = cross-entropy(softmax(logits), target) (``objective="loss"``) or the target's logit;
    Z = the conv's output before its activation, δ = ∂E/∂Z (F, H', W'). With stride s, padding
    p and kernel K (dilation 1, one group):

        δ at the input: ∂E/∂X = crop_p( Σ_f full_conv( zero_insert_s(δ_f), rot180(W_f) ) ),
            the full convolution = δ zero-inserted, padded by K − 1, correlated with the kernel
            rotated by 180°;
        dW_f = X_pad ⋆ zero_insert_s(δ_f) (first K rows and columns);  db_f = Σ δ_f.

    The engine's values come from one autograd pass of cnnlab's own backward through the rest
    of the network (``dx_engine`` = ∂E/∂X, ``dw_engine`` = ∂E/∂W_f).
    """
    if objective not in ("loss", "logit"):
        raise ExploreError(f"objective must be 'loss' or 'logit', received {objective!r}")
    index = _find(model, layer, Conv2D, "conv")
    conv = layers_of(model)[index][1]
    records = layer_outputs(model, image)
    kernel, stride, pads, dil = _conv_geometry(conv, records[index][2].shape[2:])
    pad = (pads[0][0], pads[1][0])
    if dil != (1, 1) or conv.groups != 1:
        raise ExploreError(f"{layer}: the lecture's formula is shown for dilation 1 and one "
                           f"group; this layer has dilation {list(dil)}, groups {conv.groups}")
    filter = _index(filter, "filter", conv.filters)
    with probe.inspecting(model):
        x_data = records[index][2].data
        x = Tensor(x_data.copy(), requires_grad=True)
        w = Tensor(conv.weight.data.copy(), requires_grad=True)
        b = Tensor(conv.bias.data.copy(), requires_grad=True) if conv.use_bias else None
        z = F.conv2d(x, w, b, stride, conv._padding).retain_grad()
        h = activate(z, conv.activation)
        rest = layers_of(model)[index + 1:]
        if not rest:
            raise ExploreError(f"{layer} is the model's last layer; choose an earlier conv")
        for _, module in rest:
            before, h = h, module(h)
        h = logits_of(model, [(rest[-1][0], rest[-1][1], before, h)])
        logits = h.data[0].astype(np.float64)
        target = _index(target, "class", len(logits))
        onehot = np.eye(len(logits))[target]
        seed = softmax(logits) - onehot if objective == "loss" else onehot
        value = (float(np.log(np.exp(logits - logits.max()).sum()) + logits.max()
                       - logits[target]) if objective == "loss" else float(logits[target]))
        h.backward(seed[None].astype(h.dtype))
    delta = z.grad[0].astype(np.float64)
    weight = conv.weight.data.astype(np.float64)
    n_filters, height, width = delta.shape
    inserted = np.zeros((n_filters, (height - 1) * stride[0] + 1, (width - 1) * stride[1] + 1))
    inserted[:, ::stride[0], ::stride[1]] = delta
    padded = np.pad(inserted, ((0, 0), (kernel[0] - 1,) * 2, (kernel[1] - 1,) * 2))
    rotated = weight[:, :, ::-1, ::-1]
    # full convolution of each filter's δ with its rotated kernel, one input channel at a time
    shares = np.einsum("fyxuv,fcuv->fcyx", _windows(padded, kernel), rotated)
    channels, in_h, in_w = x_data.shape[1:]
    full = np.zeros((channels, in_h + sum(pads[0]), in_w + sum(pads[1])))
    full[:, :shares.shape[2], :shares.shape[3]] = shares.sum(axis=0)
    dx_formula = full[:, pad[0]:pad[0] + in_h, pad[1]:pad[1] + in_w]
    share = np.zeros_like(full)
    share[:, :shares.shape[2], :shares.shape[3]] = shares[filter]
    x_pad = np.pad(x_data[0].astype(np.float64), ((0, 0), *pads))
    windows = _windows(x_pad, inserted.shape[1:])[:, :kernel[0], :kernel[1]]
    dw_formula = np.einsum("cuvij,ij->cuv", windows, inserted[filter])
    dx_engine = x.grad[0].astype(np.float64)
    dw_engine = w.grad[filter].astype(np.float64)
    return {
        "layer": layer, "class": target, "filter": filter, "objective": objective,
        "value": value, "kernel_size": list(kernel), "stride": list(stride),
        "padding": list(pad), "padding_end": [pads[0][1], pads[1][1]], "delta": encode(delta), "delta_inserted": encode(inserted),
        "delta_padded": encode(padded), "kernel_rotated": encode(rotated[filter]),
        "dx_filter": encode(share[:, pad[0]:pad[0] + in_h, pad[1]:pad[1] + in_w]),
        "dx_formula": encode(dx_formula), "dx_engine": encode(dx_engine),
        "dx_max_difference": float(np.abs(dx_formula - dx_engine).max()),
        "dw_formula": encode(dw_formula), "dw_engine": encode(dw_engine),
        "dw_max_difference": float(np.abs(dw_formula - dw_engine).max()),
        "db": float(delta[filter].sum()),
        "db_engine": float(b.grad[filter]) if b is not None else 0.0,
    }
