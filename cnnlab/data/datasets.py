"""Named datasets: the built-in 'digits', 'fashion-mnist', 'mnist', and image folders.

``load_dataset(name)`` returns ``Splits(train, test)`` of ``ArrayDataset``s (uint8 NCHW images,
int64 labels); the test split carries the training split's mean/std.

Where the IDX datasets are looked for, in order:

1. ``data_dir/<name>`` and ``data_dir`` itself, when ``data_dir`` is given;
2. ``/usr/share/datasets/<name>`` (Debian: ``apt-get install dataset-fashion-mnist``);
3. ``$CNNLAB_DATA/<name>``, default ``~/.cache/cnnlab/<name>``;
4. otherwise the files are downloaded there (into ``data_dir/<name>`` when given) and verified.

Each of the four files may be gzip-compressed (``train-images-idx3-ubyte.gz``) or raw
(``train-images-idx3-ubyte`` or ``train-images.idx3-ubyte``).

Checksums. Fashion-MNIST: the MD5 of each official ``.gz`` (as published by Zalando) and the
SHA-256 of its decompressed IDX content, computed from Debian's ``dataset-fashion-mnist`` copies.
Debian recompressed the files, so its ``.gz`` bytes differ from Zalando's while the content is
identical; hashing the decompressed content makes one check fit both. MNIST: only the published
MD5s of the ``.gz`` files (as used by torchvision); no SHA-256 could be computed offline.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from cnnlab.atomic import write_bytes
from cnnlab.data.augment import resize_images
from cnnlab.data.dataset import ArrayDataset, Splits, pixel_stats
from cnnlab.data.idx import IDXFormatError, read_idx_pair
from cnnlab.data.imagefolder import load_image_folder
from cnnlab.errors import CnnlabError

__all__ = [
    "DatasetNotFoundError",
    "available_datasets",
    "load_dataset",
    "load_digits",
    "load_idx_dataset",
    "preparation_for",
]

SYSTEM_DATA_DIR = Path("/usr/share/datasets")

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

IDX_DATASETS = {
    "fashion-mnist": {
        "class_names": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                        "Sneaker", "Bag", "Ankle boot"],
        "mirrors": [
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ],
        "apt": "dataset-fashion-mnist",
        "md5_gz": {
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        "sha256_content": {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    },
    "mnist": {
        "class_names": [str(d) for d in range(10)],
        "mirrors": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        "apt": None,
        "md5_gz": {
            "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        "sha256_content": {},
    },
}

_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fashion": "fashion-mnist"}

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


class DatasetNotFoundError(CnnlabError, FileNotFoundError):
    """A named dataset is not on this machine and could not be downloaded."""


def user_data_dir() -> Path:
    """``$CNNLAB_DATA`` when set, else ``~/.cache/cnnlab``."""
    root = os.environ.get("CNNLAB_DATA")
    return Path(root).expanduser() if root else Path("~/.cache/cnnlab").expanduser()


def _candidate_dirs(name: str, data_dir=None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs += [Path(data_dir).expanduser() / name, Path(data_dir).expanduser()]
    dirs += [SYSTEM_DATA_DIR / name, user_data_dir() / name]
    return dirs


def _find_file(directory: Path, base: str) -> Path | None:
    dotted = base.replace("-idx", ".idx")
    for candidate in (base + ".gz", base, dotted + ".gz", dotted):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def find_idx_files(name: str, data_dir=None) -> dict[str, Path] | None:
    """The four IDX files of ``name`` from the first directory holding all of them, or None."""
    for directory in _candidate_dirs(name, data_dir):
        found = {key: _find_file(directory, base) for key, base in _IDX_FILES.items()}
        if all(found.values()):
            return found
    return None


def _how_to_get(name: str, data_dir=None) -> str:
    spec = IDX_DATASETS[name]
    target = (Path(data_dir).expanduser() / name) if data_dir is not None else user_data_dir() / name
    files = ", ".join(base + ".gz" for base in _IDX_FILES.values())
    steps = []
    if spec["apt"]:
        steps.append(f"install the Debian/Ubuntu package (apt-get install {spec['apt']}, which puts the "
                     f"files in {SYSTEM_DATA_DIR / name})")
    steps.append(f"download {files} from {spec['mirrors'][0]} into {target} "
                 "(or set CNNLAB_DATA to a folder holding a '" + name + "' sub-folder)")
    return "; or ".join(steps)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _download_file(name: str, base: str, target_dir: Path, timeout: float = 30.0) -> Path:
    """Fetch ``base + '.gz'`` from the first working mirror, verify it, and move it into place."""
    spec = IDX_DATASETS[name]
    errors = []
    for mirror in spec["mirrors"]:
        url = mirror + base + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            errors.append(f"{url}: {error}")
            continue
        md5 = _md5(data)
        if md5 != spec["md5_gz"][base]:
            errors.append(f"{url}: MD5 {md5} does not match the published {spec['md5_gz'][base]}")
            continue
        if base in spec["sha256_content"]:
            digest = hashlib.sha256(gzip.decompress(data)).hexdigest()
            if digest != spec["sha256_content"][base]:
                errors.append(f"{url}: SHA-256 of the content {digest} does not match "
                              f"{spec['sha256_content'][base]}")
                continue
        target_dir.mkdir(parents=True, exist_ok=True)
        path = target_dir / (base + ".gz")
        write_bytes(path, data)
        return path
    raise DatasetNotFoundError(
        f"dataset '{name}' is not on this machine and downloading {base}.gz failed "
        f"({'; '.join(errors)}). To get it: {_how_to_get(name)}.")


def download_idx_dataset(name: str, data_dir=None) -> Path:
    """Download the four files of ``name`` (skipping those already present); returns the folder."""
    target = (Path(data_dir).expanduser() / name) if data_dir is not None else user_data_dir() / name
    for base in _IDX_FILES.values():
        if _find_file(target, base) is None:
            _download_file(name, base, target)
    return target


def load_idx_dataset(name: str, data_dir=None, download: bool = True) -> Splits:
    """Load 'fashion-mnist' or 'mnist' from IDX files (see the module docstring for where)."""
    if name not in IDX_DATASETS:
        raise ValueError(f"load_idx_dataset: unknown IDX dataset {name!r} (expected one of "
                         f"{sorted(IDX_DATASETS)})")
    files = find_idx_files(name, data_dir)
    if files is None:
        if not download:
            searched = ", ".join(str(d) for d in _candidate_dirs(name, data_dir))
            raise DatasetNotFoundError(f"dataset '{name}' not found (searched {searched}). To get it: "
                                       f"{_how_to_get(name, data_dir)}.")
        download_idx_dataset(name, data_dir)
        files = find_idx_files(name, data_dir)
    class_names = IDX_DATASETS[name]["class_names"]
    train_images, train_labels = read_idx_pair(files["train_images"], files["train_labels"])
    test_images, test_labels = read_idx_pair(files["test_images"], files["test_labels"])
    for labels, key in ((train_labels, "train_labels"), (test_labels, "test_labels")):
        if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise IDXFormatError(
                files[key],
                f"labels must lie in [0, {len(class_names)}) for {name}'s classes, "
                f"found [{labels.min()}, {labels.max()}]",
            )
    return _make_splits(name, train_images, train_labels, test_images, test_labels, class_names)


def _make_splits(name, train_images, train_labels, test_images, test_labels, class_names) -> Splits:
    mean, std = pixel_stats(train_images)
    train = ArrayDataset(train_images, train_labels, class_names, name, mean=mean, std=std)
    test = ArrayDataset(test_images, test_labels, class_names, name, mean=mean, std=std)
    return Splits(train, test)


def load_digits() -> Splits:
    """scikit-learn's 1,797 8×8 handwritten digits (bundled, no download) as a fixed split.

    Pixel values 0..16 are rescaled to 0..255 (``round(v * 255 / 16)``). The split is
    ``sklearn.model_selection.train_test_split(test_size=0.2, stratify=labels, random_state=0)``:
    1,437 training and 360 test images, each class in the same proportion in both.
    """
    # scikit-learn takes seconds to import; only 'digits' needs it.
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train_index, test_index = train_test_split(np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION,
                                               stratify=labels, random_state=DIGITS_SPLIT_SEED)
    return _make_splits("digits", images[train_index], labels[train_index], images[test_index],
                        labels[test_index], [str(d) for d in range(10)])


def _resize_splits(splits: Splits, image_size) -> Splits:
    train, test = splits
    return _make_splits(train.name, resize_images(train.images, image_size), train.labels,
                        resize_images(test.images, image_size), test.labels, train.class_names)


def load_dataset(name, image_size=None, data_dir=None, *, download: bool = True) -> Splits:
    """Load a dataset by name, or an image folder by path.

    Args:
        name: 'digits' (built in, 8×8), 'fashion-mnist', 'mnist' (28×28), or the path of a folder
            with one sub-folder of images per class (see ``cnnlab.data.imagefolder``).
        image_size: int or (H, W): resize every image to this size (bilinear), e.g. 28 for digits
            or 32 for LeNet; None keeps the native size.
        data_dir: extra folder to look in (and to download into) for the IDX datasets.
        download: allow downloading a missing IDX dataset.

    Returns:
        ``Splits(train, test)`` of ``ArrayDataset``; test carries train's mean/std.
    """
    if image_size is not None:
        sizes = (image_size,) if np.isscalar(image_size) else tuple(image_size)
        if len(sizes) not in (1, 2) or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
            raise ValueError(f"load_dataset: image_size must be a positive int or (H, W) pair, received "
                             f"{image_size!r}")
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key == "digits":
        splits = load_digits()
    elif key in IDX_DATASETS:
        splits = load_idx_dataset(key, data_dir, download=download)
    elif Path(str(name)).expanduser().is_dir():
        return load_image_folder(name, image_size=image_size)
    else:
        names = ", ".join(repr(n) for n, _ in available_datasets())
        raise ValueError(f"load_dataset: unknown dataset {name!r}: expected one of {names} or the path of "
                         "an existing image folder")
    return splits if image_size is None else _resize_splits(splits, image_size)


#: How each dataset's images were framed, as ``prepare_image`` keyword arguments: MNIST's
#: digits fill a 20x20 box of 28x28 centred by mass; scikit-learn's digits (resized) and
#: Fashion-MNIST's items (longest edge to 28, centred) fill the frame. All are light on dark.
_PREPARATION = {
    "mnist": {"fit": "digit", "box": 20 / 28},
    "digits": {"fit": "digit", "box": 1.0},
    "fashion-mnist": {"fit": "digit", "box": 1.0},
}


def preparation_for(name) -> dict:
    """``prepare_image`` keyword arguments that frame a new image as dataset ``name``'s were.

    For 'mnist', 'digits' and 'fashion-mnist': polarity detection (``invert`` left to None), the
    ink cropped, fitted to the dataset's box and centred. For anything else (an image folder,
    an unknown name): ``{'fit': 'resize', 'invert': False}``, the images as they are, resized,
    since a model trained on a person's own images learnt them as they are.
    """
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    return dict(_PREPARATION.get(key, {"fit": "resize", "invert": False}))


def available_datasets(data_dir=None) -> list[tuple[str, str]]:
    """``(name, status)`` for each named dataset: where it is on this machine, or how to get it."""
    rows = [("digits", "built in (scikit-learn, 1,797 8x8 images; image_size=28 resizes)")]
    for name in IDX_DATASETS:
        files = find_idx_files(name, data_dir)
        if files is not None:
            rows.append((name, f"available: {files['train_images'].parent}"))
        else:
            target = (Path(data_dir).expanduser() / name) if data_dir else user_data_dir() / name
            status = (f"not downloaded: fetched into {target} on first use when online; or "
                      f"{_how_to_get(name, data_dir)}")
            rows.append((name, status))
    rows.append(("<folder>", "any folder with one sub-folder of PNG/JPEG images per class"))
    return rows
