import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_dataset, load_image_folder
from cnnlab.data.imagefolder import FolderReport, ImageFolderWarning, stratified_split
from cnnlab.errors import FileFormatError


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
    train, test = load_image_folder(tmp_path, test_fraction=0)
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
    with pytest.warns(ImageFolderWarning, match="broken.png"), \
            pytest.raises(FileFormatError, match="none of the images could be read(.|\n)*broken"):
        load_image_folder(tmp_path)
    with pytest.raises(FileFormatError, match="broken.png: cannot read the image"):
        load_image_folder(tmp_path, on_error="raise")
    with pytest.raises(ValueError, match="load_image_folder: channels must be one of 1, 3"):
        load_image_folder(tmp_path, channels=2)
    with pytest.raises(ValueError, match="load_image_folder: on_error must be one of"):
        load_image_folder(tmp_path, on_error="ignore")


def test_stratified_split():
    labels = np.repeat([0, 1, 2], [10, 3, 1])
    train, test = stratified_split(labels, 0.2, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[test], minlength=3), [2, 1, 0])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(14))
    again = stratified_split(labels, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(stratified_split(labels, 0.5, seed=1)[1], stratified_split(labels, 0.5, seed=2)[1])


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_image_in_folder_is_skipped_with_its_name(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    _truncate(tmp_path / "b" / "3.png")
    with pytest.warns(ImageFolderWarning, match=r"skipped 1 unreadable file(.|\n)*b/3.png"):
        splits = load_image_folder(tmp_path)
    assert len(splits.train) + len(splits.test) == 9
    report = splits.report
    assert isinstance(report, FolderReport) and report.loaded == 9
    assert [item.path.name for item in report.skipped] == ["3.png"]
    assert "truncated" in report.skipped[0].reason
    np.testing.assert_array_equal(splits.train.class_counts() + splits.test.class_counts(), [5, 4])
    with pytest.raises(FileFormatError, match=r"b/3.png: .*truncated"):
        load_image_folder(tmp_path, on_error="raise")


def test_nested_subfolder_images_are_loaded(tmp_path):
    # 12 images, 7 of them in sub-folders of their class folder, plus one outside any class.
    layout = {"a": 2, "a/x": 3, "a/x/deeper": 1, "b": 3, "b/y": 3}
    value = 0
    for folder, count in layout.items():
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            value += 10
            pixels = np.full((4, 4), value, dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / folder / f"{i}.png")
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "loose.png")
    with pytest.warns(ImageFolderWarning, match="ignored 1 image file.*outside any class"):
        splits = load_image_folder(tmp_path)
    assert splits.report.loaded == 12 and splits.report.nested == 7
    assert [p.name for p in splits.report.unsorted] == ["loose.png"]
    counts = splits.train.class_counts() + splits.test.class_counts()
    np.testing.assert_array_equal(counts, [6, 6])
    values = sorted(np.concatenate([splits.train.images, splits.test.images])[:, 0, 0, 0].tolist())
    assert values == list(range(10, 130, 10))


def test_one_image_per_class_gives_a_clear_error(tmp_path):
    _write_gray_classes(tmp_path, per_class=1)
    with pytest.raises(FileFormatError, match="every class has a single image .*can be held out"):
        load_image_folder(tmp_path)
    train, test = load_image_folder(tmp_path, test_fraction=0)
    assert len(train) == 3 and len(test) == 0


def test_empty_test_split_gives_a_clear_error(tmp_path):
    _write_gray_classes(tmp_path / "train", per_class=2, names=("x", "y"))
    (tmp_path / "test" / "x").mkdir(parents=True)
    with pytest.raises(FileFormatError, match=r"test: holds no readable images .*would be empty"):
        load_image_folder(tmp_path)


def test_single_image_class_stays_in_train_whatever_the_fraction():
    labels = np.array([0, 0, 0, 1])
    train, test = stratified_split(labels, 0.6, seed=0)
    assert 3 in train and 3 not in test


def test_16bit_float_and_alpha_only_images_load_in_a_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sixteen = np.array([[0, 257 * 100], [65535, 257 * 200]], dtype=np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "a" / "sixteen.png")
    floats = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    Image.fromarray(floats, mode="F").save(tmp_path / "a" / "float.tif")
    alpha_only = np.zeros((2, 2, 4), dtype=np.uint8)
    alpha_only[0, 0, 3] = 255  # black ink drawn only in alpha
    Image.fromarray(alpha_only, mode="RGBA").save(tmp_path / "b" / "alpha.png")
    Image.fromarray(np.full((2, 2), 9, dtype=np.uint8)).save(tmp_path / "b" / "plain.png")
    splits = load_image_folder(tmp_path, channels=1, test_fraction=0)
    images = {int(label): [] for label in splits.train.labels}
    for image, label in zip(splits.train.images, splits.train.labels):
        images[int(label)].append(image[0].tolist())
    assert [[0, 100], [255, 200]] in images[0]  # 16-bit: full range, not clipped at 255
    assert [[0, 64], [128, 255]] in images[0]  # float in [0, 1]: kept, not black
    assert [[0, 255], [255, 255]] in images[1]  # alpha-only: the drawing, dark on white


def test_image_size_is_checked_before_reading(tmp_path):
    _write_gray_classes(tmp_path)
    with pytest.raises(ValueError, match="load_image_folder: image_size must be an int >= 1"):
        load_image_folder(tmp_path, image_size=(0, 5))
    with pytest.raises(ValueError, match=r"image_size must be an int or an \(H, W\) pair"):
        load_image_folder(tmp_path, image_size=(1, 2, 3))
