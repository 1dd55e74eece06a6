"""`cgraph html` and `cgraph serve` without a browser: the page's bytes, policy, data and errors,
and the server's paths, updates and Ctrl-C. The page in a browser: test_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cgraph.cli import cli
from cgraph.html import MAX_DRAWN

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
APPLE = str(GRAPHS / "buy_apple.yaml")
APPLE_ORANGE = str(GRAPHS / "buy_apple_orange.yaml")
BIAS = str(GRAPHS / "bias_batch.yaml")


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def embedded(page: str, element_id: str):
    """The JSON in the page's <script type="application/json" id=...> element."""
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.DOTALL)
    assert found, element_id
    return json.loads(found.group(1))


def plain(value):
    """The page's data with each embedded array (base64 of little-endian float32 or float64 numbers
    in C order) decoded into nested lists, as the other commands' JSON writes arrays."""
    if isinstance(value, dict) and set(value) >= {"shape", "bytes", "data"}:
        numbers = np.frombuffer(base64.b64decode(value["data"]), dtype="<f4" if value["bytes"] == 4 else "<f8")
        shape = [-(-n // k) for n, k in zip(value["shape"], value["step"])] if "step" in value else value["shape"]
        return numbers.reshape(shape).tolist()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def test_page_embeds_exactly_what_backward_explain_and_check_print() -> None:
    page = run("html", BIAS, "--check").stdout
    data = embedded(page, "cgraph-data")
    assert data["backward"]["nodes"]["x"]["value"]["bytes"] == 8  # float64 numbers as binary, not as text
    data = plain(data)
    backward = json.loads(run("backward", BIAS, "--format", "json").stdout)
    input_grads = {name: entry.pop("input_grads") for name, entry in backward["nodes"].items() if "input_grads" in entry}
    for entry in backward["nodes"].values():
        entry.pop("input_shapes", None)
    labels = {name: entry.pop("label") for name, entry in data["backward"]["nodes"].items()}
    assert data["backward"] == backward and list(input_grads) == ["xw", "y"]
    assert labels == {"x": "input", "w": "input", "b": "input", "xw": "mul", "y": "add"}
    # Each array once: a step's own value and gradient are in the backward entries.
    for step in data["explain"]["steps"]:
        entry = data["backward"]["nodes"][step["name"]]
        if step["step"] == "node":
            step["value"], step["dout"] = entry["value"], entry["grad"]
            assert [grad["grad"] for grad in step["grads"]] == input_grads[step["name"]]
        else:
            step["grad"] = entry["grad"]
    assert data["explain"] == json.loads(run("explain", BIAS, "--format", "json").stdout)
    check = json.loads(run("check", BIAS, "--format", "json").stdout)
    assert data["check"] == check and [item["name"] for item in check["inputs"]] == ["x", "w", "b"]
    assert data["layers"]["xw"] == "MulLayer(x=x (3, 2), y=w (2,)) -> out (3, 2)"  # as the text view
    assert embedded(page, "cgraph-config") == {"live": False}


def test_a_box_names_the_constants_its_op_uses_as_dot_does() -> None:
    data = embedded(run("html", "-e", "y = 1 / x", "--set", "x=4").stdout, "cgraph-data")
    node = data["backward"]["nodes"]["y"]
    assert node["label"] == "div(1, ·)" and node["inputs"][1] == "x"
    assert "div(1, ·)" in run("dot", "-e", "y = 1 / x", "--set", "x=4").stdout


def test_float32_arrays_are_embedded_as_float32() -> None:
    data = embedded(run("html", "-e", "y = x * 2", "--set", "x={shape: [2, 3], random: normal, seed: 1, dtype: float32}").stdout,
                    "cgraph-data")
    value = data["backward"]["nodes"]["y"]["value"]
    assert value["bytes"] == 4 and value["dtype"] == "float32"
    x = np.array(plain(data["backward"]["nodes"]["x"]["value"]), dtype=np.float32)
    assert np.array_equal(np.array(plain(value), dtype=np.float32), x * np.float32(2))


def test_big_arrays_are_summarised_and_full_embeds_them_whole() -> None:
    # 300 x 100 = 30,000 elements: more than the 20,000 embedded whole.
    args = ["html", "-e", "y = x * 2", "--set", "x={shape: [300, 100], random: normal, seed: 3}"]
    summary = embedded(run(*args).stdout, "cgraph-data")["backward"]["nodes"]["y"]["value"]
    whole = np.array(plain(embedded(run(*args, "--full").stdout, "cgraph-data")["backward"]["nodes"]["y"]["value"]))
    assert whole.shape == (300, 100)
    assert summary["shape"] == [300, 100] and summary["min"] == whole.min() and summary["max"] == whole.max()
    # The sample keeps every step-th element along each axis, at most 4,096 of them, as float32.
    step = summary["step"]
    sample = np.array(plain(summary))
    assert sample.size <= 4096 and summary["bytes"] == 4
    assert np.array_equal(sample, whole[::step[0], ::step[1]].astype(np.float32))


def test_same_file_same_bytes_and_offline_policy() -> None:
    first, second = run("html", APPLE_ORANGE), run("html", APPLE_ORANGE)
    assert first.exit_code == 0, first.stderr
    assert first.stdout == second.stdout
    page = first.stdout
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page).group(1)
    directives = dict(item.strip().split(" ", 1) for item in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["connect-src"] == "'none'"
    assert directives["img-src"] == "data:"
    # Each inline script runs because its hash is allowed, and nothing else is.
    scripts = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert len(scripts) == 2
    hashes = {f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'" for text in scripts}
    assert set(directives["script-src"].split()) == hashes | {"'wasm-unsafe-eval'"}
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL).group(1)
    assert directives["style-src"] == f"'sha256-{base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()}'"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda path: path.name)
def test_every_example_makes_a_page_the_book_s_under_2_mb(path: Path) -> None:
    result = run("html", str(path))
    assert result.exit_code == 0, result.stderr
    # About 1.4 MB of each page is the layout library; SimpleConvNet's arrays of more than 20,000
    # numbers (W2 (4320, 100), the activations) are embedded as samples, which keeps it under 5 MB.
    limit = 5_000_000 if path.name == "simple_convnet.yaml" else 2_000_000
    assert len(result.stdout.encode()) < limit


def test_out_file_is_written_whole_and_stdout_stays_empty(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    result = run("html", APPLE, "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text(encoding="utf-8") == run("html", APPLE).stdout
    assert [path.name for path in tmp_path.iterdir()] == ["page.html"]  # no temporary file left


def test_errors_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs:\n  a: 1\nnodes:\n  b: {op: mul, inputs: [a, c]}\n")
    out = tmp_path / "page.html"
    result = run("html", str(bad), "-o", str(out))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"{bad}:4:28: error: node 'b' uses unknown name 'c'\n"
    assert not out.exists()
    result = run("html", APPLE, "-o", str(tmp_path / "missing" / "page.html"))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"cgraph: error: cannot write {tmp_path / 'missing' / 'page.html'}: ")
    assert result.stderr.count("\n") == 1


def test_no_page_on_a_terminal(tmp_path: Path) -> None:
    import pty

    primary, secondary = pty.openpty()
    try:
        result = subprocess.run([sys.executable, "-m", "cgraph", "html", APPLE], stdout=secondary,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(secondary)
        os.close(primary)
    assert result.returncode == 2
    assert result.stderr.startswith("cgraph: error: the page is HTML for a browser: write it to a file with -o OUT.html")


def test_standard_input_and_shared_options() -> None:
    text = (GRAPHS / "buy_apple.yaml").read_text()
    data = embedded(run("html", "-", "--set", "tax=2", "--dout", "3", stdin=text).stdout, "cgraph-data")
    assert data["file"] == "<stdin>"
    # price = 200 * 2 = 400; with dout 3, d tax = 3 * 200 = 600.
    assert data["backward"]["nodes"]["price"]["value"] == 400.0
    assert data["backward"]["nodes"]["tax"]["grad"] == 600.0
    assert data["precision"] == 4  # as dot's boxes
    assert embedded(run("html", APPLE, "--precision", "2").stdout, "cgraph-data")["precision"] == 2


def test_a_page_of_formulas_is_titled_with_them() -> None:
    data = embedded(run("html", "-e", "q = x + y", "-e", "f = q * z", "--set", "x=-2", "--set", "y=5",
                        "--set", "z=-4").stdout, "cgraph-data")
    assert data["file"] == "q = x + y; f = q * z"
    assert data["backward"]["nodes"]["x"]["grad"] == -4.0  # CS231n's circuit: df/dx = z


def test_node_keeps_the_named_nodes_and_their_neighbours() -> None:
    # all_price = apple_price + orange_price, and price = all_price * tax uses it.
    data = embedded(run("html", APPLE_ORANGE, "--node", "all_price").stdout, "cgraph-data")
    assert list(data["backward"]["nodes"]) == ["apple_price", "orange_price", "all_price", "price"]
    assert data["backward"]["nodes"]["price"]["inputs"] == ["all_price", "tax"]  # tax is not drawn
    assert data["backward"]["nodes"]["all_price"]["inputs"] == ["apple_price", "orange_price"]
    result = run("html", APPLE_ORANGE, "--node", "all_prices")
    assert result.exit_code == 1 and "unknown name 'all_prices'" in result.stderr


def test_big_graphs_are_refused_with_a_hint_to_use_node(tmp_path: Path) -> None:
    count = MAX_DRAWN + 1
    nodes = {f"n{k}": {"op": "neg", "inputs": [f"n{k - 1}" if k else "x"]} for k in range(count - 1)}
    path = tmp_path / "chain.json"
    path.write_text(json.dumps({"inputs": {"x": 1}, "nodes": nodes}))
    result = run("html", str(path))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"cgraph: error: the page draws at most {MAX_DRAWN:,} inputs and nodes and this graph "
                             f"has {count:,}: draw part of it with --node NAME (repeatable), which keeps NAME and "
                             "its neighbours\n")
    data = embedded(run("html", str(path), "--node", "n1000").stdout, "cgraph-data")
    assert list(data["backward"]["nodes"]) == ["n999", "n1000", "n1001"]


def test_layout_library_and_its_licences_ship_with_the_package() -> None:
    from importlib import resources

    static = resources.files("cgraph") / "static"
    notice = (static / "viz-LICENSE.txt").read_text(encoding="utf-8")
    for part in ("Viz.js: MIT License", "Graphviz: Eclipse Public License 1.0", "Expat: MIT License"):
        assert part in notice
    assert (static / "viz-global.js").read_text(encoding="utf-8").startswith("/*!\nViz.js 3.31.0")


# --- serve -----------------------------------------------------------------------------------


def start_server(path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "cgraph", "serve", str(path), "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), (url, process.stderr.read() if not url else "")
    return process, url


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    return process.returncode, stderr


def test_serve_answers_its_page_and_updates_only_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    graph = tmp_path / "apple.yaml"
    graph.write_text((GRAPHS / "buy_apple.yaml").read_text())
    process, url = start_server(graph)
    try:
        status, body = get(url)
        assert status == 200 and b'<meta http-equiv="Content-Security-Policy"' in body
        assert "connect-src 'self'" in body.decode()
        status, body = get(url + "update")
        update = json.loads(body)
        assert status == 200 and update["data"]["backward"]["nodes"]["price"]["value"] == pytest.approx(220.0)
        status, body = get(f"{url}update?have={update['version']}")
        assert json.loads(body) == {"version": update["version"]}  # unchanged: no data sent again
        for path in ("index.html", "apple.yaml", "../apple.yaml", "static/page.js", "update/x", "favicon.ico"):
            assert get(url + path)[0] == 404, path

        graph.write_text(graph.read_text().replace("tax: 1.1", "tax: 1.5"))
        os.utime(graph, ns=(time.time_ns() + 10**9,) * 2)  # a new modification time even on coarse clocks
        newer = json.loads(get(f"{url}update?have={update['version']}")[1])
        assert newer["version"] != update["version"]
        assert newer["data"]["backward"]["nodes"]["price"]["value"] == 300.0  # 200 * 1.5

        graph.write_text("inputs:\n  a: 1\nnodes:\n  b: {op: mul, inputs: [a, c]}\n")
        os.utime(graph, ns=(time.time_ns() + 2 * 10**9,) * 2)
        broken = json.loads(get(f"{url}update")[1])["data"]
        assert broken["error"] == f"{graph}:4:28: error: node 'b' uses unknown name 'c'"
        assert process.poll() is None  # still serving
    finally:
        code, stderr = stop(process)
    assert code == 130
    assert stderr.splitlines()[-1] == "cgraph: interrupted"
    assert len(stderr.splitlines()) == 2  # the line saying where it serves, and the one saying it stopped


def test_serve_needs_a_file_and_a_free_port(tmp_path: Path) -> None:
    for args in (["-"], ["-e", "f = x * y", "--set", "x=1", "--set", "y=2"]):
        result = run("serve", *args)
        assert result.exit_code == 2
        assert "serve watches a graph file for changes: give FILE (not standard input or -e)" in result.stderr
    graph = tmp_path / "apple.yaml"
    graph.write_text((GRAPHS / "buy_apple.yaml").read_text())
    process, url = start_server(graph)
    try:
        port = url.rsplit(":", 1)[1].strip("/")
        second = subprocess.run([sys.executable, "-m", "cgraph", "serve", str(graph), "--port", port],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 1 and second.stdout == ""
        assert second.stderr.startswith(f"cgraph: error: cannot listen on 127.0.0.1:{port}: ")
        assert second.stderr.endswith("; choose another with --port (0 picks a free one)\n")
    finally:
        stop(process)
