"""The explorer's server, for real: bound to a free port in a thread, spoken to over HTTP.

Each hostile request gets its status code, and the server still answers afterwards.
"""

import base64
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.explore import compute
from cnnlab.explore.commands import resolve_catalog
from cnnlab.explore.server import Explorer, make_server
from cnnlab.explore.session import Catalog

REPO = Path(__file__).resolve().parents[2]
RUN = "digits-run"
MAX_BODY = 64 << 10


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    (root / "index.html").write_text("<!doctype html><title>explore</title>")
    (root / "app.js").write_text("console.log('page');")
    (root / ".secret").write_text("hidden")
    (root / "notes.exe").write_bytes(b"MZ")
    return root


@pytest.fixture(scope="module")
def server(runs_dir, static_dir):
    explorer = Explorer(Catalog(runs_dir, default=RUN), max_body=MAX_BODY, max_pixels=100_000,
                        static=static_dir)
    httpd = make_server(explorer, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def request(server, method, path, body=None, headers=None, host=None):
    """(status, headers, body bytes) of one request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=60)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        port = server.server_port
        if host is not False:
            connection.putheader("Host", f"127.0.0.1:{port}" if host is None else host)
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def api(server, method, path, obj=None, **options):
    body = None if obj is None else (obj if isinstance(obj, bytes) else json.dumps(obj).encode())
    status, headers, data = request(server, method, path, body, **options)
    if path.startswith("/api/"):
        assert headers["Content-Type"].startswith("application/json")
    return status, json.loads(data) if data else None


def still_up(server):
    status, listing = api(server, "GET", "/api/runs")
    assert status == 200 and listing["default"] == RUN


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_run_is_described_and_predicted(server, lecture):
    status, listing = api(server, "GET", "/api/runs")
    assert status == 200
    assert listing["runs"] == [{"name": RUN, "model": "lecture", "data": "digits"}]
    status, model = api(server, "GET", f"/api/runs/{RUN}/model")
    assert status == 200 and model["has_test_set"] and model["test_count"] > 0
    assert [layer["name"] for layer in model["layers"]] == [n for n, _ in lecture.named_layers()]
    status, item = api(server, "GET", f"/api/runs/{RUN}/test/5")
    assert status == 200 and item["class_name"] == str(item["label"])
    pixels = compute.decode(item["pixels"], [1, 28, 28])
    status, shown = api(server, "POST", f"/api/runs/{RUN}/predict", {"input": {"test": 5}})
    assert status == 200
    np.testing.assert_allclose(shown["probabilities"],
                               compute.predict(lecture, pixels)["probabilities"], rtol=1e-6)
    status, page = api(server, "GET", f"/api/runs/{RUN}/test?offset=3&count=2")
    assert status == 200 and [i["index"] for i in page["items"]] == [3, 4]


def test_a_drawn_canvas_is_prepared_like_an_uploaded_file(server, lecture):
    canvas = np.zeros((140, 140), np.uint8)
    canvas[30:110, 60:75] = 255  # a white "1" on black
    data = png(canvas)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    status, drawn = api(server, "POST", f"/api/runs/{RUN}/predict", {"input": {"png": url}})
    assert status == 200
    status, uploaded = api(server, "POST", f"/api/runs/{RUN}/prepare", data)
    assert status == 200 and uploaded["original_size"] == [140, 140]
    pixels = compute.decode(uploaded["pixels"], [1, 28, 28])
    np.testing.assert_array_equal(compute.decode(drawn["input"], [1, 28, 28]), pixels)
    expected, _ = compute.prepare_input(lecture, data)
    np.testing.assert_array_equal(pixels, expected)


@pytest.mark.parametrize("path", [
    "/api/runs/../digits-run/model", "/api/runs/%2e%2e/model", "/api/runs/..%2Fruns/model",
    "/api/runs/%2Fetc%2Fpasswd/model", "/api/runs//etc/model", "/api/runs/.hidden/model",
    "/api/runs/no-such-run/model", "/api/runs/digits-run%2F..%2F..%2Fx/model",
    "/api/nothing", "/static/../server.py", "/static/%2e%2e/compute.py", "/static/.secret",
    "/static/notes.exe", "/etc/passwd", "/api/jobs/123",
])
def test_paths_outside_what_is_served_get_404(server, path):
    status, _, body = request(server, "GET", path)
    assert status == 404, body
    assert "error" in json.loads(body)
    still_up(server)


def test_a_run_folder_linked_from_outside_is_not_served(server, runs_dir, tmp_path, lecture):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "model.npz").write_bytes((runs_dir / RUN / "model.npz").read_bytes())
    (runs_dir / "linked").symlink_to(outside, target_is_directory=True)
    try:
        status, _ = api(server, "GET", "/api/runs/linked/model")
        assert status == 404
        status, _ = api(server, "GET", "/api/runs/" + str(outside).replace("/", "%2F") + "/model")
        assert status == 404
    finally:
        (runs_dir / "linked").unlink()
    still_up(server)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1:1", "",
                                  False])
def test_a_foreign_host_header_is_refused(server, host):
    if host == "evil.example:80":
        host = f"evil.example:{server.server_port}"
    status, body = api(server, "GET", "/api/runs", host=host)
    assert status == 403 and "Host" in body["error"]
    still_up(server)
    status, _ = api(server, "GET", "/api/runs", host=f"localhost:{server.server_port}")
    assert status == 200


def test_a_request_from_another_page_is_refused(server):
    port = server.server_port
    status, body = api(server, "POST", f"/api/runs/{RUN}/predict", {"input": {"test": 0}},
                       headers={"Origin": "http://evil.example"})
    assert status == 403 and "evil.example" in body["error"]
    status, _ = api(server, "POST", f"/api/runs/{RUN}/predict", {"input": {"test": 0}},
                    headers={"Origin": f"http://127.0.0.1:{port}"})
    assert status == 200
    still_up(server)


def test_an_oversized_body_gets_413_without_being_read(server):
    status, body = api(server, "POST", f"/api/runs/{RUN}/prepare", b"\0" * (MAX_BODY + 1))
    assert status == 413 and f"{MAX_BODY:,}" in body["error"]
    still_up(server)
    status, body = api(server, "POST", f"/api/runs/{RUN}/predict", b"{" + b" " * MAX_BODY + b"}")
    assert status == 413
    still_up(server)


def test_an_image_over_the_pixel_limit_gets_413(server):
    status, body = api(server, "POST", f"/api/runs/{RUN}/prepare",
                       png(np.zeros((400, 400), np.uint8)))
    assert status == 413 and "160,000 pixels" in body["error"]
    still_up(server)


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "not valid JSON"),
    (b'{"input": {"test": 100000}}', "index"), (b'{"input": {"test": "3"}}', "index"),
    (b'{"input": {"pixels": {"shape": [1, 2], "data": ""}}}', "shape"),
    (b'{"input": {"png": "data:image/png;base64,AAAA"}}', "image"),
    (b'{"input": {"png": "not a url"}}', "data URL"), (b'{"input": {"file": "/etc/passwd"}}',
                                                       "unknown input"), (b"{}", "input"),
])
def test_malformed_requests_get_400(server, body, message):
    status, answer = api(server, "POST", f"/api/runs/{RUN}/predict", body)
    assert status == 400 and message in answer["error"], answer
    still_up(server)


def test_bad_fields_methods_and_uploads_get_their_codes(server):
    status, answer = api(server, "POST", f"/api/runs/{RUN}/prepare", b"GIF89a but not really")
    assert status == 400 and "the upload" in answer["error"]
    status, answer = api(server, "POST", f"/api/runs/{RUN}/forward",
                         {"input": {"test": 0}, "layer": "dense", "channel": 0, "y": 0, "x": 0})
    assert status == 400 and "not a conv layer" in answer["error"]
    status, answer = api(server, "POST", f"/api/runs/{RUN}/forward", {"input": {"test": 0}})
    assert status == 400 and "missing field" in answer["error"]
    assert api(server, "GET", f"/api/runs/{RUN}/predict")[0] == 405
    assert api(server, "DELETE", "/api/runs")[0] == 405
    status, _, _ = request(server, "POST", f"/api/runs/{RUN}/predict")  # no Content-Length
    assert status == 411
    still_up(server)


def test_static_files_have_their_types(server):
    status, headers, body = request(server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"explore" in body
    status, headers, _ = request(server, "GET", "/static/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")


def test_detail_endpoints_answer(server):
    status, unit = api(server, "POST", f"/api/runs/{RUN}/forward",
                       {"input": {"test": 1}, "layer": "conv2d_1", "channel": 4, "y": 3, "x": 2})
    assert status == 200 and unit["pre_activation"] == pytest.approx(unit["engine"], abs=1e-5)
    status, back = api(server, "POST", f"/api/runs/{RUN}/backward",
                       {"input": {"test": 1}, "layer": "conv2d", "class": 3, "filter": 0})
    assert status == 200 and back["dx_max_difference"] < 1e-5
    status, dense = api(server, "POST", f"/api/runs/{RUN}/dense",
                        {"input": {"test": 1}, "layer": "dense_1", "unit": 2})
    assert status == 200 and len(dense["weights"]) == 10
    status, maps = api(server, "POST", f"/api/runs/{RUN}/saliency", {"input": {"test": 1}})
    assert status == 200 and maps["gradient"]["shape"] == [28, 28]
    status, kernels = api(server, "GET", f"/api/runs/{RUN}/filters")
    assert status == 200 and kernels["weights"]["shape"] == [25, 1, 3, 3]


def wait_for(server, job_id, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, job = api(server, "GET", f"/api/jobs/{job_id}")
        assert status == 200
        if job["state"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running after {seconds} s")


def test_jobs_report_progress_and_their_result(server):
    status, started = api(server, "POST", f"/api/runs/{RUN}/occlusion",
                          {"input": {"test": 2}, "patch": 7, "stride": 7})
    assert status == 202
    job = wait_for(server, started["job"])
    assert job["state"] == "done" and job["progress"] == 1.0
    assert job["result"]["map"]["shape"] == [28, 28]
    status, started = api(server, "POST", f"/api/runs/{RUN}/maximize",
                          {"layer": "conv2d", "unit": 1, "steps": 2})
    assert status == 202
    job = wait_for(server, started["job"])
    assert job["state"] == "done" and job["result"]["image"]["shape"] == [1, 28, 28]
    status, started = api(server, "POST", f"/api/runs/{RUN}/maximize",
                          {"layer": "conv2d", "unit": 99, "steps": 2})
    assert wait_for(server, started["job"])["state"] == "failed"
    assert api(server, "POST", f"/api/runs/{RUN}/maximize", {"layer": "x", "unit": 0})[0] == 400


def test_concurrent_requests_get_their_own_answers(server):
    expected = {i: api(server, "POST", f"/api/runs/{RUN}/predict",
                       {"input": {"test": i}})[1]["probabilities"] for i in range(6)}
    results, errors = [], []

    def client(i):
        try:
            for _ in range(3):
                status, shown = api(server, "POST", f"/api/runs/{RUN}/predict",
                                    {"input": {"test": i}})
                results.append((i, status, shown["probabilities"]))
                status, _ = api(server, "POST", f"/api/runs/{RUN}/backward",
                                {"input": {"test": i}, "layer": "conv2d_1", "class": 1,
                                 "filter": 0})
                assert status == 200
        except Exception as error:  # noqa: BLE001 (reported below, in the test's thread)
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert len(results) == 18
    for i, status, probabilities in results:
        assert status == 200
        np.testing.assert_allclose(probabilities, expected[i], rtol=1e-6)


def test_the_command_resolves_runs_inside_the_runs_folder_and_files_by_name(runs_dir, tmp_path):
    catalog = resolve_catalog(None, runs_dir)
    assert catalog.default == RUN
    catalog = resolve_catalog(str(runs_dir / RUN / "model.npz"), runs_dir)
    assert catalog.default == RUN and catalog.extra == {}
    copy = tmp_path / "my model.npz"
    copy.write_bytes((runs_dir / RUN / "model.npz").read_bytes())
    catalog = resolve_catalog(str(copy), tmp_path / "no-runs")
    assert catalog.default == "model" and catalog.resolve("model") == copy.resolve()
    catalog = resolve_catalog(str(runs_dir / RUN), None)  # --runs: the run's own folder
    assert catalog.runs_dir == runs_dir.resolve() and catalog.extra == {}
    with pytest.raises(Exception, match="no run with a model"):
        resolve_catalog(None, tmp_path / "empty", train_if_empty=False)


def test_ctrl_c_stops_the_command_cleanly(runs_dir):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "explore", str(runs_dir / RUN), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + process.stderr.read()
        connection = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=30)
        connection.request("GET", "/api/runs")
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        errors = process.stderr.read()
        assert "stopped" in errors and "Traceback" not in errors
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_with_no_run_the_command_trains_the_default_digits_model_first(tmp_path, monkeypatch):
    from cnnlab.explore import commands

    monkeypatch.setattr(commands, "FIRST_RUN_EPOCHS", 1)
    catalog = resolve_catalog(None, tmp_path / "runs")
    folder = catalog.resolve(catalog.default)
    assert folder.parent == (tmp_path / "runs").resolve() and (folder / "model.npz").is_file()
    assert catalog.listing()[0]["data"] == "digits"
