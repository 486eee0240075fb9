"""Training figures as PNG files: learning curves and confusion matrices.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global
state, no display needed), so they work on headless machines and in tests. Every
figure is written through ``cnnlab.atomic``: a crash never leaves half a PNG, and a
symlink at the destination is replaced, never followed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.atomic import atomic_writer

__all__ = ["confusion_matrix", "plot_confusion_matrix", "plot_history", "save_figure"]


def _figure(width: float, height: float, columns: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, axes


def save_figure(figure, path) -> Path:
    """Lay out a matplotlib ``figure`` and write it as a PNG (atomically; the folder is made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    with atomic_writer(path) as handle:
        figure.savefig(handle, format="png")
    return path


def plot_history(history: dict, path, title: str | None = None) -> Path:
    """Learning curves: loss (left) and accuracy (right) per epoch, train and validation.

    ``history`` is a ``cnnlab.training.History`` or any dict of per-epoch lists with
    'loss' and optionally 'accuracy', 'val_loss', 'val_accuracy'. Returns the path.
    """
    if not history.get("loss"):
        raise ValueError("plot_history: the history has no 'loss' values (no epoch finished)")
    has_accuracy = bool(history.get("accuracy"))
    figure, axes = _figure(10 if has_accuracy else 5.5, 4, 2 if has_accuracy else 1)
    panels = [("loss", "Loss")] + ([("accuracy", "Accuracy")] if has_accuracy else [])
    for ax, (key, label) in zip(axes, panels):
        for name, style in ((key, "o-"), (f"val_{key}", "s--")):
            values = history.get(name)
            if values:
                epochs = np.arange(1, len(values) + 1)
                label_text = "validation" if name.startswith("val_") else "train"
                ax.plot(epochs, values, style, label=label_text)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts (K, K): entry [i, j] is the number of samples of class i predicted as j."""
    y_true = np.asarray(y_true).astype(np.int64, copy=False)
    y_pred = np.asarray(y_pred).astype(np.int64, copy=False)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"confusion_matrix: y_true and y_pred must be 1-D of the same length, received shapes "
            f"{y_true.shape} and {y_pred.shape}"
        )
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    labels = np.concatenate([y_true, y_pred])
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"confusion_matrix: labels must lie in [0, {num_classes})")
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def plot_confusion_matrix(matrix, path, class_names=None, title: str | None = None) -> Path:
    """Heat map of a confusion matrix with the count in every cell and class names on the axes."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError("plot_confusion_matrix: expected a square matrix, "
                         f"received shape {matrix.shape}")
    k = matrix.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    if len(names) != k:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for a {k}×{k} matrix")
    size = min(max(4.5, 0.6 * k + 2.5), 20)
    figure, (ax,) = _figure(size, size * 0.9)
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > threshold else "black")
    total = int(matrix.sum())
    accuracy = np.trace(matrix) / total if total else 0.0
    ax.set_title(title or f"Confusion matrix (accuracy {accuracy:.2%}, {total} samples)")
    return save_figure(figure, path)
