"""The graphs that cgraph grad writes go through every other command that reads graphs: explain,
dot, html and lint run on each example graph's gradient graph, and lint warns about nothing in it
that it does not warn about in the example itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cgraph.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(path.name for path in (ROOT / "graphs").glob("*.yaml"))


def _warned(result) -> set[str]:
    """The names lint's warnings are placed at (each line: FILE:LINE:COL: warning: input 'x' ...)."""
    return {line.split("'")[1] for line in result.stdout.splitlines() if ": warning: " in line}


@pytest.fixture(scope="module")
def gradient_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gradients")
    files = {}
    for name in EXAMPLES:
        out = folder / name.replace(".yaml", "_grad.yaml")
        result = CliRunner().invoke(cli, ["grad", str(ROOT / "graphs" / name), "-o", str(out)])
        assert result.exit_code == 0, result.stderr
        files[name] = out
    return files


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("command", [["explain"], ["dot"], ["html", "-o", "{page}"], ["lint"]])
def test_every_command_reads_the_gradient_graph(name, command, gradient_files, tmp_path):
    path = gradient_files[name]
    args = [arg.format(page=tmp_path / "page.html") for arg in command]
    result = CliRunner().invoke(cli, [*args[:1], str(path), *args[1:]])
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr and "error:" not in result.stderr
    if command[0] == "html":
        page = (tmp_path / "page.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and "grad_" in page
    elif command[0] == "dot":
        assert result.stdout.startswith("digraph") and "grad_" in result.stdout
    elif command[0] == "explain":
        assert "grad_" in result.stdout


@pytest.mark.parametrize("name", EXAMPLES)
def test_lint_warns_about_no_more_than_in_the_original(name, gradient_files):
    original = CliRunner().invoke(cli, ["lint", str(ROOT / "graphs" / name)])
    gradient = CliRunner().invoke(cli, ["lint", str(gradient_files[name])])
    assert _warned(gradient) <= _warned(original), gradient.stdout


def test_lint_still_warns_about_a_value_no_output_uses(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("inputs:\n  x: [1.0, 2.0]\nnodes:\n  y: sum(x * x)\n  z: x + 1\n  w: sum(z)\n"
                    "output: y\noutputs: [y]\n")
    result = CliRunner().invoke(cli, ["lint", str(path)])
    assert _warned(result) == {"z", "w"}
    path.write_text(path.read_text().replace("outputs: [y]", "outputs: [y, w]"))
    assert _warned(CliRunner().invoke(cli, ["lint", str(path)])) == set()


def test_html_of_the_gradient_graph_through_a_pipe(tmp_path):
    """`cgraph grad f.yaml | cgraph html - -o page.html`, as docs/gradients.md shows."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cgraph = f'"{sys.executable}" -m cgraph'
    done = subprocess.run(["bash", "-o", "pipefail", "-c",
                           f"{cgraph} grad graphs/buy_apple_orange.yaml | {cgraph} html - -o {tmp_path / 'page.html'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
    page = (tmp_path / "page.html").read_text()
    assert "grad_orange_num" in page and "grad_tax" in page


@pytest.mark.parametrize(("outputs", "message"), [
    ("y", "outputs must be a list of nodes' names, got"),
    ("[]", "outputs must be a list of nodes' names, got"),
    ("[y, 3]", "outputs: each must be a node's name, got"),
    ("[y, x]", "outputs: 'x' is an input; an output must be a node"),
    ("[y, zz]", "outputs: unknown node 'zz'"),
])
def test_outputs_that_are_not_nodes_are_refused_at_their_place(outputs, message, tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(f"inputs:\n  x: [1.0, 2.0]\nnodes:\n  y: sum(x * x)\n  z: sum(x)\noutputs: {outputs}\n")
    result = CliRunner().invoke(cli, ["forward", str(path)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"{path}:6:") and message in result.stderr and result.stderr.count("\n") == 1


def test_without_output_the_first_of_outputs_is_the_output(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("inputs:\n  x: [1.0, 2.0]\nnodes:\n  y: sum(x * x)\n  z: sum(x)\noutputs: [z, y]\n")
    assert CliRunner().invoke(cli, ["forward", str(path)]).stdout.startswith("forward, output 'z'")
