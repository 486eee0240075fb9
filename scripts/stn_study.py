"""Spatial transformers against plain CNNs and augmentation on the paper's distorted datasets.

For each distortion (R, RTS, P, E: ``cnnlab.data.distort``) of each dataset (the 28×28 digits,
Fashion-MNIST), three models are trained on the same budget (epochs, batch size, Adam, learning
rate, seed) and scored on the distorted test split:

1. ``plain``: the plain CNN (``--plain-model``, default the zoo's ``stn-plain`` when it exists,
   else this script's stand-in ``standin_plain_cnn``), trained on the distorted training split;
2. ``augment``: the same CNN trained with augmentation covering the same distortions: every
   epoch after the first sees the clean training images distorted afresh (new draws from the
   same distribution, ``default_rng([seed, 0, epoch])``); epoch 0 sees the split the other arms
   see. Adam's state carries over between epochs, so the budget is the same;
3. ``st-cnn``: ``cnnlab.models.get("st-cnn")``, trained like ``plain``. Skipped with a message
   while the zoo has no ``st-cnn``.

Each cell (dataset, distortion, arm) is written atomically to ``OUT/cells/<data>_<kind>_<arm>.json``
with its model in ``OUT/models/``; cells already done are skipped, so a long study can run in
pieces (``--only R,RTS --data digits``). Every invocation rewrites ``OUT/stn_study.md`` and
``OUT/stn_study.json`` from all the cells present, and the figures:

- ``distortions_<data>.png``: test images, clean and under each distortion;
- ``st_output_<data>_<kind>.png``: distorted test images next to what the ST-CNN's spatial
  transformer made of them (when its cell exists);
- ``invariance_<data>_<kind>.png``: the three models' ``invariance_curves`` on the clean test
  images (centred on the 42×42 canvas for RTS) on one plot, for R and RTS.

Usage:
    python scripts/stn_study.py --data digits [--only R,RTS] [--arms plain,augment,st-cnn]
        [--epochs 30] [--batch-size 64] [--lr 1e-3] [--seed 0] [--train-images N]
        [--out runs/stn_study]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cnnlab import models, nn, optim
from cnnlab.atomic import atomic_writer, write_text
from cnnlab.data import ArrayDataset, Splits, load_dataset
from cnnlab.data.distort import (
    KINDS,
    affine_place,
    distort_dataset,
    distort_images,
    distort_splits,
)
from cnnlab.io import load_model, save_model
from cnnlab.lab import figures
from cnnlab.lab.cli_conventions import number_flag, positive_int
from cnnlab.lab.invariance import invariance_curves
from cnnlab.training import evaluate, fit

ARMS = ("plain", "augment", "st-cnn")
DATASETS = ("digits", "fashion-mnist")
#: Jaderberg et al. 2015, table 1, MNIST test error (%): CNN and ST-CNN (affine)
PAPER = {"CNN": {"R": 1.2, "RTS": 0.8, "P": 1.5, "E": 1.4},
         "ST-CNN (affine)": {"R": 0.7, "RTS": 0.5, "P": 0.8, "E": 1.2}}


def standin_plain_cnn(input_shape, num_classes: int = 10, seed: int = 0) -> nn.Sequential:
    """Stand-in plain CNN: conv 16@5×5 → pool 2 → conv 32@5×5 → pool 2 → dense 128 → dense.

    'same' padding, so 28 → 14 → 7 (1,568 features) and 42 → 21 → 10 (3,200).
    """
    model = nn.Sequential(
        nn.Conv2D(16, 5, padding=2, activation="relu"),
        nn.MaxPool2D(2),
        nn.Conv2D(32, 5, padding=2, activation="relu"),
        nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Dense(128, activation="relu"),
        nn.Dense(num_classes),
        name="standin_plain",
    )
    model.seed = seed
    return model.build(tuple(input_shape))


def plain_model_name(requested: str | None) -> str:
    if requested:
        return requested
    return "stn-plain" if "stn-plain" in models.available() else "standin"


def build_model(arm: str, plain_name: str, input_shape, num_classes: int, seed: int):
    if arm == "st-cnn":
        return models.get("st-cnn", input_shape=input_shape, num_classes=num_classes, seed=seed)
    if plain_name == "standin":
        return standin_plain_cnn(input_shape, num_classes, seed)
    return models.get(plain_name, input_shape=input_shape, num_classes=num_classes, seed=seed)


def load_clean(data: str, train_images: int | None) -> Splits:
    splits = load_dataset(data, image_size=28)
    train, test = splits
    if train_images and train_images < len(train):
        train = train.subset(np.arange(train_images))
    return Splits(train, test)


def train_cell(arm, model, clean: Splits, distorted: Splits, kind, args):
    """Train ``model`` for one cell; returns the seconds taken."""
    start = time.perf_counter()
    if arm != "augment":
        fit(model, distorted.train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            seed=args.seed, verbose=args.verbose)
        return time.perf_counter() - start
    optimizer = optim.get_optimizer("adam", model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        if epoch == 0:
            train = distorted.train
        else:
            # Fresh distortions of the clean images, normalised as the fixed split is.
            train = distort_dataset(clean.train, kind, [args.seed, 0, epoch],
                                    mean=distorted.train.mean, std=distorted.train.std)
        fit(model, train, epochs=1, batch_size=args.batch_size, optimizer=optimizer,
            seed=args.seed + epoch, verbose=args.verbose)
    return time.perf_counter() - start


def cell_name(data: str, kind: str, arm: str) -> str:
    return f"{data}_{kind}_{arm}"


def run_cell(data, kind, arm, clean, distorted, plain_name, args, out: Path) -> None:
    name = cell_name(data, kind, arm)
    path = out / "cells" / f"{name}.json"
    if path.is_file():
        print(f"{name}: done already ({path})")
        done = read_cells(out).get((data, kind, arm), {})
        if arm != "st-cnn" and done.get("model") not in (None, plain_name):
            print(f"  note: that cell's plain CNN is {done['model']!r}, not {plain_name!r}; "
                  "delete the cell to train it again")
        return
    model = build_model(arm, plain_name, distorted.train.image_shape, distorted.train.num_classes,
                        args.seed)
    print(f"\n== {name}: {model.num_parameters():,} parameters")
    seconds = train_cell(arm, model, clean, distorted, kind, args)
    (out / "models").mkdir(parents=True, exist_ok=True)
    model_file = out / "models" / f"{name}.npz"
    save_model(model, model_file)
    test = evaluate(model, distorted.test)
    record = {
        "data": data, "kind": kind, "arm": arm,
        "model": "st-cnn" if arm == "st-cnn" else plain_name,
        "parameters": model.num_parameters(),
        "train_images": len(distorted.train), "test_images": len(distorted.test),
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": "adam",
        "lr": args.lr, "seed": args.seed,
        "mean": distorted.train.mean, "std": distorted.train.std,
        "test_error": 1.0 - float(test["accuracy"]), "test_loss": float(test["loss"]),
        "train_seconds": seconds, "model_file": str(model_file.relative_to(out)),
    }
    print(f"{name}: test error {100 * record['test_error']:.2f}% ({seconds:.0f} s)")
    (out / "cells").mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(record, indent=1))


def read_cells(out: Path) -> dict:
    cells = {}
    for path in sorted((out / "cells").glob("*.json")):
        try:
            record = json.loads(path.read_text())
            cells[(record["data"], record["kind"], record["arm"])] = record
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"skipping {path}: {error}")
    return cells


def summary(cells: dict) -> str:
    lines = ["| data | model | " + " | ".join(KINDS) + " |",
             "|---|---|" + "---:|" * len(KINDS)]
    for data in DATASETS:
        for arm in ARMS:
            row = [f"{100 * cells[(data, k, arm)]['test_error']:.2f}"
                   if (data, k, arm) in cells else "–" for k in KINDS]
            if any(v != "–" for v in row):
                lines.append(f"| {data} | {arm} | " + " | ".join(row) + " |")
    for name, errors in PAPER.items():
        lines.append(f"| MNIST (paper) | {name} | " + " | ".join(f"{errors[k]:.1f}" for k in KINDS)
                     + " |")
    return "\n".join(lines) + "\n"


def _grid_figure(rows, path: Path, title: str) -> Path:
    """A figure of image rows: ``rows`` is [(label, uint8 images (N, 1, H, W))]."""
    from matplotlib.figure import Figure

    columns = max(len(images) for _, images in rows)
    figure = Figure(figsize=(1.0 * columns + 1.2, 1.05 * len(rows) + 0.4), dpi=80)
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(columns):
            axis = axes[r, c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(images):
                axis.imshow(images[c, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            else:
                axis.set_axis_off()
        axes[r, 0].set_ylabel(label, fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.1, right=0.99, bottom=0.01, top=0.93, wspace=0.05, hspace=0.1)
    with atomic_writer(path) as handle:
        figure.savefig(handle, format="png")
    return path


def distortion_figure(data: str, clean: Splits, seed: int, out: Path, count: int = 8) -> Path:
    test = clean.test.images[:count]
    rows = [("clean", test)]
    for kind in KINDS:
        rows.append((kind, distort_images(test, kind, [seed, 1])))
    return _grid_figure(rows, out / f"distortions_{data}.png",
                        f"{data}: test images, clean and distorted (seed {seed})")


def _spatial_transformer(model):
    layer_type = getattr(nn, "SpatialTransformer", None)
    if layer_type is None:
        return None
    return next((m for m in model.modules() if isinstance(m, layer_type)), None)


def st_output_figure(data, kind, distorted: Splits, record: dict, out: Path, count=8):
    """Distorted test images next to the spatial transformer's output for them."""
    from cnnlab.nn.module import eval_mode
    from cnnlab.tensor import Tensor, no_grad

    model = load_model(out / record["model_file"])
    layer = _spatial_transformer(model)
    if layer is None:
        print(f"{data} {kind}: the st-cnn model has no nn.SpatialTransformer; no figure")
        return None
    images = distorted.test.images[:count]
    x = distorted.test.normalize(images)
    if hasattr(layer, "warp"):
        warped = np.asarray(layer.warp(x)[1])
    else:
        with no_grad(), eval_mode(model):
            warped = np.asarray(layer(Tensor(x)).data)
    # Back to pixels with the input's normalisation (the sampler is linear in the pixels).
    pixels = np.clip(np.rint((warped * distorted.test.std + distorted.test.mean) * 255), 0, 255)
    rows = [(f"{kind} input", images), ("ST output", pixels.astype(np.uint8))]
    return _grid_figure(rows, out / f"st_output_{data}_{kind}.png",
                        f"{data} {kind}: the spatial transformer's output")


def clean_test_for(record: dict, clean: Splits, shape, limit: int) -> ArrayDataset:
    """The clean test images as the cell's model saw its training data: on its canvas, with
    the distorted training split's mean/std."""
    test = clean.test.subset(np.arange(min(limit, len(clean.test))))
    images = test.images
    if tuple(shape[1:]) != images.shape[2:]:
        images = affine_place(images, 0.0, 1.0, (0.0, 0.0), canvas=tuple(shape[1:]))
    return ArrayDataset(images, test.labels, test.class_names, f"{test.name} (clean)",
                        mean=record["mean"], std=record["std"])


def invariance_figure(data, kind, cells, clean, out: Path, limit: int):
    results = {}
    for arm in ARMS:
        record = cells.get((data, kind, arm))
        if record is None or (arm == "st-cnn" and "st-cnn" not in models.available()):
            continue
        model = load_model(out / record["model_file"])
        test = clean_test_for(record, clean, model.input_shape, limit)
        results[f"{arm} (trained on {kind})"] = invariance_curves(model, test)
    if len(results) < 2:
        return None
    write_text(out / f"invariance_{data}_{kind}.json",
               json.dumps({k: v.to_dict() for k, v in results.items()}, indent=1))
    return figures.invariance_figure(results, out / f"invariance_{data}_{kind}.png",
                                     title=f"{data}, models trained on {kind}: accuracy on "
                                     "transformed clean test images")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=DATASETS, default="digits")
    parser.add_argument("--only", default=",".join(KINDS),
                        help="distortions to run, comma-separated (default: R,RTS,P,E)")
    parser.add_argument("--arms", default=",".join(ARMS),
                        help="models to train, comma-separated (default: plain,augment,st-cnn)")
    parser.add_argument("--plain-model", default=None,
                        help="zoo name of the plain CNN (default: stn-plain, else the stand-in)")
    parser.add_argument("--epochs", type=positive_int, default=30)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--lr", type=number_flag(float, 0, low_open=True), default=1e-3)
    parser.add_argument("--seed", type=number_flag(int, 0), default=0)
    parser.add_argument("--train-images", type=positive_int, default=None,
                        help="train on the first N training images (default: all)")
    parser.add_argument("--invariance-images", type=positive_int, default=2000,
                        help="test images for the invariance curves (default 2000)")
    parser.add_argument("--out", default="runs/stn_study")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.only.split(",") if k.strip()]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for value, allowed, flag in ((kinds, KINDS, "--only"), (arms, ARMS, "--arms")):
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            parser.error(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plain_name = plain_model_name(args.plain_model)
    if plain_name == "standin":
        print("the zoo has no 'stn-plain': the plain CNN is this script's stand-in")
    has_st = "st-cnn" in models.available()
    clean = load_clean(args.data, args.train_images)
    print(f"wrote {distortion_figure(args.data, clean, args.seed, out)}")
    for kind in kinds:
        start = time.perf_counter()
        distorted = distort_splits(clean, kind, args.seed)
        print(f"{distorted.train.name}: {len(distorted.train)} + {len(distorted.test)} images "
              f"{distorted.train.image_shape} in {time.perf_counter() - start:.1f} s")
        for arm in arms:
            if arm == "st-cnn" and not has_st:
                print(f"{cell_name(args.data, kind, arm)}: skipped, the zoo has no 'st-cnn' yet "
                      f"(models.available(): {', '.join(models.available())})")
                continue
            run_cell(args.data, kind, arm, clean, distorted, plain_name, args, out)
        cells = read_cells(out)
        record = cells.get((args.data, kind, "st-cnn"))
        if record is not None and has_st:
            figure = st_output_figure(args.data, kind, distorted, record, out)
            if figure:
                print(f"wrote {figure}")
        if kind in ("R", "RTS"):
            figure = invariance_figure(args.data, kind, cells, clean, out, args.invariance_images)
            if figure:
                print(f"wrote {figure}")
    cells = read_cells(out)
    table = summary(cells)
    write_text(out / "stn_study.md", "Test error (%) on the distorted test splits\n\n" + table)
    write_text(out / "stn_study.json",
               json.dumps({"cells": [cells[key] for key in sorted(cells)], "paper_mnist": PAPER},
                          indent=1))
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
