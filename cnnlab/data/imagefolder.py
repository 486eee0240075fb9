"""A dataset of your own images: one sub-folder per class, image files read by ``read_image``.

Two layouts are understood::

    root/cat/001.png, root/dog/xyz.jpg, ...               split here into train/test
    root/train/cat/..., root/test/cat/..., ...            split given by the folders

Class names are the sub-folder names in sorted order (so the label of 'cat' is its index).
Images anywhere below a class folder belong to it (``root/cat/indoor/7.png`` is a cat); hidden
files and folders are ignored. Without train/test folders, a fixed stratified split puts
``round(test_fraction * n_c)`` images of each class (at least one when the class has two or
more, never its only one) into the test set, chosen by ``numpy.random.default_rng(seed)``.

Images are read as grayscale (1 channel) when every image is grayscale, else as RGB
(3 channels), unless ``channels`` says which (16-bit, float and alpha images are converted as
``cnnlab.data.images`` explains); ``image_size`` resizes them (bilinear). Without ``image_size``
every image must already have the same size.

A file that can't be read (truncated, corrupt, too large) is skipped: the load warns with
``ImageFolderWarning`` naming the files, and the returned ``Splits.report`` (a ``FolderReport``)
lists them with the reason. ``on_error='raise'`` refuses the folder at the first such file instead.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab._checks import check_choice, check_int, check_number
from cnnlab.data.dataset import ArrayDataset, Splits, pixel_stats
from cnnlab.data.images import probe_image, read_image, resize_image
from cnnlab.errors import CnnlabError, FileFormatError

__all__ = [
    "IMAGE_EXTENSIONS",
    "FolderReport",
    "ImageFolderWarning",
    "SkippedImage",
    "load_image_folder",
    "stratified_split",
]

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".pgm",
    ".ppm",
    ".pbm",
    ".pnm",
)
#: how many file names a warning or summary lists before "and N more".
_NAMES_SHOWN = 10


class ImageFolderWarning(UserWarning):
    """Some files of an image folder were skipped or ignored; the message names them."""


@dataclass(frozen=True)
class SkippedImage:
    """A file that was not loaded, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class FolderReport:
    """What ``load_image_folder`` did with the files it found.

    Attributes:
        root: the folder.
        loaded: images loaded (train and test together).
        nested: of those, how many came from sub-folders inside a class folder.
        skipped: unreadable files (truncated, corrupt, over a limit) and unreadable folders.
        unsorted: image files outside any class folder (directly in the root, train/ or test/),
            not loaded because they have no class.
    """

    root: Path
    loaded: int
    nested: int = 0
    skipped: tuple[SkippedImage, ...] = ()
    unsorted: tuple[Path, ...] = ()

    def summary(self) -> str:
        """One paragraph for people: counts, then the names (the first few of each kind)."""
        lines = [
            f"{self.root}: loaded {self.loaded} image(s)"
            + (f", {self.nested} of them from nested sub-folders" if self.nested else "")
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable file(s):")
            lines += [f"  {item.path}: {item.reason}" for item in self.skipped[:_NAMES_SHOWN]]
            if len(self.skipped) > _NAMES_SHOWN:
                lines.append(f"  ... and {len(self.skipped) - _NAMES_SHOWN} more")
        if self.unsorted:
            lines.append(
                f"ignored {len(self.unsorted)} image file(s) outside any class sub-folder:"
            )
            lines += [f"  {path}" for path in self.unsorted[:_NAMES_SHOWN]]
            if len(self.unsorted) > _NAMES_SHOWN:
                lines.append(f"  ... and {len(self.unsorted) - _NAMES_SHOWN} more")
        return "\n".join(lines)


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _list_folder(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as error:
        raise FileFormatError(
            folder, f"cannot list the folder: {error.strerror or error}"
        ) from None


def _class_dirs(folder: Path) -> list[str]:
    return [e.name for e in _list_folder(folder) if e.is_dir() and not e.name.startswith(".")]


def _loose_images(folder: Path) -> list[Path]:
    return [Path(e.path) for e in _list_folder(folder) if e.is_file() and _is_image_name(e.name)]


def _walk_class(folder: Path, skipped: list[SkippedImage]) -> list[Path]:
    """Image files below ``folder``, sorted, nested included; symlinked folders not followed."""
    files = []

    def unreadable(error: OSError) -> None:
        skipped.append(
            SkippedImage(Path(error.filename or folder), f"cannot list: {error.strerror}")
        )

    for directory, subdirectories, names in os.walk(folder, onerror=unreadable):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        files += [Path(directory) / name for name in sorted(names) if _is_image_name(name)]
    return files


def _scan(root: Path, class_names: list[str], skipped: list[SkippedImage]):
    """Paths, labels and whether each lies in a sub-folder of its class folder."""
    paths, labels, nested = [], [], []
    for label, class_name in enumerate(class_names):
        folder = root / class_name
        files = _walk_class(folder, skipped) if folder.is_dir() else []
        paths += files
        labels += [label] * len(files)
        nested += [path.parent != folder for path in files]
    return paths, labels, nested


def _choose_channels(
    paths: list[Path], skipped: list[SkippedImage], strict: bool
) -> tuple[int, set]:
    """1 if every readable header is grayscale, else 3; also the paths whose header failed."""
    grayscale, failed = True, set()
    for path in paths:
        try:
            grayscale = probe_image(path).grayscale and grayscale
        except (CnnlabError, OSError) as error:
            if strict:
                raise
            skipped.append(SkippedImage(path, _reason(error, path)))
            failed.add(path)
    return (1 if grayscale else 3), failed


def _reason(error: Exception, path: Path) -> str:
    text = str(error)
    prefix = f"{path}: "
    return text.removeprefix(prefix)


def _size_pair(image_size) -> tuple[int, int]:
    pair = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    if len(pair) != 2:
        raise ValueError(
            "load_image_folder: image_size must be an int or an (H, W) pair, "
            f"received image_size={image_size!r}"
        )
    return tuple(check_int(n, "load_image_folder", "image_size", minimum=1) for n in pair)


def _read_images(
    root: Path,
    paths: list[Path],
    image_size,
    channels: int,
    skipped: list[SkippedImage],
    strict: bool,
) -> tuple[np.ndarray, list[int]]:
    """Decode every image to uint8 (N, C, H, W); returns the images and the indices kept."""
    size = None if image_size is None else _size_pair(image_size)
    out, kept, sizes = None, [], {}
    for index, path in enumerate(paths):
        try:
            image = read_image(path, channels)
        except (CnnlabError, OSError) as error:
            if strict:
                raise
            skipped.append(SkippedImage(path, _reason(error, path)))
            continue
        sizes.setdefault(image.shape[1:], path)
        if size is not None and image.shape[1:] != size:
            image = resize_image(image, size)
        if out is None:
            out = np.empty((len(paths), channels) + image.shape[1:], dtype=np.uint8)
        if image.shape[1:] == out.shape[2:]:
            out[len(kept)] = np.rint(np.clip(image, 0.0, 1.0) * 255.0)
        kept.append(index)
    if size is None and len(sizes) > 1:
        shown = ", ".join(f"{w}x{h} ({path.name})" for (h, w), path in list(sizes.items())[:4])
        raise FileFormatError(
            root,
            f"images have different sizes (width x height) {shown}; pass "
            "image_size to resize them all",
        )
    if out is None:
        return np.zeros((0, channels, 1, 1), dtype=np.uint8), kept
    return out[: len(kept)], kept


def stratified_split(labels, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with ``round(test_fraction * n_c)`` of each class in test (at least 1
    when the class has 2 or more samples, never all of them), chosen with ``default_rng(seed)``;
    both sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(round(test_fraction * len(members)), len(members) - 1)
        if test_fraction > 0 and len(members) >= 2:
            count = max(count, 1)
        test.append(members[:count])
        train.append(members[count:])
    empty = np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(train or [empty])), np.sort(np.concatenate(test or [empty]))


def load_image_folder(
    root,
    image_size=None,
    channels: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    on_error: str = "skip",
) -> Splits:
    """Load a folder of class sub-folders as ``Splits(train, test, report)`` (see the module).

    Args:
        root: the folder.
        image_size: int or (H, W) to resize to, or None to keep the (common) size.
        channels: 1 (grayscale) or 3 (RGB); None picks 1 if every image is grayscale.
        test_fraction: share of each class held out when there are no train/test sub-folders;
            0 keeps every image for training and leaves the test split empty.
        seed: seed of that split.
        on_error: 'skip' (warn with ``ImageFolderWarning`` and list in the report) or 'raise'
            for a file that can't be read.

    Returns:
        ``Splits`` whose ``report`` is a ``FolderReport`` (loaded, nested, skipped, unsorted).

    Raises:
        FileFormatError: no readable images, images of different sizes without ``image_size``,
            or a split that would be empty (every class has a single image, or train/ or test/
            holds nothing readable).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"load_image_folder: {root} is not a folder")
    if channels is not None:
        check_choice(channels, (1, 3), "load_image_folder", "channels")
    test_fraction = check_number(
        test_fraction, "load_image_folder", "test_fraction", low=0, high=1, high_open=True
    )
    if image_size is not None:
        _size_pair(image_size)
    strict = check_choice(on_error, ("skip", "raise"), "load_image_folder", "on_error") == "raise"
    skipped: list[SkippedImage] = []
    has_split = (root / "train").is_dir() and (root / "test").is_dir()
    parts = [root / "train", root / "test"] if has_split else [root]
    class_names = sorted({name for part in parts for name in _class_dirs(part)})
    unsorted = tuple(path for part in parts for path in _loose_images(part))
    paths, labels, parts_of, nested = [], [], [], []
    for number, part in enumerate(parts):
        found, found_labels, found_nested = _scan(part, class_names, skipped)
        paths += found
        labels += found_labels
        parts_of += [number] * len(found)
        nested += found_nested
    if not class_names or not paths:
        loose = f"; {len(unsorted)} image(s) lie outside any class sub-folder" if unsorted else ""
        raise FileFormatError(
            root,
            f"no images found: expected one sub-folder per class holding "
            f"{', '.join(IMAGE_EXTENSIONS)} files (optionally under train/ and test/){loose}",
        )
    if channels is None:
        channels, failed = _choose_channels(paths, skipped, strict)
        keep = [i for i, path in enumerate(paths) if path not in failed]
        paths, labels, parts_of, nested = (
            [seq[i] for i in keep] for seq in (paths, labels, parts_of, nested)
        )
    images, kept = _read_images(root, paths, image_size, channels, skipped, strict)
    labels = np.asarray([labels[i] for i in kept], dtype=np.int64)
    parts_of = np.asarray([parts_of[i] for i in kept], dtype=np.int64)
    report = FolderReport(root, len(kept), sum(nested[i] for i in kept), tuple(skipped), unsorted)
    if skipped or unsorted:
        warnings.warn(ImageFolderWarning(report.summary()), stacklevel=2)
    if not len(kept):
        raise FileFormatError(root, "none of the images could be read:\n" + report.summary())
    if has_split:
        train_index, test_index = np.flatnonzero(parts_of == 0), np.flatnonzero(parts_of == 1)
        for index, part in ((train_index, parts[0]), (test_index, parts[1])):
            if not len(index):
                raise FileFormatError(
                    part,
                    "holds no readable images in class sub-folders, so this split would be empty",
                )
    else:
        train_index, test_index = stratified_split(labels, test_fraction, seed)
        if test_fraction > 0 and not len(test_index):
            raise FileFormatError(
                root,
                f"every class has a single image ({len(kept)} image(s) in "
                f"{len(class_names)} class(es)), so none can be held out for the "
                "test split: put 2 or more images in a class, use train/ and test/ "
                "sub-folders, or pass test_fraction=0 to train without a test split",
            )
    mean, std = pixel_stats(images[train_index])
    name = root.name
    train = ArrayDataset(
        images[train_index], labels[train_index], class_names, name, mean=mean, std=std
    )
    test = ArrayDataset(
        images[test_index], labels[test_index], class_names, name, mean=mean, std=std
    )
    return Splits(train, test, report)
