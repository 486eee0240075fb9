"""Candidates for the random-weight style extractor (docs/explain/art.md): the same style
transfer with each, judged by two other random networks the optimisation never saw.

For each candidate: scikit-image's cat in the style of The Starry Night, --size px, --steps
L-BFGS steps, style weight --style-weight. The judges' numbers: the Gram distance to the
painting relative to the photo's (lower = more style taken) and the content error relative
to the photo's feature energy (lower = more of the photo kept). Writes a sheet of results.

Usage: python benchmarks/explain_extractor.py [--size 128] [--steps 40] [--painting JPG]
       [--out runs/extractor]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cnnlab.data.images import read_image, resize_image
from cnnlab.explain.extractor import (
    content_layer_name,
    random_extractor,
    style_layer_names,
)
from cnnlab.explain.figures import sheet
from cnnlab.explain.probe import inspecting
from cnnlab.explain.style import gram, layer_outputs, style_loss, style_transfer
from cnnlab.tensor import Tensor

# the repository's ../shared, as README says
PAINTING = Path(__file__).resolve().parents[1].parent / "shared/datasets/style-paintings-pd/starry_night.jpg"

CANDIDATES = {
    "A 32-64-128-128 k5/3 avg": {},
    "B same, max pool": {"pool": "max"},
    "C 64-128-256-256 avg": {"widths": (64, 128, 256, 256)},
    "D two convs per stage": {"convs_per_stage": 2},
    "E all 3x3": {"first_kernel_size": 3},
    "G 3 stages 32-64-128": {"widths": (32, 64, 128)},
}
JUDGES = (
    {"seed": 1001, "widths": (48, 96, 160, 160), "pool": "max", "first_kernel_size": 7},
    {"seed": 2002, "widths": (64, 64, 128, 128), "convs_per_stage": 2, "first_kernel_size": 3},
)


def longer_side(image, size):
    h, w = image.shape[1:]
    scale = size / max(h, w)
    return resize_image(image, (round(h * scale), round(w * scale)))


def judged(result, content, style):
    """(style ratio, content error), averaged over the judges."""
    scores = []
    for options in JUDGES:
        judge = random_extractor(**options)
        layers, middle = style_layer_names(judge), content_layer_name(judge)
        with inspecting(judge):
            out = {name: layer_outputs(judge, Tensor(image[None]), [*layers, middle])
                   for name, image in (("result", result), ("content", content), ("style", style))}
        targets = [gram(out["style"][n]).data[0] for n in layers]
        result_d, content_d = (
            float(style_loss([gram(out[name][n]) for n in layers], targets).data)
            for name in ("result", "content"))
        a, c = out["result"][middle].data, out["content"][middle].data
        scores.append((result_d / content_d,
                       float(((a - c) ** 2).mean() / (c ** 2).mean())))
    return np.mean(scores, axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--style-weight", type=float, default=3.0)
    parser.add_argument("--painting", default=str(PAINTING))
    parser.add_argument("--out", default="runs/extractor")
    args = parser.parse_args(argv)
    import skimage.data  # lazy: only this script needs the photo

    content = longer_side((skimage.data.chelsea().transpose(2, 0, 1) / 255.0).astype(np.float32),
                          args.size)
    style = longer_side(read_image(args.painting, 3), args.size)
    panels = []
    print("| candidate | style ratio (judges) | content error (judges) | seconds |")
    for name, options in CANDIDATES.items():
        started = time.perf_counter()
        result = style_transfer(content, style, features=random_extractor(**options),
                                steps=args.steps, style_weight=args.style_weight)
        seconds = time.perf_counter() - started
        ratio, error = judged(result.image, content, style)
        print(f"| {name} | {ratio:.3f} | {error:.2f} | {seconds:.0f} |", flush=True)
        panels.append((f"{name}\nstyle {ratio:.2f} content {error:.2f}", result.image))
    path = sheet(panels, Path(args.out) / "extractor_candidates.png", columns=3, panel_inches=3.2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
