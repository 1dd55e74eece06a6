"""`cgraph dot`: DOT text with the expected labels, parsed by Graphviz where it is installed, and --render."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cgraph.cli import cli

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
APPLE = str(GRAPHS / "buy_apple.yaml")
RED = "#c0392b"

has_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, ["dot", *args], input=stdin)


# buy_apple.yaml: apple_price = 100 * 2 = 200, price = 200 * 1.1 = 220; backward from dout 1:
# d apple_price = 1.1, d tax = 200, d apple = 1.1 * 2 = 2.2, d apple_num = 1.1 * 100 = 110.
APPLE_BACKWARD = f"""\
digraph cgraph {{
  rankdir=LR;
  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];
  edge [fontname="Helvetica", fontsize=10];
  "apple" [label=<<b>apple</b><br/>input, shape ()<br/>value 100<br/><font color="{RED}">grad 2.2</font>>, fillcolor="#e3eefb"];
  "apple_num" [label=<<b>apple_num</b><br/>input, shape ()<br/>value 2<br/><font color="{RED}">grad 110</font>>, fillcolor="#e3eefb"];
  "tax" [label=<<b>tax</b><br/>input, shape ()<br/>value 1.1<br/><font color="{RED}">grad 200</font>>, fillcolor="#e3eefb"];
  "apple_price" [label=<<b>apple_price</b><br/>mul, shape ()<br/>value 200<br/><font color="{RED}">grad 1.1</font>>, fillcolor="#fdf2d0"];
  "price" [label=<<b>price</b><br/>mul, shape ()<br/>value 220<br/><font color="{RED}">grad 1</font>>, fillcolor="#fdf2d0", penwidth=2];
  "apple" -> "apple_price" [label="2.2", fontcolor="{RED}"];
  "apple_num" -> "apple_price" [label="110", fontcolor="{RED}"];
  "apple_price" -> "price" [label="1.1", fontcolor="{RED}"];
  "tax" -> "price" [label="200", fontcolor="{RED}"];
}}
"""


def test_backward_dot_of_the_book_example() -> None:
    result = run(APPLE, "--backward")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == APPLE_BACKWARD


def test_forward_dot_has_values_and_no_gradients() -> None:
    text = run(APPLE).stdout
    assert "value 220" in text and "grad" not in text and "label=\"" not in text
    assert re.findall(r"^  (\"\w+\" -> \"\w+\");$", text, re.MULTILINE) == [
        '"apple" -> "apple_price"', '"apple_num" -> "apple_price"', '"apple_price" -> "price"', '"tax" -> "price"']


def test_same_file_same_bytes() -> None:
    path = str(GRAPHS / "bias_batch.yaml")
    assert run(path, "--backward").stdout_bytes == run(path, "--backward").stdout_bytes


def test_fan_out_draws_one_edge_per_use_with_its_gradient() -> None:
    text = run(str(GRAPHS / "fan_out.yaml"), "--backward").stdout
    # x * x gives x two contributions of 3 through square, and y one of 1: grad 7.
    assert text.count(f'"x" -> "square" [label="3", fontcolor="{RED}"];') == 2
    assert f'"x" -> "y" [label="1", fontcolor="{RED}"];' in text
    assert "grad 7</font>" in text


def test_arrays_show_values_when_small_and_only_shapes_when_large() -> None:
    text = run(str(GRAPHS / "bias_batch.yaml"), "--backward").stdout
    assert "<b>w</b><br/>input, shape (2,)<br/>value [10, 100]<br/>" in text
    assert 'grad [9, 12]</font>' in text
    graph = "inputs: {a: {shape: [3, 3], fill: 1}, s: 2}\nnodes: {m: {op: mul, inputs: [a, s]}}\n"
    text = run("-", "--backward", stdin=graph).stdout
    assert (f'"a" [label=<<b>a</b><br/>input, shape (3, 3)<br/>value (3, 3) array<br/>'
            f'<font color="{RED}">grad (3, 3) array</font>>') in text
    assert f'"s" [label=<<b>s</b><br/>input, shape ()<br/>value 2<br/><font color="{RED}">grad 9</font>>' in text
    assert f'"a" -> "m" [label="(3, 3) array", fontcolor="{RED}"];' in text
    assert f'"s" -> "m" [label="9", fontcolor="{RED}"];' in text


def test_full_writes_large_arrays_whole_one_row_a_line() -> None:
    # m = a * s with a (3, 3) of ones and s = 2: m is 2 everywhere, d a = dout * s = 2, d s = 9.
    graph = "inputs: {a: {shape: [3, 3], fill: 1}, s: 2}\nnodes: {m: {op: mul, inputs: [a, s]}}\n"
    text = run("-", "--backward", "--full", stdin=graph).stdout
    left = '<br align="left"/>'
    rows = [f"{'[[' if i == 0 else '&#160;['}2.&#160;2.&#160;2.]{']' if i == 2 else ''}{left}" for i in range(3)]
    assert f'value {left}<font face="Courier">{"".join(rows)}</font>' in text
    assert f'"a" -> "m" [label="[[2. 2. 2.]\\l [2. 2. 2.]\\l [2. 2. 2.]]\\l", fontcolor="{RED}"];' in text


def test_default_precision_keeps_the_boxes_narrow() -> None:
    # 1 / 3 to 4 digits by default, as many as asked for with --precision.
    graph = "inputs: {a: 1, b: 3}\nnodes: {q: {op: div, inputs: [a, b]}}\n"
    assert "value 0.3333>" in run("-", stdin=graph).stdout
    assert "value 0.33333333>" in run("-", "--precision", "8", stdin=graph).stdout
    # The book's network: the widest row of a box, b1's gradient of 5 numbers, stays under 40 characters
    # (at 8 digits it is about 60).
    labels = re.findall(r"label=<(.*)>, fill", run(str(GRAPHS / "two_layer_net.yaml"), "--backward").stdout)
    rows = [re.sub(r"<[^>]*>", "", row) for label in labels for row in label.split("<br/>")]
    assert max(map(len, rows)) < 40, max(rows, key=len)


def test_node_option_draws_only_those_names() -> None:
    text = run(str(GRAPHS / "buy_apple_orange.yaml"), "--node", "tax", "--node", "price", "--node", "apple").stdout
    assert re.findall(r'^  "(\w+)" \[', text, re.MULTILINE) == ["apple", "tax", "price"]
    assert re.findall(r"^  (\"\w+\" -> \"\w+\");$", text, re.MULTILINE) == ['"tax" -> "price"']


def test_errors_are_the_cores() -> None:
    result = run(str(GRAPHS / "matrices.yaml"), "--backward", "--dout", "[1, 2, 3]")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("cgraph: error: --dout: shape (3,) does not broadcast")


KEYWORDS = "inputs: {node: 1, graph: 2, edge: 3, 苹果: 4}\nnodes:\n  digraph: {op: mul, inputs: [node, graph]}\n  strict: {op: add, inputs: [digraph, edge]}\n  subgraph: {op: mul, inputs: [strict, 苹果]}\n"


@has_dot
@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda path: path.name)
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_graphviz_parses_every_example(path: Path, backward: bool) -> None:
    text = run(str(path), *(["--backward"] if backward else [])).stdout
    svg = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True)
    assert svg.returncode == 0 and svg.stderr == "", svg.stderr
    assert svg.stdout.count('class="node"') == text.count("[label=<")
    assert svg.stdout.count('class="edge"') == text.count(" -> ")


@has_dot
def test_graphviz_takes_names_that_are_dot_keywords_or_not_ascii() -> None:
    text = run("-", "--backward", stdin=KEYWORDS).stdout
    svg = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True)
    assert svg.returncode == 0, svg.stderr
    assert "<title>subgraph</title>" in svg.stdout.decode() and "<title>苹果</title>" in svg.stdout.decode()


@has_dot
def test_render_writes_an_svg_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "apple.svg"
    result = run(APPLE, "--backward", "--render", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    svg = out.read_text()
    assert "<svg" in svg and ">grad 2.2</text>" in svg
    assert os.listdir(tmp_path) == ["apple.svg"]
    assert out.stat().st_mode & stat.S_IRUSR


def _fake_dot(folder: Path, script: str) -> None:
    folder.mkdir()
    program = folder / "dot"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(0o755)


def test_render_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A dot that writes half a file and fails.
    _fake_dot(tmp_path / "bin", 'for a; do case "$a" in -o) o=1;; *) [ -n "$o" ] && echo half > "$a"; o=;; esac; done\n'
                                "echo 'Error: syntax error in line 3' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    out = tmp_path / "graph.png"
    out.write_bytes(b"old")
    result = run(APPLE, "--render", str(out))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "cgraph: error: --render: dot failed: Error: syntax error in line 3\n"
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["bin", "graph.png"]


def test_render_without_graphviz_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run(APPLE, "--render", str(tmp_path / "graph.svg"))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Graphviz program 'dot', which is not installed" in result.stderr
    assert "apt-get install graphviz" in result.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("target, message", [
    ("graph.gif", "does not end in .svg, .png, .pdf"),
    pytest.param("missing/graph.svg", "cannot write", marks=has_dot),
])
def test_render_refuses_unknown_formats_and_missing_folders(tmp_path: Path, target: str, message: str) -> None:
    result = run(APPLE, "--render", str(tmp_path / target))
    assert result.exit_code == 1 and result.stdout == ""
    assert message in result.stderr
