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
3. ``st-cnn``: ``cnnlab.models.st_cnn`` (``--st-transform``, ``--st-loc-lr-scale``; the
   defaults, affine and 1, are the zoo's ``st-cnn``), trained like ``plain``. Skipped with a
   message while the zoo has no ``st-cnn``.

A cell's arm label names its configuration: ``st-cnn`` is the default one, ``st-cnn-rst-loc0.1``
the RST transformer with a localisation net at 0.1× the learning rate; each cell's JSON records
the configuration and the budget, and a finished cell whose budget differs from the one asked
for is reported, never silently mixed in. ``--st-warm-epochs W`` spends the first W
of the ST-CNN's epochs on a warm start of its localisation net (``stn_warm_start``: it learns to
undo fresh distortions of the clean training images), labelled ``-warmW``.

``--validation F`` is the selection mode: it holds out a seeded fraction F of the distorted
*training* split (``default_rng([seed, 2])``), trains on the rest and scores each epoch on the
held-out part (``val_error`` and ``val_curve`` in the cell); the test split is not used at all.
Use a separate ``--out`` for it. For the ST-CNN cells on R and RTS the cell also records what
the transformer learned: the rotation angle of θ against the angle each image was distorted by
(``theta``: slope and correlation; slope −1 would undo every rotation, 0 is the identity).

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
        [--st-transform affine|rst|translation] [--st-loc-lr-scale 1] [--st-warm-epochs W]
        [--validation F]
        [--out runs/stn_study]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from cnnlab import models, nn, optim
from cnnlab.atomic import write_text
from cnnlab.data import Splits, load_dataset
from cnnlab.data.distort import (
    KINDS,
    distort_dataset,
    distort_splits,
    random_parameters,
)
from cnnlab.io import save_model
from cnnlab.lab.cli_conventions import number_flag, positive_int
from cnnlab.training import evaluate, fit

# the report half lives beside this script (run as a script or loaded from its path)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from stn_study_report import (
    ARMS,
    DATASETS,
    PAPER,
    distortion_figure,
    invariance_figure,
    st_output_figure,
    summary,
    theta_stats,
)
from stn_warm_start import warm_start


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


def st_config(args) -> dict:
    """The ST-CNN's configuration asked for on the command line (recorded in its cells)."""
    config = {"transform": args.st_transform, "localization_lr_scale": args.st_loc_lr_scale}
    if args.st_warm_epochs:
        config["warm_epochs"] = args.st_warm_epochs
    return config


def arm_label(arm: str, args) -> str:
    """The arm's name in cells and tables: the ST-CNN's names its non-default options."""
    if arm != "st-cnn":
        return arm
    label = arm if args.st_transform == "affine" else f"{arm}-{args.st_transform}"
    if args.st_loc_lr_scale != 1.0:
        label += f"-loc{args.st_loc_lr_scale:g}"
    if args.st_warm_epochs:
        label += f"-warm{args.st_warm_epochs}"
    return label


#: what a cell's numbers depend on besides its arm; a finished cell must agree on all of them
BUDGET = ("epochs", "batch_size", "lr", "seed", "train_images", "validation")


def budget_of(args, train_images: int) -> dict:
    return {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "seed": args.seed, "train_images": train_images,
            "validation": args.validation or None}


def build_model(arm: str, plain_name: str, input_shape, num_classes: int, seed: int, args=None):
    if arm == "st-cnn":
        scale = None if args is None or args.st_loc_lr_scale == 1.0 else args.st_loc_lr_scale
        model = models.st_cnn(num_classes, input_shape[0],
                              transform="affine" if args is None else args.st_transform,
                              localization_lr_scale=scale)
        model.seed = seed
        return model.build(tuple(input_shape))
    if plain_name == "standin":
        return standin_plain_cnn(input_shape, num_classes, seed)
    return models.get(plain_name, input_shape=input_shape, num_classes=num_classes, seed=seed)


def load_clean(data: str, train_images: int | None) -> Splits:
    splits = load_dataset(data, image_size=28)
    train, test = splits
    if train_images and train_images < len(train):
        train = train.subset(np.arange(train_images))
    return Splits(train, test)


def hold_out(clean: Splits, distorted: Splits, fraction: float, seed: int):
    """Selection mode: (clean train, distorted train, distorted validation, validation indices).

    A seeded fraction of the distorted training split (``default_rng([seed, 2])``) is held
    out; the clean training images keep the same indices, for the augmentation arm's fresh
    draws. The held-out images keep the full split's mean/std (pixel statistics only).
    """
    count = len(distorted.train)
    order = np.random.default_rng([seed, 2]).permutation(count)
    held = max(1, round(fraction * count))
    val_index, train_index = np.sort(order[:held]), np.sort(order[held:])
    return (clean.train.subset(train_index), distorted.train.subset(train_index),
            distorted.train.subset(val_index), val_index)


def train_cell(arm, model, clean_train, train_split, kind, args, validation=None):
    """Train ``model`` for one cell; returns (seconds, validation error per epoch or None).

    An ST-CNN with ``--st-warm-epochs W`` spends the first W of the epochs on the warm start
    of its localisation net (``stn_warm_start``), then trains end to end for the rest.
    """
    start = time.perf_counter()
    if arm != "augment":
        epochs = args.epochs
        if arm == "st-cnn" and args.st_warm_epochs:
            warm_start(model, clean_train, train_split, kind, args.st_warm_epochs, lr=args.lr,
                       batch_size=args.batch_size, seed=args.seed, verbose=args.verbose)
            epochs -= args.st_warm_epochs
        history = fit(model, train_split, epochs=epochs, batch_size=args.batch_size,
                      lr=args.lr, seed=args.seed, verbose=args.verbose, validation=validation)
        curve = history.get("val_accuracy")
        return time.perf_counter() - start, None if curve is None else [1 - a for a in curve]
    optimizer = optim.get_optimizer("adam", model.parameters(), lr=args.lr)
    curve = []
    for epoch in range(args.epochs):
        if epoch == 0:
            train = train_split
        else:
            # Fresh distortions of the clean images, normalised as the fixed split is.
            train = distort_dataset(clean_train, kind, [args.seed, 0, epoch],
                                    mean=train_split.mean, std=train_split.std)
        history = fit(model, train, epochs=1, batch_size=args.batch_size, optimizer=optimizer,
                      seed=args.seed + epoch, verbose=args.verbose, validation=validation)
        curve += [1 - a for a in history.get("val_accuracy", [])]
    return time.perf_counter() - start, curve if validation is not None else None


def drawn_degrees(kind: str, count: int, seed, image_size) -> np.ndarray | None:
    """The rotation each image of a distorted split was drawn with (``distort_images`` draws
    its parameters first from ``default_rng(seed)``), for R and RTS."""
    if kind not in ("R", "RTS"):
        return None
    return random_parameters(kind, count, np.random.default_rng(seed), image_size)["degrees"]


def cell_name(data: str, kind: str, arm: str) -> str:
    return f"{data}_{kind}_{arm}"


def run_cell(data, kind, arm, clean_train, distorted, plain_name, args, out: Path,
             degrees=None) -> None:
    """Train, score and record one cell (``clean_train``: the clean images of ``distorted``'s
    training split, for the augmentation arm; ``distorted`` holds the split to score on: the test
    split, or in selection mode the held-out part of the training split; ``degrees``: the
    rotation each of its images was drawn with, for R and RTS)."""
    label = arm_label(arm, args)
    name = cell_name(data, kind, label)
    path = out / "cells" / f"{name}.json"
    budget = budget_of(args, len(distorted.train))
    if path.is_file():
        print(f"{name}: done already ({path})")
        done = read_cells(out).get((data, kind, label), {})
        if arm != "st-cnn" and done.get("model") not in (None, plain_name):
            print(f"  note: that cell's plain CNN is {done['model']!r}, not {plain_name!r}; "
                  "delete the cell to train it again")
        differs = [f"{k} {done.get(k)!r} (asked {budget[k]!r})" for k in BUDGET
                   if done.get(k) != budget[k]]
        if differs:
            print(f"  note: that cell was made with another budget: {', '.join(differs)}; "
                  "use another --out or delete the cell")
        return
    model = build_model(arm, plain_name, distorted.train.image_shape, distorted.train.num_classes,
                        args.seed, args)
    print(f"\n== {name}: {model.num_parameters():,} parameters")
    validation = distorted.test if args.validation else None
    seconds, curve = train_cell(arm, model, clean_train, distorted.train, kind, args, validation)
    (out / "models").mkdir(parents=True, exist_ok=True)
    model_file = out / "models" / f"{name}.npz"
    save_model(model, model_file)
    scored = "validation" if args.validation else "test"
    result = evaluate(model, distorted.test)
    record = {
        "data": data, "kind": kind, "arm": label,
        "model": "st-cnn" if arm == "st-cnn" else plain_name,
        "st_config": st_config(args) if arm == "st-cnn" else None,
        "parameters": model.num_parameters(), **budget,
        "scored_on": scored, f"{scored}_images": len(distorted.test),
        "optimizer": "adam", "mean": distorted.train.mean, "std": distorted.train.std,
        f"{scored}_error": 1.0 - float(result["accuracy"]),
        f"{scored}_loss": float(result["loss"]),
        "train_seconds": seconds, "model_file": str(model_file.relative_to(out)),
    }
    if curve is not None:
        record["val_curve"] = curve
    if arm == "st-cnn":
        record["theta"] = theta_stats(model, distorted.test, degrees)
    print(f"{name}: {scored} error {100 * record[scored + '_error']:.2f}% ({seconds:.0f} s)"
          + (f", theta {record['theta']}" if record.get("theta") else ""))
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=DATASETS, default="digits")
    parser.add_argument("--only", default=",".join(KINDS),
                        help="distortions to run, comma-separated (default: R,RTS,P,E)")
    parser.add_argument("--arms", default=",".join(ARMS),
                        help="models to train, comma-separated (default: plain,augment,st-cnn)")
    parser.add_argument("--plain-model", default=None,
                        help="zoo name of the plain CNN (default: stn-plain, else the stand-in)")
    parser.add_argument("--st-transform", choices=("affine", "rst", "translation"),
                        default="affine", help="the ST-CNN's transform (default affine)")
    parser.add_argument("--st-loc-lr-scale", type=number_flag(float, 0, low_open=True),
                        default=1.0, help="the localisation net's learning rate as a multiple "
                        "of --lr (default 1)")
    parser.add_argument("--st-warm-epochs", type=number_flag(int, 0), default=0,
                        help="spend the first W epochs training the localisation net alone to "
                        "undo fresh distortions of the clean images (stn_warm_start; default 0: "
                        "none)")
    parser.add_argument("--validation", type=number_flag(float, 0, 0.9), default=0.0,
                        help="selection mode: hold out this fraction of the distorted training "
                        "split and score on it; the test split is not used (default 0: off)")
    parser.add_argument("--epochs", type=positive_int, default=30)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--lr", type=number_flag(float, 0, low_open=True), default=1e-3)
    parser.add_argument("--seed", type=number_flag(int, 0), default=0)
    parser.add_argument("--train-images", type=positive_int, default=None,
                        help="train on the first N training images (default: all)")
    parser.add_argument("--invariance-images", type=positive_int, default=2000,
                        help="test images for the invariance curves (default 2000)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: rewrite the tables and figures from the cells present")
    parser.add_argument("--out", default="runs/stn_study")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.only.split(",") if k.strip()]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for value, allowed, flag in ((kinds, KINDS, "--only"), (arms, ARMS, "--arms")):
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            parser.error(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
    if args.st_warm_epochs and args.st_warm_epochs >= args.epochs:
        parser.error("--st-warm-epochs must be fewer than --epochs")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plain_name = plain_model_name(args.plain_model)
    if plain_name == "standin":
        print("the zoo has no 'stn-plain': the plain CNN is this script's stand-in")
    has_st = "st-cnn" in models.available()
    selecting = args.validation > 0
    st_label = arm_label("st-cnn", args)
    clean = load_clean(args.data, args.train_images)
    if not selecting:
        print(f"wrote {distortion_figure(args.data, clean, args.seed, out)}")
    for kind in kinds:
        start = time.perf_counter()
        distorted = distort_splits(clean, kind, args.seed)
        image_size = clean.train.image_shape[1:]
        clean_train = clean.train
        if selecting:
            degrees = drawn_degrees(kind, len(distorted.train), [args.seed, 0], image_size)
            clean_train, train, held, held_index = hold_out(clean, distorted, args.validation,
                                                             args.seed)
            distorted = Splits(train, held)
            degrees = None if degrees is None else degrees[held_index]
        else:
            degrees = drawn_degrees(kind, len(clean.test), [args.seed, 1], image_size)
        print(f"{distorted.train.name}: {len(distorted.train)} + {len(distorted.test)} "
              f"{'validation' if selecting else 'test'} images {distorted.train.image_shape} "
              f"in {time.perf_counter() - start:.1f} s")
        for arm in [] if args.report_only else arms:
            if arm == "st-cnn" and not has_st:
                print(f"{cell_name(args.data, kind, arm)}: skipped, the zoo has no 'st-cnn' yet "
                      f"(models.available(): {', '.join(models.available())})")
                continue
            run_cell(args.data, kind, arm, clean_train, distorted, plain_name, args, out, degrees)
        if selecting:
            continue
        cells = read_cells(out)
        record = cells.get((args.data, kind, st_label))
        if record is not None and has_st:
            figure = st_output_figure(args.data, kind, distorted, record, out)
            if figure:
                print(f"wrote {figure}")
        if kind in ("R", "RTS"):
            figure = invariance_figure(args.data, kind, cells, clean, out, args.invariance_images,
                                       labels=("plain", "augment", st_label))
            if figure:
                print(f"wrote {figure}")
    cells = read_cells(out)
    table = summary(cells)
    title = ("Validation error (%) on the held-out part of the distorted training splits"
             if selecting else "Test error (%) on the distorted test splits")
    write_text(out / "stn_study.md", f"{title}\n\n{table}")
    write_text(out / "stn_study.json",
               json.dumps({"cells": [cells[key] for key in sorted(cells)], "paper_mnist": PAPER},
                          indent=1))
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
