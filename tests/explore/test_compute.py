"""The explorer's computations against cnnlab's own: shapes, products and sums, the lecture's
backward formula against the engine's backward and against finite differences."""

import io

import numpy as np
import pytest
from PIL import Image

from cnnlab import nn
from cnnlab.cli import model_input
from cnnlab.explore import compute, detail
from cnnlab.nn.conv import Conv2D
from cnnlab.training import predict as cnnlab_predict

from .conftest import strided_net


def maps_of(result: dict, name: str) -> np.ndarray:
    (layer,) = [entry for entry in result["layers"] if entry["name"] == name]
    return compute.decode(layer["maps"], layer["shape"])


def normalized(model, image):
    stats = model.normalization
    return (image - stats["mean"]) / stats["std"]


@pytest.mark.parametrize("which", ["lecture", "fashion"])
def test_describe_and_predict_follow_the_model(which, request, image):
    model = request.getfixturevalue(which)
    described = compute.describe(model)
    names = [layer["name"] for layer in described["layers"]]
    assert names == [name for name, _ in model.named_layers()]
    shape = tuple(model.input_shape)
    for entry, (_, layer) in zip(described["layers"], model.named_layers()):
        assert entry["input_shape"] == list(shape)
        shape = layer.compute_output_shape(shape)
        assert entry["output_shape"] == list(shape)
        if isinstance(layer, Conv2D):
            assert entry["kernel_size"] == list(layer.kernel_size)
    assert described["class_names"] == model.class_names

    result = compute.predict(model, image)
    assert [entry["shape"] for entry in result["layers"]] == [
        entry["output_shape"] for entry in described["layers"]]
    expected = cnnlab_predict(model, normalized(model, image)[None].astype(np.float32))[0]
    np.testing.assert_allclose(result["probabilities"], expected, rtol=1e-5, atol=1e-7)
    assert result["top"][0]["index"] == int(np.argmax(expected))
    assert len(result["top"]) == 5
    first = maps_of(result, names[0])
    assert first.min() == pytest.approx(min(result["layers"][0]["min"]))


def test_uint8_maps_stay_within_one_step_of_the_floats(lecture, image):
    exact = compute.predict(lecture, image)
    small = compute.predict(lecture, image, encoding="uint8")
    for a, b in zip(exact["layers"], small["layers"]):
        floats = compute.decode(a["maps"], a["shape"])
        q = compute.decode(b["maps"], b["shape"]) * 255.0  # decode gives q/255
        flat_q = q.reshape(len(b["maps"]["min"]), -1)
        low, high = np.array(b["maps"]["min"]), np.array(b["maps"]["max"])
        values = low[:, None] + (high - low)[:, None] * flat_q / 255.0
        step = (high - low).max() / 255.0
        np.testing.assert_allclose(values.reshape(floats.shape), floats, atol=step / 2 + 1e-6)


@pytest.mark.parametrize("which", ["lecture", "fashion"])
def test_conv_products_sum_plus_bias_is_the_activation(which, request, image):
    model = request.getfixturevalue(which)
    shown = compute.predict(model, image)
    for layer in [name for name, m in model.named_layers() if isinstance(m, Conv2D)]:
        maps = maps_of(shown, layer)
        channel, y, x = maps.shape[0] - 1, maps.shape[1] // 2, maps.shape[2] // 3
        unit = detail.conv_unit(model, image, layer, channel, y, x)
        products = compute.decode(unit["products"], unit["kernel"]["shape"])
        assert unit["sum"] == pytest.approx(float(products.astype(np.float64).sum()), abs=1e-5)
        assert unit["pre_activation"] == pytest.approx(unit["sum"] + unit["bias"])
        assert unit["pre_activation"] == pytest.approx(unit["engine"], rel=1e-5, abs=1e-5)
        # the value after the element-wise chain is what the overview shows for that layer
        chain_end = unit["after"][-1]["layer"] if unit["after"] else layer
        assert unit["activation"] == pytest.approx(float(maps_of(shown, chain_end)[channel, y, x]))
        if unit["after"] and unit["after"][-1]["type"].lower() == "relu":
            assert unit["activation"] == pytest.approx(max(unit["after"][-2]["value"], 0.0)
                                                       if len(unit["after"]) > 1 else
                                                       max(unit["pre_activation"], 0.0), abs=1e-5)


def test_the_first_conv_reads_the_normalised_image_under_its_window(lecture, image):
    unit = detail.conv_unit(lecture, image, "conv2d", 2, 5, 9)
    patch = compute.decode(unit["patch"], [1, 3, 3])
    np.testing.assert_allclose(patch, normalized(lecture, image)[:, 5:8, 9:12], rtol=1e-6)
    assert unit["window"] == {"y0": 5, "x0": 9, "y1": 8, "x1": 12}
    assert unit["receptive_field"] == unit["window"]
    pool = unit["pool"]
    # the 2×2 window of max_pool2d that holds row 5, column 9 starts at row 4, column 8
    assert pool["window"] == {"y0": 4, "x0": 8, "y1": 6, "x1": 10}
    values = compute.decode(pool["values"], [2, 2])
    assert pool["max"] == pytest.approx(float(values.max()))
    assert pool["output"] == pytest.approx(pool["max"])
    assert values[tuple(pool["argmax"])] == pytest.approx(pool["max"])


def test_receptive_field_grows_through_pooling(lecture):
    # conv2d_1 (3×3) at (0, 0) reads pool rows 0..2, i.e. conv2d rows 0..5, i.e. image rows 0..7
    assert detail.receptive_field(lecture, 2, 0, 0, 1, 1) == {"y0": 0, "x0": 0, "y1": 8, "x1": 8}


def test_padding_shows_as_zeros_in_the_patch(fashion, image):
    unit = detail.conv_unit(fashion, image, "conv2d", 0, 0, 0)
    patch = compute.decode(unit["patch"], [1, 3, 3])
    assert unit["window"]["y0"] == -1 and unit["receptive_field"]["y0"] == 0
    assert np.all(patch[:, 0, :] == 0) and np.all(patch[:, :, 0] == 0)


def test_dense_unit_matches_its_logit(lecture, image):
    unit = detail.dense_unit(lecture, image, "dense_1", 3, top=7)
    assert unit["pre_activation"] == pytest.approx(unit["logits"][3], rel=1e-5, abs=1e-5)
    magnitudes = [abs(w["weight"]) for w in unit["weights"]]
    assert len(magnitudes) == 7 and magnitudes == sorted(magnitudes, reverse=True)
    first = detail.dense_unit(lecture, image, "dense", 0, top=3)
    assert first["weights"][0]["position"] is not None  # dense reads a flattened (50, 5, 5) map
    c, y, x = first["weights"][0]["position"]
    assert first["weights"][0]["index"] == (c * 5 + y) * 5 + x


@pytest.mark.parametrize("which, layer", [("lecture", "conv2d"), ("lecture", "conv2d_1"),
                                          ("fashion", "conv2d_1"), ("strided", "conv2d"),
                                          ("strided", "conv2d_1")])
def test_backward_formula_equals_the_engine(which, layer, request, image):
    model = strided_net() if which == "strided" else request.getfixturevalue(which)
    picture = image if which != "strided" else image[:, 8:19, 8:19]
    result = detail.backward(model, picture, 4, layer, 1)
    engine = compute.decode(result["dx_engine"], result["dx_engine"]["shape"])
    scale = max(float(np.abs(engine).max()), 1e-6)
    assert result["dx_max_difference"] <= 1e-5 * scale + 1e-9
    dw = compute.decode(result["dw_engine"], result["dw_engine"]["shape"])
    assert result["dw_max_difference"] <= 1e-5 * max(float(np.abs(dw).max()), 1e-6) + 1e-9
    delta = compute.decode(result["delta"], result["delta"]["shape"])
    assert result["db"] == pytest.approx(float(delta[1].astype(np.float64).sum()), abs=1e-6)
    stride = result["stride"][0]
    inserted = compute.decode(result["delta_inserted"], result["delta_inserted"]["shape"])
    np.testing.assert_array_equal(inserted[:, ::stride, ::stride], delta)
    if stride > 1:
        assert np.all(inserted[:, 1::stride, :] == 0)
    padded = result["delta_padded"]["shape"]
    k = result["kernel_size"][0]
    assert padded[1] == inserted.shape[1] + 2 * (k - 1)


def _objective(model, image, target):
    records = compute.layer_outputs(model, image)
    logits = compute.logits_of(model, records).data[0].astype(np.float64)
    return float(np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[target])


def test_backward_formula_matches_finite_differences_in_float64(image):
    model = strided_net(np.float64)
    picture = 0.1 + 0.8 * image[:, 8:19, 8:19].astype(np.float64)  # inside (0, 1): no clipping
    result = detail.backward(model, picture, 2, "conv2d", 3)
    assert result["value"] == pytest.approx(_objective(model, picture, 2), rel=1e-12)
    dx = compute.decode(result["dx_formula"], [1, 11, 11])
    dw = compute.decode(result["dw_formula"], [1, 3, 3])
    eps, std = 1e-5, model.normalization["std"]
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, 11, size=(6, 2)):
        plus, minus = picture.copy(), picture.copy()
        plus[0, i, j] += eps
        minus[0, i, j] -= eps
        numeric = (_objective(model, plus, 2) - _objective(model, minus, 2)) / (2 * eps)
        # dx is with respect to the normalised image x' = (x − mean) / std
        assert dx[0, i, j] / std == pytest.approx(numeric, rel=1e-3, abs=1e-6)
    weight = model.layers[0].weight.data
    for u, v in [(0, 0), (1, 2), (2, 1)]:
        saved = weight[3, 0, u, v]
        weight[3, 0, u, v] = saved + eps
        up = _objective(model, picture, 2)
        weight[3, 0, u, v] = saved - eps
        down = _objective(model, picture, 2)
        weight[3, 0, u, v] = saved
        assert dw[0, u, v] == pytest.approx((up - down) / (2 * eps), rel=1e-3, abs=1e-6)


def test_backward_refuses_what_it_cannot_show(lecture, image):
    with pytest.raises(compute.ExploreError, match="not a conv layer"):
        detail.backward(lecture, image, 0, "dense", 0)
    with pytest.raises(compute.ExploreError, match="filter"):
        detail.backward(lecture, image, 0, "conv2d", 25)
    with pytest.raises(compute.ExploreError, match="class"):
        detail.backward(lecture, image, 10, "conv2d", 0)


def test_an_uploaded_file_is_prepared_as_cnnlab_predict_does(lecture, tmp_path):
    rng = np.random.default_rng(1)
    picture = np.full((90, 70), 250, np.uint8)
    picture[20:70, 30:40] = rng.integers(0, 60, (50, 10))  # a dark stroke on light paper
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    (tmp_path / "digit.png").write_bytes(buffer.getvalue())
    pixels, size = compute.prepare_input(lecture, buffer.getvalue())
    assert size == [70, 90]
    expected = model_input(tmp_path / "digit.png", lecture.input_shape, None)[0]
    np.testing.assert_array_equal(pixels, expected)
    with pytest.raises(compute.ExploreError, match="the upload"):
        compute.prepare_input(lecture, b"not an image at all")
    from cnnlab.errors import LimitExceededError

    with pytest.raises(LimitExceededError, match="6,300 pixels"):
        compute.prepare_input(lecture, buffer.getvalue(), max_pixels=1000)


def test_decode_refuses_what_it_cannot_trust():
    good = compute.encode(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(compute.decode(good, (2, 3)), np.arange(6).reshape(2, 3))
    for bad, message in [({**good, "shape": [3, 2]}, "expected shape"),
                         ({**good, "data": "@@@"}, "base64"),
                         ({**good, "data": good["data"][:-4]}, "bytes"),
                         ({**good, "dtype": "float64"}, "dtype"),
                         (compute.encode(np.full((2, 3), np.nan)), "NaN"),
                         ([1, 2], "expected")]:
        with pytest.raises(compute.ExploreError, match=message):
            compute.decode(bad, (2, 3))


def test_saliency_occlusion_and_maximize_have_the_image_size(lecture, image):
    maps = compute.saliency(lecture, image, target=3)
    assert maps["class"] == 3 and maps["gradcam_layer"] == "conv2d_1"
    for key in ("gradient", "gradcam"):
        values = compute.decode(maps[key], [28, 28])
        assert values.max() <= 1.0 + 1e-6 and values.min() >= 0.0
    calls = []
    occluded = compute.occlusion(lecture, image, None, patch=14, stride=14,
                                 progress=lambda done, total: calls.append((done, total)))
    assert compute.decode(occluded["map"], [28, 28]).shape == (28, 28)
    assert calls and calls[-1][0] == calls[-1][1] == 4
    found = compute.maximize(lecture, "conv2d", 2, steps=3)
    assert compute.decode(found["image"], [1, 28, 28]).shape == (1, 28, 28)


def test_colour_same_padding_and_groups():
    """RGB with per-channel normalisation, 'same' padding that pads one more after (kernel 4,
    stride 2), average pooling, a grouped conv and a softmax output layer."""
    model = nn.Sequential(
        nn.Conv2D(6, 4, stride=2, padding="same"), nn.BatchNorm(), nn.ReLU(), nn.AvgPool2D(2),
        nn.Conv2D(4, 3, groups=2), nn.Flatten(), nn.Dense(5, activation="softmax"), seed=1,
    ).build((3, 17, 17))
    model.normalization = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.3, 0.25]}
    picture = np.random.default_rng(0).random((3, 17, 17)).astype(np.float32)
    conv = compute.describe(model)["layers"][0]
    assert (conv["padding"], conv["padding_end"]) == ([1, 1], [2, 2])
    shown = compute.predict(model, picture)
    assert sum(shown["probabilities"]) == pytest.approx(1.0)
    for layer, channel, y in [("conv2d", 5, 0), ("conv2d", 5, 8), ("conv2d_1", 3, 1)]:
        unit = detail.conv_unit(model, picture, layer, channel, y, y)
        assert unit["pre_activation"] == pytest.approx(unit["engine"], abs=1e-5)
    last = detail.conv_unit(model, picture, "conv2d", 0, 8, 8)
    assert last["window"]["y1"] == 19 and last["receptive_field"]["y1"] == 17  # into the padding
    assert last["pool"]["kind"] == "avg"
    result = detail.backward(model, picture, 1, "conv2d", 2)
    assert result["dx_max_difference"] < 1e-5 and result["dw_max_difference"] < 1e-5
    with pytest.raises(compute.ExploreError, match="one group"):
        detail.backward(model, picture, 1, "conv2d_1", 0)
