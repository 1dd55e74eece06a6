"""Shell completion of every command's options, through click's real mechanism: the command run
with _CGRAPH_COMPLETE=bash_complete and COMP_WORDS/COMP_CWORD, as the shells' scripts run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cgraph.cli import cli

CONTEXT = click.Context(cli)
COMMANDS = {name: cli.get_command(CONTEXT, name) for name in cli.list_commands(CONTEXT)}

ROOT = Path(__file__).resolve().parent.parent
APPLE = "graphs/buy_apple.yaml"
SPIRAL = "graphs/spiral.yaml"
APPLE_NAMES = {"inputs": ["apple", "apple_num", "tax"], "nodes": ["apple_price", "price"]}  # as the file lists them


def complete(words: str) -> list[str]:
    """What bash would be offered after ``words`` (the last, possibly empty, under the cursor), as
    TYPE,VALUE items."""
    env = {**os.environ, "_CGRAPH_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}
    done = subprocess.run([sys.executable, "-m", "cgraph"], env=env, capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [line for line in done.stdout.splitlines() if line]


def plain(*values: str) -> list[str]:
    return [f"plain,{value}" for value in values]


GRAPH_COMMANDS = ["backward", "check", "dot", "explain", "forward", "html", "lint", "serve", "sweep"]
VALUE_COMMANDS = ["backward", "check", "dot", "explain", "html", "serve", "sweep", "grad", "hessian"]  # with --dout

CASES = {
    **{command: [
        (f"cgraph {command} {APPLE} --node a", plain(*APPLE_NAMES["inputs"][:2], "apple_price")),
        (f"cgraph {command} {APPLE} --output ", plain(*APPLE_NAMES["nodes"])),
        (f"cgraph {command} {APPLE} --set t", plain("tax=")),
        (f"cgraph {command} {APPLE} --color ", plain("auto", "always", "never")),
        (f"cgraph {command} graphs/buy_ap", ["file,graphs/buy_ap"]),
    ] for command in GRAPH_COMMANDS},
    "train": [
        (f"cgraph train {SPIRAL} --param ", plain("X", "t", "W1", "b1", "W2", "b2")),
        (f"cgraph train {SPIRAL} --param W1 --param b", plain("b1", "b2")),
        (f"cgraph train {SPIRAL} --batch X,", plain("X,t", "X,W1", "X,b1", "X,W2", "X,b2")),
        (f"cgraph train {SPIRAL} --metric acc", plain("accuracy")),
        (f"cgraph train {SPIRAL} --output l", plain("loss", "label")),  # in the file's order
        (f"cgraph train {SPIRAL} --set W", plain("W1=", "W2=")),
        (f"cgraph train {SPIRAL} --optimizer ", plain("sgd", "momentum", "adagrad", "adam")),
        (f"cgraph train {SPIRAL} --format ", plain("text", "jsonl")),
        (f"cgraph train {SPIRAL} --save out", ["file,out"]),
        (f"cgraph train {SPIRAL} --write-graph tr", ["file,tr"]),
        ("cgraph train graphs/spi", ["file,graphs/spi"]),
    ],
    "grad": [
        (f"cgraph grad {APPLE} --wrt a", plain("apple", "apple_num")),
        (f"cgraph grad {APPLE} --output p", plain("price")),
        (f"cgraph grad {APPLE} -o out", ["file,out"]),
        ("cgraph grad graphs/buy_ap", ["file,graphs/buy_ap"]),
    ],
    "onnx": [
        (f"cgraph onnx {APPLE} --params apple,t", plain("apple,tax")),
        (f"cgraph onnx {APPLE} -o ap", ["file,ap"]),
        (f"cgraph onnx {APPLE} --node apple_", plain("apple_num", "apple_price")),
    ],
    "hessian": [
        (f"cgraph hessian {APPLE} --wrt t", plain("tax")),
        (f"cgraph hessian {APPLE} --output ", plain(*APPLE_NAMES["nodes"])),
        (f"cgraph hessian {APPLE} --format ", plain("text", "json")),
    ],
}
CASES["sweep"] += [(f"cgraph sweep {APPLE} --vary a", plain("apple=", "apple_num=")),
                   (f"cgraph sweep {APPLE} --format ", plain("jsonl", "text"))]
CASES["forward"] += [(f"cgraph forward {APPLE} --format ", plain("text", "json", "jsonl"))]
CASES["dot"] += [(f"cgraph dot {APPLE} --render gr", ["file,gr"])]
CASES["html"] += [(f"cgraph html {APPLE} -o ap", ["file,ap"])]
CASES["explain"] += [(f"cgraph explain {APPLE} --format ", plain("text", "json"))]
for command in VALUE_COMMANDS:
    CASES[command] = [*CASES[command], (f"cgraph {command} {APPLE} --dout @graphs/spiral_",
                                        plain("@graphs/spiral_X.npy", "@graphs/spiral_t.npy"))]


def test_every_command_has_completion_cases() -> None:
    assert sorted(CASES) == sorted(COMMANDS)


@pytest.mark.parametrize("command", sorted(CASES))
def test_completion_of_each_commands_options(command: str) -> None:
    for words, expected in CASES[command]:
        assert complete(words) == expected, words


def test_a_set_value_completes_npy_files_after_at() -> None:
    assert complete("cgraph forward graphs/two_layer_net.yaml --set x=@graphs/spiral_") == plain(
        "x=@graphs/spiral_X.npy", "x=@graphs/spiral_t.npy")
    assert complete(f"cgraph backward {APPLE} --dout @graph") == plain("@graphs/")  # a folder, to go on into


def test_no_names_without_a_readable_graph_file() -> None:
    assert complete("cgraph train missing.yaml --param ") == []
    assert complete("cgraph grad missing.yaml --wrt ") == []


NUMBERS = (click.IntRange, click.FloatRange, click.types.IntParamType, click.types.FloatParamType)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_taking_a_name_or_a_file_completes(command: str) -> None:
    """Every option with a value is a number, a choice, a path, a formula (-e), or has its own completion."""
    for param in COMMANDS[command].params:
        if isinstance(param, click.Option) and (param.is_flag or param.name == "help"):
            continue
        kinds = (*NUMBERS, click.Choice, click.Path)
        typed = isinstance(param.type, kinds) or type(param.type).__name__ == "Amount"
        assert typed or param.name == "expressions" or param._custom_shell_complete is not None, \
            f"cgraph {command} {param.opts[-1]} completes nothing"
