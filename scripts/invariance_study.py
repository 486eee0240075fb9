"""How invariant are CNNs to shifts, rotations and scaling? Three models on 28×28 images.

1. ``lecture``: the lecture's Keras net (conv–pool–conv–pool–dense), plain training;
2. ``lecture + augmentation``: the same net trained on randomly shifted (±3 px),
   rotated (±20°) and scaled (0.85–1.15×) images (``cnnlab.data.Augmentation``);
3. ``no pooling``: the lecture net with its two max-pooling layers removed
   (conv 25 → conv 50 → dense 100 → dense 10), built from ``cnnlab.nn`` layers.

Each model is trained with ``cnnlab.training.fit`` on the training split of ``--data``
(the digits resized to 28×28 by default, or Fashion-MNIST; ``--train-images`` and
``--test-images`` keep the first N of each split, for a shorter run), then scored on the test
split as the test images are
shifted (0–6 px), rotated (0–45°) and scaled (0.6–1.4×) with
``cnnlab.lab.invariance.invariance_curves``. Writes, under ``--out``:

- ``invariance_comparison.png``: accuracy against each transformation, one line per model;
- ``invariance_comparison.json`` and ``invariance_comparison.md``: the numbers;
- ``<model>.npz``: the trained models (``cnnlab invariance <model>.npz`` re-measures one).

Usage:
    python scripts/invariance_study.py [--data digits|fashion-mnist] [--epochs 15] [--seed 0]
        [--train-images N] [--test-images N] [--out runs/invariance_study]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cnnlab import models, nn
from cnnlab.atomic import write_text
from cnnlab.data import Augmentation, load_dataset
from cnnlab.io import save_model
from cnnlab.lab import figures
from cnnlab.lab.cli_conventions import number_flag, positive_int
from cnnlab.lab.invariance import format_curves, invariance_curves
from cnnlab.training import evaluate, fit


def no_pooling_net(num_classes: int = 10, seed: int = 0) -> nn.Sequential:
    """The lecture net without max pooling: 28 → 26 → 24, Flatten 50·24·24 = 28,800."""
    model = nn.Sequential(
        nn.Conv2D(25, 3, activation="relu"),
        nn.Conv2D(50, 3, activation="relu"),
        nn.Flatten(),
        nn.Dense(100, activation="relu"),
        nn.Dense(num_classes),
        name="no_pooling",
    )
    model.seed = seed
    return model.build((1, 28, 28))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=positive_int, default=15)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--lr", type=number_flag(float, 0, low_open=True), default=1e-3)
    parser.add_argument("--seed", type=number_flag(int, 0), default=0)
    parser.add_argument("--data", choices=("digits", "fashion-mnist"), default="digits")
    parser.add_argument("--train-images", type=positive_int, default=None,
                        help="train on the first N training images (default: all)")
    parser.add_argument("--test-images", type=positive_int, default=None,
                        help="measure on the first N test images (default: all)")
    parser.add_argument("--out", default="runs/invariance_study")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    splits = load_dataset(args.data, image_size=28)
    train, test = splits
    if args.train_images:
        train = train.subset(range(min(args.train_images, len(train))))
    if args.test_images:
        test = test.subset(range(min(args.test_images, len(test))))
    label = "Digits 28×28" if args.data == "digits" else "Fashion-MNIST"
    augmentation = Augmentation(shift=3, rotate=20.0, scale=0.15, seed=args.seed)
    plans = [
        ("lecture", models.get("lecture", seed=args.seed), None),
        ("lecture + augmentation", models.get("lecture", seed=args.seed), augmentation),
        ("no pooling", no_pooling_net(seed=args.seed), None),
    ]
    results = {}
    record = {
        "dataset": label,
        "train_images": len(train),
        "test_images": len(test),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "augmentation": augmentation.get_config(),
        "models": {},
    }
    for name, model, augment in plans:
        print(f"\n== {name}: {model.num_parameters():,} parameters, augment={augment}")
        start = time.perf_counter()
        fit(
            model,
            train,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            augment=augment,
            seed=args.seed,
            verbose=args.verbose,
        )
        train_seconds = time.perf_counter() - start
        file_name = name.replace(" + ", "_").replace(" ", "_") + ".npz"
        save_model(model, out / file_name)
        start = time.perf_counter()
        curves = invariance_curves(model, test)
        measure_seconds = time.perf_counter() - start
        train_accuracy = evaluate(model, train)["accuracy"]
        print(
            f"{name}: train accuracy {train_accuracy:.4f}, test accuracy {curves.accuracy:.4f} "
            f"(training {train_seconds:.0f} s, invariance {measure_seconds:.0f} s)"
        )
        results[name] = curves
        record["models"][name] = {
            "parameters": model.num_parameters(),
            "file": file_name,
            "train_accuracy": train_accuracy,
            "train_seconds": train_seconds,
            **curves.to_dict(),
        }

    table = format_curves(results)
    print("\n" + table)
    figure = figures.invariance_figure(
        results,
        out / "invariance_comparison.png",
        title=f"{label}: test accuracy under transformed test images",
    )
    write_text(out / "invariance_comparison.json", json.dumps(record, indent=1))
    write_text(out / "invariance_comparison.md", "```\n" + table + "```\n")
    print(f"wrote {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
