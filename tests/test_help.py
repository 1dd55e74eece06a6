"""Help stands on its own: `cgraph --help` shows a graph file and the command that runs it and
points at docs/ by path; every command's help has examples, and each of them runs (as the real
`cgraph` command, in a folder holding the example graphs) and prints what the help shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import click
import pytest
from docs_examples import ROOT, add_tools, output_matches

from cgraph.cli import cli



def help_text(*command: str) -> str:
    """The help of ``cgraph COMMAND``, from the real command."""
    done = subprocess.run([sys.executable, "-m", "cgraph", *command, "--help"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "200"}, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert all(line.isprintable() for line in done.stdout.splitlines()), "a control character in the help"
    return done.stdout


def examples(text: str) -> list[tuple[str, list[str]]]:
    """The ``$ cgraph ...`` commands of a help's Example(s) section (continued by a trailing
    backslash), each with the lines shown under it."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.strip() in ("Example:", "Examples:")) + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith(" "):  # Options:
            break
        block.append(line)
    found: list[tuple[str, list[str]]] = []
    continued = False
    for line in textwrap.dedent("\n".join(block)).splitlines():
        if continued:
            found[-1] = (found[-1][0] + " " + line.strip().rstrip("\\").strip(), [])
        elif line.startswith("$ cgraph "):
            found.append((line[2:].rstrip("\\").strip(), []))
        elif found:
            found[-1][1].append(line.rstrip())
        continued = line.endswith("\\")
    return found


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A folder holding the example graphs as graphs/ and the command `cgraph` on its PATH."""
    add_tools(tmp_path)
    return tmp_path


def run_shown(command: str, folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{folder / '.bin'}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def check_runs(command: str, shown: list[str], folder: Path) -> None:
    done = run_shown(command, folder)
    assert done.returncode == 0, (command, done.stderr)
    if any(line.strip() for line in shown):
        actual = done.stdout if done.stdout else done.stderr  # lint's warnings are on stderr
        assert output_matches(shown, actual.splitlines()), (command, actual)


COMMANDS = cli.list_commands(click.Context(cli))


@pytest.mark.parametrize("command", [name for name in COMMANDS if name != "serve"])
def test_each_commands_help_has_examples_that_run_and_print_what_it_shows(command: str, folder: Path) -> None:
    shown = examples(help_text(command))
    assert shown, f"cgraph {command} --help has no example"
    assert any(line.startswith(f"cgraph {command} ") for line, _ in shown)
    if any(("--render" in line) for line, _ in shown) and shutil.which("dot") is None:
        pytest.skip("needs Graphviz's dot")
    if command == "onnx":
        pytest.importorskip("onnx", reason="cgraph onnx needs the onnx package (pip install '.[onnx]')")
    for line, output in shown:
        check_runs(line, output, folder)


def test_serves_help_example_serves_the_page(folder: Path) -> None:
    (line, shown), = examples(help_text("serve"))
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", shown[0])
    env = {**os.environ, "PATH": f"{folder / '.bin'}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=folder, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    assert b"<html" in response.read(4096).lower()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_top_level_help_shows_a_graph_file_and_the_command_that_runs_it(folder: Path) -> None:
    text = help_text()
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.rstrip().endswith("price.yaml:")) + 1
    graph = textwrap.dedent("\n".join(lines[start:lines.index("", start + 1)])).strip("\n")
    assert len(graph.splitlines()) == 5 and graph.startswith("inputs:")
    (folder / "price.yaml").write_text(graph + "\n")
    (line, shown), = [example for example in examples_after(text, "runs forward and backward")]
    assert line == "cgraph explain price.yaml"
    check_runs(line, shown, folder)
    # the book's numbers, computed independently: d apple = tax, d tax = apple
    assert any(re.search(r"d apple .*= 1\.1$", row) for row in shown)
    assert any(re.search(r"d tax .*= 100$", row) for row in shown)
    for path in ("docs/commands.md", "docs/format.md", "docs/ops.md"):
        assert path in text and (ROOT / path).is_file()
    more = [row.strip() for row in text.split("More, with the example")[1].split("'cgraph COMMAND")[0].splitlines()]
    commands = [row for row in more if row.startswith("cgraph ")]
    assert len(commands) >= 3
    for command in commands:
        check_runs(command, [], folder)


def examples_after(text: str, heading: str) -> list[tuple[str, list[str]]]:
    """The ``$ cgraph`` examples of the indented block after the paragraph starting with ``heading``."""
    after = text.split(heading, 1)[1].split("\n", 1)[1]
    return examples("Examples:\n" + after.split("\n  A node may")[0])
