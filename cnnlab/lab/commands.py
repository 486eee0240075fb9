"""The lab's command-line tools: ``cnnlab kernels``, ``cnnlab fit-kernel`` and ``cnnlab invariance``.

``register(subparsers)`` adds the three sub-commands to the ``cnnlab`` parser;
each sets ``func`` to a handler taking the parsed arguments and returning an
exit status.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnlab import kernels as kernel_bank

FIT_TOLERANCE = 1e-3


def register(subparsers) -> None:
    """Add ``kernels``, ``fit-kernel`` and ``invariance`` to an argparse sub-parser group."""
    kernel_names = ", ".join(kernel_bank.names())

    p = subparsers.add_parser(
        "kernels",
        help="apply the nine classic kernels to a photo and draw the lab's figures",
        description="Apply the nine classic 3×3 kernels with conv2d and write a 3×3 gallery, the "
        "four-panel figure (original, convolution, ReLU, max pooling) for one kernel, "
        "cross-correlation vs convolution, colour and multi-channel figures, and a table of output "
        "sizes. Without IMAGE, scikit-image's camera man (grayscale) and astronaut (colour) are used.",
    )
    p.add_argument("image", nargs="?", default=None, help="picture file (default: a photo shipped with scikit-image)")
    p.add_argument("--kernel", default="sobel-x", help=f"kernel for the four-panel figure: {kernel_names}")
    p.add_argument("--out", default="runs/kernels", help="output directory (default: runs/kernels)")
    p.add_argument("--size", type=int, default=512, help="resize the longer side to this many pixels (default 512)")
    p.add_argument("--pool", type=int, default=2, help="max-pooling window of the four-panel figure (default 2)")
    p.set_defaults(func=run_kernels)

    p = subparsers.add_parser(
        "fit-kernel",
        help="learn a hidden 3×3 kernel back from a filtered photo by gradient descent",
        description="Filter a real photo with a hidden kernel, then learn a 3×3 kernel and bias from "
        "(image, target) by SGD with momentum on the mean squared error (conv2d + mse_loss + backward). "
        "Writes the loss curve and the true and learned kernels side by side.",
    )
    p.add_argument("--kernel", default="horizontal-edge", help=f"the hidden kernel: {kernel_names}")
    p.add_argument("--image", default=None, help="picture file (default: scikit-image's camera man)")
    p.add_argument("--size", type=int, default=96, help="resize the longer side to this many pixels (default 96)")
    p.add_argument("--bias", type=float, default=0.0, help="the hidden bias (default 0)")
    p.add_argument("--steps", type=int, default=1000, help="gradient-descent steps (default 1000)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--momentum", type=float, default=0.95, help="heavy-ball momentum (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial kernel (default 0)")
    p.add_argument("--out", default="runs/fit-kernel", help="output directory (default: runs/fit-kernel)")
    p.set_defaults(func=run_fit_kernel)

    p = subparsers.add_parser(
        "invariance",
        help="test accuracy of a trained model under shifted, rotated and scaled test images",
        description="Load a trained model (a model .npz or a run directory holding one) and measure its "
        "test accuracy as the test images are shifted (0–6 px), rotated (0–45°) and scaled (0.6–1.4×). "
        "Writes invariance.png and invariance.json.",
    )
    p.add_argument("run", help="a saved model (.npz) or a run directory containing one")
    p.add_argument("--dataset", default=None,
                   help="test dataset (default: the one recorded in the run directory, else 'digits')")
    p.add_argument("--data-dir", default=None, help="where datasets are looked for")
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size (default 256)")
    p.add_argument("--max-shift", type=int, default=6, help="largest shift in pixels (default 6)")
    p.add_argument("--max-rotation", type=float, default=45.0, help="largest rotation in degrees (default 45)")
    p.add_argument("--rotation-step", type=float, default=5.0, help="rotation step in degrees (default 5)")
    p.add_argument("--out", default=None, help="output directory (default: the run directory)")
    p.set_defaults(func=run_invariance)


def _positive(parser_name: str, **values) -> None:
    for name, value in values.items():
        if value is None or value < 1:
            raise SystemExit(f"cnnlab {parser_name}: --{name.replace('_', '-')} must be >= 1, received {value}")


# ---------------------------------------------------------------------------- kernels
def run_kernels(args) -> int:
    from cnnlab.lab import apply as lab_apply
    from cnnlab.lab import figures

    _positive("kernels", size=args.size, pool=args.pool)
    try:
        kernel = kernel_bank.canonical_name(args.kernel)
    except ValueError as error:
        raise SystemExit(f"cnnlab kernels: {error}") from None
    try:
        if args.image is None:
            picture, name = lab_apply.load_image(grayscale=True, size=args.size)
            colour_picture, _ = lab_apply.load_image(grayscale=False, size=args.size)
        else:
            picture, name = lab_apply.load_image(args.image, size=args.size)
            colour_picture = picture
    except ValueError as error:
        raise SystemExit(f"cnnlab kernels: {error}") from None
    out = Path(args.out)
    written = [
        figures.gallery(picture, out / "gallery.png"),
        figures.four_panel(picture, kernel, out / f"four_panel_{kernel}.png", pool=args.pool),
        figures.correlation_vs_convolution(picture, kernel, out / f"correlation_vs_convolution_{kernel}.png"),
        figures.colour(colour_picture, out / "colour_kernel.png"),
        figures.one_to_many(colour_picture, out / "one_to_many.png"),
        figures.many_to_one(colour_picture, out / "many_to_one.png"),
    ]
    height = picture.shape[0]
    table = lab_apply.format_output_size_table(lab_apply.output_size_table(height, 3))
    table_path = out / "output_sizes.md"
    table_path.write_text(
        f"Output size of a 3×3 convolution on the {height}-pixel side of '{name}' "
        "(out = floor((n + 2p − k) / s) + 1):\n\n" + table + "\n",
        encoding="utf-8",
    )
    written.append(table_path)
    print(f"picture: {name} {'×'.join(str(n) for n in picture.shape)}")
    for kernel_name in kernel_bank.names():
        print(f"  {kernel_bank.describe(kernel_name)}")
    print(f"\noutput sizes for a 3×3 kernel on {height} pixels:\n{table}\n")
    for path in written:
        print(f"wrote {path}")
    return 0


# ------------------------------------------------------------------------- fit-kernel
def run_fit_kernel(args) -> int:
    from cnnlab.lab import figures
    from cnnlab.lab.apply import load_image
    from cnnlab.lab.fit_kernel import recover_kernel

    _positive("fit-kernel", size=args.size, steps=args.steps)
    if args.lr <= 0 or not 0 <= args.momentum < 1:
        raise SystemExit(f"cnnlab fit-kernel: expected --lr > 0 and 0 <= --momentum < 1, received "
                         f"{args.lr} and {args.momentum}")
    try:
        kernel = kernel_bank.canonical_name(args.kernel)
        image, name = load_image(args.image, grayscale=True, size=args.size)
    except ValueError as error:
        raise SystemExit(f"cnnlab fit-kernel: {error}") from None
    result = recover_kernel(kernel, image=image, bias=args.bias, steps=args.steps, lr=args.lr,
                            momentum=args.momentum, seed=args.seed)
    out = Path(args.out)
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
    (out / f"fit_kernel_{kernel}.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"hidden kernel {kernel} on {name} {image.shape[0]}×{image.shape[1]}, {result.steps} steps")
    print(f"loss {result.losses[0]:.4g} -> {result.losses[-1]:.3g}")
    print("learned kernel:")
    for row in result.kernel:
        print("  " + "  ".join(f"{v:+.6f}" for v in row))
    print(f"learned bias {result.bias:+.6f} (true {result.true_bias:+.6f})")
    print(f"max |learned - true| = {result.max_error:.2e}")
    print(f"wrote {figure}")
    if result.max_error > FIT_TOLERANCE:
        print(f"not recovered to within {FIT_TOLERANCE:g}: try more --steps")
        return 1
    return 0


# ------------------------------------------------------------------------- invariance
_MODEL_FILES = ("model.npz", "best.npz", "best_model.npz", "final.npz", "checkpoint.npz")
_RUN_INFO_FILES = ("run.json", "config.json", "args.json", "metadata.json", "history.json")


def find_model_file(run) -> Path:
    """The model file of ``run``: the path itself, or a known model file in that directory."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise ValueError(f"no model file or run directory at {str(run)!r}")
    for name in _MODEL_FILES:
        if (run / name).is_file():
            return run / name
    candidates = sorted(run.glob("*.npz"))
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(p.name for p in candidates) or "none"
    raise ValueError(
        f"cannot tell which model to use in {str(run)!r}: expected one of {', '.join(_MODEL_FILES)} "
        f"(.npz files found: {found})"
    )


def recorded_dataset(run) -> str | None:
    """The dataset name written by the training run into its directory, if any."""
    run = Path(run)
    directory = run if run.is_dir() else run.parent
    for name in _RUN_INFO_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for holder in (info, info.get("args", {}) if isinstance(info, dict) else {}):
            if isinstance(holder, dict) and isinstance(holder.get("dataset"), str):
                return holder["dataset"]
    return None


def run_invariance(args) -> int:
    import numpy as np

    from cnnlab.data import load_dataset
    from cnnlab.io import load_model
    from cnnlab.lab import figures
    from cnnlab.lab.invariance import DEFAULT_SCALES, format_curves, invariance_curves

    _positive("invariance", batch_size=args.batch_size)
    if args.max_shift < 0 or args.max_rotation < 0 or args.rotation_step <= 0:
        raise SystemExit("cnnlab invariance: expected --max-shift >= 0, --max-rotation >= 0 and --rotation-step > 0")
    try:
        model_path = find_model_file(args.run)
        model = load_model(model_path)
    except ValueError as error:
        raise SystemExit(f"cnnlab invariance: {error}") from None
    dataset_name = args.dataset or recorded_dataset(args.run) or "digits"
    shape = tuple(model.input_shape)
    try:
        splits = load_dataset(dataset_name, image_size=shape[1:], data_dir=args.data_dir)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"cnnlab invariance: {error}") from None
    test = splits.test
    if test.image_shape != shape:
        raise SystemExit(
            f"cnnlab invariance: the model expects inputs of shape {shape} but '{dataset_name}' gives "
            f"{test.image_shape}; choose the dataset with --dataset"
        )
    rotations = np.arange(0.0, args.max_rotation + 1e-9, args.rotation_step).tolist()
    curves = invariance_curves(model, test, shifts=range(args.max_shift + 1), rotations=rotations,
                               scales=DEFAULT_SCALES, batch_size=args.batch_size)
    label = model_path.parent.name if model_path.name in _MODEL_FILES else model_path.stem
    out = Path(args.out) if args.out else (Path(args.run) if Path(args.run).is_dir() else model_path.parent)
    out.mkdir(parents=True, exist_ok=True)
    figure = figures.invariance_figure({label: curves}, out / "invariance.png",
                                       title=f"{label} on {dataset_name}: accuracy under transformed test images")
    record = {"model": str(model_path), "dataset": dataset_name, "test_images": len(test), **curves.to_dict()}
    (out / "invariance.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(f"{label} on {dataset_name} ({len(test)} test images): plain accuracy {curves.accuracy:.4f}\n")
    print(format_curves({label: curves}))
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
