"""``cnnlab explore``'s page end to end: the real server in a thread (port 0), Debian's chromium
driven by Playwright, tiny runs made here (the lecture net on 16×16 digits; an untrained fashion
net on Fashion-MNIST, or a tiny image-folder run where Fashion-MNIST is absent).

The page exposes what it shows as ``data-test`` elements (and ``data-value`` / ``data-values``
attributes holding the numbers at full precision), so the tests read values, not pixels.
Screenshots go to ``$CNNLAB_ARTIFACTS/explore`` (default: a pytest temporary folder).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cnnlab import models, runs
from cnnlab.cli import main as cnnlab_main
from cnnlab.io import save_model

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the page tests need playwright (pip install playwright)"
)
CHROMIUM = "/usr/bin/chromium"
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"the page tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )

from cnnlab.explore.server import Explorer, make_server
from cnnlab.explore.session import Catalog

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
#: the lecture net on 16×16 digits: conv 25@14×14, pool 7×7, conv 50@5×5, pool 2×2, dense
TINY = ["--image-size", "16", "--batch-size", "128", "--augment", "none", "--verbose", "0",
        "--threads", "1", "--seed", "0"]
TIMEOUT_MS = 60_000  # generous: 2 cores shared by other work


def _train(runs_dir: Path, name: str, *args) -> Path:
    assert cnnlab_main(["train", *TINY, "--out", str(runs_dir), "--name", name, *args]) == 0
    return runs_dir / name


def _fashion_run(runs_dir: Path) -> Path:
    """An untrained fashion net (seeded) saved as a Fashion-MNIST run: the page must load a
    deep model with batch norm and dropout; training it would take minutes."""
    run = runs.create_run(runs_dir, "fashion", "fashion-mnist", name="fashion")
    model = models.get("fashion", seed=0, class_names=FASHION_CLASSES)
    model.normalization = {"mean": 0.2860, "std": 0.3530}
    save_model(model, run.path(runs.MODEL_FILE))
    settings = {"model": "fashion", "data": "fashion-mnist", "image_size": None, "seed": 0}
    run.write_info(runs.RunInfo("fashion", "fashion-mnist", settings, "made by test_page.py"))
    return runs_dir / "fashion"


def _folder_run(runs_dir: Path, tmp: Path) -> Path:
    """Where Fashion-MNIST is absent: a tiny image-folder run (two classes of 16×16 PNGs)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(["bars", "blobs"]):
        (tmp / "shapes" / name).mkdir(parents=True)
        for i in range(12):
            image = rng.integers(0, 60, (16, 16)).astype(np.uint8)
            if label == 0:
                image[:, 4 + i % 6: 7 + i % 6] = 255
            else:
                image[4:10, 4:10] = 255
            Image.fromarray(image).save(tmp / "shapes" / name / f"{i}.png")
    return _train(runs_dir, "fashion", "--data", str(tmp / "shapes"), "--epochs", "1")


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore-runs")
    _train(folder, "digits", "--epochs", "2")
    if (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        _fashion_run(folder)
    else:
        _folder_run(folder, tmp_path_factory.mktemp("explore-data"))
    return folder


@pytest.fixture(scope="module")
def server(runs_dir):
    """The real explorer server on 127.0.0.1, any free port, serving in a thread."""
    httpd = make_server(Explorer(Catalog(runs_dir, default="digits")), port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    root = os.environ.get("CNNLAB_ARTIFACTS")
    folder = Path(root) / "explore" if root else tmp_path_factory.mktemp("explore-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser, server):
    """A fresh tab on the page (the digits run unless the test goes elsewhere); fails the test
    on any JavaScript error."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.set_default_timeout(TIMEOUT_MS)
    tab.base = server
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_page(page, run: str = "digits"):
    page.goto(f"{page.base}/?run={run}")
    page.wait_for_selector("body[data-ready='1']")
    settle(page)


def settle(page):
    """Waits until no prediction is pending or in flight."""
    page.wait_for_function("() => !document.body.dataset.busy")


def api(page, path: str) -> dict:
    with urllib.request.urlopen(f"{page.base}{path}", timeout=30) as reply:
        return json.loads(reply.read())


def decode(array: dict) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(array["data"]), dtype=array["dtype"])
    return data.reshape(array["shape"])


def probabilities(page) -> list[float]:
    return page.evaluate("() => window.cnnlabExplore.prediction.probabilities")


def displayed(page, selector: str) -> float:
    return float(page.inner_text(selector))


def check_loaded(page, run: str):
    description = api(page, f"/api/runs/{run}/model")
    columns = page.eval_on_selector_all(
        "[data-test=layer-col]", "nodes => nodes.map(n => n.dataset.layer)")
    assert columns == [layer["name"] for layer in description["layers"]]
    maps = page.eval_on_selector_all("canvas[data-test=feature-map]", "nodes => nodes.length")
    assert maps == sum(layer["output_shape"][0] for layer in description["layers"]
                       if len(layer["output_shape"]) == 3)
    top = page.eval_on_selector_all(
        "[data-test=top]", "nodes => nodes.map(n => [Number(n.dataset.class), n.textContent])")
    assert len(top) == min(5, len(description["class_names"]))
    for index, text in top:  # class names from the run, not from the page
        assert text.startswith(description["class_names"][index] + " ")
    first = api(page, f"/api/runs/{run}/test/0")
    label = page.inner_text("[data-test=true-label]")
    assert label == f"test image #0: true label {first['class_name']}"
    assert len(page.query_selector_all("[data-test=filter]")) == next(
        layer["filters"] for layer in description["layers"] if layer["type"] == "Conv2D")
    page.wait_for_selector("[data-test=saliency-gradcam]")
    return description


def test_page_loads_a_digits_run(page, shots):
    open_page(page, "digits")
    assert page.input_value("#run-select") == "digits"
    description = check_loaded(page, "digits")
    assert description["input_shape"] == [1, 16, 16]
    assert sum(probabilities(page)) == pytest.approx(1, abs=1e-4)
    page.screenshot(path=shots / "digits.png", full_page=True)
    # colour scaling: per unit each map's own max |v| (from the reply's min/max), global one
    layers = page.evaluate("() => window.cnnlabExplore.prediction.layers.map("
                           "l => [l.name, l.min, l.max])")
    scales = "(n => Array.from(document.querySelectorAll("
    scales += "`canvas[data-test=feature-map][data-layer=${n}]`)).map(c => Number(c.dataset.scale)))"
    for mode in ("unit", "global"):
        page.select_option("#scaling", mode)
        for name, low, high in layers:
            shown = page.evaluate(scales, name)
            if not shown:
                continue
            if mode == "unit":
                expected = np.maximum(np.abs(low), np.abs(high))
                assert shown == pytest.approx(np.maximum(expected, 1e-12), rel=1e-6), name
            else:
                top = max(max(abs(v) for v in lo + hi) for _, lo, hi in layers)
                assert shown == pytest.approx([top] * len(shown), rel=1e-6), name


def test_page_loads_a_fashion_mnist_or_image_folder_run(page, shots):
    open_page(page, "digits")
    click_map(page, "conv2d", 0, 3, 3, size=14)
    page.wait_for_selector("[data-test=fw-sum]")
    # switching runs in the page: nothing of the digits run may stay
    layers = len(api(page, "/api/runs/fashion/model")["layers"])
    page.select_option("#run-select", "fashion")
    page.wait_for_function("n => window.cnnlabExplore.run === 'fashion' && "
                           "window.cnnlabExplore.prediction?.layers.length === n", arg=layers)
    settle(page)
    assert page.query_selector("[data-test=fw-sum]") is None
    description = check_loaded(page, "fashion")
    if description["data"] == "fashion-mnist":
        assert description["class_names"] == FASHION_CLASSES
        assert {"BatchNorm", "Dropout"} <= {layer["type"] for layer in description["layers"]}
    page.screenshot(path=shots / "fashion.png", full_page=True)


def stroke(page, points):
    box = page.locator("#draw-canvas").bounding_box()
    page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=4)
    page.mouse.up()


def test_drawing_strokes_changes_the_prediction(page, shots):
    open_page(page)
    page.click("#clear-canvas")
    stroke(page, [(0.5, 0.15), (0.5, 0.85)])  # a "1"
    settle(page)
    assert page.inner_text("[data-test=true-label]") == "drawn by hand"
    first = probabilities(page)
    drawn = decode(page.evaluate("() => window.cnnlabExplore.prediction.input"))
    # the stroke is what the model sees: a bright vertical bar in the middle columns
    assert drawn[0, 3:13, 6:10].mean() > 3 * drawn[0, :, :3].mean() + 0.1
    stroke(page, [(0.2, 0.2), (0.8, 0.2), (0.8, 0.5), (0.2, 0.5), (0.2, 0.8), (0.8, 0.8)])
    settle(page)
    second = probabilities(page)
    assert np.abs(np.subtract(first, second)).max() > 1e-3
    shown = page.eval_on_selector_all("[data-test=top]",
                                      "nodes => nodes.map(n => Number(n.dataset.probability))")
    assert shown == pytest.approx(sorted(second, reverse=True)[: len(shown)], abs=1e-6)
    page.screenshot(path=shots / "drawn.png", full_page=True)


def click_map(page, layer: str, channel: int, y: int, x: int, size: int):
    canvas = page.locator(f"canvas[data-test=feature-map][data-layer={layer}]"
                          f"[data-channel='{channel}']")
    box = canvas.bounding_box()
    canvas.click(position={"x": (x + 0.5) * box["width"] / size,
                           "y": (y + 0.5) * box["height"] / size})


def test_a_conv_unit_shows_products_that_sum_with_the_bias_to_its_activation(page, shots):
    open_page(page)
    click_map(page, "conv2d_1", 7, 2, 3, size=5)
    page.wait_for_selector("[data-test=fw-sum]")
    assert "conv2d_1, filter 7 at output position (2, 3)" in page.inner_text(
        "[data-test=fw-title]")
    products = [float(t) for t in page.eval_on_selector_all(
        "[data-test=fw-product] td", "cells => cells.map(c => c.textContent)")]
    assert len(products) == 25 * 3 * 3  # every input channel × the 3×3 kernel
    bias = displayed(page, "[data-test=fw-bias]")
    pre = displayed(page, "[data-test=fw-pre]")
    # each shown value is rounded to 4 decimals: the sum may be off by half a unit per term
    assert sum(products) + bias == pytest.approx(pre, abs=0.5e-4 * (len(products) + 2))
    assert displayed(page, "[data-test=fw-sum]") + bias == pytest.approx(pre, abs=1.5e-4)
    assert displayed(page, "[data-test=fw-engine]") == pytest.approx(pre, abs=1e-4)
    # the lecture net's conv has a fused ReLU; the overview shows its output
    activation = displayed(page, "[data-test=fw-activation]")
    assert activation == pytest.approx(max(pre, 0.0), abs=1e-4)
    assert displayed(page, "[data-test=fw-overview-value]") == pytest.approx(activation, abs=1e-4)
    # the pooling window that this unit feeds, and the maximum it chose
    window = [float(t) for t in page.eval_on_selector_all(
        "[data-test=fw-pool-window] td", "cells => cells.map(c => c.textContent)")]
    assert displayed(page, "[data-test=fw-pool-max]") == pytest.approx(max(window), abs=1e-3)
    page.screenshot(path=shots / "forward.png", full_page=True)


def test_the_backward_panel_delta_equals_the_engine_gradient(page, shots, runs_dir):
    import cnnlab.functional as F
    from cnnlab.explain import probe

    open_page(page)
    page.select_option("#bw-class", "3")
    page.select_option("#bw-layer", "conv2d_1")
    page.fill("#bw-filter", "2")
    page.fill("#bw-channel", "4")
    page.click("#bw-run")
    page.wait_for_selector("[data-test=bw-dx-difference]")
    formula = np.array(json.loads(
        page.get_attribute("[data-test=bw-dx-formula]", "data-values")))
    engine = np.array(json.loads(page.get_attribute("[data-test=bw-dx-engine]", "data-values")))
    assert "equal" in page.get_attribute("[data-test=bw-dx-difference]", "class")
    # an independent oracle: cnnlab's autograd here, ∂E/∂A for A = conv2d_1's input (the pool's
    # output) and E the cross-entropy with class 3, on the pixels the page used
    pixels = decode(page.evaluate("() => window.cnnlabExplore.input.pixels"))
    model = runs.load_any_model(runs.find_model_file(runs_dir / "digits"))
    _, _, grad = probe.layer_gradient(
        model, pixels[None].astype(model.dtype),
        lambda logits: F.cross_entropy(logits, np.array([3]), reduction="none"), "max_pool2d")
    expected = grad[0, 4].ravel()
    scale = np.abs(expected).max()
    assert scale > 0
    np.testing.assert_allclose(formula, expected, atol=1e-5 * scale + 1e-9)
    np.testing.assert_allclose(engine, expected, atol=1e-5 * scale + 1e-9)
    page.screenshot(path=shots / "backward.png", full_page=True)


def test_uploading_a_non_image_shows_an_error_and_the_page_keeps_working(page, shots):
    open_page(page)
    before = probabilities(page)
    page.set_input_files("#upload", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                            "buffer": b"these are not pixels\n" * 20}])
    page.wait_for_selector("[data-test=upload-error]:not([hidden])")
    message = page.inner_text("[data-test=upload-error]")
    assert message.startswith("notes.txt:") and len(message) > len("notes.txt: ") + 5
    assert probabilities(page) == before  # the current input stays
    page.screenshot(path=shots / "upload-error.png", full_page=True)
    # still working: another test image, then a real upload, which clears the error
    page.click("canvas[data-test=test-thumb][data-index='5']")
    page.wait_for_function("() => document.querySelector('[data-test=true-label]')"
                           ".textContent.startsWith('test image #5')")
    settle(page)
    assert probabilities(page) != before
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(np.tril(np.full((20, 20), 255, np.uint8))).save(buffer, "PNG")
    page.set_input_files("#upload", files=[{"name": "triangle.png", "mimeType": "image/png",
                                            "buffer": buffer.getvalue()}])
    page.wait_for_function("() => document.querySelector('[data-test=true-label]')"
                           ".textContent === 'uploaded: triangle.png'")
    settle(page)
    assert page.is_hidden("[data-test=upload-error]")


def test_animation_occlusion_and_maximisation_panels(page):
    open_page(page)
    click_map(page, "conv2d", 0, 0, 0, size=14)
    page.wait_for_selector("[data-test=fw-anim-readout]")
    assert page.inner_text("[data-test=fw-anim-readout]").startswith("(0, 0):")
    page.click("[data-test=fw-animate]")  # the filter slides; stopping loads that position
    page.wait_for_function("() => !document.querySelector('[data-test=fw-anim-readout]')"
                           ".textContent.startsWith('(0, 0)')")
    page.click("[data-test=fw-animate]")
    page.wait_for_function("() => !document.querySelector('[data-test=fw-title]')"
                           ".textContent.includes('position (0, 0)')")
    readout = page.inner_text("[data-test=fw-anim-readout]")
    position = readout.split(":")[0]  # "(y, x)"
    assert f"output position {position}" in page.inner_text("[data-test=fw-title]")
    # the page's own Σ K·A + b at that position (float32 in JS) is the server's pre-activation
    assert float(readout.rsplit("= ", 1)[1]) == pytest.approx(
        displayed(page, "[data-test=fw-pre]"), abs=2e-4)
    page.click("#occlusion-run")
    page.wait_for_selector("[data-test=occlusion-map]")
    assert json.loads(page.get_attribute("[data-test=occlusion-map]", "data-shape")) == [16, 16]
    assert page.is_hidden("#occlusion-progress")
    page.fill("#maximize-steps", "8")
    page.click("#maximize-run")
    page.wait_for_selector("[data-test=maximize-image]")
    assert page.inner_text("#maximize").startswith("conv2d[0]: activation")


def test_a_finger_draws_too(browser, server):
    context = browser.new_context(viewport={"width": 1000, "height": 900}, has_touch=True)
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.set_default_timeout(TIMEOUT_MS)
    tab.base = server
    try:
        open_page(tab)
        tab.click("#clear-canvas")
        box = tab.locator("#draw-canvas").bounding_box()
        tab.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        settle(tab)
        assert tab.inner_text("[data-test=true-label]") == "drawn by hand"
        drawn = decode(tab.evaluate("() => window.cnnlabExplore.prediction.input"))
        assert drawn.max() > 0.5  # the dot the finger left reached the model
    finally:
        context.close()
    assert not errors, errors
