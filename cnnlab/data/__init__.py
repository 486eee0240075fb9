"""Datasets, mini-batch loading, augmentation and the one image reader.

``load_dataset(name)`` gives ``Splits(train, test)`` of ``ArrayDataset`` (uint8 NCHW images,
int64 labels); ``DataLoader`` turns one into normalised float32 batches, optionally augmented
by ``augment.Augmentation`` (``parse_augment_spec('shift=2,rotate=10')`` builds one from text).
``read_image`` reads any image file as float32 (C, H, W) in [0, 1]; ``prepare_image`` turns it
into a model's input (MNIST-style polarity, crop and centring for single-channel models).
"""

from cnnlab.data import augment
from cnnlab.data.augment import Augmentation, parse_augment_spec
from cnnlab.data.dataset import ArrayDataset, Splits, pixel_stats
from cnnlab.data.datasets import (
    DatasetNotFoundError,
    available_datasets,
    load_dataset,
    load_digits,
    preparation_for,
)
from cnnlab.data.idx import (
    IDXFormatError,
    IDXLimitExceededError,
    read_idx,
    read_idx_pair,
    write_idx,
)
from cnnlab.data.imagefolder import (
    FolderReport,
    ImageFolderWarning,
    SkippedImage,
    load_image_folder,
)
from cnnlab.data.images import prepare_image, probe_image, read_image, resize_image
from cnnlab.data.loader import DataLoader

__all__ = [
    "ArrayDataset",
    "Augmentation",
    "DataLoader",
    "DatasetNotFoundError",
    "FolderReport",
    "IDXFormatError",
    "IDXLimitExceededError",
    "ImageFolderWarning",
    "SkippedImage",
    "Splits",
    "augment",
    "available_datasets",
    "load_dataset",
    "load_digits",
    "load_image_folder",
    "parse_augment_spec",
    "pixel_stats",
    "preparation_for",
    "prepare_image",
    "probe_image",
    "read_idx",
    "read_idx_pair",
    "read_image",
    "resize_image",
    "write_idx",
]
