"""In-memory image datasets: uint8 images (N, C, H, W) with int64 labels, and a train/test pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ArrayDataset", "Splits", "pixel_stats"]


def pixel_stats(images: np.ndarray, chunk: int = 1024) -> tuple[float, float]:
    """Mean and standard deviation of all pixels of uint8 ``images``, in [0, 1] units.

    Counted with a 256-bin histogram over chunks, so it is exact and never builds a float copy
    of the whole set.
    """
    flat = images.reshape(len(images), -1)
    counts = np.zeros(256, dtype=np.int64)
    for start in range(0, len(flat), chunk):
        counts += np.bincount(flat[start:start + chunk].ravel(), minlength=256)
    total = counts.sum()
    if total == 0:
        return 0.0, 1.0
    values = np.arange(256, dtype=np.float64) / 255.0
    mean = float(counts @ values / total)
    variance = float(counts @ (values - mean) ** 2 / total)
    return mean, float(np.sqrt(variance))


class ArrayDataset:
    """Images and labels held in memory, raw: uint8 pixels are converted to float per batch.

    Args:
        images: uint8 array (N, C, H, W).
        labels: integer array (N,), values in [0, len(class_names)); stored as int64.
        class_names: one name per class.
        name: the dataset's name, e.g. 'digits' or 'fashion-mnist (train)'.
        mean, std: normalisation statistics in [0, 1] pixel units; computed from these images
            when not given. ``load_dataset`` gives the test split the training split's values.

    ``dataset[i]`` returns ``(image uint8 (C, H, W), label int)``, ``dataset[a:b]`` (or an index
    array) ``(images (B, C, H, W), labels (B,))``; ``len(dataset)`` is N.
    """

    def __init__(self, images, labels, class_names, name: str, mean: float | None = None,
                 std: float | None = None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"ArrayDataset '{name}': images must be uint8 of shape (N, C, H, W), received "
                             f"{images.dtype} of shape {images.shape}")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(f"ArrayDataset '{name}': labels must be integers of shape (N,), received "
                             f"{labels.dtype} of shape {labels.shape}")
        if len(labels) != len(images):
            raise ValueError(f"ArrayDataset '{name}': {len(images)} images but {len(labels)} labels")
        class_names = [str(c) for c in class_names]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise ValueError(f"ArrayDataset '{name}': labels must lie in [0, {len(class_names)}) for "
                             f"{len(class_names)} class names, received range [{labels.min()}, {labels.max()}]")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.class_names = class_names
        self.name = name
        if mean is None or std is None:
            mean, std = pixel_stats(images)
        self.mean = float(mean)
        # A constant image set has std 0; dividing by 1 keeps the batches finite.
        self.std = float(std) if std > 0 else 1.0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index) -> tuple[np.ndarray, int | np.ndarray]:
        if isinstance(index, (int, np.integer)):
            return self.images[index], int(self.labels[index])
        return self.images[index], self.labels[index]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Per-sample shape (C, H, W)."""
        return tuple(self.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)

    def normalize(self, images) -> np.ndarray:
        """uint8 pixels (any shape) -> float32 ``(pixel / 255 − mean) / std``, as the DataLoader does."""
        images = np.asarray(images)
        scaled = images.astype(np.float32) * np.float32(1 / 255)
        return (scaled - np.float32(self.mean)) * np.float32(1 / self.std)

    def subset(self, indices, name: str | None = None) -> ArrayDataset:
        """A dataset of the selected samples, keeping this one's mean/std."""
        indices = np.asarray(indices)
        return ArrayDataset(self.images[indices], self.labels[indices], self.class_names,
                            name or self.name, mean=self.mean, std=self.std)

    def __repr__(self) -> str:
        return (f"ArrayDataset(name={self.name!r}, samples={len(self)}, image_shape={self.image_shape}, "
                f"classes={self.num_classes}, mean={self.mean:.4f}, std={self.std:.4f})")


@dataclass(frozen=True)
class Splits:
    """A dataset's training and test splits; unpacks as ``train, test = splits``.

    ``report`` is what the loader has to tell about the files (``load_image_folder`` gives a
    ``FolderReport``: skipped and nested files); None for the built-in datasets.
    """

    train: ArrayDataset
    test: ArrayDataset
    report: object = None

    def __iter__(self):
        return iter((self.train, self.test))
