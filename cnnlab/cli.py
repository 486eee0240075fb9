"""The ``cnnlab`` command line: train, evaluate, predict, summary, datasets, and the lab's.

The CLI parses arguments and calls the library; every number it prints comes
from ``cnnlab.training`` and friends. ``cnnlab train`` with no arguments trains the
lecture's network on the built-in digits (resized to 28×28) and writes a run
folder ``./runs/<model>-<data>-<NNN>/`` (its files: ``cnnlab.runs``; the train
command: ``cnnlab.cli_train``).

Errors a user can fix print ``cnnlab <command>: error: ...`` on stderr and exit
with status 2, as argparse does; a closed output pipe (``cnnlab summary vgg16 | head``)
ends the command quietly. The slow imports (``cnnlab.data`` with scikit-learn,
``cnnlab.plots`` with matplotlib) are made inside the commands that need them, so
that ``--help`` and ``--version`` answer quickly; each such import says so.

Other sub-commands are added by a module's ``register(subparsers)``: see
``_register_extensions``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np

import cnnlab
from cnnlab import distributed, models, runs
from cnnlab.apps.go import commands as go_commands
from cnnlab.apps.speech import commands as speech_commands
from cnnlab.apps.text import commands as text_commands
from cnnlab.cli_train import DEFAULTS, CLIError, cmd_train, load_splits, os_message
from cnnlab.errors import CnnlabError
from cnnlab.explain import commands as explain_commands
from cnnlab.explore import commands as explore_commands
from cnnlab.lab import commands as lab_commands
from cnnlab.training import evaluate, predict

__all__ = ["DEFAULTS", "CLIError", "build_parser", "main"]


def _number(kind=float, low=None, low_open=False, high=None, high_open=False):
    """An argparse type: ``kind`` parsed from text, finite and within the bounds."""
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    what = ("an integer" if kind is int else "a finite number") + (
        " " + " and ".join(bounds) if bounds else ""
    )

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, received {text!r}") from None
        if (
            not math.isfinite(value)
            or (low is not None and (value <= low if low_open else value < low))
            or (high is not None and (value >= high if high_open else value > high))
        ):
            raise argparse.ArgumentTypeError(f"expected {what}, received {text!r}")
        return value

    parse.__name__ = "integer" if kind is int else "number"
    return parse


_positive_int = _number(int, low=1)
_positive = _number(float, low=0, low_open=True)


def cmd_evaluate(args) -> int:
    model = _load_model(args.model)
    data = args.data or _recorded_data(args.model)
    test = _test_split_for(model, data, args.data_dir)
    _warn_if_classes_differ(model, test, data)
    result = evaluate(model, test, batch_size=args.batch_size)
    print(f"{runs.find_model_file(args.model)} on {data} test ({len(test)} images)")
    print(f"Test loss: {result['loss']:.4f}")
    print(
        f"Test accuracy: {result['accuracy']:.4f} "
        f"({round(result['accuracy'] * len(test))}/{len(test)})"
    )
    if args.confusion:
        from cnnlab.plots import (  # lazy: matplotlib
            confusion_matrix,
            plot_confusion_matrix,
        )

        matrix = confusion_matrix(
            test.labels, predict(model, test).argmax(axis=1), test.num_classes
        )
        print(
            f"Wrote {plot_confusion_matrix(matrix, args.confusion, class_names=test.class_names)}"
        )
    return 0


def _load_model(path_text: str):
    try:
        return runs.load_any_model(path_text)
    except (CnnlabError, ValueError, TypeError, OSError) as error:
        raise CLIError(os_message(error)) from None


def _recorded_data(path_text: str) -> str:
    path = Path(path_text)
    run = runs.Run(path if path.is_dir() else path.parent)
    try:
        return run.read_info().data
    except runs.RunError as error:
        raise CLIError(f"which data? {error}; give --data") from None


def _test_split_for(model, data: str, data_dir):
    shape = tuple(model.input_shape)
    test = load_splits(data, shape[1:], data_dir).test
    if test.image_shape != shape:
        raise CLIError(
            f"the model expects inputs of shape {shape} but {data!r} gives {test.image_shape}; "
            "choose the data with --data"
        )
    return test


def _warn_if_classes_differ(model, test, data: str) -> None:
    names = getattr(model, "class_names", None)
    if names is not None and list(map(str, names)) != list(map(str, test.class_names)):
        print(
            f"warning: the model's classes ({_some(names)}) differ from {data}'s "
            f"({_some(test.class_names)}); accuracy compares class numbers only",
            file=sys.stderr,
        )


def _some(names, shown: int = 10) -> str:
    return ", ".join(map(str, names[:shown])) + (", ..." if len(names) > shown else "")


def cmd_predict(args) -> int:
    model = _load_model(args.model)
    normalization = getattr(model, "normalization", None)
    if not normalization:
        print(
            "warning: the model stores no input normalisation; using raw [0, 1] pixels",
            file=sys.stderr,
        )
    names = model.class_names
    failed = 0
    for image_path in args.images:
        try:
            x = model_input(image_path, model.input_shape, normalization, args.invert, args.fit)
        except (CnnlabError, ValueError, OSError) as error:
            print(f"cnnlab predict: error: {os_message(error)}", file=sys.stderr)
            failed += 1
            continue
        probabilities = predict(model, x)[0]
        top = np.argsort(-probabilities)[: min(args.top_k, len(probabilities))]
        ranked = ", ".join(f"{names[i] if names else i} ({probabilities[i]:.4f})" for i in top)
        print(f"{image_path}: {ranked}", flush=True)
    if failed:
        print(
            f"cnnlab predict: error: {failed} of {len(args.images)} images could not be read",
            file=sys.stderr,
        )
        return 2
    return 0


def model_input(path, input_shape, normalization, invert=None, fit="auto") -> np.ndarray:
    """An image file as a (1, C, H, W) float32 batch, prepared and normalised like the training data."""
    # Lazy: cnnlab.data loads scikit-learn, which only predict needs.
    from cnnlab.data.images import prepare_image, read_image

    x = prepare_image(
        read_image(path, channels=input_shape[0]), input_shape, invert=invert, fit=fit
    )
    if normalization:
        # one value per channel broadcasts over (C, H, W), not along the width
        mean, std = (np.asarray(normalization[k], dtype=np.float32) for k in ("mean", "std"))
        x = (x - mean.reshape(-1, 1, 1)) / std.reshape(-1, 1, 1)
    return x[None].astype(np.float32)


def cmd_summary(args) -> int:
    if args.model in models.available():
        shape = tuple(args.input_shape) if args.input_shape else None
        try:
            model = models.get(args.model, num_classes=args.num_classes, input_shape=shape)
        except ValueError as error:
            raise CLIError(str(error)) from None
    elif Path(args.model).exists():
        model = _load_model(args.model)
    else:
        raise CLIError(
            f"{args.model!r} is neither a zoo model ({', '.join(models.available())}) nor a file"
        )
    print(model.summary())
    return 0


def cmd_datasets(args) -> int:
    from cnnlab.data import available_datasets  # lazy: cnnlab.data loads scikit-learn

    entries = available_datasets()
    width = max(len(name) for name, _ in entries)
    for name, status in entries:
        print(f"{name:<{width}}  {status}")
    return 0


def _add_data_dir(p) -> None:
    p.add_argument(
        "--data-dir", default=None, help="extra folder holding (or to download) IDX datasets"
    )


def _add_train_parser(subparsers) -> None:
    d = DEFAULTS
    p = subparsers.add_parser(
        "train",
        help="train a model (default: the lecture net on digits)",
        description="Train a zoo model on a dataset and write the model, a checkpoint, a learning "
        "curve and "
        "a confusion matrix into OUT/<model>-<data>-NNN/. Without arguments: the lecture net on the "
        "built-in digits resized to 28×28 (about 99% test accuracy in well under a minute on 2 cores).",
    )
    # Every setting defaults to None here so that a resume knows what was asked for explicitly.
    p.add_argument(
        "--model",
        choices=models.available(),
        metavar="MODEL",
        help=f"zoo model: {', '.join(models.available())} (default {d['model']})",
    )
    p.add_argument(
        "--data",
        help=f"dataset name or image-folder path (default {d['data']}); see 'cnnlab datasets'",
    )
    p.add_argument("--epochs", type=_positive_int, help=f"total epochs (default {d['epochs']})")
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        help=f"mini-batch size, per rank under mpirun (default {d['batch_size']})",
    )
    p.add_argument("--lr", type=_positive, help=f"learning rate (default {d['lr']:g})")
    p.add_argument(
        "--optimizer", choices=runs.OPTIMIZERS, help=f"optimiser (default {d['optimizer']})"
    )
    p.add_argument(
        "--momentum",
        type=_number(float, low=0, high=1, high_open=True),
        help="momentum of sgd/momentum/nesterov (default 0 for sgd, 0.9 for the others)",
    )
    p.add_argument(
        "--weight-decay",
        type=_number(float, low=0),
        help="L2 weight decay (default: the optimiser's, 0 except adamw's 0.01)",
    )
    p.add_argument(
        "--schedule",
        choices=runs.SCHEDULES,
        help=f"learning-rate schedule (default {d['schedule']})",
    )
    p.add_argument(
        "--augment",
        help="training augmentation 'shift=N,rotate=DEG,scale=F,flip,noise=S' "
        f"or 'none' (default '{d['augment']}')",
    )
    p.add_argument(
        "--clip-norm", type=_positive, help="clip the gradients' global norm to this (default off)"
    )
    p.add_argument(
        "--sync-batch-norm",
        action="store_const",
        const=True,
        help="under mpirun: batch norm uses the whole batch's statistics, summed over the "
        "ranks (default: each rank's own part, as Horovod and PyTorch DDP do)",
    )
    p.add_argument(
        "--patience",
        type=_positive_int,
        help="stop early after this many epochs without improvement (default off)",
    )
    p.add_argument(
        "--validation-split",
        type=_number(float, low=0, high=1, high_open=True),
        help="hold out this fraction of the training data for validation; the test set is "
        "then used once, at the end (default 0: validate on the test set each epoch)",
    )
    p.add_argument(
        "--seed",
        type=_number(int, low=0),
        help=f"seed of weights, shuffling and augmentation (default {d['seed']})",
    )
    p.add_argument(
        "--image-size",
        type=_positive_int,
        help="resize images to this size (default: the model's input size)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        help="BLAS threads for the matrix products (default: one per free core: all cores, "
        "fewer when other processes keep some busy, measured at the start)",
    )
    _add_data_dir(p)
    p.add_argument(
        "--out", default="runs", help="parent folder of the run folder (default ./runs)"
    )
    p.add_argument("--name", default=None, help="run folder name (default <model>-<data>-NNN)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing run of that --name"
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN",
        help="continue a run (its folder or checkpoint.npz) with its own settings; "
        "--epochs above its epochs extends it",
    )
    p.add_argument(
        "--verbose",
        type=int,
        choices=[0, 1, 2],
        default=1,
        help="0 silent, 1 progress bar (default), 2 one line per epoch",
    )
    p.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Convolutional neural networks from first principles: train, evaluate and "
        "inspect models.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {cnnlab.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(subparsers)

    p = subparsers.add_parser(
        "evaluate",
        help="test loss and accuracy of a saved model",
        description="Evaluate a saved model (a run folder, a model .npz or a checkpoint) on a "
        "dataset's "
        "test split.",
    )
    p.add_argument(
        "model", metavar="RUN_OR_MODEL", help="run folder, model .npz or checkpoint .npz"
    )
    p.add_argument(
        "--data", default=None, help="dataset (default: the one recorded in the run folder)"
    )
    p.add_argument(
        "--batch-size", type=_positive_int, default=256, help="evaluation batch size (default 256)"
    )
    p.add_argument(
        "--confusion", default=None, metavar="PNG", help="also write a confusion-matrix PNG here"
    )
    _add_data_dir(p)
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "predict",
        help="classify image files with a saved model",
        description="Print the top-k classes with probabilities for each image. Images are "
        "converted to the "
        "model's input channels and size and normalised as the training data were. An image that "
        "can't be read gets an error line; the others are still classified (exit status 2 "
        "at the end).",
    )
    p.add_argument("model", metavar="MODEL", help="run folder, model .npz or checkpoint .npz")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--top-k", type=_positive_int, default=3, help="classes to show per image (default 3)"
    )
    p.add_argument(
        "--invert",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="invert grey levels, or not (--no-invert); default: detect dark ink on light paper "
        "and invert it to the datasets' light on dark",
    )
    p.add_argument(
        "--fit",
        choices=("auto", "digit", "resize"),
        default="auto",
        help="digit: crop to the drawing, fit it in the frame and centre it, as MNIST was "
        "made; resize: scale the whole image; auto (default): digit for one channel",
    )
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser(
        "summary",
        help="layer table of a zoo model or a saved model",
        description="Print a Keras-like summary: layer, output shape, parameters, totals.",
    )
    p.add_argument(
        "model",
        metavar="MODEL_NAME_OR_FILE",
        help=f"zoo model ({', '.join(models.available())}) or saved model / run folder",
    )
    p.add_argument(
        "--input-shape",
        type=_positive_int,
        nargs=3,
        metavar=("C", "H", "W"),
        default=None,
        help="per-sample input shape for a zoo model (default: the model's own)",
    )
    p.add_argument(
        "--num-classes",
        type=_positive_int,
        default=None,
        help="outputs of a zoo model (default: as published, 1000 for alexnet and vgg16, else 10)",
    )
    p.set_defaults(func=cmd_summary)

    p = subparsers.add_parser(
        "datasets",
        help="list the datasets and where they are",
        description="List the known datasets and whether they are available.",
    )
    p.set_defaults(func=cmd_datasets)

    _register_extensions(subparsers)
    return parser


def _register_extensions(subparsers) -> None:
    """Sub-commands contributed by other modules: each has ``register(subparsers)``."""
    lab_commands.register(subparsers)
    explain_commands.register(subparsers)
    explore_commands.register(subparsers)
    speech_commands.register(subparsers)
    text_commands.register(subparsers)
    go_commands.register(subparsers)


def _warning_printer(command: str):
    """Library warnings (skipped images, ...) as one 'cnnlab <cmd>: warning: ...' line each."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{command}: warning: {message}", file=sys.stderr if file is None else file)

    return show


def _describer(command: str):
    """How a failure reads when it ends an MPI job: the line this command prints for it."""

    def describe(error: BaseException) -> str:
        if isinstance(error, (CnnlabError, OSError)):
            return f"{command}: error: {os_message(error)}"
        if isinstance(error, KeyboardInterrupt):
            return f"{command}: interrupted"
        return "".join(traceback.format_exception(error)).rstrip()

    return describe


def main(argv=None) -> int:
    """Run the command line; return the exit status (0 done, 2 a user error, 130 interrupted)."""
    command = "cnnlab"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        command = f"cnnlab {args.command}"
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(command)
            # under mpirun a rank that fails ends the whole job with its message
            status = int(distributed.run_or_abort(args.func, args, describe=_describer(command))
                         or 0)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader of our output went away (`cnnlab summary vgg16 | head`): stop quietly,
        # and point stdout at devnull so the interpreter's final flush can't complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"\n{command}: interrupted", file=sys.stderr)
        return 130
    except (CnnlabError, OSError) as error:
        print(f"{command}: error: {os_message(error)}", file=sys.stderr)
        return 2
