"""The docs cannot drift from the program: every `$ cgraph ...` command shown in README.md, docs/*.md
and bench/README.md runs and gives the output shown under it (by the rules of docs_examples), every
`cgraph` line of their sh blocks runs without error, the links between them resolve, and the
README stays short, with the set-up commands CI runs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jq_standin
import pytest
from click.testing import CliRunner
from docs_examples import (
    DOC_FILES,
    JQ,
    ROOT,
    Example,
    add_tools,
    examples,
    line_matches,
    output_matches,
)

from cgraph.cli import cli

EXAMPLES = [example for doc in DOC_FILES for example in examples(doc)]
README = (ROOT / "README.md").read_text()
SVG = ROOT / "docs" / "buy_apple_orange.svg"
_SHELL = re.compile(r"[|;<>&`$]|^\w+=|^for ")


def _skip_reason(example: Example) -> str | None:
    command = example.command
    if command.startswith("cgraph serve"):
        return "cgraph serve runs until it is stopped (tests/test_html.py and tests/test_browser.py drive it)"
    if command.startswith("for tax in $(seq"):
        return "starts a thousand processes; the sweep it is compared with is run"
    if ("--render" in command or "| dot " in command) and shutil.which("dot") is None:
        return "needs Graphviz's dot"
    if "| jq" in command and JQ is None:
        for part in command.split("| jq")[1:]:
            if not jq_standin.supports(shlex.split(re.split(r"[|;]", part)[0])):
                return f"jq is not installed, and its stand-in does not take {part.strip()!r}"
    return None


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    """A folder per doc, holding the example graphs as graphs/, in which its commands run in order."""
    return {}


def _folder(folders: dict[Path, Path], factory: pytest.TempPathFactory, doc: Path) -> Path:
    if doc not in folders:
        folder = factory.mktemp(doc.stem)
        add_tools(folder)
        (folder / "docs").mkdir()
        folders[doc] = folder
    return folders[doc]


def _run(example: Example, folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """The exit status, standard output and standard error of the example run in ``folder``."""
    if _SHELL.search(example.command):
        env = {**os.environ, "PATH": f"{folder / '.bin'}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
        done = subprocess.run(["bash", "-o", "pipefail", "-c", example.command], cwd=folder, env=env, check=False,
                              capture_output=True, text=True, timeout=600)
        return done.returncode, done.stdout, done.stderr
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(cli, shlex.split(example.command)[1:])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_the_docs_example_gives_the_output_shown(example: Example, folders: dict[Path, Path],
                                                 tmp_path_factory: pytest.TempPathFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if reason := _skip_reason(example):
        pytest.skip(reason)
    folder = _folder(folders, tmp_path_factory, example.doc)
    for name, text in example.files.items():
        (folder / name).write_text(text)
    status, stdout, stderr = _run(example, folder, monkeypatch)
    shows_an_error = any("error:" in line for line in example.expected)
    if shows_an_error:
        assert status == 1, (status, stdout, stderr)
        assert stdout == "", stdout
        actual = stderr
    else:
        assert status == 0, (status, stderr)
        actual = stdout
    if example.shown_output:
        assert output_matches(example.expected, actual.splitlines()), actual


def test_every_doc_shows_commands_that_run() -> None:
    shown = {example.doc.name if example.doc.parent.name == "docs" else str(example.doc.relative_to(ROOT))
             for example in EXAMPLES if example.shown_output}
    assert {"README.md", "commands.md", "formulas.md", "ops.md", "pipelines.md", "training.md",
            "limits.md", "format.md"} <= shown
    commands = {example.command.split()[1] for example in EXAMPLES if example.command.startswith("cgraph ")}
    assert {"forward", "backward", "explain", "dot", "check", "lint", "html", "train", "sweep"} <= commands


def test_the_comparison_rules_can_fail() -> None:
    assert line_matches('{"loss":0.16163}', '{"loss":0.1616258943780722}')
    assert line_matches('{"loss":0.1616258943780722}', '{"loss":0.16162589437807223}')
    assert not line_matches('{"loss":0.16163}', '{"loss":0.16164}')
    assert not line_matches("shape (3, 2)", "shape (3, 3)")
    assert line_matches("a:  1.5", "a:    1.5")
    assert not line_matches("a 1.5", "a1.5")
    assert output_matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert not output_matches(["a", "...", "d"], ["a", "b", "c"])
    assert not output_matches(["a"], ["a", "b"])


def test_the_readme_fits_on_a_screen_or_two_and_links_every_doc() -> None:
    assert len(README.splitlines()) <= 200
    linked = set(re.findall(r"\]\((docs/[\w.]+\.md)", README))
    assert linked == {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")}
    assert "](bench/README.md)" in README
    assert "](docs/page.png)" in README and (ROOT / "docs" / "page.png").is_file()


def test_the_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = "pip install '.[test]' && python -m pytest"
    assert test_command in README and test_command in ci
    assert "python3 -m venv .venv && . .venv/bin/activate && pip install . && cgraph backward graphs/buy_apple_orange.yaml" in README


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOC_FILES, ids=[str(doc.relative_to(ROOT)) for doc in DOC_FILES])
def test_every_link_between_the_docs_resolves(doc: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"\w+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        assert linked.exists(), target
        if anchor:
            headings = re.findall(r"^#+ (.*)$", linked.read_text(), re.MULTILINE)
            assert anchor in {_anchor(heading) for heading in headings}, target


def test_the_readme_picture_is_what_the_tool_draws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Graphviz's layout differs between versions: compare where the installed one made the picture.
    made_by = re.search(r"Generated by graphviz version (\S+)", SVG.read_text())
    assert made_by
    program = shutil.which("dot")
    if program is None or made_by.group(1) not in subprocess.run([program, "-V"], check=False, capture_output=True, text=True).stderr:
        pytest.skip(f"needs Graphviz {made_by.group(1)}")
    monkeypatch.chdir(ROOT)
    out = tmp_path / "picture.svg"
    result = CliRunner().invoke(cli, ["dot", "graphs/buy_apple_orange.yaml", "--backward", "--render", str(out)])
    assert result.exit_code == 0, result.stderr
    assert out.read_text() == SVG.read_text()
    assert "cgraph dot graphs/buy_apple_orange.yaml --backward --render docs/buy_apple_orange.svg" in (ROOT / "docs" / "commands.md").read_text()


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "adam"])
def test_the_optimizer_table_gives_each_default_that_help_gives(name: str) -> None:
    from cgraph.optim import OPTIMIZERS

    training = (ROOT / "docs" / "training.md").read_text()
    row = next(line for line in training.splitlines() if line.startswith(f"| `{name}`"))
    for key, value in OPTIMIZERS[name]().settings().items():
        assert f"--{key} {value:g}".replace("e-0", "e-") in row, (key, row)  # 1e-07 written 1e-7
