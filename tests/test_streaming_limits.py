"""Big outputs in bounded memory: real processes under a lowered address-space limit (RLIMIT_AS)
that holds the graph's arrays and a fixed margin, but not the whole output text, write the whole
output and exit 0; under a limit that does not hold the arrays, one line saying out of memory.
Never a signal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

resource = pytest.importorskip("resource", reason="RLIMIT_AS is a POSIX limit")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmPeak from Linux's /proc")

MARGIN = 32 << 20  # bytes over the arrays and the interpreter: the renderer's buffers, nowhere near the output text
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # the same threads, and so the same address space, in every run

# The command run as `python -m cgraph` does, and then the process's peak address space on stderr.
PEAK = r"""
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith(("VmPeak:", "VmHWM:")):
            sys.stderr.write(line)
atexit.register(peak)
sys.argv = ["cgraph", *sys.argv[1:]]
runpy.run_module("cgraph", run_name="__main__")
"""


def graph_file(folder: Path, elements: int) -> Path:
    path = folder / f"big_{elements}.yaml"
    path.write_text(f"inputs:\n  a: {{shape: [{elements}], random: normal, seed: 0}}\n"
                    "nodes:\n  b: {op: mul, inputs: [a, a]}\n")
    return path


def peaks(path: Path, command: list[str]) -> tuple[int, int]:
    """The peak address space and the peak resident memory of the command run on ``path``, in bytes."""
    result = subprocess.run([sys.executable, "-c", PEAK, command[0], str(path), *command[1:]], capture_output=True,
                            text=True, timeout=60, env=ENV)
    assert result.returncode == 0, result.stderr
    return tuple(int(re.search(rf"{name}:\s+(\d+) kB", result.stderr).group(1)) * 1024 for name in ("VmPeak", "VmHWM"))


def interpreter_peak(folder: Path, command: list[str]) -> int:
    """The address space the command takes on a graph of ten elements: the interpreter, its modules and libraries."""
    return peaks(graph_file(folder, 10), command)[0]


def run_limited(path: Path, command: list[str], limit: int) -> subprocess.CompletedProcess:
    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run([sys.executable, "-m", "cgraph", command[0], str(path), *command[1:]], capture_output=True,
                          timeout=120, env=ENV, preexec_fn=lower)


def expected(elements: int) -> tuple[np.ndarray, np.ndarray]:
    """The input and the node, as docs/format.md defines them: numpy's default_rng(seed).standard_normal, squared."""
    a = np.random.default_rng(0).standard_normal(elements)
    return a, a * a


# (command, elements, arrays the run holds, each of `elements` float64s): forward holds a and b;
# backward also b's gradient, mul's two input gradients and their sum, a's gradient.
CASES = [
    (["forward", "--format", "json"], 5_000_000, 2),
    (["forward", "--full"], 2_000_000, 2),
    (["backward", "--format", "json"], 1_500_000, 6),
]


@pytest.mark.parametrize("command, elements, arrays", CASES, ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_the_whole_output_is_written_in_the_arrays_and_a_fixed_margin(tmp_path: Path, command: list[str],
                                                                      elements: int, arrays: int) -> None:
    limit = interpreter_peak(tmp_path, command) + arrays * elements * 8 + MARGIN
    result = run_limited(graph_file(tmp_path, elements), command, limit)
    assert result.returncode == 0, result.stderr[-1000:]
    assert result.stderr == b""
    assert len(result.stdout) > 1.5 * MARGIN  # holding the whole text would not have fitted
    a, b = expected(elements)
    if "--full" in command:
        text = result.stdout.decode()
        head, value_a, rest = text.split("  value: ", 2)[0], *text.split("  value: ")[1:]
        assert head.startswith("forward, output 'b'\n\na: input, shape (2000000,)\n")
        value_a, between = value_a.split("]\n", 1)
        assert between.startswith("\nb = mul(a, a)  MulLayer(")
        for shown, exact in ((value_a, a), (rest, b)):
            numbers = np.array(shown.replace("[", " ").replace("]", " ").split(), dtype=float)
            assert numbers.shape == exact.shape
            # 8 digits after the point, positional (a) or scientific (b, whose smallest are under 1e-4)
            assert (np.abs(numbers - exact) <= 0.5e-8 * (1 + 1e-6) * np.maximum(1, np.abs(exact))).all()
        return
    data = orjson.loads(result.stdout)
    assert data["output"] == "b" and list(data["nodes"]) == ["a", "b"]
    nodes = data["nodes"]
    assert nodes["b"]["shape"] == [elements] and nodes["b"]["input_shapes"] == [[elements], [elements]]
    assert np.array_equal(np.array(nodes["a"]["value"]), a)  # shortest round-trip digits: exact
    assert np.array_equal(np.array(nodes["b"]["value"]), b)
    if command[0] == "backward":
        assert np.array_equal(np.array(data["dout"]), np.ones(elements))
        assert np.array_equal(np.array(nodes["b"]["grad"]), np.ones(elements))
        dx, dy = (np.array(grad) for grad in nodes["b"]["input_grads"])
        assert np.array_equal(dx, a) and np.array_equal(dy, a)
        assert np.array_equal(np.array(nodes["a"]["grad"]), 2 * a)


@pytest.mark.parametrize("command", [["forward", "--format", "json"], ["forward", "--full"], ["backward", "--format", "json"]])
def test_a_limit_below_the_arrays_is_one_line_out_of_memory(tmp_path: Path, command: list[str]) -> None:
    elements = 5_000_000
    limit = interpreter_peak(tmp_path, command) + elements * 8
    result = run_limited(graph_file(tmp_path, elements), command, limit)
    assert result.returncode == 1, result.stderr[-1000:]
    assert result.stdout == b""
    assert re.fullmatch(rb"cgraph: error: out of memory[^\n]*\n", result.stderr), result.stderr[-1000:]


@pytest.mark.parametrize("command", [["backward", "--full"], ["backward", "--format", "json"]])
def test_writing_the_output_holds_no_more_than_the_budget_counts(tmp_path: Path, command: list[str]) -> None:
    from cgraph.budget import output_bytes

    path = graph_file(tmp_path, 200_000)
    summarised = peaks(path, ["backward", "--node", "a"])[1]  # the same arrays, two short lines written
    written = peaks(path, command)[1]
    assert written - summarised <= output_bytes(6 * 200_000)
