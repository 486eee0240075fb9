"""The lab's figures, drawn with matplotlib's Agg canvas (no display needed).

Every figure has a fixed size in inches and is saved at ``DPI`` without
tight cropping, so its PNG size in pixels is known in advance
(``pixel_size(FIGSIZES[name])``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab import functional as F
from cnnlab import kernels as kernel_bank
from cnnlab.atomic import atomic_writer
from cnnlab.lab import apply as lab_apply
from cnnlab.tensor import Tensor, no_grad

DPI = 100
FIGSIZES = {
    "gallery": (10.0, 11.0),
    "four_panel": (16.0, 4.8),
    "correlation": (17.0, 4.0),
    "colour": (15.0, 7.0),
    "one_to_many": (15.0, 3.6),
    "many_to_one": (15.0, 6.4),
    "fit_kernel": (13.0, 4.2),
    "invariance": (15.0, 4.6),
}


def pixel_size(figsize: tuple[float, float]) -> tuple[int, int]:
    """(width, height) in pixels of a figure of ``figsize`` inches saved at ``DPI``."""
    return round(figsize[0] * DPI), round(figsize[1] * DPI)


def _figure(name: str):
    # matplotlib is slow to import and only the figures need it.
    from matplotlib.figure import Figure

    return Figure(figsize=FIGSIZES[name], dpi=DPI)


def _save(figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as handle:
        figure.savefig(handle, dpi=DPI, format="png")
    return path


def _display_range(array: np.ndarray) -> tuple[float, float]:
    """A robust range for showing a filter response: the 0.5 and 99.5 percentiles."""
    low, high = np.percentile(array, [0.5, 99.5])
    if high - low < 1e-8:
        low, high = float(array.min()) - 0.5, float(array.max()) + 0.5
    return float(low), float(high)


def _show(
    axis, array: np.ndarray, title: str = "", fixed_range: tuple[float, float] | None = None
) -> None:
    """Show a (H, W) map in gray or a (H, W, 3) picture, scaled to its robust range."""
    low, high = fixed_range if fixed_range is not None else _display_range(array)
    if array.ndim == 3:
        axis.imshow(np.clip((array - low) / (high - low), 0.0, 1.0))
    else:
        axis.imshow(array, cmap="gray", vmin=low, vmax=high)
    axis.set_title(title, fontsize=10)
    axis.set_xticks([])
    axis.set_yticks([])


def _draw_kernel(axis, kernel: np.ndarray, title: str = "", fmt: str | None = None) -> None:
    """A small kernel as a coloured grid with its values in the cells (``fmt``: a format spec)."""
    limit = max(float(np.abs(kernel).max()), 1e-300)
    axis.imshow(kernel, cmap="coolwarm", vmin=-limit, vmax=limit)
    for (i, j), value in np.ndenumerate(kernel):
        if fmt is not None:
            text = format(value, fmt)
        else:
            text = f"{value:.3g}" if abs(value - round(value)) > 1e-6 else f"{round(value)}"
        axis.text(j, i, text, ha="center", va="center", fontsize=9)
    axis.set_title(title, fontsize=10)
    axis.set_xticks([])
    axis.set_yticks([])


def _kernel_label(kernel: np.ndarray) -> str:
    rows = []
    for row in kernel:
        cells = [f"{v:.2f}" if abs(v - round(v)) > 1e-6 else f"{round(v)}" for v in row]
        rows.append(" ".join(cells))
    return "[" + " | ".join(rows) + "]"


def gallery(image: np.ndarray, path, names=None) -> Path:
    """A 3×3 grid: the picture through each of the nine classic kernels (``conv2d``, valid)."""
    names = list(names) if names is not None else kernel_bank.names()
    if len(names) != 9:
        raise ValueError(f"gallery: expected 9 kernel names, received {len(names)}")
    figure = _figure("gallery")
    axes = figure.subplots(3, 3)
    for axis, name in zip(axes.flat, names):
        response = lab_apply.apply_kernel(image, name)
        _show(axis, response, f"{name}\n{_kernel_label(kernel_bank.get(name))}")
    figure.suptitle("The nine classic kernels (cross-correlation, as in conv2d)", fontsize=13)
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.91, wspace=0.05, hspace=0.2)
    return _save(figure, path)


def four_panel_arrays(image: np.ndarray, kernel, pool: int = 2) -> dict[str, np.ndarray]:
    """Original → convolution → ReLU → max pooling, with the engine's ops.

    Returns a dict with keys 'original', 'convolution', 'relu', 'max_pool'; the
    last three are (H, W) or (H, W, C) like the picture.
    """
    response = lab_apply.apply_kernel(image, kernel, padding="same")
    nchw = response[None, None] if response.ndim == 2 else response.transpose(2, 0, 1)[None]
    with no_grad():
        rectified = F.relu(Tensor(np.ascontiguousarray(nchw)))
        pooled = F.max_pool2d(rectified, pool).data
    rectified = rectified.data

    def back(array):
        return array[0, 0] if response.ndim == 2 else array[0].transpose(1, 2, 0)

    return {
        "original": image,
        "convolution": response,
        "relu": back(rectified),
        "max_pool": back(pooled),
    }


def _size(array: np.ndarray) -> str:
    return f"{array.shape[0]}×{array.shape[1]}"


def four_panel(image: np.ndarray, kernel, path, pool: int = 2) -> Path:
    """The lecture's four panels for one kernel: original, convolution, ReLU, max pooling."""
    kernel_array = lab_apply.as_kernel(kernel)
    name = kernel if isinstance(kernel, str) else "kernel"
    arrays = four_panel_arrays(image, kernel_array, pool)
    figure = _figure("four_panel")
    axes = figure.subplots(1, 4)
    _show(
        axes[0],
        arrays["original"],
        f"original {_size(arrays['original'])}",
        fixed_range=(0.0, 1.0),
    )
    _show(axes[1], arrays["convolution"], f"{name} (same padding) {_size(arrays['convolution'])}")
    relu_range = (0.0, max(_display_range(arrays["relu"])[1], 1e-6))
    _show(axes[2], arrays["relu"], "ReLU: max(0, z)", fixed_range=relu_range)
    _show(
        axes[3],
        arrays["max_pool"],
        f"max pooling {pool}×{pool} {_size(arrays['max_pool'])}",
        fixed_range=relu_range,
    )
    figure.suptitle(f"{name} {_kernel_label(kernel_array)}", fontsize=12)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.85, wspace=0.04)
    return _save(figure, path)


def correlation_vs_convolution(image: np.ndarray, kernel, path) -> Path:
    """Cross-correlation (conv2d) beside true convolution (flipped kernel) and their difference."""
    kernel_array = lab_apply.as_kernel(kernel)
    name = kernel if isinstance(kernel, str) else "kernel"
    correlation = lab_apply.apply_kernel(image, kernel_array)
    convolution = lab_apply.convolve(image, kernel_array)
    figure = _figure("correlation")
    axes = figure.subplots(1, 5, gridspec_kw={"width_ratios": [0.7, 0.7, 1, 1, 1]})
    _draw_kernel(axes[0], kernel_array, f"K ({name})")
    _draw_kernel(axes[1], kernel_array[::-1, ::-1], "K flipped 180°")
    shared = _display_range(np.concatenate([correlation.ravel(), convolution.ravel()]))
    _show(
        axes[2],
        correlation,
        "cross-correlation\nΣ I(i+m, j+n) K(m, n)  (conv2d)",
        fixed_range=shared,
    )
    _show(axes[3], convolution, "convolution\nΣ I(i−m, j−n) K(m, n)", fixed_range=shared)
    difference = correlation - convolution
    limit = max(float(np.abs(difference).max()), 1e-6)
    _show(
        axes[4],
        difference,
        f"difference (max |Δ| = {float(np.abs(difference).max()):.3g})",
        fixed_range=(-limit, limit),
    )
    figure.suptitle(
        "CNN layers compute cross-correlation; convolution flips the kernel first", fontsize=12
    )
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.03, top=0.78, wspace=0.08)
    return _save(figure, path)


def colour_kernel_example() -> np.ndarray:
    """A (3, 3, 3) colour kernel for the figure: Sobel-X on red, Sobel-Y on green, blur on blue."""
    return np.stack(
        [kernel_bank.get("sobel-x"), kernel_bank.get("sobel-y"), kernel_bank.get("blur")]
    )


def colour(image: np.ndarray, path, kernel: np.ndarray | None = None) -> Path:
    """An RGB picture through a 3-channel kernel: three sub-kernel responses summed in one map."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"colour: expected a (H, W, 3) RGB picture, received shape {image.shape}")
    kernel = colour_kernel_example() if kernel is None else np.asarray(kernel, dtype=np.float32)
    parts = lab_apply.colour_contributions(image, kernel)
    total = lab_apply.apply_colour_kernel(image, kernel)
    figure = _figure("colour")
    grid = figure.add_gridspec(2, 5)
    _show(figure.add_subplot(grid[:, 0]), image, "RGB input", fixed_range=(0.0, 1.0))
    channels = ("red", "green", "blue")
    for c in range(3):
        _draw_kernel(figure.add_subplot(grid[0, c + 1]), kernel[c], f"sub-kernel K_{channels[c]}")
        _show(figure.add_subplot(grid[1, c + 1]), parts[c], f"I_{channels[c]} ⋆ K_{channels[c]}")
    _show(figure.add_subplot(grid[:, 4]), total, "sum over channels\n= conv2d with w (1, 3, 3, 3)")
    figure.suptitle(
        "Colour convolution: one 3-channel kernel, three sub-kernels, one output", fontsize=12
    )
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.88, wspace=0.08, hspace=0.25)
    return _save(figure, path)


DEFAULT_BANK = ("vertical-edge", "horizontal-edge", "sobel-x", "sobel-y")


def one_to_many(image: np.ndarray, path, names=DEFAULT_BANK) -> Path:
    """One grayscale input, several kernels: one feature map per kernel (w: (K, 1, 3, 3))."""
    gray = lab_apply.to_grayscale(image)
    maps = lab_apply.one_to_many(gray, list(names))
    figure = _figure("one_to_many")
    axes = figure.subplots(1, len(names) + 1)
    _show(axes[0], gray, "one input channel", fixed_range=(0.0, 1.0))
    for axis, name, feature in zip(axes[1:], names, maps):
        _show(axis, feature, f"output {name}")
    figure.suptitle(
        f"One input to {len(names)} outputs: conv2d with w ({len(names)}, 1, 3, 3)", fontsize=12
    )
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.82, wspace=0.05)
    return _save(figure, path)


def many_to_one(image: np.ndarray, path) -> Path:
    """Several feature maps, one kernel slice each, summed into one output (w: (1, C, 3, 3)).

    The inputs are the four rectified Sobel responses (edges getting brighter to
    the right, left, down, up); blurring each and summing gives one map of edge
    strength in every direction.
    """
    gray = lab_apply.to_grayscale(image)
    sobel = lab_apply.one_to_many(gray, ["sobel-x", "sobel-y"], padding="same")
    maps = np.stack(
        [
            np.maximum(sobel[0], 0),
            np.maximum(-sobel[0], 0),
            np.maximum(sobel[1], 0),
            np.maximum(-sobel[1], 0),
        ]
    )
    titles = (
        "ReLU(sobel-x): →",
        "ReLU(−sobel-x): ←",
        "ReLU(sobel-y): ↓",
        "ReLU(−sobel-y): ↑",
    )
    slices = np.stack([kernel_bank.get("blur")] * len(maps))
    out = lab_apply.many_to_one(maps, slices)
    figure = _figure("many_to_one")
    grid = figure.add_gridspec(2, len(maps) + 1)
    for i, (title, feature) in enumerate(zip(titles, maps)):
        _show(figure.add_subplot(grid[0, i]), feature, f"input map {i}: {title}")
        _draw_kernel(figure.add_subplot(grid[1, i]), slices[i], f"slice w[0, {i}]")
    _show(figure.add_subplot(grid[:, len(maps)]), out, "one output\nΣ_c map_c ⋆ w[0, c]")
    figure.suptitle(
        f"{len(maps)} inputs to one output: conv2d with w (1, {len(maps)}, 3, 3)", fontsize=12
    )
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.88, wspace=0.08, hspace=0.25)
    return _save(figure, path)


def fit_kernel_figure(result, path, name: str = "hidden kernel") -> Path:
    """The loss curve (log scale) and the true and learned kernels side by side."""
    if result.true_kernel is None:
        raise ValueError("fit_kernel_figure: the result has no true kernel to compare with")
    figure = _figure("fit_kernel")
    grid = figure.add_gridspec(1, 4, width_ratios=[1.6, 1, 1, 1])
    curve = figure.add_subplot(grid[0, 0])
    losses = np.maximum(np.asarray(result.losses, dtype=float), 1e-300)
    curve.semilogy(np.arange(len(losses)), losses)
    curve.set_xlabel("step")
    curve.set_ylabel("mean squared error")
    curve.set_title(f"loss: {losses[0]:.3g} → {losses[-1]:.2g}", fontsize=10)
    curve.grid(True, which="both", alpha=0.3)
    _draw_kernel(
        figure.add_subplot(grid[0, 1]),
        result.true_kernel,
        f"true ({name}), b* = {result.true_bias:.3g}",
    )
    _draw_kernel(
        figure.add_subplot(grid[0, 2]), result.kernel, f"learned, b = {result.bias:.2g}", fmt=".4f"
    )
    _draw_kernel(
        figure.add_subplot(grid[0, 3]),
        result.kernel - result.true_kernel,
        "learned − true",
        fmt=".1e",
    )
    figure.suptitle(
        f"Learning a 3×3 kernel by gradient descent: {result.steps} steps, "
        f"max error {result.max_error:.2e}",
        fontsize=12,
    )
    figure.subplots_adjust(left=0.06, right=0.99, bottom=0.13, top=0.83, wspace=0.15)
    return _save(figure, path)


def invariance_figure(
    results: dict, path, title: str = "Test accuracy under transformed test images"
) -> Path:
    """Accuracy against shift, rotation and scale, one line per model (curves by model name)."""
    if not results:
        raise ValueError("invariance_figure: no results to plot")
    figure = _figure("invariance")
    axes = figure.subplots(1, 3)
    panels = (
        ("shifts", "shift_accuracy", "shift (pixels, mean of 4 directions)"),
        ("rotations", "rotation_accuracy", "rotation (degrees, mean of ±)"),
        ("scales", "scale_accuracy", "scale factor"),
    )
    for axis, (xs, ys, label) in zip(axes, panels):
        for name, curves in results.items():
            axis.plot(
                getattr(curves, xs), getattr(curves, ys), marker="o", markersize=3, label=name
            )
        axis.set_xlabel(label)
        axis.set_ylim(0.0, 1.02)
        axis.grid(True, alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=9, loc="lower left")
    figure.suptitle(title, fontsize=12)
    figure.subplots_adjust(left=0.05, right=0.99, bottom=0.13, top=0.88, wspace=0.18)
    return _save(figure, path)
