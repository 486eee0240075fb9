"""VGG weights from torchvision files: the same features as the weights set directly, a clear
error naming every wrong tensor, and hostile files refused within bounded memory."""

import json
import re
import struct

import numpy as np
import pytest

from cnnlab import models, nn
from cnnlab.errors import FileFormatError, LimitExceededError
from cnnlab.explain import probe
from cnnlab.explain.importers import load_vgg_weights, read_safetensors
from cnnlab.tensor import Tensor

# a reduced VGG: stage 1 one conv of 4, stage 2 two convs of 6; head 16 → 16 → 5
STAGES = ((4, 1), (6, 2))
# torchvision's indices: conv, ReLU (+ pooling after a stage's last conv)
TORCH_NAMES = {"features.0": (4, 3), "features.3": (6, 4), "features.5": (6, 6)}


def small_state_dict(seed=0, head=True):
    rng = np.random.default_rng(seed)
    state = {}
    for name, (out, inp) in TORCH_NAMES.items():
        state[f"{name}.weight"] = rng.standard_normal((out, inp, 3, 3)).astype(np.float32) * 0.3
        state[f"{name}.bias"] = rng.standard_normal(out).astype(np.float32) * 0.1
    if head:
        for i, (out, inp) in zip((0, 3, 6), ((16, 6 * 49), (16, 16), (5, 16))):
            state[f"classifier.{i}.weight"] = rng.standard_normal((out, inp)).astype(np.float32) * 0.1
            state[f"classifier.{i}.bias"] = rng.standard_normal(out).astype(np.float32) * 0.1
    return state


def direct_model(state):
    """The same network built by hand, its weights set directly."""
    model = nn.Sequential(
        nn.Conv2D(4, 3, padding=1, activation="relu"), nn.MaxPool2D(2),
        nn.Conv2D(6, 3, padding=1, activation="relu"), nn.Conv2D(6, 3, padding=1, activation="relu"),
        nn.MaxPool2D(2), nn.Flatten(), nn.Dense(16, activation="relu"), nn.Dense(16, activation="relu"),
        nn.Dense(5)).build((3, 28, 28))
    for layer, name in zip((model.conv2d, model.conv2d_1, model.conv2d_2), TORCH_NAMES):
        layer.weight.data[...] = state[f"{name}.weight"]
        layer.bias.data[...] = state[f"{name}.bias"]
    for layer, i in zip((model.dense, model.dense_1, model.dense_2), (0, 3, 6)):
        layer.weight.data[...] = state[f"classifier.{i}.weight"]  # (out, in), as torch's
        layer.bias.data[...] = state[f"classifier.{i}.bias"]
    model.normalization = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    return model


def write_safetensors(path, state, dtype="F32", header=None):
    """A tiny safetensors writer (the format's spec), written by the test itself."""
    entries, blobs, offset = {}, [], 0
    for name, array in state.items():
        data = (array.astype("<f2") if dtype == "F16" else array.astype("<f4")).tobytes()
        entries[name] = {"dtype": dtype, "shape": list(array.shape),
                         "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header if header is not None else entries).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


def outputs(model, x, layer=None):
    with probe.inspecting(model):
        return probe.forward(model, Tensor(x), layer).data


@pytest.fixture
def x():
    return np.random.default_rng(9).random((2, 3, 28, 28)).astype(np.float32)


@pytest.mark.parametrize("form", ["safetensors", "safetensors-f16", "npz"])
def test_each_format_gives_the_features_of_the_weights_set_directly(tmp_path, form, x):
    state = small_state_dict()
    if form == "npz":
        path = tmp_path / "vgg.npz"
        np.savez(path, **state)
    else:
        path = write_safetensors(tmp_path / "vgg.safetensors", state,
                                 "F16" if form.endswith("f16") else "F32")
    if form.endswith("f16"):
        state = {k: v.astype(np.float16).astype(np.float32) for k, v in state.items()}
    model = load_vgg_weights(path)
    expected = direct_model(state)
    assert [n for n, _ in model.named_layers()] == [n for n, _ in expected.named_layers()][:5] + [
        "flatten", "dense", "dropout", "dense_1", "dropout_1", "dense_2"]
    np.testing.assert_allclose(outputs(model, x), outputs(expected, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs(model, x, "conv2d_2"), outputs(expected, x, "conv2d_2"),
                               rtol=1e-5, atol=1e-6)


def test_features_only_file_gives_the_convolutions_at_any_size(tmp_path):
    path = write_safetensors(tmp_path / "features.safetensors", small_state_dict(head=False))
    model = load_vgg_weights(path)
    assert probe.layer_names(model) == ["conv2d", "max_pool2d", "conv2d_1", "conv2d_2", "max_pool2d_1"]
    y = np.random.default_rng(1).random((1, 3, 20, 12)).astype(np.float32)
    assert outputs(model, y, "conv2d_2").shape == (1, 6, 10, 6)


def test_pth_through_torch_matches_torch(tmp_path, x):
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    torch.manual_seed(0)
    features = tnn.Sequential(tnn.Conv2d(3, 4, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                              tnn.Conv2d(4, 6, 3, padding=1), tnn.ReLU(),
                              tnn.Conv2d(6, 6, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2))
    classifier = tnn.Sequential(tnn.Linear(294, 16), tnn.ReLU(), tnn.Dropout(),
                                tnn.Linear(16, 16), tnn.ReLU(), tnn.Dropout(), tnn.Linear(16, 5))
    net = tnn.Module()
    net.features, net.classifier = features, classifier
    net.eval()  # dropout off, as cnnlab in inspection
    torch.save(net.state_dict(), tmp_path / "vgg.pth")
    model = load_vgg_weights(tmp_path / "vgg.pth")
    model.normalization = None
    with torch.no_grad():
        expected = classifier(torch.flatten(features(torch.from_numpy(x)), 1)).numpy()
    np.testing.assert_allclose(outputs(model, x), expected, rtol=1e-4, atol=1e-5)


def test_pth_never_unpickles_other_objects(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"features.0.weight": torch.zeros(4, 3, 3, 3), "evil": Unpicklable()},
               tmp_path / "evil.pth")
    with pytest.raises(FileFormatError, match="evil.pth: not a weights-only"):
        load_vgg_weights(tmp_path / "evil.pth")
    assert not Unpicklable.rebuilt


class Unpicklable:
    rebuilt = False

    def __reduce__(self):
        return (Unpicklable._rebuild, ())

    @staticmethod
    def _rebuild():
        Unpicklable.rebuilt = True
        return Unpicklable()


def test_pth_without_torch_says_to_convert(tmp_path, monkeypatch):
    path = tmp_path / "vgg19.pth"
    path.write_bytes(b"not read")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # import torch fails
    with pytest.raises(FileFormatError, match=r"vgg19.pth: a .pth file needs PyTorch.*safetensors"):
        load_vgg_weights(path)


def test_a_mismatched_file_names_every_wrong_tensor(tmp_path):
    state = small_state_dict()
    del state["features.3.bias"]
    state["classifier.3.weight"] = state["classifier.3.weight"][:, :8]
    state["features.9.running_mean"] = np.zeros(6, np.float32)
    path = write_safetensors(tmp_path / "odd.safetensors", state)
    with pytest.raises(FileFormatError) as error:
        load_vgg_weights(path)
    message = str(error.value)
    assert "odd.safetensors" in message
    assert "missing: features.3.bias" in message
    assert "classifier.3.weight (16, 8) (expected (16, 16))" in message
    assert "unexpected: features.9.running_mean" in message
    # a reduced VGG read as VGG-16: all of VGG-16's other tensors are missing
    with pytest.raises(FileFormatError, match=r"torchvision vgg16.*features.2.weight.*features.28.bias"):
        load_vgg_weights(write_safetensors(tmp_path / "small.safetensors", small_state_dict()),
                         arch="vgg16")


def test_the_configuration_is_read_from_the_indices(tmp_path):
    for stages in ((2, 2, 3, 3, 3), (2, 2, 4, 4, 4)):  # VGG-16's and VGG-19's layouts
        state, index, channels = {}, 0, 1  # tiny widths, 1 input channel
        for repeats in stages:
            for _ in range(repeats):
                state[f"features.{index}.weight"] = np.zeros((2, channels, 3, 3), np.float32)
                state[f"features.{index}.bias"] = np.zeros(2, np.float32)
                index, channels = index + 2, 2
            index += 1
        path = tmp_path / "layout.npz"
        np.savez(path, **state)
        read = ", ".join(f"(2, {n})" for n in stages)
        with pytest.raises(FileFormatError, match=re.escape(
                f"(stages [{read}]): mismatched: features.0.weight (2, 1, 3, 3) "
                "(expected (2, 3, 3, 3))")):
            load_vgg_weights(path)


def test_vgg19_has_the_published_parameter_count():
    assert models.vgg19().count_parameters((3, 224, 224)) == (143_667_240, 0)


def test_hostile_safetensors_are_refused_naming_the_file(tmp_path):
    def header(entries, data=b"", length=None):
        text = json.dumps(entries).encode()
        return struct.pack("<Q", length if length is not None else len(text)) + text + data

    cases = [
        (b"\x01\x02", "less than its 8-byte header"),
        (header({}, length=2 ** 63), "exceeds cnnlab.limits.max_json_bytes"),
        (header({"a": 1}, length=10_000), "runs past the end"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "not UTF-8"),
        (struct.pack("<Q", 5) + b"[1,2]", "not a JSON object"),
        (header({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
         "outside the file"),
        (header({"w": {"dtype": "F32", "shape": [10 ** 6, 10 ** 6, 10 ** 6],
                       "data_offsets": [0, 4]}}, b"\0" * 4), "max_array_bytes"),
        (header({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
         "impossible shape"),
        (header({"w": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
         "dtype 'OBJ'"),
        (header({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
         "span 4 bytes"),
        (header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                 "v": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8),
         "overlap or gap"),
        (header({"w": {"dtype": "F32", "shape": [1]}}, b"\0" * 4), "expected {dtype, shape"),
    ]
    path = tmp_path / "hostile.safetensors"
    for content, problem in cases:
        path.write_bytes(content)
        with pytest.raises(FileFormatError) as error:
            read_safetensors(path)
        assert "hostile.safetensors" in str(error.value) and problem in str(error.value), (
            problem, str(error.value))
    assert issubclass(LimitExceededError, FileFormatError)


def test_unknown_formats_and_missing_files(tmp_path):
    with pytest.raises(FileFormatError, match="weights.bin: unknown weights format '.bin'"):
        load_vgg_weights(tmp_path / "weights.bin")
    with pytest.raises(FileFormatError, match="gone.safetensors: no such file"):
        load_vgg_weights(tmp_path / "gone.safetensors")
    with pytest.raises(FileFormatError, match="arch 'vgg11'"):
        load_vgg_weights(tmp_path / "x.npz", arch="vgg11")
