"""Make the README's screenshot of `cgraph html`'s page with headless Chromium (through playwright).

    python docs/screenshot.py [GRAPH] [--select NAME] [--step TEXT] [--out docs/page.png]

Run from the project's folder. Writes the page of GRAPH (graphs/two_layer_net.yaml) to a temporary file, opens it, steps until
the step shown contains TEXT, clicks NAME's box and saves a PNG. Needs `pip install playwright`
and Chromium (Debian: apt-get install chromium; elsewhere set CGRAPH_CHROMIUM to its path).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", nargs="?", default="graphs/two_layer_net.yaml")
    parser.add_argument("--select", default="W1", help="the box to click")
    parser.add_argument("--step", default="backward 4 of", help="step until the step shown contains this")
    parser.add_argument("--out", default="docs/page.png")
    parser.add_argument("--size", default="1400x800", help="WIDTHxHEIGHT of the window")
    options = parser.parse_args()
    executable = os.environ.get("CGRAPH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        sys.exit("screenshot: no Chromium found (apt-get install chromium, or set CGRAPH_CHROMIUM)")
    width, height = map(int, options.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        page_path = Path(folder) / "page.html"
        subprocess.run([sys.executable, "-m", "cgraph", "html", options.graph, "-o", str(page_path)], check=True)
        with sync_playwright() as driver:
            context = driver.chromium.launch_persistent_context(
                str(Path(folder) / "profile"), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height}, device_scale_factor=1)
            page = context.new_page()
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
            page.goto(page_path.as_uri())
            page.wait_for_selector('body[data-state="ready"]', state="attached", timeout=30_000)
            for _ in range(200):
                if options.step in page.inner_text("#position"):
                    break
                page.keyboard.press("ArrowRight")
            else:
                sys.exit(f"screenshot: no step shows {options.step!r}")
            page.click(f'g.node[data-name="{options.select}"]')
            page.mouse.move(0, height - 1)  # no hover over a box
            page.screenshot(path=options.out)
            context.close()
    print(options.out)


if __name__ == "__main__":
    main()
