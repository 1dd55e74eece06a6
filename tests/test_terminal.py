"""What a terminal user gets besides the output: colour, shell completion, progress."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cgraph import console
from cgraph.cli import cli

ROOT = Path(__file__).resolve().parent.parent
APPLE = str(ROOT / "graphs" / "buy_apple.yaml")
pty = pytest.importorskip("pty")


def on_terminal(*args: str, env: dict[str, str] | None = None, stream: str = "stdout") -> tuple[str, str]:
    """Run cgraph with ``stream`` on a pseudo-terminal, NO_COLOR unset unless ``env`` sets it;
    return (what the terminal got, the other stream)."""
    env = {**{key: value for key, value in os.environ.items() if key != "NO_COLOR"}, **(env or {})}
    primary, secondary = pty.openpty()
    other = {"stdout": subprocess.PIPE} if stream == "stderr" else {"stderr": subprocess.PIPE}
    process = subprocess.Popen([sys.executable, "-m", "cgraph", *args], stdin=subprocess.DEVNULL,
                               **{stream: secondary}, **other, cwd=ROOT, env=env)
    os.close(secondary)
    received = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        received += chunk
    os.close(primary)
    rest = (process.stdout or process.stderr).read()
    process.wait(timeout=60)
    return received.decode().replace("\r\n", "\n"), rest.decode()


def test_text_output_in_colour_is_the_plain_output_painted() -> None:
    plain = CliRunner().invoke(cli, ["backward", APPLE, "--color", "never"]).stdout
    painted = CliRunner().invoke(cli, ["backward", APPLE, "--color", "always"]).stdout
    assert "\x1b[" not in plain
    assert click.unstyle(painted) == plain
    assert "\x1b[1mapple: input, shape ()\x1b[0m" in painted  # headings bold
    assert "\x1b[34m100.0\x1b[0m" in painted  # values blue
    assert "\x1b[31m2.2\x1b[0m" in painted  # gradients red


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert "\x1b[" not in CliRunner().invoke(cli, ["forward", APPLE]).stdout  # not a terminal
    terminal, _ = on_terminal("forward", APPLE)
    assert "\x1b[1m" in terminal and "value: " in click.unstyle(terminal)
    terminal, _ = on_terminal("forward", APPLE, env={"NO_COLOR": "1"})
    assert "\x1b[" not in terminal and "value: 220" in terminal.replace("220.00000000000003", "220")
    terminal, _ = on_terminal("forward", APPLE, "--color", "never")
    assert "\x1b[" not in terminal


def test_errors_and_warnings_in_colour_on_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("inputs: {a: 0}\nnodes: {b: {op: log, inputs: [a]}}\n")
    terminal, _ = on_terminal("forward", str(path), stream="stderr", env={"NO_COLOR": ""})  # empty: not set
    assert f"{path}:2:9: \x1b[33m\x1b[1mwarning:\x1b[0m node 'b'" in terminal
    terminal, _ = on_terminal("forward", "missing.yaml", stream="stderr", env={"NO_COLOR": ""})
    assert terminal == "cgraph: \x1b[31m\x1b[1merror:\x1b[0m cannot read missing.yaml: No such file or directory\n"


def complete(words: str, shell: str = "bash") -> list[str]:
    """What the shell would offer after ``words`` (the last being the word under the cursor)."""
    parts = words.split(" ")
    env = {**os.environ, "_CGRAPH_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    result = subprocess.run([sys.executable, "-m", "cgraph"], env=env, capture_output=True, text=True, cwd=ROOT,
                            timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_completion_of_names_from_the_graph_file() -> None:
    assert complete("cgraph forward graphs/buy_apple.yaml --node a") == [
        "plain,apple", "plain,apple_num", "plain,apple_price"]
    assert complete("cgraph backward graphs/buy_apple.yaml --output ") == ["plain,apple_price", "plain,price"]
    assert complete("cgraph forward graphs/buy_apple.yaml --set t") == ["plain,tax="]
    assert complete("cgraph forward graphs/buy_ap") == ["file,graphs/buy_ap"]  # the shell lists the files
    assert complete("cgraph forward missing.yaml --node ") == []  # no file: nothing, and no traceback
    assert complete("cgraph forward graphs/buy_apple.yaml --node p", "zsh") == ["plain", "price", "_"]


def test_completion_scripts_for_bash_zsh_and_fish() -> None:
    for shell in ("bash", "zsh", "fish"):
        env = {**os.environ, "_CGRAPH_COMPLETE": f"{shell}_source"}
        script = subprocess.run([sys.executable, "-m", "cgraph"], env=env, capture_output=True, text=True).stdout
        assert "_CGRAPH_COMPLETE" in script and f"{shell}_complete" in script


def test_check_shows_a_progress_bar_only_on_a_terminal() -> None:
    terminal, stdout = on_terminal("check", str(ROOT / "graphs" / "two_layer_net.yaml"), stream="stderr")
    assert "checking" in terminal and "#" in terminal
    assert "PASS" in stdout
    piped = subprocess.run([sys.executable, "-m", "cgraph", "check", str(ROOT / "graphs" / "two_layer_net.yaml")],
                           capture_output=True, text=True, cwd=ROOT)
    assert piped.stderr == "" and "PASS" in piped.stdout


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_slow_run_says_it_is_running_and_erases_that(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(console, "SLOW_SECONDS", 0.05)
    with console.notice_if_slow("forward pass"):
        time.sleep(0.3)
    shown = terminal.getvalue()
    assert shown.startswith("\rcgraph: forward pass running, 0 s") and shown.endswith("\r\x1b[K")
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    monkeypatch.setattr(console, "SLOW_SECONDS", 5)
    with console.notice_if_slow("forward pass"):
        pass
    assert quiet.getvalue() == ""
