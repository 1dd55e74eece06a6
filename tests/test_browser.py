"""The page of `cgraph html` and `cgraph serve` in a real browser: Chromium driven by playwright.

Chromium is the system's (Debian: apt-get install chromium; playwright's own download is not
used). Each page is opened from file:// (or from the local server), every other request is
aborted and counted, and no request and no console error may happen. Skipped, with the reason,
where playwright or Chromium is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from click.testing import CliRunner

from cgraph.cli import cli
from test_html import start_server, stop

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
GRAD_RGB = "rgb(192, 57, 43)"  # #c0392b, the gradient colour


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CGRAPH_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found (Debian and Ubuntu: apt-get install chromium; or set CGRAPH_CHROMIUM)")
    with playwright_api.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=executable, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 900})
        yield context
        context.close()


class Watched:
    """A browser page whose requests outside ``allowed`` are aborted and counted, and whose errors are kept."""

    def __init__(self, context) -> None:
        self.page = context.new_page()
        self.allowed = ["file:"]
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, route) -> None:
        if route.request.url.startswith(tuple(self.allowed)):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.wait_for_state("ready", 30_000)

    def wait_for_state(self, state: str, timeout: float) -> None:
        """Wait until the page is drawn ('ready') or shows an error ('error'). (A selector, since the
        page's policy forbids the eval that a waited-for function needs.)"""
        self.page.wait_for_selector(f'body[data-state="{state}"]', state="attached", timeout=timeout)


@pytest.fixture
def watched(browser) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.page.close()
    assert page.blocked == []
    assert page.errors == []


def open_graph(watched: Watched, tmp_path: Path, name: str, *args: str) -> None:
    out = tmp_path / f"{name}.html"
    result = CliRunner().invoke(cli, ["html", str(GRAPHS / f"{name}.yaml"), "-o", str(out), *args])
    assert result.exit_code == 0, result.stderr
    watched.open(out.as_uri())


def panel_values(watched: Watched, part: str) -> list:
    """The numbers of the panel's value or gradient ('value-part' or 'grad-part') in full."""
    view = watched.page.locator(f"#panel .{part}.section .array-view")
    return json.loads(view.get_attribute("data-values"))


def step_to(watched: Watched, pattern: str) -> None:
    """Press the right arrow until the step shown matches ``pattern``."""
    for _ in range(100):
        if re.search(pattern, watched.page.inner_text("#position")):
            return
        watched.page.keyboard.press("ArrowRight")
    raise AssertionError(f"no step matches {pattern}")


def test_buy_apple_orange_every_node_the_rule_of_price_and_the_gradient_of_tax(watched: Watched, tmp_path: Path) -> None:
    open_graph(watched, tmp_path, "buy_apple_orange")
    page = watched.page
    names = page.eval_on_selector_all("g.node", "groups => groups.map(group => group.dataset.name)")
    assert sorted(names) == sorted(["apple", "apple_num", "orange", "orange_num", "tax", "apple_price",
                                    "orange_price", "all_price", "price"])
    step_to(watched, r"^forward \d+ of 4: price$")
    assert "price = all_price * tax = 650 * 1.1 = 715" in page.inner_text("#rule")
    page.keyboard.press("ArrowRight")  # the first backward step: price's rules
    rule = page.inner_text("#rule")
    assert re.search(r"d tax\s+= dout \* all_price = 1 \* 650\s+= 650", rule), rule
    page.click('g.node[data-name="tax"]')
    assert page.get_attribute("#panel", "data-name") == "tax"
    assert panel_values(watched, "grad-part") == [650.0]
    assert panel_values(watched, "value-part") == [1.1]
    # Only price's edges have sent their gradients back so far; they are drawn in the gradient colour.
    sent = page.eval_on_selector_all("g.edge.sent", "edges => edges.map(edge => edge.dataset.from)")
    assert sorted(sent) == ["all_price", "tax"]
    colour = page.eval_on_selector('g.edge[data-from="tax"] path', "path => getComputedStyle(path).stroke")
    assert colour == GRAD_RGB
    page.keyboard.press("End")
    assert page.locator("g.edge.sent").count() == 8
    page.keyboard.press("Home")
    assert page.locator("g.edge.sent").count() == 0 and "whole graph" in page.inner_text("#position")


def test_bias_batch_w_shows_the_broadcast_sum_and_its_gradient(watched: Watched, tmp_path: Path) -> None:
    open_graph(watched, tmp_path, "bias_batch")
    page = watched.page
    page.click('g.node[data-name="w"]')
    panel = page.inner_text("#panel")
    assert "summed over axes (0,)" in panel and "(3, 2) -> (2,)" in panel
    # xw = x * w with x = [[1, 2], [3, 4], [5, 6]] and dout 1: d w = column sums of x = [9, 12].
    assert panel_values(watched, "grad-part") == [9.0, 12.0]
    page.hover('g.node[data-name="x"]')  # hovering shows another box's panel while the pointer is there
    assert page.get_attribute("#panel", "data-name") == "x"
    assert panel_values(watched, "grad-part") == [10.0, 100.0] * 3  # d x = dout * w, row by row
    page.mouse.move(5, 5)  # off the picture: back to the selected box
    assert page.get_attribute("#panel", "data-name") == "w"


def test_two_layer_net_w1_shows_all_20_gradients_of_backward_json(watched: Watched, tmp_path: Path) -> None:
    open_graph(watched, tmp_path, "two_layer_net", "--check")
    page = watched.page
    page.click('g.node[data-name="W1"]')
    result = CliRunner().invoke(cli, ["backward", str(GRAPHS / "two_layer_net.yaml"), "--format", "json"])
    expected = [x for row in json.loads(result.stdout)["nodes"]["W1"]["grad"] for x in row]
    assert len(expected) == 20
    assert panel_values(watched, "grad-part") == expected
    cells = page.eval_on_selector_all("#panel .grad-part.section td", "cells => cells.map(cell => cell.title)")
    assert [float(cell) for cell in cells] == expected
    assert page.locator("#panel .grad-part.section canvas").count() == 1  # the heatmap
    assert page.locator("#panel .grad-part.section .scale").count() == 1  # and its colour scale
    assert "PASS" in page.inner_text("#panel")  # --check's result for the input


def test_a_graph_of_2000_boxes_is_drawn_and_can_be_stepped_through(watched: Watched, tmp_path: Path) -> None:
    # A chain out = -(x * c1 * c2 * ... * c999): 1,000 inputs and 1,000 nodes. Too wide to read when it
    # all fits, so the page starts zoomed in at the output, and each step brings its node into view.
    inputs = {"x": 2.0, **{f"c{k}": 1.0 for k in range(1, 1000)}}
    nodes = {f"m{k}": {"op": "mul", "inputs": [f"m{k - 1}" if k > 1 else "x", f"c{k}"]} for k in range(1, 1000)}
    path = tmp_path / "chain.json"
    path.write_text(json.dumps({"inputs": inputs, "nodes": {**nodes, "out": {"op": "neg", "inputs": ["m999"]}}}))
    out = tmp_path / "chain.html"
    assert CliRunner().invoke(cli, ["html", str(path), "-o", str(out)]).exit_code == 0
    watched.open(out.as_uri())
    page = watched.page
    assert page.locator("g.node").count() == 2000
    canvas = page.locator("#canvas").bounding_box()

    def inside(name: str) -> bool:
        box = page.locator(f'g.node[data-name="{name}"]').bounding_box()
        return canvas["x"] <= box["x"] + box["width"] / 2 <= canvas["x"] + canvas["width"]

    assert inside("out") and not inside("m1")
    page.keyboard.press("ArrowRight")  # forward 1: m1, at the far left
    assert inside("m1")
    page.click('g.node[data-name="m1"]')
    assert panel_values(watched, "value-part") == [2.0] and panel_values(watched, "grad-part") == [-1.0]
    page.keyboard.press("End")  # the last backward step
    assert page.inner_text("#position") == "backward 1000 of 1000: m1" and inside("m1")


def test_serve_redraws_on_save_shows_an_error_and_recovers(watched: Watched, tmp_path: Path) -> None:
    graph = tmp_path / "apple.yaml"
    graph.write_text((GRAPHS / "buy_apple.yaml").read_text())
    process, url = start_server(graph)
    try:
        watched.allowed.append(url)
        watched.open(url)
        page = watched.page
        page.click('g.node[data-name="tax"]')
        page.keyboard.press("ArrowRight")
        graph.write_text(graph.read_text().replace("tax: 1.1", "tax: 1.25"))
        # 200 * 1.25 = 250
        page.locator('g.node[data-name="price"] text', has_text="value 250").wait_for(state="attached", timeout=2000)
        assert page.get_attribute("#panel", "data-name") == "tax"  # the selection and the step are kept
        assert panel_values(watched, "value-part") == [1.25]
        assert page.inner_text("#position").startswith("forward 1 of 2")

        graph.write_text("inputs:\n  a: 1\nnodes:\n  b: {op: mul, inputs: [a, c]}\n")
        watched.wait_for_state("error", 2000)
        assert page.inner_text("#message") == f"{graph}:4:28: error: node 'b' uses unknown name 'c'"
        assert page.locator("g.node").count() == 0

        graph.write_text((GRAPHS / "buy_apple.yaml").read_text())
        watched.wait_for_state("ready", 2000)
        assert page.locator("g.node").count() == 5 and page.get_attribute("#panel", "data-name") == "tax"
        assert panel_values(watched, "value-part") == [1.1]
    finally:
        code, _ = stop(process)
    assert code == 130


def test_serve_redraws_when_an_input_file_is_saved_and_shows_it_missing(watched: Watched, tmp_path: Path) -> None:
    graph = tmp_path / "g.yaml"
    graph.write_text("inputs:\n  x: {file: x.npy}\n  w: 3\nnodes:\n  y: {op: mul, inputs: [x, w]}\n"
                     "  s: {op: sum, inputs: [y]}\n")
    np.save(tmp_path / "x.npy", np.full(4, 2.0))
    process, url = start_server(graph)
    try:
        watched.allowed.append(url)
        watched.open(url)
        page = watched.page
        page.locator('g.node[data-name="s"] text', has_text="value 24").wait_for(state="attached", timeout=2000)
        np.save(tmp_path / "x.npy", np.full(4, 5.0))  # 4 * 5 * 3 = 60, shown within 2 s
        page.locator('g.node[data-name="s"] text', has_text="value 60").wait_for(state="attached", timeout=2000)
        (tmp_path / "x.npy").unlink()
        watched.wait_for_state("error", 2000)
        assert page.inner_text("#message") == f"{graph}:2:13: error: file not found: x.npy"
        np.save(tmp_path / "x.npy", np.full(4, 1.0))
        watched.wait_for_state("ready", 2000)
        page.locator('g.node[data-name="s"] text', has_text="value 12").wait_for(state="attached", timeout=2000)
    finally:
        code, _ = stop(process)
    assert code == 130


def test_simple_convnet_page_shows_the_shapes_and_the_filters_gradients(watched: Watched, tmp_path: Path) -> None:
    open_graph(watched, tmp_path, "simple_convnet")
    page = watched.page
    text = page.inner_text("body")
    for line in ("conv2d, shape (3, 30, 24, 24)", "max_pool2d, shape (3, 30, 12, 12)", "flatten, shape (3, 4320)",
                 "softmax_with_loss, shape ()"):
        assert line in text
    assert page.locator("g.node").count() == 16
    page.click("#fit")  # the page opens zoomed in at the output; W1 is at the other end
    page.click('g.node[data-name="W1"]')
    result = CliRunner().invoke(cli, ["backward", str(GRAPHS / "simple_convnet.yaml"), "--format", "json"])
    expected = [x for filters in json.loads(result.stdout)["nodes"]["W1"]["grad"] for x in
                np.ravel(filters).tolist()]
    assert len(expected) == 750
    assert panel_values(watched, "grad-part") == expected


def test_serve_loads_a_sampled_arrays_every_value_behind_its_button(watched: Watched, tmp_path: Path) -> None:
    graph = tmp_path / "convnet.yaml"
    graph.write_text((GRAPHS / "simple_convnet.yaml").read_text())
    result = CliRunner().invoke(cli, ["backward", str(graph), "--format", "json"])
    expected = np.array(json.loads(result.stdout)["nodes"]["conv1"]["value"])
    assert expected.shape == (3, 30, 24, 24)
    process, url = start_server(graph)
    try:
        watched.allowed.append(url)
        watched.open(url)
        page = watched.page
        page.click("#fit")
        page.click('g.node[data-name="conv1"]')
        view = page.locator("#panel .value-part.section .array-view")
        assert "51,840 elements" in view.inner_text() and view.get_attribute("data-values") is None  # a sample
        # The sample: every (1, 3, 3, 2) along the axes, (3, 10, 8, 12) = 2,880 numbers.
        assert page.locator("#panel .value-part.section td").count() == 2_880
        page.click("#panel .value-part.section button.load-all")
        view.locator("table").wait_for(state="attached")
        page.wait_for_selector("#panel .value-part.section .array-view[data-values]", timeout=10_000)
        values = json.loads(view.get_attribute("data-values"))
        assert len(values) == expected.size == 51_840 and values == expected.ravel().tolist()
        assert "strided sample" not in view.inner_text()
        assert page.locator("#panel .value-part.section button.load-all").count() == 0
        assert page.locator("#panel .grad-part.section button.load-all").count() == 1  # the gradient: on its own click
        page.click("#panel .value-part.section button:has-text('show all 2160 rows')")
        cells = page.locator("#panel .value-part.section td")
        assert cells.count() == 51_840  # every value in the table: 3 * 30 * 24 rows of 24
        for flat in (0, 577, 51_839):
            index = np.unravel_index(flat, expected.shape)
            assert float(cells.nth(flat).get_attribute("title")) == expected[index]
        page.hover('g.node[data-name="relu1"]')  # another box's panel while the pointer is there
        page.click('g.node[data-name="conv1"]')
        assert json.loads(view.get_attribute("data-values")) == values  # kept: not loaded again
        page.screenshot(path=str(tmp_path / "convnet_full_conv1.png"))
        print(f"screenshot: {tmp_path / 'convnet_full_conv1.png'}")
    finally:
        code, _ = stop(process)
    assert code == 130


def test_a_written_pages_sampled_array_says_how_to_get_every_value_and_full_has_them(watched: Watched,
                                                                                    tmp_path: Path) -> None:
    page = watched.page
    for args, count in (((), None), (("--full",), 51_840)):
        open_graph(watched, tmp_path, "simple_convnet", *args)
        page.click("#fit")
        page.click('g.node[data-name="conv1"]')
        view = page.locator("#panel .value-part.section .array-view")
        assert page.locator("button.load-all").count() == 0  # no server to load from
        if count is None:
            assert "All the numbers: cgraph html --full, cgraph serve, or cgraph backward" in view.inner_text()
            assert view.get_attribute("data-values") is None
        else:
            assert "All the numbers" not in view.inner_text()
            assert len(json.loads(view.get_attribute("data-values"))) == count
