"""The data forms ``fit``, ``evaluate`` and ``predict`` accept, as one stream of float batches.

Accepted forms and what the model sees:

- an ``ArrayDataset``: uint8 images normalised per batch with the dataset's mean/std;
- a ``DataLoader``: training uses it as it is (its shuffling, augmentation and epoch);
  evaluation and prediction read its dataset in order, without augmentation, and leave the
  loader's epoch alone;
- ``(x, y)`` arrays, or ``x`` alone for prediction: uint8 images are raw pixels, scaled to
  [0, 1] and then normalised with the model's stored ``normalization`` (as ``cnnlab predict``
  does with an image file); float images are taken as ready for the model (already normalised).
"""

from __future__ import annotations

import math

import numpy as np

from cnnlab._checks import check_number
from cnnlab.data import ArrayDataset, DataLoader
from cnnlab.data.loader import batch_bounds, rank_slice

__all__ = ["Batches", "pixel_statistics", "split_validation"]



def pixel_statistics(normalization: dict) -> tuple[np.ndarray, np.ndarray]:
    """(mean, 1 / std) of a stored ``{"mean", "std"}`` as float32 that broadcast over (N, C, H, W)
    images: scalars, or (1, C, 1, 1) when the model file gives one value per channel."""
    mean = np.asarray(normalization["mean"], dtype=np.float64)
    std = np.asarray(normalization["std"], dtype=np.float64)
    shape = (1, -1, 1, 1)
    return (mean.astype(np.float32).reshape(shape if mean.ndim else ()),
            (1 / std).astype(np.float32).reshape(shape if std.ndim else ()))

class Batches:
    """One view of the accepted data forms (see the module docstring).

    Args:
        data: an ArrayDataset, a DataLoader, ``(x, y)`` or, unless ``labels_required``, ``x``.
        batch_size: samples per batch (a DataLoader keeps its own).
        what: the owner and argument named in error messages, e.g. ``'fit: train_data'``.
        normalization: ``{'mean', 'std'}`` applied to uint8 arrays after scaling to [0, 1].
    """

    def __init__(self, data, batch_size: int, what: str, labels_required: bool = True,
                 normalization: dict | None = None):
        self.batch_size = batch_size
        self.dataset = self.loader = None
        self.x = self.y = None
        self.class_names = None
        self.normalization = None
        self.pixel_normalization = None
        self.transform = None  # a DataLoader's, for data that are not pixels (its docstring)
        if isinstance(data, ArrayDataset):
            self.dataset = data
        elif isinstance(data, DataLoader):
            self.loader = data
            self.dataset = data.dataset
            self.batch_size = data.batch_size
            self.transform = data.transform
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            x, y = np.asarray(data[0]), np.asarray(data[1])
            if x.ndim < 2 or len(x) != len(y):
                raise ValueError(f"{what}: expected (x, y) with x (N, ...) and y (N,), "
                                 f"received shapes {x.shape} and {y.shape}")
            self.x, self.y = _check_images(x, what), y
        elif isinstance(data, np.ndarray) and not labels_required:
            if data.ndim < 2:
                raise ValueError(f"{what}: expected an array (N, ...), "
                                 f"received shape {data.shape}")
            self.x = _check_images(data, what)
        else:
            expected = "an ArrayDataset, a DataLoader or (x, y) arrays"
            if not labels_required:
                expected += " or an array x"
            raise TypeError(f"{what}: expected {expected}, received {type(data).__name__}")
        if self.dataset is not None:
            self.sample_shape = self.dataset.image_shape
            self.num_samples = len(self.dataset)
            self.class_names = list(self.dataset.class_names)
            self.normalization = {"mean": self.dataset.mean, "std": self.dataset.std}
        else:
            self.sample_shape = self.x.shape[1:]
            self.num_samples = len(self.x)
            if self.x.dtype == np.uint8 and normalization:
                self.pixel_normalization = pixel_statistics(normalization)
        if self.num_samples == 0:
            raise ValueError(f"{what}: the data is empty")

    def __len__(self) -> int:
        if self.loader is not None:
            return len(self.loader)
        return math.ceil(self.num_samples / self.batch_size)

    @property
    def last_batch_size(self) -> int:
        """Samples in the last training batch."""
        if self.loader is not None and self.loader.drop_last:
            return self.batch_size
        return self.num_samples - (len(self) - 1) * self.batch_size

    def steps(self, ranks: int = 1, min_share: int = 1) -> int:
        """Training steps per epoch of ``parts(..., ranks, min_share)``."""
        drop_last = self.loader is not None and self.loader.drop_last
        return len(batch_bounds(self.num_samples, self.batch_size, ranks, min_share, drop_last))

    def batches(self, shuffle: bool = False, seed: int = 0, epoch: int = 0, augment=None,
                merge_single: bool = False):
        """Yield (x float ndarray, y ndarray or None); epoch e's order depends only on (seed, e).

        ``merge_single``: a last batch of one sample is joined to the batch before it.
        """
        if not shuffle:
            return self._in_order()
        parts = self.parts(seed, epoch, augment, min_share=2 if merge_single else 1)
        return ((x, y) for x, y, _ in parts)

    def parts(self, seed: int, epoch: int, augment=None, rank: int = 0, ranks: int = 1,
              min_share: int = 1):
        """A training epoch, shuffled: rank ``rank``'s part of each step's batch, as
        ``(x, y, (offset, total))`` (``cnnlab.data.loader.batch_bounds`` and ``rank_slice``: the
        same order on every rank, ``batch_size`` samples per rank, a last batch too small to give
        each rank ``min_share`` samples joined to the one before). Epoch e's order depends only on
        (seed, e); a DataLoader keeps its own seed, augmentation and epoch count."""
        if self.loader is not None:
            self.loader.set_epoch(epoch + 1)  # as if iterated once, the way it is used alone
            return self.loader.parts(epoch, rank, ranks, min_share)
        if self.dataset is not None:
            loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True,
                                seed=seed, augment=augment, transform=self.transform)
            return loader.parts(epoch, rank, ranks, min_share)
        return self._array_parts(seed, epoch, augment, rank, ranks, min_share)

    def _array_parts(self, seed, epoch, augment, rank, ranks, min_share):
        order = np.random.default_rng([seed, epoch]).permutation(self.num_samples)
        for start, stop in batch_bounds(self.num_samples, self.batch_size, ranks, min_share):
            lo, hi = rank_slice(start, stop, rank, ranks)
            index = order[lo:hi]
            y = None if self.y is None else self.y[index]
            yield self._prepare(self.x[index], augment), y, (lo - start, stop - start)

    def _in_order(self):
        """Every sample once, in order, without augmentation (evaluation and prediction)."""
        if self.dataset is not None:
            yield from DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False,
                                  transform=self.transform)
            return
        for start in range(0, self.num_samples, self.batch_size):
            index = slice(start, start + self.batch_size)
            y = None if self.y is None else self.y[index]
            yield self._prepare(self.x[index], None), y

    def part(self, rank: int, ranks: int) -> Batches:
        """These batches restricted to rank ``rank``'s contiguous share of the samples (for a
        validation pass split across ranks); a share may be empty (``num_samples`` 0)."""
        lo, hi = rank_slice(0, self.num_samples, rank, ranks)
        share = object.__new__(Batches)
        share.__dict__.update(self.__dict__)
        share.loader = None
        if self.dataset is not None:
            share.dataset = self.dataset.subset(np.arange(lo, hi), self.dataset.name)
        else:
            share.x = self.x[lo:hi]
            share.y = None if self.y is None else self.y[lo:hi]
        share.num_samples = hi - lo
        return share

    def _prepare(self, x: np.ndarray, augment) -> np.ndarray:
        if x.dtype == np.uint8:
            x = x.astype(np.float32) * np.float32(1 / 255)
        if augment is not None:
            x = np.asarray(augment(x), dtype=x.dtype)
        if self.pixel_normalization is not None:
            mean, inverse_std = self.pixel_normalization
            x = (x - mean) * inverse_std
        return x


def _check_images(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype != np.uint8 and x.dtype.kind != "f":
        raise TypeError(f"{what}: images must be floating point or uint8, "
                        f"received dtype {x.dtype}")
    return x


def split_validation(data, fraction: float, seed: int):
    """Split training data into (train, validation), seeded: the same seed gives the same split.

    A fraction ``fraction`` of the samples, chosen by ``default_rng([seed, 1]).permutation``,
    goes to validation; both parts keep their original order. An ArrayDataset gives two
    subsets that keep its mean/std; ``(x, y)`` gives two pairs. A DataLoader cannot be split
    (give ``validation=`` instead).
    """
    fraction = check_number(fraction, "fit", "validation_split", 0.0, 1.0, low_open=True,
                            high_open=True)
    if isinstance(data, DataLoader):
        raise TypeError("fit: validation_split cannot split a DataLoader; give validation= "
                        "instead, or the ArrayDataset itself")
    if isinstance(data, ArrayDataset):
        count = len(data)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        count = len(data[0])
    else:
        raise TypeError(f"fit: validation_split needs an ArrayDataset or (x, y) arrays, "
                        f"received {type(data).__name__}")
    held_out = round(count * fraction)
    if not 0 < held_out < count:
        raise ValueError(f"fit: validation_split={fraction} of {count} samples leaves "
                         f"{held_out} for validation and {count - held_out} for training; "
                         "both need one")
    order = np.random.default_rng([seed, 1]).permutation(count)
    validation, train = np.sort(order[:held_out]), np.sort(order[held_out:])
    if isinstance(data, ArrayDataset):
        return (data.subset(train, f"{data.name} (training part)"),
                data.subset(validation, f"{data.name} (validation part)"))
    x, y = np.asarray(data[0]), np.asarray(data[1])
    return (x[train], y[train]), (x[validation], y[validation])
