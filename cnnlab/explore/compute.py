"""What the explorer's page shows, computed with cnnlab itself: JSON-ready dicts, no HTTP.

Every function takes a loaded model (a ``Sequential``: the page draws its layers in order) and
an image as the user sees it: float (C, H, W) in [0, 1], the model's size (``prepare_input``
makes one from an image file exactly as ``cnnlab predict`` does). The model's normalisation is
applied inside. Everything runs in evaluation mode (batch norm on running statistics, dropout
off). Arrays travel as ``encode`` dicts (base64 of little-endian float32), see
docs/explore/api.md. The conv unit's forward and backward detail live in ``cnnlab.explore.detail``.

The functions are not thread-safe (evaluation mode and frozen parameters are switched on the
model while they run): the server calls them under its lock.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
import time
from pathlib import Path

import numpy as np

from cnnlab import explain
from cnnlab.errors import CnnlabError, LimitExceededError
from cnnlab.explain import probe
from cnnlab.explain.probe import ExplainError
from cnnlab.nn.activation import Softmax
from cnnlab.nn.container import Sequential
from cnnlab.nn.module import eval_mode
from cnnlab.ops.conv_shapes import resolve_padding
from cnnlab.tensor import Tensor, no_grad

__all__ = [
    "ExploreError",
    "decode",
    "describe",
    "encode",
    "encode_maps",
    "filters",
    "layer_outputs",
    "logits_of",
    "maximize",
    "occlusion",
    "predict",
    "prepare_input",
    "saliency",
]

#: the most top-k classes the prediction lists
TOP = 5


class ExploreError(ExplainError):
    """A request the explorer can't satisfy (bad field, unknown layer or unit, unreadable image);
    the server answers it with 400 and this message."""


def encode(array, dtype: str = "float32") -> dict:
    """``{"shape", "dtype", "data"}``: the array's little-endian bytes in base64, C order."""
    array = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"shape": list(array.shape), "dtype": dtype,
            "data": base64.b64encode(array.tobytes()).decode("ascii")}


def encode_maps(maps: np.ndarray, encoding: str = "float32") -> dict:
    """Maps (M, ...) as float32, or as uint8 scaled per map: value = min + (max − min)·q/255."""
    if encoding == "float32":
        return encode(maps)
    if encoding != "uint8":
        raise ExploreError(f"encoding must be 'float32' or 'uint8', received {encoding!r}")
    flat = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    low, high = flat.min(axis=1), flat.max(axis=1)
    span = np.where(high > low, high - low, 1.0)
    q = np.rint((flat - low[:, None]) / span[:, None] * 255).astype(np.uint8)
    out = encode(q.reshape(maps.shape), "uint8")
    out.update(min=low.tolist(), max=high.tolist())
    return out


def decode(obj, shape, what: str = "pixels") -> np.ndarray:
    """An ``encode`` dict back to a float32 array of exactly ``shape``, finite; ExploreError
    naming ``what`` otherwise (this is untrusted input from a request)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), str):
        raise ExploreError(f"{what}: expected {{\"shape\", \"dtype\", \"data\"}} with base64 data")
    dtype = obj.get("dtype", "float32")
    if dtype not in ("float32", "uint8"):
        raise ExploreError(f"{what}: dtype must be 'float32' or 'uint8', received {dtype!r}")
    if obj.get("shape") != list(shape):
        raise ExploreError(f"{what}: expected shape {list(shape)}, received {obj.get('shape')!r}")
    try:
        raw = base64.b64decode(obj["data"], validate=True)
    except (binascii.Error, ValueError):
        raise ExploreError(f"{what}: data is not valid base64") from None
    itemsize = np.dtype(dtype).itemsize
    if len(raw) != int(np.prod(shape)) * itemsize:
        raise ExploreError(f"{what}: {len(raw)} bytes do not hold a {dtype} array of shape "
                           f"{list(shape)}")
    array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    array = array.reshape(shape).astype(np.float32)
    if dtype == "uint8":
        array /= 255.0
    if not np.isfinite(array).all():
        raise ExploreError(f"{what}: holds NaN or infinite values")
    return array


def layers_of(model) -> list[tuple[str, object]]:
    """The model's top-level layers (name, layer); ExploreError for a model that isn't a chain."""
    if not isinstance(model, Sequential):
        raise ExploreError(f"the explorer shows Sequential models; this one is "
                           f"{type(model).__name__}")
    return model.named_layers()


def _hyper(layer, name: str):
    value = getattr(layer, name, None)
    if isinstance(value, tuple):
        return [int(v) for v in value]
    return value if isinstance(value, (int, str)) or value is None else str(value)


def describe(model) -> dict:
    """The architecture as the page draws it: input shape, class names, normalisation, and per
    layer its name, type, input/output shapes (no batch axis), activation, parameter count and
    the hyper-parameters that matter for drawing it (kernel, stride, padding, pool, units)."""
    shape = tuple(int(n) for n in model.input_shape)
    layers = []
    previous = "input"
    for name, layer in layers_of(model):
        out = tuple(int(n) for n in layer.compute_output_shape(shape))
        kind = type(layer).__name__
        conv = kind == "Conv2D"
        pads = conv_pads(layer, shape[1:]) if conv else None
        layers.append({
            "name": name, "type": kind, "input_shape": list(shape), "output_shape": list(out),
            "input_layer": previous, "activation": getattr(layer, "activation", None),
            "params": int(sum(p.data.size for p in layer.parameters())),
            "kernel_size": _hyper(layer, "kernel_size") if conv else None,
            "filters": _hyper(layer, "filters") if conv else None,
            "stride": _hyper(layer, "stride"),
            "padding": [p[0] for p in pads] if conv else _hyper(layer, "padding"),
            "padding_end": [p[1] for p in pads] if conv else None,
            "dilation": _hyper(layer, "dilation") if conv else None,
            "pool_size": _hyper(layer, "pool_size"),
            "units": _hyper(layer, "units"),
        })
        shape, previous = out, name
    names = getattr(model, "class_names", None)
    classes = int(np.prod(shape))
    stats = getattr(model, "normalization", None)
    return {
        "input_shape": [int(n) for n in model.input_shape],
        "class_names": [str(n) for n in names] if names else [str(i) for i in range(classes)],
        "normalization": None if not stats else {
            "mean": np.asarray(stats["mean"]).tolist(), "std": np.asarray(stats["std"]).tolist()},
        "layers": layers,
    }


def conv_pads(conv, size) -> tuple[tuple[int, int], tuple[int, int]]:
    """A conv layer's padding ((top, bottom), (left, right)) for an input of spatial ``size``
    ('same' may pad one more after than before)."""
    return tuple(tuple(int(v) for v in pair) for pair in resolve_padding(
        conv._padding, tuple(size), tuple(conv.kernel_size), tuple(conv.stride),
        tuple(conv.dilation), "conv2d"))


def check_image(model, image) -> np.ndarray:
    """``image`` as (C, H, W) of the model's input shape and dtype, clipped to [0, 1]."""
    image = np.asarray(image, dtype=model.dtype)
    expected = tuple(int(n) for n in model.input_shape)
    if image.shape != expected:
        raise ExploreError(f"the model takes images of shape {list(expected)}, received "
                           f"{list(image.shape)}")
    if not np.isfinite(image).all():
        raise ExploreError("the image holds NaN or infinite values")
    return np.clip(image, 0.0, 1.0)


def layer_outputs(model, image, grad: bool = False) -> list[tuple[str, object, Tensor, Tensor]]:
    """(name, layer, its input, its output) for every layer, one image (batch of 1), the first
    input being the normalised image. Call inside ``probe.inspecting`` when ``grad``."""
    x = Tensor(check_image(model, image)[None].astype(model.dtype), requires_grad=grad)
    records = []
    with eval_mode(model), (_nothing() if grad else no_grad()):
        h = probe.normalize(model, x)
        for name, layer in layers_of(model):
            out = layer(h)
            records.append((name, layer, h, out))
            h = out
    return records


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def logits_of(model, records) -> Tensor:
    """The logits from ``layer_outputs``' records: the output before a final softmax."""
    _name, last, inp, out = records[-1]
    if isinstance(last, Softmax):
        return inp
    if getattr(last, "activation", None) == "softmax":
        with probe._activation(last, None):
            return last(inp)
    return out


def softmax(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def predict(model, image, encoding: str = "float32") -> dict:
    """Probabilities, logits, the top classes, and every layer's output maps for one image.

    Returns {"probabilities", "logits", "top": [{"index", "name", "probability"}], "input",
    "layers": [{"name", "type", "shape", "maps", "min", "max"}], "time_ms"}; a layer's maps
    are its output (C, H, W), or (N,) for a flat one, with min/max per map.
    """
    start = time.perf_counter()
    image = check_image(model, image)
    records = layer_outputs(model, image)
    with eval_mode(model), no_grad():
        logits = logits_of(model, records).data[0].astype(np.float64)
    probabilities = softmax(logits)
    names = describe_classes(model, len(logits))
    order = np.argsort(-probabilities)[:TOP]
    layers = []
    for name, layer, _, out in records:
        maps = out.data[0]
        flat = maps.reshape(len(maps), -1) if maps.ndim > 1 else maps.reshape(1, -1)
        encoded = encode_maps(maps if maps.ndim > 1 else maps[None], encoding)
        encoded["shape"] = list(maps.shape)
        layers.append({"name": name, "type": type(layer).__name__, "shape": list(maps.shape),
                       "maps": encoded,
                       "min": flat.min(axis=1).tolist(), "max": flat.max(axis=1).tolist()})
    return {
        "probabilities": probabilities.tolist(), "logits": logits.tolist(),
        "top": [{"index": int(i), "name": names[i], "probability": float(probabilities[i])}
                for i in order],
        "input": encode(image), "layers": layers,
        "time_ms": (time.perf_counter() - start) * 1000.0,
    }


def describe_classes(model, count: int) -> list[str]:
    names = getattr(model, "class_names", None)
    return [str(n) for n in names] if names and len(names) == count else [
        str(i) for i in range(count)]


def prepare_input(model, data: bytes, source: str = "the upload",
                  max_pixels: int | None = None) -> tuple[np.ndarray, list]:
    """Image file bytes -> the model's input pixels (C, H, W) in [0, 1], exactly as
    ``cnnlab predict FILE`` prepares a file (read_image, then prepare_image with invert and fit
    automatic), and the original [width, height]. The bytes go to a private temporary file,
    since the one image reader reads files; its limits (formats, pixels) apply, and
    ``max_pixels`` (width × height, checked from the header) when given."""
    from cnnlab.data.images import prepare_image, probe_image, read_image

    with tempfile.TemporaryDirectory(prefix="cnnlab-explore-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            info = probe_image(path)
            if max_pixels is not None and info.width * info.height > max_pixels:
                raise LimitExceededError(
                    f"{source}: the image has {info.width}x{info.height} = "
                    f"{info.width * info.height:,} pixels, more than the {max_pixels:,} allowed")
            image = read_image(path, channels=int(model.input_shape[0]))
        except LimitExceededError as error:
            raise LimitExceededError(str(error).replace(str(path), source)) from None
        except (CnnlabError, ValueError, OSError) as error:
            raise ExploreError(str(error).replace(str(path), source)) from None
        pixels = prepare_image(image, tuple(model.input_shape))
    return np.ascontiguousarray(pixels, dtype=np.float32), [info.width, info.height]


def filters(model, layer: str | None = None) -> dict:
    """A conv layer's kernels (F, C_in, kh, kw) and biases; default the first conv layer."""
    convs = probe.conv_layer_names(model)
    if not convs:
        raise ExploreError("the model has no conv layer")
    name = convs[0] if layer is None else layer
    if name not in convs:
        raise ExploreError(f"{name!r} is not a conv layer; the conv layers are: "
                           f"{', '.join(convs)}")
    conv = probe.find_layer(model, name)
    bias = conv.bias.data if conv.use_bias else np.zeros(conv.filters)
    return {"layer": name, "weights": encode(conv.weight.data), "bias": bias.tolist()}


def _target(model, image, target) -> int:
    records = layer_outputs(model, image)
    with eval_mode(model), no_grad():
        logits = logits_of(model, records).data[0]
    if target is None:
        return int(np.argmax(logits))
    if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target < len(logits):
        raise ExploreError(f"class must be an integer 0..{len(logits) - 1}, received {target!r}")
    return target


def _unit_scale(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    top = m.max()
    return m / top if top > 0 else np.zeros_like(m)


def saliency(model, image, target=None, layer: str | None = None) -> dict:
    """Gradient saliency max_c |∂y_k/∂x_c| and Grad-CAM (``cnnlab.explain``) of class ``target``
    (default the prediction), each (H, W) scaled to [0, 1]."""
    image = check_image(model, image)
    k = _target(model, image, target)
    if layer is not None and layer not in probe.layer_names(model):
        raise ExploreError(f"unknown layer {layer!r}")
    cam_layer = layer or explain.attribution.default_cam_layer(model)
    grad = explain.saliency(model, image[None], k, method="gradient")[0]
    cam = explain.saliency(model, image[None], k, method="gradcam", layer=cam_layer)[0]
    return {"class": k, "gradient": encode(_unit_scale(grad)), "gradcam": encode(_unit_scale(cam)),
            "gradcam_layer": cam_layer}


def occlusion(model, image, target=None, patch=None, stride=None, progress=None) -> dict:
    """The occlusion map (``cnnlab.explain.occlusion``): (H, W), the drop in the class's
    probability when a square around each pixel is covered; ``progress(done, total)``."""
    image = check_image(model, image)
    k = _target(model, image, target)
    for value, what in ((patch, "patch"), (stride, "stride")):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ExploreError(f"{what} must be an integer, received {value!r}")
    side = min(image.shape[1:])
    patch = explain.occlusion_maps.default_patch(side)[0] if patch is None else patch
    stride = max(1, patch // 2) if stride is None else stride
    result = explain.occlusion(model, image, k, patch=patch, stride=stride, progress=progress)
    return {"class": k, "map": encode(result), "patch": patch, "stride": stride}


def maximize(model, layer: str, unit: int, steps: int = 64, seed: int = 0) -> dict:
    """Activation maximisation of one unit (``cnnlab.explain.maximize``): the image (C, H, W)
    in [0, 1] and the unit's final activation."""
    if layer not in probe.layer_names(model):
        raise ExploreError(f"unknown layer {layer!r}; the layers are: "
                           f"{', '.join(probe.layer_names(model))}")
    for value, what, low, high in ((unit, "unit", 0, None), (steps, "steps", 1, 512),
                                   (seed, "seed", 0, 2**32 - 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (
                high is not None and value > high):
            raise ExploreError(f"{what} must be an integer in {low}..{high or 'the units'}, "
                               f"received {value!r}")
    result = explain.maximize(model, layer, unit, steps=steps, seed=seed)
    return {"layer": layer, "unit": unit, "image": encode(result.images[0]),
            "activation": float(result.history[-1, 0])}
