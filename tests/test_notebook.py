"""cgraph in a notebook, for real: docs/notebook.ipynb executed by nbclient on a python3 kernel
(the running interpreter's ipykernel), its cells' HTML outputs written to a file and opened in
Chromium by playwright, where the pages inside the iframes show the book's numbers."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest

import cgraph

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "notebook.ipynb"
# "Deep Learning from Scratch", 5.4: the price and the gradients of the inputs, dout 1
BOOK = {"price": 715, "apple": 2.2, "apple_num": 110, "orange": 3.3, "orange_num": 165, "tax": 650}


def needs(module: str):
    """``module``, or the test skipped saying that it is missing."""
    return pytest.importorskip(module, reason=f"{module} is not installed (pip install '.[test]')")


def test_the_notebook_is_committed_without_outputs() -> None:
    nbformat = needs("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.fixture(scope="module")
def executed() -> list:
    """The notebook's cells after nbclient ran them in docs/, a last cell naming the kernel's Python."""
    nbformat, nbclient = needs("nbformat"), needs("nbclient")
    needs("ipykernel")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("import sys, cgraph\nprint(sys.executable, cgraph.__file__)"))
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    return notebook.cells


def outputs(cell, kind: str) -> list[str]:
    return [output["data"][kind] for output in cell.get("outputs", []) if kind in output.get("data", {})]


def test_the_kernel_is_this_python_with_this_cgraph(executed: list) -> None:
    printed = "".join(output.get("text", "") for output in executed[-1].outputs)
    assert printed.split() == [sys.executable, cgraph.__file__]


def test_the_cells_give_the_books_numbers_and_show_the_page_and_the_chain_rule(executed: list) -> None:
    code = [cell for cell in executed if cell.cell_type == "code"]
    assert float(outputs(code[0], "text/plain")[0]) == pytest.approx(100 * 2 * 1.1 + 150 * 3 * 1.1)
    grads = outputs(code[1], "text/plain")[0]
    for name in ("apple", "apple_num", "orange", "orange_num", "tax"):
        value = float(re.search(rf"'{name}': ([-0-9.e]+)", grads).group(1))
        assert value == pytest.approx(BOOK[name]), name
    frame, = outputs(code[2], "text/html")
    assert frame.startswith("<iframe") and 'srcdoc="&lt;!DOCTYPE html&gt;' in frame
    # the page's own policy travels inside it: no network
    assert "connect-src &#x27;none&#x27;" in frame and "default-src &#x27;none&#x27;" in frame
    explained, = outputs(code[3], "text/html")
    text = html.unescape(explained)
    assert text.startswith('<pre class="cgraph-explain">backward, output \'price\', dout = 1')
    assert re.search(r"d tax\s+= dout \* all_price = 1 \* 650\s+= 650", text)
    plain_text = text.removeprefix('<pre class="cgraph-explain">').removesuffix("</pre>")
    assert outputs(code[3], "text/plain")[0] == plain_text
    assert outputs(code[5], "text/html")[0].startswith("<iframe")


def number_pattern(number: float) -> str:
    """A number as text, not part of a longer number: 2.2 but not 2.25 or 12.2."""
    return rf"(?<![\d.]){re.escape(f'{number:g}')}(?![\d])"


def test_the_pages_in_the_cells_show_the_numbers_in_chromium(executed: list, tmp_path: Path) -> None:
    playwright_api = needs("playwright.sync_api")
    from test_browser import CHROMIUM_ARGS, chromium_path

    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found (Debian and Ubuntu: apt-get install chromium; or set CGRAPH_CHROMIUM)")
    shown = "\n".join(output for cell in executed for output in outputs(cell, "text/html"))
    path = tmp_path / "notebook-outputs.html"  # kept among the test's artefacts
    path.write_text(f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'></head><body>\n{shown}\n</body></html>\n")
    blocked: list[str] = []
    errors: list[str] = []

    def route(request_route) -> None:
        if request_route.request.url.startswith(("file:", "about:")):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.route("**/*", route)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.goto(path.as_uri())
        handles = page.query_selector_all("iframe.cgraph-page")
        frames = [handle.content_frame() for handle in handles]
        assert len(frames) == 2
        for frame in frames:
            frame.wait_for_selector('body[data-state="ready"]', state="attached", timeout=60_000)
        apple_text = " ".join(frames[0].eval_on_selector_all("svg text", "texts => texts.map(t => t.textContent)"))
        for name, number in BOOK.items():
            assert re.search(number_pattern(number), apple_text), (name, apple_text)
        names = frames[1].eval_on_selector_all("g.node", "groups => groups.map(group => group.dataset.name)")
        assert {"x", "W1", "b1", "W2", "b2", "loss"} <= set(names)
        for number, handle in enumerate(handles, 1):  # kept among the test's artefacts
            handle.scroll_into_view_if_needed()
            handle.screenshot(path=str(tmp_path / f"notebook-page-{number}.png"))
        browser.close()
    assert blocked == [] and errors == []


def test_a_graph_the_page_cannot_show_gives_its_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from cgraph import html as pages

    monkeypatch.setattr(pages, "MAX_DRAWN", 3)
    graph = cgraph.load(str(ROOT / "graphs" / "buy_apple.yaml"))
    shown = graph._repr_html_()
    assert shown.startswith('<pre class="cgraph-error">cgraph: error: the page draws at most 3 inputs and nodes')
    assert graph.grads["tax"] == pytest.approx(200)  # backward ran, as for a page


def test_explain_is_the_chain_rule_text_in_every_form() -> None:
    graph = cgraph.load(str(ROOT / "graphs" / "buy_apple.yaml"))
    explained = graph.explain()
    # d apple = dout * apple_num * tax = 2 * 1.1, d tax = apple * apple_num = 200 (the book's 5.4)
    assert re.search(r"d apple\s+= dout \* apple_num = 1\.1 \* 2\s+= 2\.2$", str(explained), re.MULTILINE)
    assert re.search(r"d tax\s+= dout \* apple_price = 1 \* 200\s+= 200$", str(explained), re.MULTILINE)
    printed = []

    class Printer:
        def text(self, text: str) -> None:
            printed.append(text)

    explained._repr_pretty_(Printer(), False)
    assert printed == [str(explained)] and repr(explained) == str(explained)
    assert html.unescape(explained._repr_html_()) == f'<pre class="cgraph-explain">{explained}</pre>'
