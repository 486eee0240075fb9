"""The ``cnnlab`` command line: train, evaluate, predict, summary, datasets (and the lab's commands).

The CLI only parses arguments and calls the library; every number it prints
comes from ``cnnlab.training`` and friends. ``cnnlab train`` with no arguments
trains the lecture's network on the built-in digits (resized to 28×28) and
writes into ./runs/<model>-<data>-<NNN>/:

    model.npz               the trained model (``cnnlab.io.load_model``), with its normalisation
    checkpoint.npz          the training state after the last finished epoch (for --resume)
    history.json            per-epoch loss, accuracy, val_loss, val_accuracy, lr, time
    learning_curve.png      loss and accuracy per epoch, train and test
    confusion_matrix.png    test-set confusion matrix with class names and counts
    run.json                the settings of the run (used by --resume and evaluate)

Other sub-commands can be added by a module's ``register(subparsers)``: see
``_register_extensions``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

DEFAULTS = {
    "model": "lecture",
    "data": "digits",
    "epochs": 10,
    "batch_size": 32,
    "lr": 2e-3,
    "optimizer": "adam",
    "schedule": "cosine",
    "augment": "shift=2,rotate=10",
    "seed": 0,
}
MODEL_FILE = "model.npz"
CHECKPOINT_FILE = "checkpoint.npz"
RUN_FILE = "run.json"
AUGMENT_KEYS = {"shift": int, "rotate": float, "scale": float, "flip": bool, "noise": float}


class CLIError(Exception):
    """A user-facing error: printed as 'cnnlab <command>: message', exit status 2."""


# ------------------------------------------------------------------ helpers
def parse_augment(spec: str, seed: int = 0):
    """'shift=2,rotate=10' → Augmentation(shift=2, rotate=10.0, seed=seed); 'none' → None."""
    from cnnlab.data import Augmentation

    if spec is None or spec.strip().lower() in ("", "none", "off", "no"):
        return None
    options = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if key not in AUGMENT_KEYS:
            raise CLIError(f"--augment: unknown option {key!r} in {spec!r}; expected {', '.join(AUGMENT_KEYS)}")
        if AUGMENT_KEYS[key] is bool:
            options[key] = not sep or value.strip().lower() in ("1", "true", "yes", "on")
            continue
        try:
            options[key] = AUGMENT_KEYS[key](value)
        except ValueError:
            raise CLIError(f"--augment: {key} needs a number, received {value!r} in {spec!r}") from None
    try:
        return Augmentation(**options, seed=seed)
    except ValueError as error:
        raise CLIError(f"--augment: {error}") from None


def _positive(value: str, kind=int):
    try:
        number = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, received {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, received {value!r}")
    return number


def _positive_float(value: str) -> float:
    return _positive(value, float)


def _load_dataset(name: str, image_size, data_dir):
    from cnnlab.data import DatasetNotFoundError, load_dataset

    try:
        return load_dataset(name, image_size=image_size, data_dir=data_dir)
    except (DatasetNotFoundError, FileNotFoundError, ValueError) as error:
        raise CLIError(str(error)) from None


def _new_run_dir(out: Path, model: str, data: str) -> Path:
    """out/<model>-<data>-NNN with the first free counter."""
    data_label = Path(data).name if Path(data).is_dir() else data
    stem = f"{model}-{data_label}"
    out.mkdir(parents=True, exist_ok=True)
    for counter in range(1, 100_000):
        candidate = out / f"{stem}-{counter:03d}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise CLIError(f"no free run directory name under {out}")


def _model_path(path_text: str) -> Path:
    """A model file, or the model file of a run directory."""
    path = Path(path_text)
    if path.is_dir():
        for name in (MODEL_FILE, CHECKPOINT_FILE):
            if (path / name).is_file():
                return path / name
        raise CLIError(f"{path} holds no {MODEL_FILE} (is it a run directory?)")
    if not path.is_file():
        raise CLIError(f"no such model file or run directory: {path}")
    return path


def _load_any_model(path: Path):
    """``load_model`` for model files, ``model_from_checkpoint`` for checkpoints."""
    from cnnlab.io import FileFormatError, load_arrays, load_model
    from cnnlab.checkpoint import CHECKPOINT_FORMAT, model_from_checkpoint

    try:
        _, metadata = load_arrays(path)
        if metadata.get("format") == CHECKPOINT_FORMAT:
            return model_from_checkpoint(path)
        return load_model(path)
    except (FileFormatError, ValueError) as error:
        raise CLIError(str(error)) from None


def _run_info(path: Path) -> dict:
    directory = path if path.is_dir() else path.parent
    info_path = directory / RUN_FILE
    if info_path.is_file():
        try:
            return json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
    return {}


def _test_split_for(model, dataset: str, data_dir):
    shape = tuple(model.input_shape)
    splits = _load_dataset(dataset, shape[1:], data_dir)
    if splits.test.image_shape != shape:
        raise CLIError(
            f"the model expects inputs of shape {shape} but {dataset!r} gives {splits.test.image_shape}; "
            "choose the dataset with --data"
        )
    return splits


def _write_figures(run_dir: Path, model, history, test, title: str) -> dict:
    from cnnlab.plots import confusion_matrix, plot_confusion_matrix, plot_history
    from cnnlab.training import predict

    predictions = predict(model, test).argmax(axis=1)
    matrix = confusion_matrix(test.labels, predictions, num_classes=test.num_classes)
    files = {}
    if history.get("loss"):
        files["learning_curve"] = plot_history(history, run_dir / "learning_curve.png", title=title)
    files["confusion_matrix"] = plot_confusion_matrix(matrix, run_dir / "confusion_matrix.png",
                                                      class_names=test.class_names)
    return files


# ------------------------------------------------------------------ commands
def cmd_train(args) -> int:
    from cnnlab import models
    from cnnlab.callbacks import LearningRateScheduler, ModelCheckpoint
    from cnnlab.io import save_model
    from cnnlab.checkpoint import load_checkpoint, model_from_checkpoint
    from cnnlab.training import evaluate, fit

    checkpoint = None
    if args.resume:
        resume = Path(args.resume)
        checkpoint_path = resume / CHECKPOINT_FILE if resume.is_dir() else resume
        if not checkpoint_path.is_file():
            raise CLIError(f"--resume: no checkpoint at {checkpoint_path}")
        run_dir = checkpoint_path.parent
        saved = _run_info(run_dir).get("args", {})
        # The resumed run keeps its own settings; only --epochs (the new total) may change.
        for key in ("model", "data", "batch_size", "lr", "optimizer", "schedule", "augment", "seed",
                    "image_size", "data_dir"):
            if key in saved:
                setattr(args, key, saved[key])
        try:
            checkpoint = load_checkpoint(checkpoint_path)
        except (ValueError, FileNotFoundError) as error:
            raise CLIError(str(error)) from None
        model = model_from_checkpoint(checkpoint)
        image_size = tuple(model.input_shape[1:])
    else:
        if args.model not in models.available():
            raise CLIError(f"unknown model {args.model!r}; expected one of {models.available()}")
        image_size = args.image_size or models.default_input_shape(args.model)[1]

    splits = _load_dataset(args.data, image_size, args.data_dir)
    train, test = splits
    augment = parse_augment(args.augment, seed=args.seed)
    if checkpoint is None:
        try:
            model = models.get(args.model, input_shape=train.image_shape, seed=args.seed,
                               num_classes=train.num_classes, class_names=train.class_names)
        except ValueError as error:
            raise CLIError(str(error)) from None
        if args.name:
            run_dir = Path(args.out) / args.name
            run_dir.mkdir(parents=True, exist_ok=True)
        else:
            run_dir = _new_run_dir(Path(args.out), args.model, args.data)
        checkpoint_path = run_dir / CHECKPOINT_FILE

    settings = {key: getattr(args, key) for key in (
        "model", "data", "epochs", "batch_size", "lr", "optimizer", "schedule", "augment", "seed",
        "image_size", "data_dir", "threads")}
    info = {"dataset": args.data, "model": args.model, "args": settings,
            "command": "cnnlab " + " ".join(sys.argv[1:])}
    (run_dir / RUN_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")

    print(f"Training {args.model} on {args.data}: {len(train)} train / {len(test)} test images "
          f"{train.image_shape}, {model.num_parameters():,} parameters")
    print(f"Run directory: {run_dir}")
    callbacks = [ModelCheckpoint(checkpoint_path, save_best_only=False)]
    if args.schedule != "none":
        callbacks.append(LearningRateScheduler(args.schedule))
    with _blas_threads(args.threads):
        history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, validation=test,
                      optimizer=args.optimizer, lr=args.lr, callbacks=callbacks, augment=augment, seed=args.seed,
                      verbose=args.verbose, resume=checkpoint["path"] if checkpoint else None)

    if history.diverged:
        print(f"cnnlab train: {history.stop_reason}", file=sys.stderr)
        print(f"No model written; the last good checkpoint (if any) is {checkpoint_path}", file=sys.stderr)
        return 1
    if history.interrupted:
        done = len(history.get("loss", []))
        print(f"Interrupted: {history.stop_reason}. Checkpoint after epoch {done}: {checkpoint_path}")
        print(f"Continue with: cnnlab train --resume {run_dir} --epochs {args.epochs}")
        return 130
    (run_dir / "history.json").write_text(json.dumps(dict(history), indent=1), encoding="utf-8")
    save_model(model, run_dir / MODEL_FILE)
    result = evaluate(model, test)
    _write_figures(run_dir, model, history, test, title=f"{args.model} on {args.data}")
    total_time = sum(history.get("time", []))
    correct = round(result["accuracy"] * len(test))
    print(f"Training time: {total_time:.1f}s for {len(history.get('loss', []))} epochs")
    print(f"Test loss: {result['loss']:.4f}")
    print(f"Test accuracy: {result['accuracy']:.4f} ({correct}/{len(test)})")
    print(f"Wrote {run_dir / MODEL_FILE}, {run_dir / 'learning_curve.png'}, {run_dir / 'confusion_matrix.png'}")
    return 0


def cmd_evaluate(args) -> int:
    from cnnlab.training import evaluate

    path = _model_path(args.model)
    model = _load_any_model(path)
    dataset = args.data or _run_info(path).get("dataset")
    if dataset is None:
        raise CLIError(f"which dataset? {path} has no {RUN_FILE} next to it; give --data")
    splits = _test_split_for(model, dataset, args.data_dir)
    result = evaluate(model, splits.test, batch_size=args.batch_size)
    test = splits.test
    print(f"{path} on {dataset} test ({len(test)} images)")
    print(f"Test loss: {result['loss']:.4f}")
    print(f"Test accuracy: {result['accuracy']:.4f} ({round(result['accuracy'] * len(test))}/{len(test)})")
    if args.confusion:
        from cnnlab.plots import confusion_matrix, plot_confusion_matrix
        from cnnlab.training import predict

        matrix = confusion_matrix(test.labels, predict(model, test).argmax(axis=1), test.num_classes)
        print(f"Wrote {plot_confusion_matrix(matrix, args.confusion, class_names=test.class_names)}")
    return 0


def load_image(path: Path, input_shape, normalization, invert: bool = False) -> np.ndarray:
    """An image file as a (1, C, H, W) float32 batch, sized and normalised like the training data."""
    from PIL import Image, UnidentifiedImageError

    channels, height, width = input_shape
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
        raise CLIError(f"cannot read image {path}: {error}") from None
    pixels = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    if channels not in (1, 3):
        raise CLIError(f"the model expects {channels} input channels; only 1 (grey) or 3 (RGB) images are supported")
    x = pixels / 255.0
    if invert:
        x = 1.0 - x
    if normalization:
        x = (x - normalization["mean"]) / normalization["std"]
    return x[None].astype(np.float32)


def cmd_predict(args) -> int:
    from cnnlab.training import predict

    path = _model_path(args.model)
    model = _load_any_model(path)
    normalization = getattr(model, "normalization", None)
    if not normalization:
        print("warning: the model stores no input normalisation; using raw [0, 1] pixels", file=sys.stderr)
    names = model.class_names
    for image_path in args.images:
        x = load_image(Path(image_path), model.input_shape, normalization, invert=args.invert)
        probabilities = predict(model, x)[0]
        top = np.argsort(-probabilities)[: min(args.top_k, len(probabilities))]
        ranked = ", ".join(
            f"{names[i] if names else i} ({probabilities[i]:.4f})" for i in top
        )
        print(f"{image_path}: {ranked}")
    return 0


def cmd_summary(args) -> int:
    from cnnlab import models

    if args.model in models.available():
        shape = tuple(args.input_shape) if args.input_shape else None
        try:
            model = models.get(args.model, num_classes=args.num_classes, input_shape=shape)
        except ValueError as error:
            raise CLIError(str(error)) from None
    else:
        path = Path(args.model)
        if not path.exists():
            raise CLIError(f"{args.model!r} is neither a zoo model ({', '.join(models.available())}) nor a file")
        model = _load_any_model(_model_path(args.model))
    print(model.summary())
    return 0


def cmd_datasets(args) -> int:
    from cnnlab.data import available_datasets

    entries = available_datasets()
    width = max(len(name) for name, _ in entries)
    for name, status in entries:
        print(f"{name:<{width}}  {status}")
    return 0


# ------------------------------------------------------------------ parser
def _add_data_dir(p) -> None:
    p.add_argument("--data-dir", default=None, help="extra folder holding (or to download) IDX datasets")


def _blas_threads(threads: int | None):
    """Limit the BLAS library's threads inside the block (no limit for None)."""
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads, user_api="blas")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Convolutional neural networks from first principles: train, evaluate and inspect models.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    d = DEFAULTS

    p = subparsers.add_parser(
        "train", help="train a model (default: the lecture net on digits)",
        description="Train a zoo model on a dataset and write the model, a checkpoint, a learning curve and "
        "a confusion matrix into OUT/<model>-<data>-NNN/. Without arguments: the lecture net on the "
        "built-in digits resized to 28×28 (about 99% test accuracy in well under a minute on 2 cores).",
    )
    p.add_argument("--model", default=d["model"], help=f"zoo model (default {d['model']}); see 'cnnlab summary'")
    p.add_argument("--data", default=d["data"],
                   help=f"dataset name or image-folder path (default {d['data']}); see 'cnnlab datasets'")
    p.add_argument("--epochs", type=_positive, default=d["epochs"], help=f"total epochs (default {d['epochs']})")
    p.add_argument("--batch-size", type=_positive, default=d["batch_size"],
                   help=f"mini-batch size (default {d['batch_size']})")
    p.add_argument("--lr", type=_positive_float, default=d["lr"], help=f"learning rate (default {d['lr']:g})")
    p.add_argument("--optimizer", default=d["optimizer"], choices=["adam", "adamw", "sgd", "momentum", "nesterov"],
                   help=f"optimiser (default {d['optimizer']})")
    p.add_argument("--schedule", default=d["schedule"], choices=["cosine", "onecycle", "step", "none"],
                   help=f"learning-rate schedule (default {d['schedule']})")
    p.add_argument("--augment", default=d["augment"],
                   help="training augmentation 'shift=N,rotate=DEG,scale=F,flip,noise=S' or 'none' "
                   f"(default '{d['augment']}')")
    p.add_argument("--seed", type=int, default=d["seed"], help=f"seed of weights, shuffling and augmentation "
                   f"(default {d['seed']})")
    p.add_argument("--image-size", type=_positive, default=None,
                   help="resize images to this size (default: the model's input size)")
    p.add_argument("--out", default="runs", help="parent folder of the run directory (default ./runs)")
    p.add_argument("--name", default=None, help="run directory name (default <model>-<data>-NNN)")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue a run (its directory or checkpoint.npz) up to --epochs, with its settings")
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1,
                   help="0 silent, 1 progress bar (default), 2 one line per epoch")
    p.add_argument("--threads", type=_positive, default=None,
                   help="threads for the matrix products (default: NumPy's BLAS default, one per core)")
    _add_data_dir(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "evaluate", help="test loss and accuracy of a saved model",
        description="Evaluate a saved model (a .npz file or a run directory) on a dataset's test split.",
    )
    p.add_argument("model", metavar="RUN_OR_MODEL", help="run directory or model .npz")
    p.add_argument("--data", default=None, help="dataset (default: the one recorded in the run directory)")
    p.add_argument("--batch-size", type=_positive, default=256, help="evaluation batch size (default 256)")
    p.add_argument("--confusion", default=None, metavar="PNG", help="also write a confusion-matrix PNG here")
    _add_data_dir(p)
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "predict", help="classify image files with a saved model",
        description="Print the top-k classes with probabilities for each image. Images are converted to the "
        "model's input channels and size and normalised as the training data were.",
    )
    p.add_argument("model", metavar="MODEL", help="run directory or model .npz")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top-k", type=_positive, default=3, help="classes to show per image (default 3)")
    p.add_argument("--invert", action="store_true",
                   help="invert grey levels (dark digits on white paper → the digits datasets' white on black)")
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser(
        "summary", help="layer table of a zoo model or a saved model",
        description="Print a Keras-like summary: layer, output shape, parameters, totals.",
    )
    p.add_argument("model", metavar="MODEL_NAME_OR_FILE", help="zoo model name or saved model / run directory")
    p.add_argument("--input-shape", type=_positive, nargs=3, metavar=("C", "H", "W"), default=None,
                   help="per-sample input shape for a zoo model (default: the model's own)")
    p.add_argument("--num-classes", type=_positive, default=None,
                   help="outputs of a zoo model (default: as published, 1000 for alexnet and vgg16, else 10)")
    p.set_defaults(func=cmd_summary)

    p = subparsers.add_parser("datasets", help="list the datasets and where they are",
                              description="List the known datasets and whether they are available.")
    p.set_defaults(func=cmd_datasets)

    _register_extensions(subparsers)
    return parser


def _register_extensions(subparsers) -> None:
    """Sub-commands contributed by other modules: each has ``register(subparsers)``."""
    from cnnlab.lab import commands as lab_commands

    lab_commands.register(subparsers)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CLIError as error:
        print(f"cnnlab {args.command}: error: {error}", file=sys.stderr)
        return 2
