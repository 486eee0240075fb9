"""The README's two screenshots of ``cnnlab explore``: the Fashion-MNIST net's overview with a
conv unit's forward detail, and the lecture net's backward detail.

    python scripts/explore_screenshots.py RUNS_DIR FASHION_RUN DIGITS_RUN OUT_DIR

Starts the explorer in this process (127.0.0.1, any free port), drives Debian's chromium with
Playwright, and writes explore-forward.png and explore-backward.png (palette PNGs) to OUT_DIR.
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from cnnlab.explore.server import Explorer, make_server
from cnnlab.explore.session import Catalog


def save(png: bytes, path: Path, colours: int = 128) -> None:
    """A palette PNG (screenshots have few colours; the README wants them small)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} kB)")


def main(runs_dir: str, fashion: str, digits: str, out: str) -> None:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    server = make_server(Explorer(Catalog(runs_dir, default=fashion)), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(f"{url}/?run={fashion}")
        page.wait_for_selector("body[data-ready='1']")
        page.click("canvas[data-test=test-thumb][data-index='1']")
        page.wait_for_function("() => document.querySelector('[data-test=true-label]')"
                               ".textContent.startsWith('test image #1')")
        page.wait_for_function("() => !document.body.dataset.busy")
        page.click("canvas[data-test=feature-map][data-layer=relu][data-channel='2']",
                   position={"x": 30, "y": 30})
        page.wait_for_selector("[data-test=fw-sum]")
        page.wait_for_timeout(500)
        save(page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": 1400,
                                                   "height": 1500}),
             out_dir / "explore-forward.png")
        page.goto(f"{url}/?run={digits}")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#bw-class", "3")
        page.select_option("#bw-layer", "conv2d_1")
        page.fill("#bw-filter", "4")
        page.fill("#bw-channel", "2")
        page.click("#bw-run")
        page.wait_for_selector("[data-test=bw-dx-difference]")
        page.wait_for_timeout(300)
        save(page.locator("#backward-panel").screenshot(), out_dir / "explore-backward.png")
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
