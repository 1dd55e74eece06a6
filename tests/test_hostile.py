"""Hostile and huge inputs are refused quickly and cheaply; deep graphs are normal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cgraph
from cgraph.errors import CgraphError

NODES = "nodes: {b: {op: add, inputs: [a, a]}}\n"


def billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        name, previous = chr(97 + i), chr(96 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "billion laughs": (billion_laughs(), "anchors (&a) are not supported"),
    # libyaml 0.2.5 and later refuse such nesting themselves ("exceeded maximum nesting depth").
    "deep lists": ("inputs: {a: " + "[" * 1_000_000 + "}\n", "nest"),
    "deep mappings": ("inputs: " + "{a: " * 1_000_000 + "\n", "nest"),
    "deep block lists": ("- " * 300_000 + "1\n", "nest"),
    "huge fill": ("inputs: {a: {fill: 0, shape: [1000000, 1000000]}}\n" + NODES, "1,000,000,000,000 elements"),
    "huge random": ("inputs: {a: {random: normal, shape: [100000, 100000]}}\n" + NODES, "10,000,000,000 elements"),
    "huge broadcast": (
        "inputs: {a: {fill: 1, shape: [200000, 1]}, c: {fill: 1, shape: [1, 200000]}}\n"
        "nodes: {b: {op: mul, inputs: [a, c]}}\n",
        "its value of 40,000,000,000 elements",
    ),
    "python object": ("!!python/object/apply:os.system ['touch pwned']\n", "tag '!!python/object/apply:os.system'"),
    "long name": ("inputs: {" + "a" * 1000 + ": 1}\n" + NODES, "name of 1000 characters is longer than the limit"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_in_bounded_time_and_memory(tmp_path: Path, name: str) -> None:
    text, message = HOSTILE[name]
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    code = (
        "import sys\n"
        "from cgraph.cli import main\n"
        "try:\n    main()\n"
        "finally:\n"
        # VmHWM, the process's own peak; ru_maxrss would carry over the parent's across exec.
        "    peak = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0]\n"
        "    print('peak', peak, file=sys.stderr)\n"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, "backward", str(path)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    elapsed = time.perf_counter() - started
    error, peak = result.stderr.splitlines()
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in error and error.startswith(f"{path}:")
    assert int(peak.split()[1]) < 200 * 1024, f"peak memory {peak} KiB"
    assert elapsed < 10, "hang guard, not a benchmark"
    assert not (tmp_path / "pwned").exists()


def _npy_header(text: str) -> bytes:
    """A version 1.0 .npy header holding ``text`` as its (possibly malformed) dictionary."""
    body = text.encode("latin1")
    body += b" " * (-(len(body) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"not a numpy file", "not a .npy file: data.npy"),
        (b"", "not a .npy file: data.npy"),
        (None, "holds complex128 data"),
        ("object", "holds object data"),
        ("npz", "not a .npy file: data.npy (an .npz archive?)"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), "), "its header is malformed"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }"), "its header is malformed"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2**70,), }"), "its header is malformed"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1180591620717411303424,), }"),
         "1,180,591,620,717,411,303,424 elements is over the limit"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 2, 0), }"),
         "with a dimension of 4,294,967,296 is over the limit"),
        (_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000,), }") + b"\0" * 16, "not a readable .npy file"),
        (b"\x93NUMPY\x01", "its header is malformed"),
    ],
)
def test_bad_npy_files_are_refused_in_one_line(tmp_path: Path, payload, message: str) -> None:
    path = tmp_path / "data.npy"
    if payload is None:
        np.save(path, np.array([1 + 2j]))
    elif payload == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif payload == "npz":
        with open(path, "wb") as file:
            np.savez(file, a=np.ones(2))
    else:
        path.write_bytes(payload)
    graph = tmp_path / "g.yaml"
    graph.write_text("inputs:\n  a: {file: data.npy}\n" + NODES)
    with pytest.raises(CgraphError) as caught:
        cgraph.load(graph)
    assert message in caught.value.message
    assert "error:" not in caught.value.message  # the position is given once, not repeated inside
    assert "pickle" not in caught.value.message and "\n" not in str(caught.value)
    assert (caught.value.pos.line, caught.value.pos.col) == (2, 13)


def test_npy_file_is_read_relative_to_the_graph_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.arange(6, dtype=np.int32).reshape(2, 3))
    graph = tmp_path / "g.yaml"
    graph.write_text("inputs:\n  a: {file: data/x.npy}\n" + NODES)
    loaded = cgraph.load(graph)
    assert loaded.spec.inputs["a"].value.dtype == np.float64
    np.testing.assert_array_equal(loaded.forward(), 2 * np.arange(6).reshape(2, 3))


def test_deep_chain_runs_without_recursion() -> None:
    # y_n = (...((x * c) + c) * c ...): 200,000 nodes, far past Python's recursion limit.
    count = 200_000
    nodes = {}
    previous = "x"
    for i in range(count):
        nodes[f"n{i}"] = {"op": "mul" if i % 2 == 0 else "add", "inputs": [previous, "c"]}
        previous = f"n{i}"
    graph = cgraph.from_dict({"inputs": {"x": 1.0, "c": 1.0}, "nodes": nodes})
    # With c = 1 every mul keeps the value and every add adds 1: the output is 1 + count / 2.
    assert graph.forward() == 1 + count / 2
    grads = graph.backward()
    # d out / d x = product of the mul factors c = 1; d out / d c = sum over the chain = count / 2 (adds)
    # plus the muls' x values 1, 2, ..., count / 2.
    assert grads["x"] == 1.0
    muls = sum(range(1, count // 2 + 1))
    assert grads["c"] == count // 2 + muls


def test_interrupt_exits_130_with_one_line(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "from cgraph.cli import main; main()", "forward", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.0)  # it is now waiting for standard input
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stdout == ""
    assert stderr == "cgraph: interrupted\n"


def test_terminal_on_stdin_gets_a_hint() -> None:
    pty = pytest.importorskip("pty")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", "from cgraph.cli import main; main()", "forward", "-"],
        stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    os.close(secondary)
    os.write(primary, b"inputs: {a: 2}\n" + NODES.encode() + b"\x04")
    stdout, stderr = process.communicate(timeout=30)
    os.close(primary)
    assert "reading the graph from standard input" in stderr
    assert "value: 4.0" in stdout
