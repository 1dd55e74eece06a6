"""docs/gradients.md: each `$ cgraph ...` example prints what the page shows, and the example
gradient graph in graphs/ is what cgraph grad writes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from cgraph.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "gradients.md").read_text()


def _examples() -> list[tuple[str, list[str]]]:
    found = []
    for block in re.findall(r"```console\n(.*?)```", PAGE, re.DOTALL):
        lines = block.splitlines()
        assert lines[0].startswith("$ cgraph ")
        if "|" not in lines[0]:  # pipes run in a shell, in tests/test_docs.py
            found.append((lines[0][2:], lines[1:]))
    return found


EXAMPLES = _examples()


def test_the_page_shows_grad_hessian_check_and_backward():
    assert {command.split()[1] for command, _ in EXAMPLES} == {"grad", "hessian", "check", "backward"}


@pytest.mark.parametrize(("command", "expected"), EXAMPLES, ids=[command for command, _ in EXAMPLES])
def test_example(command, expected, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, shlex.split(command)[1:])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_the_example_gradient_graph_is_what_grad_writes(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["grad", "graphs/buy_apple.yaml"])
    assert result.stdout == (ROOT / "graphs" / "buy_apple_grad.yaml").read_text()

