"""How fast ``cnnlab explore`` answers a prediction with every layer's feature maps (issue 14
asks for <= 100 ms for a 28x28 model on 2 cores): measured, not asserted.

Four ways per model: ``compute.predict`` alone; over HTTP with prepared pixels (what the page
sends after a test-set pick or an upload), the same with the maps as uint8; over HTTP with a drawn 280x280 canvas as a PNG data
URL (what the page sends while you draw: decoding and ``cnnlab predict``'s preparation
included). Prints the median and the interquartile range of --repeat calls after --warmup,
and the foreign load (other processes' busy cores, median over the calls) from
``benchmarks/harness.py``.

Usage: python benchmarks/explore_speed.py [RUN ...] [--repeat 30] [--warmup 3]
       (default: the zoo's untrained lecture and fashion nets; a run folder for a trained one)
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import LoadProbe, interquartile_range
from cnnlab import models, runs
from cnnlab.explore import compute
from cnnlab.explore.server import Explorer, make_server
from cnnlab.explore.session import Catalog


def timed(fn, repeat: int, warmup: int) -> tuple[float, float, float | None]:
    """(median ms, IQR ms, median foreign cores) of ``repeat`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    probe, times, loads = LoadProbe(), [], []
    for _ in range(repeat):
        start_load, start = probe.snapshot(), time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
        foreign = LoadProbe.foreign(start_load, probe.snapshot())
        if foreign is not None:
            loads.append(foreign)
    return statistics.median(times), interquartile_range(times), (
        statistics.median(loads) if loads else None)


def canvas_url() -> str:
    """A 280x280 canvas with a drawn ring (a "0"), as the page's toDataURL gives it."""
    y, x = np.mgrid[:280, :280]
    ring = np.abs(np.hypot(y - 140, x - 140) - 80) < 12
    buffer = io.BytesIO()
    Image.fromarray((ring * 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def post(port: int, path: str, body: dict) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = json.dumps(body).encode()
    connection.request("POST", path, data, {"Content-Type": "application/json",
                                            "Host": f"127.0.0.1:{port}"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {answer}")
    return answer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="run folders (default: lecture, fashion zoo nets)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    if args.runs:
        entries = {Path(r).name: Path(r).resolve() for r in args.runs}
    else:
        folder = Path(__import__("tempfile").mkdtemp(prefix="explore-bench-"))
        entries = {}
        for name in ("lecture", "fashion"):
            model = models.get(name, input_shape=(1, 28, 28))
            model.normalization = {"mean": 0.3, "std": 0.35}
            from cnnlab.io import save_model

            save_model(model, folder / f"{name}.npz")
            entries[name] = folder / f"{name}.npz"
    explorer = Explorer(Catalog(None, entries, default=next(iter(entries))))
    server = make_server(explorer, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port, url = server.server_port, canvas_url()
    try:
        for name, path in entries.items():
            model = runs.load_any_model(path)
            image = np.random.default_rng(0).random(model.input_shape).astype(np.float32)
            pixels = {"input": {"pixels": compute.encode(image)}}
            cases = {
                "compute": lambda m=model, i=image: compute.predict(m, i),
                "http_pixels": lambda n=name, b=pixels: post(port, f"/api/runs/{n}/predict", b),
                "http_pixels_uint8": lambda n=name, b=pixels: post(
                    port, f"/api/runs/{n}/predict", {**b, "encoding": "uint8"}),
                "http_canvas": lambda n=name: post(port, f"/api/runs/{n}/predict",
                                                   {"input": {"png": url}}),
            }
            size = len(json.dumps(post(port, f"/api/runs/{name}/predict", pixels)))
            for case, fn in cases.items():
                median, iqr, load = timed(fn, args.repeat, args.warmup)
                shown = "n/a" if load is None else f"{load:.2f}"
                print(f"bench case=explore_{case} model={name} ms={median:.1f} iqr={iqr:.1f} "
                      f"load={shown} response_kb={size / 1024:.0f}", flush=True)
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
