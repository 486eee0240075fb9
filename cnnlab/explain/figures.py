"""Pictures of explanations: grids of images, heat-maps over images, labelled sheets, PNG files.

Arrays are NCHW / CHW floats; what reaches a file is scaled to [0, 1] first. Small images
(a 28 px digit) are enlarged by whole pixel repeats, never blurred, so each pixel stays visible.
Every file is written atomically (``cnnlab.atomic``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.atomic import atomic_writer
from cnnlab.plots import save_figure

__all__ = ["colorize", "overlay", "rescale", "save_figure", "sheet", "tile", "write_png"]


def rescale(images: np.ndarray, per_image: bool = True, symmetric: bool = False) -> np.ndarray:
    """Scale to [0, 1] for display: each image (or all together) from its min to its max, or,
    ``symmetric``, with 0 at grey 0.5 (kernels, signed gradients). A constant image is grey."""
    x = np.asarray(images, dtype=np.float64)
    axes = tuple(range(1, x.ndim)) if per_image and x.ndim > 1 else None
    if symmetric:
        bound = np.abs(x).max(axis=axes, keepdims=axes is not None)
        return 0.5 + 0.5 * np.divide(x, bound, out=np.zeros_like(x), where=bound > 0)
    low = x.min(axis=axes, keepdims=axes is not None)
    span = x.max(axis=axes, keepdims=axes is not None) - low
    return np.divide(x - low, span, out=np.full_like(x, 0.5), where=span > 0)


def tile(images: np.ndarray, columns: int | None = None, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """(N, C, H, W) → one (C, rows·(H+pad)−pad, columns·(W+pad)−pad) image, row by row."""
    images = np.asarray(images)
    n, c, h, w = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    out = np.full((c, rows * (h + pad) - pad, columns * (w + pad) - pad), fill, dtype=np.float64)
    for i in range(n):
        r, q = divmod(i, columns)
        out[:, r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = images[i]
    return out


def colorize(values: np.ndarray, cmap: str = "inferno", symmetric: bool = False) -> np.ndarray:
    """A (H, W) map as a (3, H, W) RGB heat-map in [0, 1] (``symmetric``: a diverging map)."""
    from matplotlib import colormaps  # lazy: matplotlib

    name = "RdBu_r" if symmetric else cmap
    scaled = rescale(np.asarray(values)[None], symmetric=symmetric)[0]
    return colormaps[name](scaled)[..., :3].transpose(2, 0, 1)


def overlay(image: np.ndarray, values: np.ndarray, alpha: float = 0.55, cmap: str = "inferno") -> np.ndarray:
    """A (C, H, W) image in [0, 1] under a (H, W) heat-map: (3, H, W) in [0, 1]."""
    image = np.asarray(image, dtype=np.float64)
    base = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image
    return np.clip((1 - alpha) * base + alpha * colorize(values, cmap), 0.0, 1.0)


def _enlarged(image: np.ndarray, min_side: int) -> np.ndarray:
    factor = max(1, int(np.ceil(min_side / max(1, min(image.shape[1:])))))
    return image.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else image


def write_png(image: np.ndarray, path, min_side: int = 256) -> Path:
    """Write a (C, H, W) image in [0, 1] (C = 1 or 3) as a PNG, enlarged by pixel repeats until
    its shorter side is at least ``min_side``; the folder is created. Returns the path."""
    from PIL import Image  # lazy: Pillow

    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    pixels = np.round(_enlarged(image, min_side) * 255).astype(np.uint8)
    picture = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as handle:
        picture.save(handle, format="PNG")
    return path


def sheet(panels, path, columns: int | None = None, title: str | None = None,
          panel_inches: float = 2.4) -> Path:
    """A matplotlib sheet of titled panels, written as PNG.

    ``panels``: (title, content) pairs; content is a (C, H, W) image in [0, 1], a (H, W) map
    (drawn with a colour bar) or a 1-D curve (drawn as a line, e.g. a loss).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib
    from matplotlib.figure import Figure

    panels = list(panels)
    columns = columns or len(panels)
    rows = int(np.ceil(len(panels) / columns))
    figure = Figure(figsize=(panel_inches * columns, panel_inches * rows + (0.4 if title else 0)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, (name, content) in zip(axes, panels):
        content = np.asarray(content)
        if content.ndim == 1:
            axis.plot(np.arange(1, len(content) + 1), content)
            axis.set_yscale("log" if (content > 0).all() else "linear")
        elif content.ndim == 2:
            shown = axis.imshow(content, cmap="inferno")
            figure.colorbar(shown, ax=axis, fraction=0.046)
            axis.set_axis_off()
        else:
            image = np.clip(content, 0, 1)
            axis.imshow(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0),
                        cmap="gray" if image.shape[0] == 1 else None, vmin=0, vmax=1,
                        interpolation="nearest")
            axis.set_axis_off()
        axis.set_title(name, fontsize=9)
    for axis in axes[len(panels):]:
        axis.set_axis_off()
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)

