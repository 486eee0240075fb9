"""``cnnlab dream`` and ``cnnlab style``: Deep Dream and style transfer from the command line.

``register(subparsers)`` adds both; each handler only reads the files, calls
``cnnlab.explain`` and writes PNGs into ``--out``. Errors are ``cnnlab <command>: error: ...``
with exit status 2 (``reports_errors``).

A feature network is "random" (the random multi-scale extractor: no run, no download), a
cnnlab run folder or model file, or a torchvision VGG state_dict (.safetensors, .npz, .pth).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

from cnnlab import runs
from cnnlab.data.images import read_image, resize_image
from cnnlab.errors import FileFormatError
from cnnlab.explain.dream import deep_dream
from cnnlab.explain.extractor import content_layer_name, random_extractor
from cnnlab.explain.figures import sheet, write_png
from cnnlab.explain.importers import load_vgg_weights
from cnnlab.explain.style import style_transfer
from cnnlab.io import open_archive
from cnnlab.lab.cli_conventions import number_flag, positive_int, reports_errors

__all__ = ["load_features", "register"]

_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")
non_negative = number_flag(float, 0)

DREAM_EXAMPLE = """example:
  cnnlab dream photo.jpg --size 256 --out runs/dream
  cnnlab dream photo.jpg --model runs/f94-val-c --layer conv2d_3 --size 128
  cnnlab dream photo.jpg --model vgg16.safetensors --layer conv2d_9

writes dream.png (the dream) and dream_sheet.png (the photo beside it) into --out."""

STYLE_EXAMPLE = """example:
  cnnlab style photo.jpg starry_night.jpg --size 256 --steps 100 --out runs/style
  cnnlab style photo.jpg scream.jpg --features vgg19.safetensors --style-weight 1e5

writes style.png (the result) and style_sheet.png (content, style, result and the loss
curve) into --out."""


def register(subparsers) -> None:
    """Add ``dream`` and ``style`` to an argparse sub-parser group."""
    p = subparsers.add_parser(
        "dream", help="Deep Dream: exaggerate what a layer sees in an image",
        description="Gradient ascent on the image to raise a layer's mean squared activation, "
        "over octaves (Google's deepdream notebook). Without --model, a random-weight "
        "multi-scale extractor is used (no run, no download).",
        epilog=DREAM_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", metavar="IMAGE", help="the picture to dream on")
    p.add_argument("--model", default="random",
                   help="random (default), a run folder or model file, or VGG weights "
                   "(.safetensors, .npz, .pth)")
    p.add_argument("--layer", default=None,
                   help="layer to excite, as summary() names it (default: a conv layer at 60%% "
                   "of the depth)")
    p.add_argument("--octaves", type=positive_int, default=4, help="octaves (default 4)")
    p.add_argument("--octave-scale", type=number_flag(float, 1, low_open=True), default=1.4,
                   help="size ratio between octaves (default 1.4)")
    p.add_argument("--steps", type=positive_int, default=10, help="steps per octave (default 10)")
    p.add_argument("--step-size", type=number_flag(float, 0, low_open=True), default=1.5,
                   help="step in 8-bit grey levels (default 1.5)")
    p.add_argument("--size", type=positive_int, default=256,
                   help="longer side of the image in pixels (default 256)")
    p.add_argument("--seed", type=number_flag(int, 0), default=0, help="seed (default 0)")
    p.add_argument("--out", default="runs/dream", help="output directory (default runs/dream)")
    p.set_defaults(func=run_dream)

    p = subparsers.add_parser(
        "style", help="style transfer: paint CONTENT in the style of STYLE",
        description="Neural style transfer (Gatys, Ecker & Bethge 2016): content loss on one "
        "layer, style loss on Gram matrices of several, total variation; the image is "
        "optimised with L-BFGS-B or Adam.",
        epilog=STYLE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("content", metavar="CONTENT", help="the picture whose content is kept")
    p.add_argument("style", metavar="STYLE", help="the picture whose style is taken")
    p.add_argument("--features", default="random",
                   help="random (default), a run folder or model file, or VGG weights "
                   "(.safetensors, .npz, .pth)")
    p.add_argument("--size", type=positive_int, default=256,
                   help="longer side of the result in pixels (default 256)")
    p.add_argument("--steps", type=positive_int, default=100,
                   help="optimiser steps (default 100)")
    p.add_argument("--style-weight", type=non_negative, default=None,
                   help="weight of the style loss (default: style_transfer's)")
    p.add_argument("--content-weight", type=non_negative, default=1.0,
                   help="weight of the content loss (default 1)")
    p.add_argument("--tv-weight", type=non_negative, default=None,
                   help="weight of the total variation (default: style_transfer's)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs",
                   help="lbfgs (default) or adam")
    p.add_argument("--init", choices=["content", "noise"], default="content",
                   help="start from the content (default) or from noise")
    p.add_argument("--seed", type=number_flag(int, 0), default=0, help="seed (default 0)")
    p.add_argument("--out", default="runs/style", help="output directory (default runs/style)")
    p.set_defaults(func=run_style)


def load_features(spec: str):
    """The feature network a command names: "random", VGG weights, or a cnnlab model/run."""
    if spec == "random":
        return random_extractor()
    path = Path(spec)
    if path.suffix.lower() in _WEIGHT_SUFFIXES:
        return load_vgg_weights(path)
    if path.suffix.lower() == ".npz" and path.is_file():
        with open_archive(path, header=False) as archive:
            is_cnnlab = "__cnnlab__" in archive.entries
        if not is_cnnlab:
            return load_vgg_weights(path)
    return runs.load_any_model(path)


def _read(path: str, channels: int, size: int) -> np.ndarray:
    """The picture as (channels, H, W) in [0, 1], its longer side ``size``."""
    image = read_image(path, channels)
    h, w = image.shape[1:]
    scale = size / max(h, w)
    return resize_image(image, (max(1, round(h * scale)), max(1, round(w * scale))))


def _channels(model) -> int:
    shape = getattr(model, "input_shape", None)
    if not shape:
        raise FileFormatError("the feature model has no input shape (an unbuilt model?)")
    return int(shape[0])


@contextlib.contextmanager
def _bar(total: int, what: str):
    """A tqdm bar on stderr when it is a terminal; ``update`` for the library's progress."""
    from tqdm import tqdm  # lazy: only the commands draw bars

    with tqdm(total=total, desc=what, file=sys.stderr, disable=not sys.stderr.isatty(),
              leave=False) as bar:
        yield bar.update


@reports_errors("dream")
def run_dream(args) -> int:
    model = load_features(args.model)
    layer = args.layer or content_layer_name(model)
    image = _read(args.image, _channels(model), args.size)
    started = time.perf_counter()
    with _bar(args.octaves * args.steps, "dream") as update:
        result = deep_dream(model, image, layer, octaves=args.octaves,
                            octave_scale=args.octave_scale, steps=args.steps,
                            step_size=args.step_size, seed=args.seed, progress=update)
    seconds = time.perf_counter() - started
    out = Path(args.out)
    write_png(result.image, out / "dream.png")
    sheet([("image", image), (f"dream: {layer}", result.image)], out / "dream_sheet.png",
          panel_inches=3.5)
    rise = ", ".join(f"{a:.3g}→{b:.3g}" for a, b in result.objective)
    print(f"dream: layer {layer}, octaves {[list(s) for s in result.sizes]}, mean(a²) per "
          f"octave {rise}, {seconds:.1f} s; wrote {out / 'dream.png'} and "
          f"{out / 'dream_sheet.png'}")
    return 0


@reports_errors("style")
def run_style(args) -> int:
    model = load_features(args.features)
    channels = _channels(model)
    content = _read(args.content, channels, args.size)
    style = _read(args.style, channels, args.size)
    options = {k: v for k, v in (("style_weight", args.style_weight),
                                 ("tv_weight", args.tv_weight)) if v is not None}
    started = time.perf_counter()
    with _bar(args.steps, "style") as update:
        result = style_transfer(content, style, features=model,
                                content_weight=args.content_weight, steps=args.steps,
                                optimizer=args.optimizer, init=args.init, seed=args.seed,
                                progress=update, **options)
    seconds = time.perf_counter() - started
    out = Path(args.out)
    write_png(result.image, out / "style.png")
    sheet([("content", content), ("style", style), ("result", result.image),
           ("total loss", result.losses)], out / "style_sheet.png", panel_inches=3.0)
    if len(result.losses) - 1 < args.steps:
        print(f"style: stopped after {len(result.losses) - 1} of {args.steps} steps: "
              f"{result.stopped.lower()}")
    print(f"style: {len(result.losses) - 1} steps, loss {result.losses[0]:.4g} → "
          f"{result.losses[-1]:.4g} ({result.losses[0] / max(result.losses[-1], 1e-30):.1f}×), "
          f"{seconds:.1f} s; wrote {out / 'style.png'} and {out / 'style_sheet.png'}")
    return 0
