"""``cnnlab filters``, ``cnnlab features`` and ``cnnlab maximize``: what a trained model's
units hold and what excites them, as PNG files.

``register(subparsers)`` adds the three commands; each handler only parses, calls
``cnnlab.explain`` and writes figures. Errors are "cnnlab <command>: error: ..." with
status 2 (``reports_errors``), never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

import numpy as np

from cnnlab import runs
from cnnlab.explain import figures, probe, units
from cnnlab.explain.probe import ExplainError
from cnnlab.lab.cli_conventions import number_flag, positive_int, reports_errors
from cnnlab.limits import LIMITS
from cnnlab.nn.activation import ReLU
from cnnlab.nn.normalization import BatchNorm

__all__ = ["activation_after", "parse_units", "register"]

_RAW = argparse.RawDescriptionHelpFormatter
#: the lecture's grids: 12 filters of the second conv layer, 9 neurons of the first dense one
LECTURE_FILTERS, LECTURE_NEURONS = 12, 9


def _wrap(text: str) -> str:
    """A description wrapped here: the raw formatter keeps the examples' lines as written."""
    return textwrap.fill(text, width=79)


def register(subparsers) -> None:
    """Add ``filters``, ``features`` and ``maximize`` to an argparse sub-parser group."""
    p = subparsers.add_parser(
        "filters", formatter_class=_RAW,
        help="draw a conv layer's kernels as an image grid",
        description=_wrap("Draw the kernels of a conv layer (default: the first) as one grid, each "
        "filter scaled on its own with 0 at grey: one RGB tile per filter for a colour "
        "first layer, one tile per filter for one input channel, else one row per filter and "
        "one column per input channel."),
        epilog="example:\n  cnnlab filters runs/fashion --out figures\n"
        "  cnnlab filters runs/fashion --layer conv2d_1",
    )
    p.add_argument("run", metavar="RUN", help="run folder, model .npz or checkpoint .npz")
    p.add_argument("--layer", default=None, help="conv layer name as summary() prints it")
    p.add_argument("--out", default="runs/filters", help="output folder (default runs/filters)")
    p.set_defaults(func=run_filters)

    p = subparsers.add_parser(
        "features", formatter_class=_RAW,
        help="draw a layer's feature maps for an image",
        description=_wrap("Run an image through the model and draw a layer's activations, one tile "
        "per channel (each scaled from min(0, its min) to its max: a dead channel is black). "
        "The image is read and prepared as 'cnnlab predict' does (converted to the model's "
        "channels and size). Default: every conv layer, one PNG each."),
        epilog="example:\n  cnnlab features runs/fashion shoe.png --layer conv2d --out figures",
    )
    p.add_argument("run", metavar="RUN", help="run folder, model .npz or checkpoint .npz")
    p.add_argument("image", metavar="IMAGE", help="image file (PNG, JPEG, ...)")
    p.add_argument("--layer", action="append", default=None,
                   help="layer name (repeat for several; default: every conv layer)")
    p.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                   help="invert grey levels, or not (default: detect, as cnnlab predict)")
    p.add_argument("--fit", choices=("auto", "digit", "resize"), default="auto",
                   help="how the image is fitted to the model's size, as in cnnlab predict")
    p.add_argument("--out", default="runs/features", help="output folder (default runs/features)")
    p.set_defaults(func=run_features)

    p = subparsers.add_parser(
        "maximize", formatter_class=_RAW,
        help="draw the inputs that most excite filters, neurons and classes",
        description=_wrap("Gradient ascent on the input image (Adam on sigmoid pixels, or on a "
        "decorrelated Fourier spectrum with --fourier) with random shifts, scales and "
        "rotations sized to the image, to maximise a conv channel's summed map, a dense "
        "neuron or a class logit. Without --layer it draws the lecture's three grids: the "
        "first 12 filters of the second conv layer, 9 neurons of the first dense layer and "
        "every output class (a layer followed by batch norm and ReLU is taken after its ReLU, "
        "as the lecture's feature maps are). --l1 is the lecture's penalty λΣ|x|, with x "
        "measured from the training data's mean pixel (the model's stored normalisation)."),
        epilog="examples:\n  cnnlab maximize runs/fashion --out figures\n"
        "  cnnlab maximize runs/fashion --layer relu_1 --units 0-11 --l1 0.05 --steps 256",
    )
    p.add_argument("run", metavar="RUN", help="run folder, model .npz or checkpoint .npz")
    p.add_argument("--layer", default=None, help="layer name (default: the lecture's 3 grids)")
    p.add_argument("--units", default=None,
                   help="units to draw: '0-11', '3', '0,4,7' (default: the first 12); "
                   "without --layer, the classes to draw (default: all)")
    p.add_argument("--l1", type=number_flag(float, 0), default=0.0, help="λ of the L1 penalty (default 0)")
    p.add_argument("--tv", type=number_flag(float, 0), default=0.0,
                   help="weight of the total-variation penalty (default 0)")
    p.add_argument("--steps", type=positive_int, default=256, help="ascent steps (default 256)")
    p.add_argument("--lr", type=number_flag(float, 0, low_open=True), default=0.05,
                   help="Adam step size (default 0.05)")
    p.add_argument("--blur-every", type=number_flag(int, 0), default=0,
                   help="blur the image every N steps (default 0: never)")
    p.add_argument("--redirect-steps", type=number_flag(int, 0), default=None,
                   help="steps that pass a gradient through dead ReLUs (default: half)")
    p.add_argument("--fourier", action="store_true",
                   help="optimise a decorrelated Fourier spectrum instead of pixels")
    p.add_argument("--seed", type=number_flag(int, 0), default=0, help="seed (default 0)")
    p.add_argument("--out", default="runs/maximize", help="output folder (default runs/maximize)")
    p.set_defaults(func=run_maximize)


def parse_units(text: str) -> list[int]:
    """'0-11' → [0, ..., 11]; '0,4,7' → [0, 4, 7]; '3' → [3]."""
    result = []
    for part in str(text).split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match or (match[2] is not None and int(match[2]) < int(match[1])):
            raise ExplainError(
                f"--units: expected units like '0-11', '3' or '0,4,7', received {text!r}"
            )
        low = int(match[1])
        result += list(range(low, int(match[2] or low) + 1))
    if len(result) > 1024:
        raise ExplainError(f"--units: at most 1024 units at once, received {len(result)}")
    return result


def _load(path):
    model = runs.load_any_model(path)
    if model.input_shape is None:
        raise ExplainError(f"{path}: the model has no input shape")
    pixels = int(np.prod(model.input_shape[1:], dtype=np.int64))
    if pixels > LIMITS.max_image_pixels:
        raise ExplainError(
            f"{path}: the model's input {tuple(model.input_shape)} has {pixels:,} pixels, more "
            f"than cnnlab.limits.max_image_pixels = {LIMITS.max_image_pixels:,}"
        )
    return model


def _check_batch(model, count: int) -> None:
    """Refuse a batch of images whose parameters alone would pass the array limit."""
    size = count * int(np.prod(model.input_shape, dtype=np.int64)) * 8
    if size > LIMITS.max_array_bytes:
        raise ExplainError(
            f"{count} images of shape {tuple(model.input_shape)} need {size / 2**30:.1f} GiB in "
            f"float64, more than cnnlab.limits.max_array_bytes: draw fewer --units at once"
        )


def _out(path) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ExplainError(f"--out {path} is a file, not a folder")
    return path


def _file_name(kind: str, layer: str) -> str:
    """'<kind>_<layer>.png', the layer's name (read from a model file: untrusted) reduced to
    letters, digits, '_', '-' and '.', so the file stays in --out."""
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_.-]', '_', layer)}.png"


def _written(path) -> None:
    print(f"wrote {path}")


@reports_errors("filters")
def run_filters(args) -> int:
    model = _load(args.run)
    out = _out(args.out)
    layer = args.layer or (probe.conv_layer_names(model) or [None])[0]
    grid = units.filters(model, layer)
    _written(figures.write_png(grid, out / _file_name("filters", layer), min_side=384))
    return 0


@reports_errors("features")
def run_features(args) -> int:
    # lazy: cnnlab.data loads scikit-learn
    from cnnlab.data.images import prepare_image, read_image

    model = _load(args.run)
    out = _out(args.out)
    channels = model.input_shape[0]
    if channels not in (1, 3):
        raise ExplainError(
            f"the model takes {channels}-channel images; an image file gives 1 (grey) or 3 (RGB)"
        )
    layers = args.layer or probe.conv_layer_names(model)
    if not layers:
        raise ExplainError(f"the model has no conv layer; name one of: "
                           f"{', '.join(probe.layer_names(model))}")
    for layer in layers:
        probe.find_layer(model, layer)
    try:
        image = prepare_image(read_image(args.image, channels=channels), model.input_shape,
                              invert=args.invert, fit=args.fit)
    except ValueError as error:
        if isinstance(error, ExplainError):
            raise
        raise ExplainError(f"{args.image}: {error}") from None
    _written(figures.write_png(image, out / "input.png"))
    for layer in layers:
        maps = units.feature_maps(model, layer, image)[0]
        if maps.ndim == 1:  # a dense layer: its neurons as one row of pixels
            maps = maps[:, None, None]
        _written(figures.write_png(units.map_grid(maps), out / _file_name("features", layer),
                                   min_side=384))
    return 0


def _unit_count(model, layer) -> int:
    zeros = np.zeros(model.input_shape, dtype=np.float32)
    if layer is None:
        return units.feature_maps(model, probe.layer_names(model)[-1], zeros).shape[1]
    return units.feature_maps(model, layer, zeros).shape[1]


def activation_after(model, layer: str) -> str:
    """The ReLU that ``layer``'s output reaches through batch norm only (conv → BN → ReLU), else
    ``layer``: the lecture's feature map is after the ReLU, and the sum of a conv's raw map is
    nearly a linear function of the previous layer's mean activation (its kernel's sum times
    it), so its "maximising input" is a flat image, not a pattern."""
    names = probe.layer_names(model)
    for name in names[names.index(layer) + 1:]:
        module = probe.find_layer(model, name)
        if isinstance(module, ReLU):
            return name
        if not isinstance(module, BatchNorm):
            break
    return layer


def _grids(model, args):
    """(name for files and titles, target layer or None, units, what a unit is called) for
    each grid to draw."""
    if args.layer is not None:
        probe.find_layer(model, args.layer)
        chosen = (parse_units(args.units) if args.units is not None
                  else list(range(min(LECTURE_FILTERS, _unit_count(model, args.layer)))))
        return [(args.layer, args.layer, chosen, "unit")]
    grids = []
    convs, denses = probe.conv_layer_names(model), probe.dense_layer_names(model)
    if convs:
        conv = convs[1] if len(convs) > 1 else convs[0]
        target = activation_after(model, conv)
        count = min(LECTURE_FILTERS, _unit_count(model, target))
        grids.append((conv, target, list(range(count)), "filter"))
    if len(denses) > 1:
        target = activation_after(model, denses[0])
        count = min(LECTURE_NEURONS, _unit_count(model, target))
        grids.append((denses[0], target, list(range(count)), "neuron"))
    classes = parse_units(args.units) if args.units is not None else list(
        range(_unit_count(model, None)))
    grids.append(("classes", None, classes, "class"))
    return grids


@reports_errors("maximize")
def run_maximize(args) -> int:
    # lazy: scipy.sparse, not needed by --help
    from cnnlab.explain.maximization import maximize

    model = _load(args.run)
    out = _out(args.out)
    names = model.class_names
    for name, layer, chosen, what in _grids(model, args):
        _check_batch(model, len(chosen))
        result = maximize(model, layer, chosen, steps=args.steps, lr=args.lr, l1=args.l1,
                          tv=args.tv, blur_every=args.blur_every, fourier=args.fourier,
                          redirect_steps=args.redirect_steps, seed=args.seed,
                          progress=sys.stderr.isatty())
        what = "class" if result.layer is None else what  # --layer named the output layer
        panels = []
        for unit, image, value in zip(chosen, result.images, result.final):
            label = names[unit] if what == "class" and names and unit < len(names) else (
                f"{what} {unit}")
            panels.append((f"{label}  ({value:.3g})", image))
        where = "logits" if result.layer is None else (
            name if name == layer else f"{name} (after {layer})")
        title = f"{where}: input maximising each {what}" + (
            f", L1 λ={args.l1:g}" if args.l1 else "")
        columns = min(len(panels), 5 if what == "class" else 4 if len(panels) > 9 else 3)
        _written(figures.sheet(panels, out / _file_name("maximize", name), columns=columns,
                               title=title, panel_inches=2.2))
        for unit, start, final in zip(chosen, result.start, result.final):
            print(f"  {where} {what} {unit}: {start:.4g} -> {final:.4g}")
    return 0
