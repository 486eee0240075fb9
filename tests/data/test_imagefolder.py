import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_dataset, load_image_folder
from cnnlab.data.imagefolder import stratified_split


def _write_gray_classes(root, per_class=5, size=(6, 6), names=("circle", "ampersand", "bar")):
    # Class k's images are constant with value 40 * (k + 1) + i: recognisable after loading.
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full(size[::-1], 40 * (k + 1) + i, dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{i:03d}.png")


def test_grayscale_folder_split_and_labels(tmp_path):
    _write_gray_classes(tmp_path)
    (tmp_path / "bar" / "notes.txt").write_text("not an image")
    train, test = load_dataset(str(tmp_path))
    assert train.class_names == ["ampersand", "bar", "circle"]
    assert train.images.shape == (12, 1, 6, 6) and test.images.shape == (3, 1, 6, 6)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    np.testing.assert_array_equal(test.class_counts(), [1, 1, 1])
    original_class = {"ampersand": 1, "bar": 2, "circle": 0}
    for dataset in (train, test):
        for image, label in zip(dataset.images, dataset.labels):
            value = int(image[0, 0, 0])
            assert (image == value).all()
            assert (value - 40) // 40 == original_class[dataset.class_names[label]]
    values = np.concatenate([train.images[:, 0, 0, 0], test.images[:, 0, 0, 0]])
    assert len(np.unique(values)) == 15
    assert (test.mean, test.std) == (train.mean, train.std)
    again = load_image_folder(tmp_path)
    np.testing.assert_array_equal(again.test.images, test.images)


def test_rgb_folder_resized(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 256, (10 + i, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels, mode="RGB").save(tmp_path / name / f"{i}.png")
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8), mode="L").save(tmp_path / "a" / "gray.jpg")
    with pytest.raises(ValueError, match="images have different sizes"):
        load_image_folder(tmp_path)
    train, test = load_image_folder(tmp_path, image_size=(12, 7))
    assert train.images.shape[1:] == (3, 12, 7)
    assert len(train) + len(test) == 7
    gray = load_image_folder(tmp_path, image_size=5, channels=1)
    assert gray.train.images.shape[1:] == (1, 5, 5)


def test_rgb_channels_order(tmp_path):
    (tmp_path / "red").mkdir()
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    pixels[..., 0] = 255
    pixels[..., 2] = 17
    Image.fromarray(pixels, mode="RGB").save(tmp_path / "red" / "x.png")
    train, test = load_image_folder(tmp_path)
    assert len(test) == 0
    assert (train.images[0, 0] == 255).all() and (train.images[0, 1] == 0).all()
    assert (train.images[0, 2] == 17).all()


def test_train_test_layout(tmp_path):
    _write_gray_classes(tmp_path / "train", per_class=4, names=("x", "y"))
    _write_gray_classes(tmp_path / "test", per_class=2, names=("x", "y"))
    train, test = load_image_folder(tmp_path)
    assert train.class_names == ["x", "y"]
    np.testing.assert_array_equal(train.class_counts(), [4, 4])
    np.testing.assert_array_equal(test.class_counts(), [2, 2])


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="no images found"):
        load_image_folder(tmp_path)
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="channels must be 1, 3 or None"):
        load_image_folder(tmp_path, channels=2)


def test_stratified_split():
    labels = np.repeat([0, 1, 2], [10, 3, 1])
    train, test = stratified_split(labels, 0.2, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[test], minlength=3), [2, 1, 0])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(14))
    again = stratified_split(labels, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(stratified_split(labels, 0.5, seed=1)[1], stratified_split(labels, 0.5, seed=2)[1])
