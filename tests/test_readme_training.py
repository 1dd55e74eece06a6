"""The README's Training section runs as written: each `$ cgraph` command in it gives the output shown
('...' stands for any lines), run from a folder holding the examples as graphs/."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from cgraph.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECTION = README[README.index("\n## Training\n"):README.index("\n## Examples\n")]


def _examples() -> list[tuple[str, list[str]]]:
    found = []
    for block in re.findall(r"```console\n(.*?)```", SECTION, re.DOTALL):
        command, expected = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command:
                    found.append((command, expected))
                command, expected = line[2:], []
            else:
                expected.append(line)
        if command:
            found.append((command, expected))
    return found


EXAMPLES = _examples()


def test_the_section_shows_train_sweep_and_the_written_graph():
    commands = [command.split()[1] for command, _ in EXAMPLES]
    assert commands.count("train") == 3 and commands.count("sweep") == 2 and "forward" in commands
    assert "cgraph sweep graphs/buy_apple_orange.yaml --vary tax=1:1.999:1000" in SECTION


def test_the_commands_give_the_output_shown(tmp_path, monkeypatch):
    (tmp_path / "graphs").symlink_to(ROOT / "graphs")
    monkeypatch.chdir(tmp_path)  # in order: the written graph is read by a later command
    for command, expected in EXAMPLES:
        result = CliRunner().invoke(cli, shlex.split(command)[1:])
        assert result.exit_code == 0, (command, result.output)
        pattern = "\n".join(".*?" if line == "..." else re.escape(line) for line in expected)
        assert re.fullmatch(pattern, result.stdout.rstrip("\n"), re.DOTALL), (command, result.stdout)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "adam"])
def test_the_optimizer_table_gives_each_default_that_help_gives(name):
    row = next(line for line in SECTION.splitlines() if line.startswith(f"| `{name}`"))
    from cgraph.optim import OPTIMIZERS

    defaults = OPTIMIZERS[name]().settings()
    for key, value in defaults.items():
        assert f"--{key} {value:g}".replace("e-0", "e-") in row, (key, row)  # 1e-07 written 1e-7
