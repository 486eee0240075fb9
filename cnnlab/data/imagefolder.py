"""A dataset of your own images: one sub-folder per class, PNG/JPEG/... files read with Pillow.

Two layouts are understood::

    root/cat/001.png, root/dog/xyz.jpg, ...               split here into train/test
    root/train/cat/..., root/test/cat/..., ...            split given by the folders

Class names are the sub-folder names in sorted order (so the label of 'cat' is its index).
Without train/test folders, a fixed stratified split puts ``round(test_fraction * n_c)`` images
of each class (at least one when the class has two or more) into the test set, chosen by
``numpy.random.default_rng(seed)``.

Images are converted to grayscale (1 channel) when every image is grayscale, else to RGB
(3 channels), unless ``channels`` says which; ``image_size`` resizes them (bilinear). Without
``image_size`` every image must already have the same size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.data.dataset import ArrayDataset, Splits, pixel_stats

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def _scan(root: Path, class_names: list[str]) -> tuple[list[Path], list[int]]:
    paths, labels = [], []
    for label, class_name in enumerate(class_names):
        folder = root / class_name
        files = _image_files(folder) if folder.is_dir() else []
        paths += files
        labels += [label] * len(files)
    return paths, labels


def _read_images(paths: list[Path], image_size, channels: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    def open_image(path):
        try:
            return Image.open(path)
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"load_image_folder: cannot read image {path}: {error}") from error

    # First pass reads headers only (mode and size), the second decodes one image at a time.
    modes, sizes = [], set()
    for path in paths:
        with open_image(path) as picture:
            modes.append(picture.mode)
            sizes.add(picture.size)
    if channels is None:
        channels = 1 if all(mode in _GRAY_MODES for mode in modes) else 3
    if image_size is not None:
        height, width = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    elif len(sizes) > 1:
        raise ValueError(f"load_image_folder: images have different sizes (width, height) "
                         f"{sorted(sizes)[:4]}; pass image_size to resize them all")
    else:
        width, height = sizes.pop()
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(paths), channels, height, width), dtype=np.uint8)
    for i, path in enumerate(paths):
        with open_image(path) as picture:
            if picture.mode in ("I", "I;16"):
                # 16-bit grayscale: keep the top 8 bits rather than clipping at 255.
                picture = Image.fromarray((np.asarray(picture, dtype=np.int64) >> 8).clip(0, 255)
                                          .astype(np.uint8), mode="L")
            converted = picture.convert(mode)
            if converted.size != (width, height):
                converted = converted.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(converted, dtype=np.uint8)
        out[i] = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return out


def stratified_split(labels, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with ``round(test_fraction * n_c)`` of each class in test (at least 1
    when the class has 2 or more samples), chosen with ``default_rng(seed)``; both sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = round(test_fraction * len(members))
        if test_fraction > 0 and len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        test.append(members[:count])
        train.append(members[count:])
    empty = np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(train or [empty])), np.sort(np.concatenate(test or [empty]))


def load_image_folder(root, image_size=None, channels: int | None = None, test_fraction: float = 0.2,
                      seed: int = 0) -> Splits:
    """Load a folder of class sub-folders as ``Splits(train, test)``; see the module docstring.

    Args:
        root: the folder.
        image_size: int or (H, W) to resize to, or None to keep the (common) size.
        channels: 1 (grayscale) or 3 (RGB); None picks 1 if every image is grayscale.
        test_fraction: share of each class held out when there are no train/test sub-folders.
        seed: seed of that split.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"load_image_folder: {root} is not a folder")
    if channels not in (None, 1, 3):
        raise ValueError(f"load_image_folder: channels must be 1, 3 or None, received {channels!r}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"load_image_folder: test_fraction must be in [0, 1), received {test_fraction!r}")
    name = root.name
    has_split = (root / "train").is_dir() and (root / "test").is_dir()
    if has_split:
        class_names = sorted({d.name for part in ("train", "test") for d in _class_dirs(root / part)})
        train_paths, train_labels = _scan(root / "train", class_names)
        test_paths, test_labels = _scan(root / "test", class_names)
        paths, labels = train_paths + test_paths, train_labels + test_labels
    else:
        class_names = [d.name for d in _class_dirs(root)]
        paths, labels = _scan(root, class_names)
    if not class_names or not paths:
        raise ValueError(f"load_image_folder: no images found in {root}: expected one sub-folder per class "
                         f"holding {', '.join(IMAGE_EXTENSIONS)} files (optionally under train/ and test/)")
    images = _read_images(paths, image_size, channels)
    labels = np.asarray(labels, dtype=np.int64)
    if has_split:
        train_index = np.arange(len(train_paths))
        test_index = np.arange(len(train_paths), len(paths))
    else:
        train_index, test_index = stratified_split(labels, test_fraction, seed)
    mean, std = pixel_stats(images[train_index])
    train = ArrayDataset(images[train_index], labels[train_index], class_names, name, mean=mean, std=std)
    test = ArrayDataset(images[test_index], labels[test_index], class_names, name, mean=mean, std=std)
    return Splits(train, test)
