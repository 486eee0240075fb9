"""The attribution commands: ``cnnlab saliency`` and ``cnnlab occlusion``.

``register(subparsers)`` adds both; each handler reads a run (or a model file) and image files,
calls ``cnnlab.explain`` and writes PNG sheets under ``--out``. Images are read and fitted to
the model's input as ``cnnlab predict`` does (a colour file is turned grey for a grey model).
Errors: ``cnnlab <command>: error: <message>``, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cnnlab import runs
from cnnlab.explain import figures
from cnnlab.lab.cli_conventions import (
    LabCommandError,
    number_flag,
    positive_int,
    reports_errors,
)

SALIENCY_EXAMPLE = """example:
  cnnlab saliency runs/fashion shirt.png boot.png --method gradcam --sanity --out runs/saliency
  cnnlab saliency runs/digits seven.png --method all --target 7 --fit resize
writes <out>/<image>-<method>.png (the image, the heat-map over it, the map) and, with
--sanity, <out>/sanity-<method>.png (Adebayo et al.'s randomisation test)."""

OCCLUSION_EXAMPLE = """example:
  cnnlab occlusion runs/fashion boot.png --patch 4 --stride 2 --out runs/occlusion
writes <out>/<image>-occlusion.png: the drop in the target's probability when a
patch x patch square of --baseline covers each place."""

CLI_METHODS = ("gradient", "smoothgrad", "integrated-gradients", "gradcam")


def register(subparsers) -> None:
    """Add ``saliency`` and ``occlusion`` to an argparse sub-parser group."""
    p = subparsers.add_parser(
        "saliency",
        help="which pixels matter: gradient, SmoothGrad, integrated gradients, Grad-CAM",
        description="Draw a saliency map of each image for the predicted class (or --target), "
        "side by side with the image.",
        epilog=SALIENCY_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _model_and_image_flags(p, several=True)
    p.add_argument("--method", choices=(*CLI_METHODS, "all"), default="gradient",
                   help="the attribution method (default gradient; all: the four side by side)")
    p.add_argument("--layer", default=None,
                   help="Grad-CAM's layer, a name summary() prints (default: the last conv "
                   "layer's output)")
    p.add_argument("--samples", type=positive_int, default=50,
                   help="SmoothGrad's noisy copies (default 50)")
    p.add_argument("--noise", type=number_flag(float, 0), default=0.15,
                   help="SmoothGrad's noise, a fraction of the image's range (default 0.15)")
    p.add_argument("--steps", type=positive_int, default=50,
                   help="integrated gradients' steps (default 50, Gauss-Legendre)")
    p.add_argument("--seed", type=int, default=0, help="seed of SmoothGrad and --sanity")
    p.add_argument("--sanity", action="store_true",
                   help="also run the model-parameter randomisation sanity check")
    p.add_argument("--out", default="runs/saliency", help="output folder (default runs/saliency)")
    p.set_defaults(func=run_saliency)

    p = subparsers.add_parser(
        "occlusion",
        help="the drop in the class probability as a square covers each part of the image",
        description="Slide a patch x patch square of a baseline value over the image and map "
        "the drop in the target's probability (Zeiler and Fergus 2014).",
        epilog=OCCLUSION_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _model_and_image_flags(p, several=False)
    p.add_argument("--patch", type=positive_int, default=None,
                   help="side of the square in pixels (default: about a seventh of the image)")
    p.add_argument("--stride", type=positive_int, default=None,
                   help="step of the square in pixels (default: half the patch)")
    p.add_argument("--baseline", type=number_flag(float, 0, 1), default=0.0,
                   help="grey level of the square, 0 (black) to 1 (default 0)")
    p.add_argument("--logit", action="store_true",
                   help="map the drop in the class's logit instead of its probability (which "
                   "barely moves when the model is sure)")
    p.add_argument("--out", default="runs/occlusion",
                   help="output folder (default runs/occlusion)")
    p.set_defaults(func=run_occlusion)


def _model_and_image_flags(p, several: bool) -> None:
    p.add_argument("model", metavar="RUN", help="run folder, model .npz or checkpoint .npz")
    p.add_argument("images", metavar="IMAGE", nargs="+" if several else 1,
                   help="image file(s) (PNG, JPEG, ...)")
    p.add_argument("--target", default=None,
                   help="class to explain, a number or a class name (default: the predicted one)")
    p.add_argument("--fit", choices=("auto", "digit", "resize"), default="auto",
                   help="how to fit the image to the model's input, as in cnnlab predict "
                   "(resize for Fashion-MNIST-like images; default auto)")
    p.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                   help="invert grey levels, or not (default: detect dark ink on light paper)")


def _load(args):
    """(model, images (N, C, H, W) in [0, 1], target class number or None)."""
    from cnnlab.data.images import prepare_image, read_image  # lazy: scikit-learn

    model = runs.load_any_model(args.model)
    if model.input_shape is None or len(model.input_shape) != 3:
        raise LabCommandError(f"{args.model}: the model doesn't take images (input shape "
                              f"{model.input_shape})")
    images = []
    for path in args.images:
        try:
            picture = read_image(path, channels=model.input_shape[0])
            images.append(prepare_image(picture, model.input_shape, invert=args.invert,
                                        fit=args.fit))
        except ValueError as error:
            raise LabCommandError(f"{path}: {error}") from None
    return model, np.stack(images), _target(model, args.target)


def _target(model, text):
    names = [str(n) for n in (getattr(model, "class_names", None) or [])]
    classes = int(model.compute_output_shape(model.input_shape)[-1])
    if text is None:
        return None
    if text in names:
        return names.index(text)
    try:
        number = int(text)
    except ValueError:
        number = -1
    if 0 <= number < classes:
        return number
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    valid = f"0 to {classes - 1}" + (f" or a name: {shown}" if names else "")
    raise LabCommandError(f"unknown target class {text!r}; the model's classes are {valid}")


def _class(model, k: int) -> str:
    names = getattr(model, "class_names", None)
    return f"{names[k]} ({k})" if names is not None and k < len(names) else str(k)


def _bar(total: int, what: str):
    """A tqdm progress callback on stderr (silent when stderr isn't a terminal)."""
    from tqdm import tqdm  # lazy: only long runs need it

    bar = tqdm(total=total, desc=what, unit="step", file=sys.stderr, disable=None, leave=False)

    def update(done, _total):
        bar.update(done - bar.n)
        if done >= _total:
            bar.close()

    return update


def _shown(method, values):
    """What an overlay shows: |attribution| for integrated gradients (signed), else the map."""
    return np.abs(values) if method == "integrated-gradients" else values


def _map_title(method):
    return f"{method} (red +, blue −)" if method == "integrated-gradients" else method


def _map_panel(method, values):
    """A signed map as a diverging RGB image; a non-negative one as a map with a colour bar."""
    return figures.colorize(values, symmetric=True) if method == "integrated-gradients" else values


def _colour(method, values):
    return figures.colorize(values, symmetric=method == "integrated-gradients")


def _probabilities(scores, index) -> np.ndarray:
    z = scores[index] - scores[index].max()
    return np.exp(z) / np.exp(z).sum()


def _short_heading(model, scores, index) -> str:
    probabilities = _probabilities(scores, index)
    predicted = int(probabilities.argmax())
    names = getattr(model, "class_names", None)
    name = names[predicted] if names is not None and predicted < len(names) else predicted
    return f"{name} ({probabilities[predicted]:.2f})"


def _heading(model, scores, k, index) -> str:
    """The title: the predicted class and its probability, and the explained class if other."""
    probabilities = _probabilities(scores, index)
    predicted = int(probabilities.argmax())
    line = f"predicted {_class(model, predicted)}, p = {probabilities[predicted]:.3f}"
    if k != predicted:
        line += f"; explaining {_class(model, k)}, p = {probabilities[k]:.3f}"
    return line


@reports_errors("saliency")
def run_saliency(args) -> int:
    from cnnlab.explain import attribution
    from cnnlab.explain.probe import find_layer
    from cnnlab.explain.sanity import randomizable_layers, sanity_check, sanity_figure

    if args.layer is not None and args.method not in ("gradcam", "all"):
        raise LabCommandError(f"--layer is Grad-CAM's; use it with --method gradcam (or all), "
                              f"not {args.method}")
    model, images, target = _load(args)
    if args.layer is not None:
        find_layer(model, args.layer)
    scores = attribution.logits(model, images)
    targets = attribution.resolve_targets(target, scores, "saliency")
    methods = CLI_METHODS if args.method == "all" else (args.method,)
    options = {
        "smoothgrad": {"samples": args.samples, "noise": args.noise, "seed": args.seed},
        "integrated_gradients": {"steps": args.steps},
        "gradcam": {"layer": args.layer},
    }
    maps = {}
    for method in methods:
        name = method.replace("-", "_")
        extra = dict(options.get(name, {}))
        if name in ("smoothgrad", "integrated_gradients"):
            count = args.samples if name == "smoothgrad" else args.steps
            extra["progress"] = _bar(count * len(images), method)
        maps[method] = attribution.saliency(model, images, targets, name, **extra)
    out = Path(args.out)
    label = "all" if len(maps) > 1 else methods[0]
    for i, path in enumerate(args.images):
        # row 1: the image and each map over it; row 2: each map alone, with its scale
        overlays = [(f"{method} over the image", figures.overlay(images[i], _shown(method, v[i])))
                    for method, v in maps.items()]
        alone = [(_map_title(method), _map_panel(method, v[i])) for method, v in maps.items()]
        panels = [("image", images[i]), *overlays]
        panels += [("", np.ones_like(images[i])), *alone] if len(maps) > 1 else alone
        written = figures.sheet(panels, out / f"{Path(path).stem}-{label}.png",
                                columns=len(maps) + 1,
                                title=_heading(model, scores, int(targets[i]), i))
        print(written)
    if len(images) > 1:
        panels = []
        for i in range(len(images)):
            panels.append((_short_heading(model, scores, i), images[i]))
            panels += [(method if i == 0 else "", _colour(method, v[i])) for method, v in maps.items()]
        print(figures.sheet(panels, out / f"saliency-{label}.png", columns=len(maps) + 1,
                            panel_inches=1.9))
    if args.sanity:
        for method in methods:
            name = method.replace("-", "_")
            extra = options.get(name, {})
            result = sanity_check(model, images, name, seed=args.seed, target=targets,
                                  options=extra, progress=_bar(len(randomizable_layers(model)),
                                                               f"sanity {method}"))
            written = sanity_figure(result, images, out / f"sanity-{method}.png")
            steps = ", ".join(f"{s} {r:.2f}" for s, r in zip(result.steps[1:],
                                                              result.rank_correlation[1:]))
            print(f"{written}: rank correlation after randomising {steps}")
    return 0


@reports_errors("occlusion")
def run_occlusion(args) -> int:
    from cnnlab.explain.attribution import logits, resolve_targets
    from cnnlab.explain.occlusion_maps import default_patch, occlusion, patch_starts

    model, images, target = _load(args)
    height, width = images.shape[2:]
    patch = args.patch or default_patch(min(height, width))[0]
    if patch > min(height, width):
        raise LabCommandError(f"--patch {patch} is larger than the model's input "
                              f"({height}x{width})")
    stride = args.stride or max(1, patch // 2)
    squares = len(patch_starts(height, patch, min(stride, height))) * len(
        patch_starts(width, patch, min(stride, width)))
    scores = logits(model, images)
    k = int(resolve_targets(target, scores, "occlusion")[0])
    score = "logit" if args.logit else "probability"
    values = occlusion(model, images[0], k, patch=patch, stride=stride, baseline=args.baseline,
                       score=score, progress=_bar(squares, "occlusion"))
    panels = [("image", images[0]),
              ("drop over the image", figures.overlay(images[0], np.maximum(values, 0))),
              (f"drop in {'the logit' if args.logit else 'p'} (patch {patch}, stride {stride})",
               values)]
    written = figures.sheet(panels, Path(args.out) / f"{Path(args.images[0]).stem}-occlusion.png",
                            title=_heading(model, scores, k, 0))
    print(written)
    return 0
