"""The lab's commands: ``cnnlab kernels``, ``cnnlab fit-kernel`` and ``cnnlab invariance``.

``register(subparsers)`` adds the three sub-commands to the ``cnnlab`` parser; each
sets ``func`` to a handler taking the parsed arguments and returning an exit status.
Errors follow the main CLI's convention: ``cnnlab <command>: error: <message>`` on
stderr and exit status 2 (bad flags are argparse's own errors, also status 2).
A picture is always the optional positional IMAGE, as in ``cnnlab predict``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cnnlab import kernels as kernel_bank
from cnnlab import runs
from cnnlab.atomic import write_text
from cnnlab.lab.cli_conventions import (
    DeprecatedAlias,
    LabCommandError,
    number_flag,
    positive_int,
    reports_errors,
)

FIT_TOLERANCE = 1e-3
KERNEL_SIZE = 3  # the classic kernels' side: after it, a picture side n is n - 2 for the pooling
# a 3×3 kernel and a bias are 10 unknowns; 8×8 pixels give 36 equations
MIN_FIT_SIDE = 8


def register(subparsers) -> None:
    """Add ``kernels``, ``fit-kernel`` and ``invariance`` to an argparse sub-parser group."""
    kernel_names = ", ".join(kernel_bank.names())
    image_help = "picture file (default: {} shipped with scikit-image)"

    p = subparsers.add_parser(
        "kernels",
        help="apply the nine classic kernels to a photo and draw the lab's figures",
        description="Apply the nine classic 3×3 kernels with conv2d and write a 3×3 gallery, "
        "the four-panel figure (original, convolution, ReLU, max pooling) for one kernel, "
        "cross-correlation vs convolution, colour and multi-channel figures, and a table of "
        "output sizes. Without IMAGE, scikit-image's camera man (grayscale) and astronaut "
        "(colour) are used.",
    )
    p.add_argument(
        "image",
        metavar="IMAGE",
        nargs="?",
        default=None,
        help=image_help.format("the camera man and the astronaut"),
    )
    p.add_argument(
        "--kernel", default="sobel-x", help=f"kernel for the four-panel figure: {kernel_names}"
    )
    p.add_argument(
        "--out", default="runs/kernels", help="output directory (default: runs/kernels)"
    )
    p.add_argument(
        "--size",
        type=positive_int,
        default=512,
        help="resize the longer side to this many pixels (default 512)",
    )
    p.add_argument(
        "--pool",
        type=positive_int,
        default=2,
        help="max-pooling window of the four-panel figure (default 2)",
    )
    p.set_defaults(func=run_kernels)

    p = subparsers.add_parser(
        "fit-kernel",
        help="learn a hidden 3×3 kernel back from a filtered photo by gradient descent",
        description="Filter a real photo with a hidden kernel, then learn a 3×3 kernel and bias "
        "from (image, target) by SGD with momentum on the mean squared error (conv2d + "
        "mse_loss + backward). Writes the loss curve and the true and learned kernels side by "
        "side. Stops with an error if descent diverges (try a smaller --lr); exits with status "
        f"1 if the kernel is not recovered to within {FIT_TOLERANCE:g}.",
    )
    p.add_argument(
        "image", metavar="IMAGE", nargs="?", default=None, help=image_help.format("the camera man")
    )
    p.add_argument(
        "--image", dest="image_option", action=DeprecatedAlias, new_flag="IMAGE", default=None
    )
    p.add_argument(
        "--kernel", default="horizontal-edge", help=f"the hidden kernel: {kernel_names}"
    )
    p.add_argument(
        "--size",
        type=positive_int,
        default=96,
        help="resize the longer side to this many pixels (default 96)",
    )
    p.add_argument(
        "--bias",
        type=number_flag(float, -1e6, 1e6),
        default=0.0,
        help="the hidden bias (default 0)",
    )
    p.add_argument(
        "--steps", type=positive_int, default=1000, help="gradient-descent steps (default 1000)"
    )
    p.add_argument(
        "--lr",
        type=number_flag(float, 0, low_open=True),
        default=0.1,
        help="learning rate (default 0.1)",
    )
    p.add_argument(
        "--momentum",
        type=number_flag(float, 0, 1, high_open=True),
        default=0.95,
        help="heavy-ball momentum, in [0, 1) (default 0.95)",
    )
    p.add_argument(
        "--seed",
        type=number_flag(int, 0),
        default=0,
        help="seed of the initial kernel (default 0)",
    )
    p.add_argument(
        "--out", default="runs/fit-kernel", help="output directory (default: runs/fit-kernel)"
    )
    p.set_defaults(func=run_fit_kernel)

    p = subparsers.add_parser(
        "invariance",
        help="test accuracy of trained models under shifted, rotated and scaled test images",
        description="Load one or more trained models (run directories, model .npz or checkpoint "
        ".npz files) and measure their test accuracy as the test images are shifted (0–6 px), "
        "rotated (0–45°) and scaled (0.6–1.4×). Writes invariance.png (every model's curves "
        "on one plot) and invariance.json.",
    )
    p.add_argument(
        "run",
        nargs="+",
        metavar="RUN_OR_MODEL",
        help="run directory (its model.npz, else its checkpoint.npz) or a model file; "
        "several give one plot",
    )
    p.add_argument(
        "--data",
        default=None,
        help="test dataset, e.g. digits or fashion-mnist (default: the one recorded in each "
        "run directory, else 'digits'); see 'cnnlab datasets'",
    )
    p.add_argument("--dataset", dest="data", action=DeprecatedAlias, new_flag="--data")
    p.add_argument(
        "--data-dir", default=None, help="extra folder holding (or to download) IDX datasets"
    )
    p.add_argument(
        "--fit",
        choices=("resize", "pad"),
        default="resize",
        help="how test images meet a larger model input: resize them (default) or pad them, "
        "centred on a zero canvas (a model trained on the 42×42 RTS canvas)",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=256, help="evaluation batch size (default 256)"
    )
    p.add_argument(
        "--max-shift",
        type=number_flag(int, 0),
        default=6,
        help="largest shift in pixels (default 6)",
    )
    p.add_argument(
        "--max-rotation",
        type=number_flag(float, 0, 360),
        default=45.0,
        help="largest rotation in degrees (default 45)",
    )
    p.add_argument(
        "--rotation-step",
        type=number_flag(float, 0, low_open=True),
        default=5.0,
        help="rotation step in degrees (default 5)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="output directory (default: the run directory; with several models "
        "runs/invariance)",
    )
    p.set_defaults(func=run_invariance)


def _canonical_kernel(name: str) -> str:
    try:
        return kernel_bank.canonical_name(name)
    except ValueError as error:
        raise LabCommandError(f"--kernel: {error}") from None


def _check_picture_size(picture, minimum: int, why: str, size: int) -> None:
    height, width = picture.shape[:2]
    if min(height, width) < minimum:
        raise LabCommandError(
            f"the picture is {height}×{width} pixels after resizing its longer side to "
            f"--size {size}; "
            f"{why} need at least {minimum} pixels on each side: use a larger --size"
        )


def _output_folder(path) -> Path:
    """The --out folder, made if missing; an existing file there is refused, never replaced."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LabCommandError(f"--out {path}: exists and is not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


@reports_errors("kernels")
def run_kernels(args) -> int:
    # Imported here, not at the top: every cnnlab command registers the lab's parsers,
    # and only the lab's commands need the engine, scikit-image and matplotlib.
    from cnnlab.lab import apply as lab_apply
    from cnnlab.lab import figures

    kernel = _canonical_kernel(args.kernel)
    if args.image is None:
        picture, name = lab_apply.load_image(grayscale=True, size=args.size)
        colour_picture, _ = lab_apply.load_image(grayscale=False, size=args.size)
    else:
        picture, name = lab_apply.load_image(args.image, size=args.size)
        colour_picture = picture
    _check_picture_size(
        picture,
        KERNEL_SIZE - 1 + args.pool,
        f"a {KERNEL_SIZE}×{KERNEL_SIZE} kernel then {args.pool}×{args.pool} pooling",
        args.size,
    )
    out = _output_folder(args.out)
    written = [
        figures.gallery(picture, out / "gallery.png"),
        figures.four_panel(picture, kernel, out / f"four_panel_{kernel}.png", pool=args.pool),
        figures.correlation_vs_convolution(
            picture, kernel, out / f"correlation_vs_convolution_{kernel}.png"
        ),
        figures.colour(colour_picture, out / "colour_kernel.png"),
        figures.one_to_many(colour_picture, out / "one_to_many.png"),
        figures.many_to_one(colour_picture, out / "many_to_one.png"),
    ]
    height = picture.shape[0]
    table = lab_apply.format_output_size_table(lab_apply.output_size_table(height, KERNEL_SIZE))
    table_path = out / "output_sizes.md"
    write_text(
        table_path,
        f"Output size of a 3×3 convolution on the {height}-pixel side of '{name}' "
        "(out = floor((n + 2p − k) / s) + 1):\n\n" + table + "\n",
    )
    written.append(table_path)
    print(f"picture: {name} {'×'.join(str(n) for n in picture.shape)}")
    for kernel_name in kernel_bank.names():
        print(f"  {kernel_bank.describe(kernel_name)}")
    print(f"\noutput sizes for a 3×3 kernel on {height} pixels:\n{table}\n")
    for path in written:
        print(f"wrote {path}")
    return 0


@reports_errors("fit-kernel")
def run_fit_kernel(args) -> int:
    # Imported here for the reason given in run_kernels.
    from cnnlab.lab import figures
    from cnnlab.lab.apply import load_image
    from cnnlab.lab.fit_kernel import recover_kernel

    if args.image is not None and args.image_option is not None:
        raise LabCommandError("give the picture once: as IMAGE (--image is its old spelling)")
    image_path = args.image if args.image is not None else args.image_option
    kernel = _canonical_kernel(args.kernel)
    image, name = load_image(image_path, grayscale=True, size=args.size)
    _check_picture_size(image, MIN_FIT_SIDE, "a 3×3 kernel and a bias", args.size)
    if float(image.max()) == float(image.min()):
        raise LabCommandError(
            f"the picture '{name}' is constant; no kernel can be learned from it"
        )
    result = recover_kernel(
        kernel,
        image=image,
        bias=args.bias,
        steps=args.steps,
        lr=args.lr,
        momentum=args.momentum,
        seed=args.seed,
    )
    if result.diverged:
        raise LabCommandError(f"{result.stop_reason} (no figure written)")
    out = _output_folder(args.out)
    figure = figures.fit_kernel_figure(result, out / f"fit_kernel_{kernel}.png", kernel)
    summary = {
        "kernel": kernel,
        "image": name,
        "image_shape": list(image.shape),
        "steps": result.steps,
        "lr": args.lr,
        "momentum": args.momentum,
        "seed": args.seed,
        "true_kernel": result.true_kernel.tolist(),
        "true_bias": result.true_bias,
        "learned_kernel": result.kernel.tolist(),
        "learned_bias": result.bias,
        "max_error": result.max_error,
        "losses": result.losses,
    }
    write_text(out / f"fit_kernel_{kernel}.json", json.dumps(summary, indent=1))
    height, width = image.shape
    print(f"hidden kernel {kernel} on {name} {height}×{width}, {result.steps} steps")
    print(f"loss {result.losses[0]:.4g} -> {result.losses[-1]:.3g}")
    print("learned kernel:")
    for row in result.kernel:
        print("  " + "  ".join(f"{v:+.6f}" for v in row))
    print(f"learned bias {result.bias:+.6f} (true {result.true_bias:+.6f})")
    print(f"max |learned - true| = {result.max_error:.2e}")
    print(f"wrote {figure}")
    if result.max_error > FIT_TOLERANCE:
        print(
            f"cnnlab fit-kernel: not recovered to within {FIT_TOLERANCE:g}: try more --steps",
            file=sys.stderr,
        )
        return 1
    return 0


def _recorded_data(model_path: Path) -> str | None:
    """The data named by the run.json beside ``model_path``; None without one (RunError if bad)."""
    run = runs.open_run(model_path)
    if not (run.run_file.is_file() or run.run_file.is_symlink()):
        return None
    return run.read_info().data


def _invariance_test_set(model, dataset_name: str, args):
    """The test split of ``dataset_name`` shaped for ``model`` (resized, or padded with --fit pad)."""
    from cnnlab.data import ArrayDataset, load_dataset
    from cnnlab.data.distort import affine_place

    shape = tuple(model.input_shape)
    try:
        if args.fit == "pad":
            splits = load_dataset(dataset_name, data_dir=args.data_dir)
        else:
            splits = load_dataset(dataset_name, image_size=shape[1:], data_dir=args.data_dir)
    except (ValueError, FileNotFoundError) as error:
        raise LabCommandError(str(error)) from None
    train, test = splits
    if args.fit == "pad" and test.image_shape[1:] != shape[1:]:
        if test.image_shape[0] != shape[0] or any(
            n > m for n, m in zip(test.image_shape[1:], shape[1:])
        ):
            raise LabCommandError(
                f"--fit pad: '{dataset_name}' images {test.image_shape} do not fit in the "
                f"model's input {shape}"
            )
        # Centred on the canvas; statistics of the padded training split, as for training.
        padded = [affine_place(s.images, 0.0, 1.0, (0.0, 0.0), canvas=shape[1:]) for s in splits]
        reference = ArrayDataset(padded[0], train.labels, train.class_names, train.name)
        test = ArrayDataset(padded[1], test.labels, test.class_names, test.name,
                            mean=reference.mean, std=reference.std)
    if test.image_shape != shape:
        raise LabCommandError(
            f"the model expects inputs of shape {shape} but '{dataset_name}' gives "
            f"{test.image_shape}; choose the dataset with --data"
        )
    return test


@reports_errors("invariance")
def run_invariance(args) -> int:
    # Imported here for the reason given in run_kernels.
    from cnnlab.lab import figures
    from cnnlab.lab.invariance import DEFAULT_SCALES, format_curves, invariance_curves

    rotations = np.arange(0.0, args.max_rotation + 1e-9, args.rotation_step).tolist()
    results, records = {}, {}
    for given in args.run:
        model_path = runs.find_model_file(given)
        model = runs.load_any_model(model_path)
        dataset_name = args.data or _recorded_data(model_path) or "digits"
        test = _invariance_test_set(model, dataset_name, args)
        curves = invariance_curves(
            model,
            test,
            shifts=range(args.max_shift + 1),
            rotations=rotations,
            scales=DEFAULT_SCALES,
            batch_size=args.batch_size,
        )
        in_run = model_path.name in (runs.MODEL_FILE, runs.CHECKPOINT_FILE)
        label = runs.open_run(model_path).label if in_run else model_path.stem
        while label in results:
            label += "'"
        results[label] = curves
        records[label] = {
            "model": str(model_path),
            "dataset": dataset_name,
            "test_images": len(test),
            **curves.to_dict(),
        }
        print(
            f"{label} on {dataset_name} ({len(test)} test images): "
            f"plain accuracy {curves.accuracy:.4f}"
        )
    single = len(results) == 1
    default_out = model_path.parent if single else Path("runs/invariance")
    out = _output_folder(args.out if args.out else default_out)
    datasets = sorted({r["dataset"] for r in records.values()})
    figure = figures.invariance_figure(
        results,
        out / "invariance.png",
        title=(f"{next(iter(results))} on {datasets[0]}: " if single else
               f"{len(results)} models on {', '.join(datasets)}: ")
        + "accuracy under transformed test images",
    )
    # One model keeps the original flat record; several are listed by label.
    record = next(iter(records.values())) if single else {"models": records}
    write_text(out / "invariance.json", json.dumps(record, indent=1))
    print()
    print(format_curves(results))
    print(f"wrote {figure}\nwrote {out / 'invariance.json'}")
    return 0


def main(argv=None) -> int:
    """Run one lab command without the rest of the CLI (``python -m cnnlab.lab.commands ...``)."""
    parser = argparse.ArgumentParser(prog="cnnlab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
