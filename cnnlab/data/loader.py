"""Mini-batches from an ArrayDataset, built lazily: only one float batch exists at a time."""

from __future__ import annotations

import math

import numpy as np

from cnnlab.data.augment import Augmentation
from cnnlab.data.dataset import ArrayDataset

__all__ = ["DataLoader", "batch_bounds", "rank_slice"]


def batch_bounds(count: int, batch_size: int, ranks: int = 1, min_share: int = 1,
                 drop_last: bool = False) -> list[tuple[int, int]]:
    """[start, stop) of each step's batch in an epoch's order of ``count`` samples.

    A step takes ``batch_size × ranks`` samples (``batch_size`` per rank, as in Horovod). A last
    batch too small to give every rank ``min_share`` samples joins the batch before it (batch
    norm needs 2 values per channel; a rank with nothing would fall out of step), so no sample is
    dropped or seen twice; ``drop_last`` drops an incomplete last batch instead.
    """
    step = batch_size * ranks
    bounds = [(start, min(start + step, count)) for start in range(0, count, step)]
    if drop_last and bounds and bounds[-1][1] - bounds[-1][0] < step:
        bounds.pop()
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_share * ranks:
        bounds[-2:] = [(bounds[-2][0], bounds[-1][1])]
    return bounds


def rank_slice(start: int, stop: int, rank: int, ranks: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous part [lo, hi) of the batch [start, stop): the parts of the
    ``ranks`` ranks tile it in rank order, their sizes differ by at most one (the first ranks
    take the extra samples)."""
    size, extra = divmod(stop - start, ranks)
    lo = start + rank * size + min(rank, extra)
    return lo, lo + size + (rank < extra)


class DataLoader:
    """Iterate over a dataset in mini-batches of normalised float32 images.

    Each batch is cut from the uint8 images and converted on the fly::

        x = images[batch] / 255            # [0, 1]
        x = augment(x)                     # optional, still in [0, 1] (so fill 0 is black)
        x = (x − dataset.mean) / dataset.std

    so memory stays at the raw dataset plus one batch.

    Args:
        dataset: an ``ArrayDataset`` (or an ``(images uint8 (N, C, H, W), labels (N,))`` pair).
        batch_size: samples per batch; the last batch is smaller unless ``drop_last``.
        shuffle: visit samples in a new random order every epoch.
        seed: the order of epoch e is ``default_rng([seed, e]).permutation(N)``: the same seed
            gives the same sequence of epochs, a different seed a different one.
        augment: a callable on a float batch (N, C, H, W), e.g. ``cnnlab.data.augment.Augmentation``.
            An ``Augmentation`` with an integer seed draws epoch e's random transforms from
            ``default_rng([seed, e, 1, augment.seed])``, so a resumed run (``set_epoch``) sees
            the same augmented batches as an uninterrupted one.
        drop_last: drop the last incomplete batch.
        transform: for data that are not pixels (e.g. compact codes): a callable
            ``transform(images uint8 (B, C, H, W), labels (B,), rng) -> (x float32, y)`` used
            instead of the /255, ``augment`` and mean/std steps. ``rng`` is
            ``default_rng([seed, epoch, 2])`` when the loader shuffles (training: random
            changes allowed, reproduced by a resumed run) and None when it does not
            (evaluation: no random change). A model that ``fit`` trains must be built for
            the transformed shape (fit builds an unbuilt one from the stored images).

    Yields:
        ``(x float32 (B, C, H, W), y int64 (B,))``; ``len(loader)`` is the number of batches.
    """

    def __init__(self, dataset, batch_size=64, shuffle=True, seed=0, augment=None, drop_last=False,
                 transform=None):
        if isinstance(dataset, tuple) and len(dataset) == 2:
            images, labels = dataset
            labels = np.asarray(labels)
            classes = int(labels.max()) + 1 if len(labels) else 0
            dataset = ArrayDataset(images, labels, [str(c) for c in range(classes)], "arrays")
        if not isinstance(dataset, ArrayDataset):
            raise TypeError(f"DataLoader: expected an ArrayDataset or an (images, labels) pair, received "
                             f"{type(dataset).__name__}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, received batch_size={batch_size!r}")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"DataLoader: seed must be an int >= 0 or None, received seed={seed!r}")
        if augment is not None and not callable(augment):
            raise ValueError(f"DataLoader: augment must be callable or None, received {type(augment).__name__}")
        if transform is not None and (not callable(transform) or augment is not None):
            raise ValueError("DataLoader: transform must be callable, and replaces augment "
                             "(give one of them)")
        self.dataset = dataset
        self.transform = transform
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.augment = augment
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def __len__(self) -> int:
        count = len(self.dataset) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch`` (e.g. when resuming training)."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices visited in ``epoch``."""
        count = len(self.dataset)
        if not self.shuffle:
            return np.arange(count)
        return np.random.default_rng([self.seed, epoch]).permutation(count)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        for x, y, _ in self.parts(epoch):
            yield x, y

    def parts(self, epoch: int, rank: int = 0, ranks: int = 1, min_share: int = 1):
        """Epoch ``epoch``'s batches as ``(x, y, (offset, total))``: rank ``rank``'s part of each
        step's batch of ``batch_size × ranks`` samples (``batch_bounds``, ``rank_slice``),
        starting at ``offset`` in that batch of ``total``. With ``ranks`` > 1 the augmentation
        draws from a generator of its own per rank (each rank augments only its samples)."""
        order = self.order(epoch)
        dataset = self.dataset
        augment_rng = None
        if isinstance(self.augment, Augmentation) and self.augment.seed is not None:
            key = [self.seed, epoch, 1, self.augment.seed] + ([rank, ranks] if ranks > 1 else [])
            augment_rng = np.random.default_rng(key)
        mean, inverse_std = np.float32(dataset.mean), np.float32(1.0 / dataset.std)
        transform_rng = None
        if self.shuffle:
            key = [self.seed, epoch, 2] + ([rank, ranks] if ranks > 1 else [])
            transform_rng = np.random.default_rng(key)
        for start, stop in batch_bounds(len(order), self.batch_size, ranks, min_share,
                                        self.drop_last):
            lo, hi = rank_slice(start, stop, rank, ranks)
            index = order[lo:hi]
            if self.transform is not None:
                x, y = self.transform(dataset.images[index], dataset.labels[index], transform_rng)
                yield x, y, (lo - start, stop - start)
                continue
            x = dataset.images[index].astype(np.float32)
            x *= np.float32(1 / 255)
            if augment_rng is not None:
                x = self.augment(x, rng=augment_rng)
            elif self.augment is not None:
                x = np.asarray(self.augment(x), dtype=np.float32)
            x -= mean
            x *= inverse_std
            yield x, dataset.labels[index], (lo - start, stop - start)

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset.name!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"seed={self.seed}, augment={self.augment!r}, drop_last={self.drop_last}"
                + (f", transform={self.transform!r})" if self.transform is not None else ")"))
