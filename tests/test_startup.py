"""Start-up: a command imports only the modules it uses, and every command is still listed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["backward", "check", "dot", "explain", "forward", "grad", "hessian", "html", "lint", "onnx", "serve", "sweep",
            "train"]

# What `cgraph backward` of a mapping-form YAML file needs, and no more.
BACKWARD_MODULES = {
    "cgraph", "cgraph.api", "cgraph.arrays", "cgraph.budget", "cgraph.cli", "cgraph.completion", "cgraph.console",
    "cgraph.errors", "cgraph.graph", "cgraph.layers", "cgraph.layers.base", "cgraph.layers.binary",
    "cgraph.layers.conv", "cgraph.layers.conv_grad", "cgraph.layers.gradient_ops", "cgraph.layers.network", "cgraph.layers.normalization",
    "cgraph.layers.reductions", "cgraph.layers.shape", "cgraph.layers.unary", "cgraph.options", "cgraph.render",
    "cgraph.save", "cgraph.signals", "cgraph.spec", "cgraph.yamlsafe",
}

# Runs `python -m cgraph ARGS...` and, at exit, writes the names of all modules imported as the
# last line of stderr (importlib.import_module's imports are missing from -X importtime's lines).
PROBE = (
    "import atexit, json, runpy, sys\n"
    "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.__stderr__))\n"
    "sys.argv = ['cgraph', *sys.argv[1:]]\n"
    "runpy.run_module('cgraph', run_name='__main__', alter_sys=True)\n"
)


def imported_by(*args: str) -> tuple[set[str], set[str]]:
    """The modules a cgraph command imports: all of them, and those -X importtime lists."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", PROBE, *args], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    timed = {match.group(1) for line in lines if (match := re.match(r"import time:.*\|\s*(\S+)$", line))}
    return set(json.loads(lines[-1])), timed


def test_backward_of_a_mapping_file_imports_only_what_it_uses() -> None:
    modules, timed = imported_by("backward", "graphs/buy_apple.yaml")
    assert {name for name in modules if name.split(".")[0] == "cgraph"} == BACKWARD_MODULES
    assert {name for name in timed if name.startswith("cgraph")} <= BACKWARD_MODULES
    assert "cgraph.layers.binary" in timed  # the importtime lines were read
    unused = {"yaml", "onnx", "onnxruntime", "torch", "tempfile", "http.server"}
    assert not unused & (modules | timed)


def test_formulas_load_the_formula_reader() -> None:
    modules, _ = imported_by("forward", "-e", "y = x * 2", "--set", "x=3")
    assert "cgraph.expr" in modules
    assert "cgraph.cli_train" not in modules and "cgraph.onnx_reader" not in modules


def test_help_and_completion_list_every_command() -> None:
    shown = subprocess.run([sys.executable, "-m", "cgraph", "--help"], cwd=ROOT, capture_output=True, text=True)
    listed = [line.split()[0] for line in shown.stdout.split("Commands:\n", 1)[1].splitlines() if line[2:3].isalpha()]
    assert sorted(listed) == COMMANDS
    env = {**os.environ, "_CGRAPH_COMPLETE": "bash_complete", "COMP_WORDS": "cgraph ", "COMP_CWORD": "1"}
    completed = subprocess.run([sys.executable, "-m", "cgraph"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert completed.stdout.split() == [f"plain,{name}" for name in COMMANDS]


def test_commands_in_other_modules_run() -> None:
    for command in ("grad", "train", "html", "sweep", "serve", "hessian"):
        shown = subprocess.run([sys.executable, "-m", "cgraph", command, "--help"], cwd=ROOT, capture_output=True,
                               text=True)
        assert shown.returncode == 0 and shown.stdout.startswith(f"Usage: cgraph {command} "), shown.stderr
