"""Datasets, mini-batch loading and augmentation.

``load_dataset(name)`` gives ``Splits(train, test)`` of ``ArrayDataset`` (uint8 NCHW images,
int64 labels); ``DataLoader`` turns one into normalised float32 batches, optionally augmented
by ``augment.Augmentation``.
"""

from cnnlab.data import augment
from cnnlab.data.augment import Augmentation
from cnnlab.data.dataset import ArrayDataset, Splits, pixel_stats
from cnnlab.data.datasets import DatasetNotFoundError, available_datasets, load_dataset, load_digits
from cnnlab.data.idx import IDXFormatError, read_idx, read_idx_pair, write_idx
from cnnlab.data.imagefolder import load_image_folder
from cnnlab.data.loader import DataLoader

__all__ = [
    "ArrayDataset",
    "Augmentation",
    "DataLoader",
    "DatasetNotFoundError",
    "IDXFormatError",
    "Splits",
    "augment",
    "available_datasets",
    "load_dataset",
    "load_digits",
    "load_image_folder",
    "pixel_stats",
    "read_idx",
    "read_idx_pair",
    "write_idx",
]
