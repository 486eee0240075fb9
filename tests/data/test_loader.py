import tracemalloc

import numpy as np
import pytest

from cnnlab.data import ArrayDataset, DataLoader


def _dataset(count=103, size=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 1, size, size), dtype=np.uint8)
    # Label = sample index, so batches tell which samples they hold.
    return ArrayDataset(images, np.arange(count), [f"c{i}" for i in range(count)], "synthetic")


def _epoch_labels(loader):
    return np.concatenate([y for _, y in loader])


def test_every_sample_once_per_epoch():
    loader = DataLoader(_dataset(), batch_size=10, seed=0)
    assert len(loader) == 11
    for _ in range(3):
        batches = list(loader)
        assert len(batches) == 11
        assert [len(y) for _, y in batches] == [10] * 10 + [3]
        np.testing.assert_array_equal(np.sort(np.concatenate([y for _, y in batches])), np.arange(103))


def test_drop_last():
    loader = DataLoader(_dataset(), batch_size=10, seed=0, drop_last=True)
    assert len(loader) == 10
    labels = _epoch_labels(loader)
    assert len(labels) == 100 and len(np.unique(labels)) == 100


def test_order_depends_on_seed_and_epoch():
    dataset = _dataset()
    first = DataLoader(dataset, batch_size=16, seed=5)
    second = DataLoader(dataset, batch_size=16, seed=5)
    other = DataLoader(dataset, batch_size=16, seed=6)
    epoch0, epoch1 = _epoch_labels(first), _epoch_labels(first)
    np.testing.assert_array_equal(epoch0, _epoch_labels(second))
    np.testing.assert_array_equal(epoch1, _epoch_labels(second))
    assert not np.array_equal(epoch0, _epoch_labels(other))
    assert not np.array_equal(epoch0, epoch1)
    assert not np.array_equal(epoch0, np.arange(103))
    first.set_epoch(1)
    np.testing.assert_array_equal(_epoch_labels(first), epoch1)


def test_no_shuffle_is_sequential():
    loader = DataLoader(_dataset(), batch_size=7, shuffle=False)
    np.testing.assert_array_equal(_epoch_labels(loader), np.arange(103))
    np.testing.assert_array_equal(_epoch_labels(loader), np.arange(103))


def test_batches_are_normalised_with_dataset_stats():
    dataset = _dataset()
    loader = DataLoader(dataset, batch_size=32, seed=1)
    for x, y in loader:
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), 1, 4, 4)
        expected = (dataset.images[y].astype(np.float64) / 255 - dataset.mean) / dataset.std
        np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
    everything = np.concatenate([x for x, _ in loader])
    assert abs(everything.mean()) < 1e-5
    assert abs(everything.std() - 1) < 1e-5
    pixels = dataset.images.astype(np.float64) / 255
    assert dataset.mean == pytest.approx(pixels.mean(), abs=1e-12)
    assert dataset.std == pytest.approx(pixels.std(), abs=1e-12)
    first_batch, _ = next(iter(DataLoader(dataset, batch_size=5, shuffle=False)))
    normalised = dataset.normalize(dataset.images[:5])
    assert normalised.dtype == np.float32
    np.testing.assert_array_equal(normalised, first_batch)


def test_augment_sees_unit_range_batches():
    dataset = _dataset()
    seen = []

    def record(batch):
        seen.append((batch.min(), batch.max(), batch.dtype))
        return np.zeros_like(batch)

    loader = DataLoader(dataset, batch_size=50, augment=record)
    for x, _ in loader:
        # The augmentation's zeros are black pixels: after normalisation, -mean/std.
        np.testing.assert_allclose(x, -dataset.mean / dataset.std, rtol=1e-6)
    assert len(seen) == 3
    assert all(low >= 0 and high <= 1 and dtype == np.float32 for low, high, dtype in seen)


def test_memory_stays_near_raw_dataset():
    images = np.random.default_rng(0).integers(0, 256, (20_000, 1, 28, 28), dtype=np.uint8)
    dataset = ArrayDataset(images, np.zeros(20_000, dtype=np.int64), ["a"], "big")
    loader = DataLoader(dataset, batch_size=64)
    tracemalloc.start()
    count = sum(len(y) for _, y in loader)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 20_000
    # A float32 copy of the set would be 62.7 MB; one batch is 0.2 MB.
    assert peak < 3_000_000
    assert loader.dataset.images is images


def test_accepts_array_pair_and_validates():
    images = np.zeros((5, 1, 2, 2), dtype=np.uint8)
    loader = DataLoader((images, np.array([0, 1, 2, 1, 0])), batch_size=2, shuffle=False)
    assert len(loader) == 3
    assert loader.dataset.class_names == ["0", "1", "2"]
    with pytest.raises(ValueError, match="DataLoader: batch_size must be a positive int"):
        DataLoader(loader.dataset, batch_size=0)
    with pytest.raises(TypeError, match="DataLoader: expected an ArrayDataset"):
        DataLoader([1, 2, 3])
    with pytest.raises(ValueError, match="images must be uint8"):
        DataLoader((images.astype(np.float32), np.zeros(5, dtype=np.int64)))


def test_array_dataset_validation():
    images = np.zeros((3, 1, 2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        ArrayDataset(images, [0, 1], ["a", "b"], "bad")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        ArrayDataset(images, [0, 1, 2], ["a", "b"], "bad")
    dataset = ArrayDataset(images, [0, 1, 1], ["a", "b"], "ok")
    assert dataset.std == 1.0  # constant images: no division by zero
    assert dataset.image_shape == (1, 2, 2) and dataset.num_classes == 2
    np.testing.assert_array_equal(dataset.class_counts(), [1, 2])
    image, label = dataset[2]
    assert image.shape == (1, 2, 2) and label == 1


def test_augmented_epochs_are_reproducible_after_set_epoch():
    from cnnlab.data import Augmentation

    dataset = _dataset(count=40, size=8)

    def run(epochs, start=0, augmentation_seed=0):
        loader = DataLoader(dataset, batch_size=16, seed=3,
                            augment=Augmentation(shift=2, rotate=10.0, noise=0.01, seed=augmentation_seed))
        loader.set_epoch(start)
        return [np.concatenate([x for x, _ in loader]) for _ in range(epochs)]

    uninterrupted = run(3)
    resumed = run(1, start=2)
    np.testing.assert_array_equal(resumed[0], uninterrupted[2])
    assert not np.allclose(uninterrupted[0], uninterrupted[1])
    assert not np.allclose(run(1, augmentation_seed=1)[0], uninterrupted[0])


def test_dataset_slicing_and_loader_seed_validation():
    dataset = _dataset(count=10)
    images, labels = dataset[2:5]
    assert images.shape == (3, 1, 4, 4)
    np.testing.assert_array_equal(labels, [2, 3, 4])
    with pytest.raises(ValueError, match="DataLoader: seed must be an int >= 0"):
        DataLoader(dataset, seed=-1)
    unseeded = DataLoader(dataset, seed=None)
    assert len(_epoch_labels(unseeded)) == 10
