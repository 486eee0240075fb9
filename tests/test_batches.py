import numpy as np
import pytest

from cnnlab.batches import Batches, split_validation
from cnnlab.data import ArrayDataset, DataLoader


def dataset(n=10):
    images = np.arange(n * 4, dtype=np.uint8).reshape(n, 1, 2, 2)
    return ArrayDataset(
        images, np.arange(n) % 3, ["a", "b", "c"], "tiny", mean=0.5, std=0.25
    )


def test_uint8_arrays_are_scaled_then_normalised_with_the_given_statistics():
    data = dataset()
    batches = Batches(
        (data.images, data.labels), 4, "t", normalization={"mean": 0.5, "std": 0.25}
    )
    x = np.concatenate([x for x, _ in batches.batches()])
    np.testing.assert_allclose(x, data.normalize(data.images), rtol=1e-6)
    floats = data.normalize(data.images)
    same = np.concatenate(
        [
            x
            for x, _ in Batches(
                (floats, data.labels), 4, "t", normalization={"mean": 0.5, "std": 0.25}
            ).batches()
        ]
    )
    np.testing.assert_array_equal(
        same, floats
    )  # float input is taken as ready for the model


def test_evaluation_order_ignores_the_loader_shuffle_augmentation_and_epoch():
    loader = DataLoader(
        dataset(), batch_size=3, shuffle=True, seed=1, augment=lambda x: x + 1
    )
    loader.set_epoch(7)
    batches = Batches(loader, 99, "t")
    labels = np.concatenate([y for _, y in batches.batches(shuffle=False)])
    np.testing.assert_array_equal(labels, dataset().labels)
    x = np.concatenate([x for x, _ in batches.batches(shuffle=False)])
    np.testing.assert_allclose(x, dataset().normalize(dataset().images), rtol=1e-6)
    assert loader.epoch == 7 and len(batches) == 4


@pytest.mark.parametrize("count, merged", [(9, True), (10, False), (8, False)])
def test_a_last_batch_of_one_sample_joins_the_one_before(count, merged):
    data = dataset(count)
    batches = Batches(data, 4, "t")
    sizes = [
        len(y) for _, y in batches.batches(shuffle=True, seed=0, merge_single=True)
    ]
    plain = [len(y) for _, y in batches.batches(shuffle=True, seed=0)]
    assert sum(sizes) == count
    assert sizes == ([4, 5] if merged else plain)
    assert (batches.last_batch_size == 1) == merged
    order = np.concatenate(
        [y for _, y in batches.batches(shuffle=True, seed=0, merge_single=True)]
    )
    np.testing.assert_array_equal(
        order, np.concatenate([y for _, y in batches.batches(shuffle=True, seed=0)])
    )


def test_split_validation_is_seeded_disjoint_and_keeps_statistics():
    data = dataset(20)
    train, validation = split_validation(data, 0.25, seed=3)
    assert len(train) == 15 and len(validation) == 5
    assert train.mean == data.mean and validation.std == data.std
    again, _ = split_validation(data, 0.25, seed=3)
    other, _ = split_validation(data, 0.25, seed=4)
    np.testing.assert_array_equal(train.images, again.images)
    assert not np.array_equal(train.images, other.images)
    seen = np.concatenate([train.images, validation.images]).reshape(20, -1)[:, 0]
    assert sorted(seen.tolist()) == list(range(0, 80, 4))
    (x, y), (vx, vy) = split_validation((data.images, data.labels), 0.5, seed=0)
    assert len(x) == len(vx) == len(y) == len(vy) == 10


def test_split_validation_errors():
    with pytest.raises(ValueError, match="validation_split"):
        split_validation(dataset(), 1.5, 0)
    with pytest.raises(ValueError, match="both need one"):
        split_validation(dataset(3), 0.1, 0)
    with pytest.raises(TypeError, match="DataLoader"):
        split_validation(DataLoader(dataset()), 0.2, 0)


def test_bad_data_forms():
    with pytest.raises(TypeError, match="expected an ArrayDataset"):
        Batches("digits", 4, "fit: train_data")
    with pytest.raises(TypeError, match="uint8"):
        Batches((np.zeros((2, 1, 2, 2), np.int32), np.zeros(2)), 4, "t")
    with pytest.raises(ValueError, match="empty"):
        Batches((np.zeros((0, 1, 2, 2), np.float32), np.zeros(0)), 4, "t")


def test_per_channel_statistics_apply_to_their_own_channel():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 3, 4, 6), dtype=np.uint8)
    labels = np.zeros(5, dtype=np.int64)
    stats = {"mean": [0.1, 0.5, 0.9], "std": [0.2, 0.4, 0.8]}
    x = np.concatenate([x for x, _ in Batches((images, labels), 2, "t",
                                              normalization=stats).batches()])
    pixels = images / 255.0
    for c in range(3):
        expected = (pixels[:, c] - stats["mean"][c]) / stats["std"][c]
        np.testing.assert_allclose(x[:, c], expected, rtol=1e-5, atol=1e-6)


def test_scalar_statistics_give_the_same_bits_as_before():
    images = np.arange(2 * 1 * 3 * 3, dtype=np.uint8).reshape(2, 1, 3, 3) * 9
    x = next(Batches((images, np.zeros(2, np.int64)), 2, "t",
                     normalization={"mean": 0.3, "std": 0.35}).batches())[0]
    scaled = images.astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_array_equal(x, (scaled - np.float32(0.3)) * np.float32(1 / 0.35))
