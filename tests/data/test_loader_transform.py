"""DataLoader's ``transform`` hook: raw uint8 batches + labels → float batches, seeded per
epoch while shuffling, no rng (no random change) when evaluating; fit and evaluate use it."""

import numpy as np
import pytest

from cnnlab.data import ArrayDataset, DataLoader


def _dataset():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 4, (40, 1, 3, 3), dtype=np.uint8)
    labels = (images.reshape(40, -1).sum(axis=1) % 2).astype(np.int64)
    return ArrayDataset(images, labels, ["even", "odd"], "codes", mean=0.0, std=1.0)


class OneHot:
    """Codes 0..3 → 4 one-hot planes; with an rng, labels are flipped at random (so a test can
    see which rng was used)."""

    def __init__(self):
        self.calls = []

    def __call__(self, images, labels, rng):
        self.calls.append(rng)
        x = (images == np.arange(4, dtype=np.uint8)[None, :, None, None]).astype(np.float32)
        if rng is not None:
            labels = labels ^ rng.integers(0, 2, len(labels))
        return x, labels


def test_transform_replaces_scaling_and_is_seeded_per_epoch():
    data = _dataset()
    loader = DataLoader(data, batch_size=16, seed=4, transform=OneHot())
    x, _ = next(iter(loader))
    assert x.shape == (16, 4, 3, 3) and set(np.unique(x)) == {0.0, 1.0}
    loader.set_epoch(3)
    first = [y for _, y in loader]
    loader.set_epoch(3)
    assert all(np.array_equal(a, b) for a, b in zip(first, [y for _, y in loader], strict=True))
    plain = DataLoader(data, batch_size=16, shuffle=False, transform=OneHot())
    labels = np.concatenate([y for _, y in plain])
    np.testing.assert_array_equal(labels, data.labels)  # no rng: nothing random
    assert all(rng is None for rng in plain.transform.calls)


def test_fit_trains_and_evaluates_through_the_transform():
    from cnnlab.nn import Conv2D, Dense, Flatten, ReLU, Sequential
    from cnnlab.training import evaluate, fit

    data = _dataset()
    transform = OneHot()
    loader = DataLoader(data, batch_size=8, seed=1, transform=transform)
    model = Sequential(Conv2D(4, 3, padding=1), ReLU(), Flatten(), Dense(2))
    model.build((4, 3, 3))  # the transformed shape: fit would build from the stored one
    history = fit(model, loader, epochs=2, verbose=0)
    assert history.epochs == 2 and np.isfinite(history["loss"]).all()
    transform.calls.clear()
    evaluate(model, loader)
    assert transform.calls and all(rng is None for rng in transform.calls)


def test_transform_must_be_callable_and_excludes_augment():
    with pytest.raises(ValueError, match="transform"):
        DataLoader(_dataset(), transform="planes")
    with pytest.raises(ValueError, match="transform"):
        DataLoader(_dataset(), transform=OneHot(), augment=lambda x: x)
