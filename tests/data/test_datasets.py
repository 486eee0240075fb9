import gzip
import hashlib
import io
import urllib.error

import numpy as np
import pytest

from cnnlab.data import DatasetNotFoundError, available_datasets, datasets, load_dataset
from cnnlab.data.idx import write_idx

FASHION_DIR = datasets.SYSTEM_DATA_DIR / "fashion-mnist"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No system datasets, an empty user data dir, and no network."""
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp_path / "system")
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "user"))

    def offline(url, timeout=None):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    return tmp_path


def _write_fake_idx(folder, train=12, test=5, size=6, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(test) % 10).astype(np.uint8),
    }
    for base, array in arrays.items():
        write_idx(folder / (base + suffix), array)
    return arrays


def test_digits_split_is_fixed_stratified_and_complete():
    from sklearn.datasets import load_digits

    splits = load_dataset("digits")
    train, test = splits
    assert len(train) == 1437 and len(test) == 360
    assert len(train) + len(test) == 1797
    assert train.images.shape == (1437, 1, 8, 8) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    assert train.class_names == [str(d) for d in range(10)]
    assert train.images.max() == 255 and train.images.min() == 0

    total = np.bincount(load_digits().target, minlength=10)
    test_counts = test.class_counts()
    assert np.all(np.abs(test_counts - 0.2 * total) <= 1), test_counts
    np.testing.assert_array_equal(train.class_counts() + test_counts, total)

    # Every sklearn image appears exactly once across the two splits.
    reference = np.rint(load_digits().images * 255 / 16).astype(np.uint8).reshape(1797, -1)
    ours = np.concatenate([train.images, test.images]).reshape(1797, -1)
    np.testing.assert_array_equal(np.sort(ours.view(np.dtype((np.void, 64))).ravel()),
                                  np.sort(reference.view(np.dtype((np.void, 64))).ravel()))

    again = load_dataset("digits")
    np.testing.assert_array_equal(again.train.images, train.images)
    np.testing.assert_array_equal(again.test.labels, test.labels)


def test_digits_test_split_uses_train_statistics():
    train, test = load_dataset("digits")
    pixels = train.images.astype(np.float64) / 255
    assert train.mean == pytest.approx(pixels.mean(), abs=1e-12)
    assert train.std == pytest.approx(pixels.std(), abs=1e-12)
    assert (test.mean, test.std) == (train.mean, train.std)


def test_digits_resized_to_28():
    small = load_dataset("digits")
    large = load_dataset("digits", image_size=28)
    assert large.train.images.shape == (1437, 1, 28, 28)
    assert large.test.images.shape == (360, 1, 28, 28)
    assert large.train.images.dtype == np.uint8
    np.testing.assert_array_equal(large.train.labels, small.train.labels)
    # Bilinear upsampling keeps the overall brightness of each image.
    small_means = small.train.images.mean(axis=(1, 2, 3))
    large_means = large.train.images.mean(axis=(1, 2, 3))
    assert np.abs(large_means - small_means).max() < 12
    assert np.corrcoef(small_means, large_means)[0, 1] > 0.98
    assert load_dataset("digits", image_size=(16, 12)).train.images.shape == (1437, 1, 16, 12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="load_dataset: unknown dataset 'cifar-100'"):
        load_dataset("cifar-100")
    with pytest.raises(ValueError, match="load_dataset: image_size must be a positive int"):
        load_dataset("digits", image_size=0)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_dataset_from_data_dir(isolated, compress):
    arrays = _write_fake_idx(isolated / "mine" / "mnist", compress=compress)
    train, test = load_dataset("mnist", data_dir=isolated / "mine")
    assert train.images.shape == (12, 1, 6, 6) and test.images.shape == (5, 1, 6, 6)
    np.testing.assert_array_equal(train.images[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(test.labels, arrays["t10k-labels-idx1-ubyte"])
    assert train.class_names == [str(d) for d in range(10)]
    assert (test.mean, test.std) == (train.mean, train.std)
    resized = load_dataset("mnist", image_size=10, data_dir=isolated / "mine")
    assert resized.train.images.shape == (12, 1, 10, 10)


def test_idx_dataset_from_user_dir_with_dotted_names(isolated):
    folder = isolated / "user" / "fashion-mnist"
    _write_fake_idx(folder, compress=False)
    for path in folder.iterdir():
        path.rename(folder / path.name.replace("-idx", ".idx"))
    train, _ = load_dataset("fashion-mnist")
    assert len(train) == 12
    assert train.class_names[0] == "T-shirt/top" and train.class_names[9] == "Ankle boot"
    status = dict(available_datasets())
    assert status["fashion-mnist"] == f"available: {folder}"


def test_missing_dataset_explains_how_to_get_it(isolated):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", download=False)
    with pytest.raises(DatasetNotFoundError, match="network disabled in tests") as info:
        load_dataset("mnist")
    assert "ossci-datasets" in str(info.value)
    assert str(isolated / "user" / "mnist") in str(info.value)
    status = dict(available_datasets())
    assert status["digits"].startswith("built in")
    assert status["mnist"].startswith("not downloaded")
    assert status["fashion-mnist"].startswith("not downloaded")


def test_download_is_verified_and_saved(isolated, monkeypatch):
    arrays = _write_fake_idx(isolated / "served", compress=True)
    served = {base: (isolated / "served" / (base + ".gz")).read_bytes() for base in arrays}
    spec = dict(datasets.IDX_DATASETS["fashion-mnist"])
    spec["md5_gz"] = {base: hashlib.md5(data).hexdigest() for base, data in served.items()}
    spec["sha256_content"] = {base: hashlib.sha256(gzip.decompress(data)).hexdigest()
                              for base, data in served.items()}
    monkeypatch.setitem(datasets.IDX_DATASETS, "fashion-mnist", spec)
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return io.BytesIO(served[url.rsplit("/", 1)[1].removesuffix(".gz")])

    monkeypatch.setattr(datasets.urllib.request, "urlopen", fake_urlopen)
    train, test = load_dataset("fashion-mnist", data_dir=isolated / "downloads")
    assert len(requested) == 4 and all(url.startswith(spec["mirrors"][0]) for url in requested)
    assert sorted(p.name for p in (isolated / "downloads" / "fashion-mnist").iterdir()) == sorted(
        base + ".gz" for base in arrays)
    np.testing.assert_array_equal(train.images[:, 0], arrays["train-images-idx3-ubyte"])
    assert len(test) == 5

    # A corrupted download is rejected on both mirrors and nothing is written.
    spec["sha256_content"] = dict(spec["sha256_content"], **{"t10k-labels-idx1-ubyte": "0" * 64})
    with pytest.raises(DatasetNotFoundError, match="SHA-256 of the content"):
        load_dataset("fashion-mnist", data_dir=isolated / "other")
    assert not (isolated / "other" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list((isolated / "other" / "fashion-mnist").glob("*.part"))


def test_fashion_mnist_checksums_match_hard_coded_values():
    if not FASHION_DIR.is_dir():
        pytest.skip(f"Fashion-MNIST not installed in {FASHION_DIR} (apt-get install dataset-fashion-mnist)")
    expected = datasets.IDX_DATASETS["fashion-mnist"]["sha256_content"]
    for base, digest in expected.items():
        with gzip.open(FASHION_DIR / (base + ".gz"), "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == digest


def test_fashion_mnist_loads_from_system_dir():
    if not FASHION_DIR.is_dir():
        pytest.skip(f"Fashion-MNIST not installed in {FASHION_DIR} (apt-get install dataset-fashion-mnist)")
    train, test = load_dataset("fashion-mnist", download=False)
    assert train.images.shape == (60_000, 1, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10_000, 1, 28, 28)
    np.testing.assert_array_equal(train.class_counts(), [6000] * 10)
    np.testing.assert_array_equal(test.class_counts(), [1000] * 10)
    assert train.class_names[6] == "Shirt"
    # Published normalisation constants of Fashion-MNIST.
    assert train.mean == pytest.approx(0.2860, abs=1e-4)
    assert train.std == pytest.approx(0.3530, abs=1e-4)
    assert dict(available_datasets())["fashion-mnist"] == f"available: {FASHION_DIR}"


def test_fashion_mnist_aliases(isolated):
    _write_fake_idx(isolated / "user" / "fashion-mnist")
    assert len(load_dataset("Fashion_MNIST").train) == 12


def test_idx_labels_out_of_range_name_the_labels_file(isolated):
    folder = isolated / "user" / "fashion-mnist"
    _write_fake_idx(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 200], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: labels must lie in \[0, 10"):
        load_dataset("fashion-mnist", download=False)


def test_dataset_not_found_is_a_cnnlab_error(isolated):
    from cnnlab.errors import CnnlabError

    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", download=False)
    assert isinstance(info.value, CnnlabError) and isinstance(info.value, FileNotFoundError)
