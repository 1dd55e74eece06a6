"""Every example graph's page in Chromium at 1400x900, as a newcomer first sees it: text no
smaller than 11 CSS pixels, every text inside its box, arrays drawn as heatmaps whose hover tells
each number, the panel open on the output, and the layout's direction chosen for the window.
Screenshots are kept in pytest's temporary directory (see the test's output for where)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from cgraph.cli import cli
from test_browser import Watched, browser, watched  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
LENET_INPUT = "input={shape: [1, 1, 28, 28], random: normal, seed: 1}"
EXAMPLES = sorted(GRAPHS.glob("*.yaml")) + [GRAPHS / "lenet.onnx"]
SMALLEST = 11  # CSS pixels


def graph_args(path: Path) -> list[str]:
    return [str(path), "--set", LENET_INPUT] if path.suffix == ".onnx" else [str(path)]


def open_example(watched: Watched, tmp_path: Path, path: Path, *args: str) -> None:
    out = tmp_path / f"{path.stem}.html"
    result = CliRunner().invoke(cli, ["html", *graph_args(path), "-o", str(out), *args])
    assert result.exit_code == 0, result.stderr
    watched.open(out.as_uri())


def backward_json(path: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["backward", *graph_args(path), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# Each visible SVG text's size on screen (its font size times the drawing's scale), and each HTML
# text's computed size: texts scrolled out of the canvas or the panel are not seen, so not counted.
SIZES = """svg => {
  const scale = svg.getScreenCTM().a;
  const canvas = svg.parentElement.getBoundingClientRect();
  const seen = [];
  for (const text of svg.querySelectorAll("text")) {
    const box = text.getBoundingClientRect();
    if (getComputedStyle(text).visibility === "hidden" || box.right < canvas.left || box.left > canvas.right ||
        box.bottom < canvas.top || box.top > canvas.bottom) continue;
    seen.push([text.textContent, Number(text.getAttribute("font-size")) * scale]);
  }
  for (const element of document.querySelectorAll("header *, aside *")) {
    const own = [...element.childNodes].some(node => node.nodeType === 3 && node.textContent.trim());
    const box = element.getBoundingClientRect();
    if (!own || !box.width || box.top > window.innerHeight) continue;
    seen.push([element.textContent.slice(0, 40), parseFloat(getComputedStyle(element).fontSize)]);
  }
  return seen;
}"""

# Each box's texts and heatmaps that stick out of its rectangle, in the box's own units.
OVERFLOWS = """groups => groups.flatMap(group => {
  const rect = group.querySelector("rect.box");
  const width = Number(rect.getAttribute("width"));
  const height = Number(rect.getAttribute("height"));
  return [...group.querySelectorAll("text, image, rect.heat-frame")].filter(item => {
    const box = item.getBBox();
    return box.x < 0 || box.y < 0 || box.x + box.width > width || box.y + box.height > height;
  }).map(item => `${group.dataset.name}: ${item.textContent || item.getAttribute("class")}`);
})"""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_page_reads_at_first_sight(watched: Watched, tmp_path: Path, path: Path) -> None:
    open_example(watched, tmp_path, path)
    page = watched.page
    page.screenshot(path=str(tmp_path / f"{path.stem}.png"))
    print(f"screenshot: {tmp_path / f'{path.stem}.png'}")
    sizes = page.eval_on_selector("#canvas svg", SIZES)
    assert sizes and min(size for _, size in sizes) >= SMALLEST - 0.01, sorted(sizes, key=lambda item: item[1])[:3]
    assert page.eval_on_selector_all("g.node", OVERFLOWS) == []

    backward = backward_json(path)
    output = backward["output"]
    # The panel opens on the output's value and gradient.
    assert page.get_attribute("#panel", "data-name") == output
    for part in ("value-part", "grad-part"):
        assert page.locator(f"#panel .{part}.section .array-view").count() == 1

    # Every array in view is drawn as heatmaps of its value and of its gradient; a 0-d value as its number.
    drawn = page.eval_on_selector("#canvas svg", """svg => {
      const canvas = svg.parentElement.getBoundingClientRect();
      return Object.fromEntries([...svg.querySelectorAll("g.node")].filter(group => {
        const box = group.getBoundingClientRect();
        return box.right > canvas.left && box.left < canvas.right && box.bottom > canvas.top && box.top < canvas.bottom;
      }).map(group => [group.dataset.name, [[...group.querySelectorAll("image.heat")].map(image => image.dataset.part),
                                             group.querySelector("text.value-text, text.caption").textContent]]));
    }""")
    assert output in drawn
    for name, (parts, value_text) in drawn.items():
        entry = backward["nodes"][name]
        if entry["shape"]:
            assert parts == ["value", "grad"], name
        else:
            assert parts == [] and float(value_text.split()[1]) == pytest.approx(entry["value"], rel=1e-3, abs=1e-4), name

    # The layout uses the window: the drawing fills it in one direction, or is shown at its largest zoom.
    shown = page.eval_on_selector("#canvas svg", """svg => {
      const canvas = svg.parentElement.getBoundingClientRect();
      const boxes = [...svg.querySelectorAll("g.node > rect.box")].map(rect => rect.getBoundingClientRect());
      const width = Math.max(...boxes.map(b => b.right)) - Math.min(...boxes.map(b => b.left));
      const height = Math.max(...boxes.map(b => b.bottom)) - Math.min(...boxes.map(b => b.top));
      return {fill: Math.max(width / canvas.width, height / canvas.height), scale: svg.getScreenCTM().a};
    }""")
    assert shown["fill"] > 0.6 or shown["scale"] >= 1.5 - 1e-6, shown


def _cell_centre(page, selector: str, rows: int, cols: int, row: int, col: int) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    return box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows


def test_heatmaps_are_diverging_around_zero_and_hover_tells_each_number(watched: Watched, tmp_path: Path) -> None:
    path = GRAPHS / "two_layer_net.yaml"
    open_example(watched, tmp_path, path)
    page = watched.page
    expected = backward_json(path)["nodes"]["W1"]
    value, grad = np.array(expected["value"]), np.array(expected["grad"])
    rows, cols = value.shape
    page.click('g.node[data-name="W1"]')
    for part, array, selector in (("value", value, '#panel .value-part.section canvas'),
                                  ("gradient", grad, '#panel .grad-part.section canvas')):
        canvas = page.locator(selector)
        for row, col in ((0, 0), (rows - 1, cols - 1), (1, 2)):
            page.mouse.move(*_cell_centre(page, selector, rows, cols, row, col))
            label, _, number = page.inner_text("#tip").partition(" = ")
            assert label == f"W1 {part} [{row}, {col}]" and float(number) == array[row, col]  # in full
        # Diverging colours: red for the largest positive number, blue for the most negative, white for 0.
        pixels = canvas.evaluate("""canvas => Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width,
                                     canvas.height).data)""")
        rgb = np.array(pixels).reshape(rows, cols, 4)[..., :3]
        positive, negative = array > 0, array < 0
        assert positive.any() and negative.any()
        assert np.all(rgb[positive][:, 0] == 255) and np.all(rgb[negative][:, 2] == 255)  # red above 0, blue below
        assert np.all(rgb[array == 0] == 255)  # white at 0
        # The larger the number's size, the deeper its colour; the largest is fully coloured.
        depth = 255 - rgb.min(axis=2)
        order = np.argsort(np.abs(array), axis=None)
        assert np.all(np.diff(depth.ravel()[order]) >= 0)
        assert depth.ravel()[order[-1]] == depth.max() >= 190
    # The box's heatmap tells the same numbers on hover.
    box = 'g.node[data-name="W1"] image.heat[data-part="grad"]'
    page.mouse.move(*_cell_centre(page, box, rows, cols, 1, 3))
    label, _, number = page.inner_text("#tip").partition(" = ")
    assert label == "W1 gradient [1, 3]" and float(number) == grad[1, 3]


def test_box_numbers_follow_precision_as_dot_does(watched: Watched, tmp_path: Path) -> None:
    path = GRAPHS / "sigmoid_neuron.yaml"
    backward = backward_json(path)
    output = backward["output"]
    number = float(backward["nodes"][output]["value"])
    for args, digits in (((), 4), (("--precision", "2"), 2)):
        open_example(watched, tmp_path, path, *args)
        text = watched.page.locator(f'g.node[data-name="{output}"] text.value-text').first.text_content()
        shown = text.split()[1]
        assert float(shown) == round(number, digits) and len(shown.split(".")[1]) <= digits, text
        dot = CliRunner().invoke(cli, ["dot", str(path), *args]).stdout
        assert f"value {shown}" in dot


def test_a_graph_too_big_to_read_whole_opens_on_its_output_with_a_minimap(watched: Watched, tmp_path: Path) -> None:
    open_example(watched, tmp_path, GRAPHS / "simple_convnet.yaml")
    page = watched.page
    assert page.locator("#minimap").is_visible()
    output = backward_json(GRAPHS / "simple_convnet.yaml")["output"]
    canvas = page.locator("#canvas").bounding_box()
    box = page.locator(f'g.node[data-name="{output}"] > rect.box').bounding_box()
    assert canvas["x"] <= box["x"] and box["x"] + box["width"] <= canvas["x"] + canvas["width"]
    assert canvas["y"] <= box["y"] and box["y"] + box["height"] <= canvas["y"] + canvas["height"]
    map_box = page.locator("#minimap").bounding_box()
    assert (map_box["x"] > box["x"] + box["width"] or map_box["x"] + map_box["width"] < box["x"] or
            map_box["y"] > box["y"] + box["height"] or map_box["y"] + map_box["height"] < box["y"])  # not over it
    # The mini-map's frame is the view: dragging it to a corner brings the far side into view.
    before = page.get_attribute("#canvas svg", "viewBox")
    page.mouse.click(map_box["x"] + 2, map_box["y"] + 2)
    assert page.get_attribute("#canvas svg", "viewBox") != before
    page.click("#fit")
    page.locator("#minimap").wait_for(state="hidden", timeout=2000)  # the whole graph in view at the next frame


def chain_graph(tmp_path: Path, length: int) -> Path:
    nodes = {f"n{k}": {"op": "neg", "inputs": [f"n{k - 1}" if k else "x"]} for k in range(length)}
    path = tmp_path / "chain.json"
    path.write_text(json.dumps({"inputs": {"x": 1.0}, "nodes": nodes}))
    return path


@pytest.mark.parametrize("width, height, direction", [(1400, 900, "LR"), (700, 1400, "TB")])
def test_a_long_chain_is_laid_out_along_the_window(watched: Watched, tmp_path: Path, width: int, height: int,
                                                   direction: str) -> None:
    path = chain_graph(tmp_path, 12)
    out = tmp_path / "chain.html"
    assert CliRunner().invoke(cli, ["html", str(path), "-o", str(out)]).exit_code == 0
    watched.page.set_viewport_size({"width": width, "height": height})
    watched.open(out.as_uri())
    boxes = [watched.page.locator(f'g.node[data-name="{name}"]').bounding_box() for name in ("n0", "n11")]
    along = "x" if direction == "LR" else "y"
    across = "y" if direction == "LR" else "x"
    assert boxes[1][along] > boxes[0][along] and abs(boxes[1][across] - boxes[0][across]) < 5
    assert watched.page.get_attribute("body", "data-direction") == direction
