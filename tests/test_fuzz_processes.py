"""Random graph files through `cgraph backward FILE --format json` in real processes: valid ones
agree with numpy written here, and ones broken at random places (bytes cut, flipped or repeated,
keys given twice, huge shapes, NaN attributes) end in exit 1 with one line on stderr and nothing on
stdout. Never a traceback, a signal, a hang or a Python warning (warnings are errors in the child).

CGRAPH_FUZZ_EXAMPLES sets how many examples each test draws (by default a few seconds' worth):

    CGRAPH_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz_processes.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forking import TIMEOUT, ForkingServer

EXAMPLES = int(os.environ.get("CGRAPH_FUZZ_EXAMPLES", "40"))
RUN_SECONDS = 30  # a run still going after this is a hang

# op: (arity, formula operator or None, forward, the input gradients from (inputs, dout)), written
# from the ops' definitions, independently of cgraph.
OPS: dict[str, tuple[int, str | None, Callable[..., np.ndarray], Callable[..., tuple[np.ndarray, ...]]]] = {
    "add": (2, "+", lambda x, y: x + y, lambda x, y, g: (g, g)),
    "sub": (2, "-", lambda x, y: x - y, lambda x, y, g: (g, -g)),
    "mul": (2, "*", lambda x, y: x * y, lambda x, y, g: (g * y, g * x)),
    # where the inputs are equal, each takes half (as PyTorch has it)
    "maximum": (2, None, np.maximum, lambda x, y, g: (g * ((x > y) + 0.5 * (x == y)), g * ((x < y) + 0.5 * (x == y)))),
    "neg": (1, None, lambda x: -x, lambda x, g: (-g,)),
    "tanh": (1, None, np.tanh, lambda x, g: (g * (1 - np.tanh(x) ** 2),)),
    "sigmoid": (1, None, lambda x: 1 / (1 + np.exp(-x)), lambda x, g: (g * np.exp(-x) / (1 + np.exp(-x)) ** 2,)),
    "square": (1, None, lambda x: x * x, lambda x, g: (2 * x * g,)),
    "abs": (1, None, np.abs, lambda x, g: (g * np.sign(x),)),
}
SHAPES = [(), (3,), (2, 3)]
numbers = st.floats(-2, 2, allow_nan=False, width=64).filter(lambda number: abs(number) > 1e-3)


@st.composite
def valid_graph(draw: Any) -> dict[str, Any]:
    """A graph of one shape: its inputs' values, and its nodes in order as (name, op, args)."""
    shape = draw(st.sampled_from(SHAPES))
    size = int(np.prod(shape))
    inputs = {f"x{k}": np.array(draw(st.lists(numbers, min_size=size, max_size=size)), dtype=float).reshape(shape)
              for k in range(draw(st.integers(1, 3)))}
    names = list(inputs)
    nodes = []
    for k in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(sorted(OPS)))
        args = [draw(st.sampled_from(names)) for _ in range(OPS[op][0])]
        nodes.append((f"n{k}", op, args))
        names.append(f"n{k}")
    return {"inputs": inputs, "nodes": nodes, "formulas": draw(st.booleans()), "json": draw(st.booleans())}


def document(graph: dict[str, Any]) -> str:
    """The graph as a YAML file (nodes in the mapping form, or as formulas where an operator writes them) or JSON."""
    if graph["json"]:
        return json.dumps({"inputs": {name: value.tolist() for name, value in graph["inputs"].items()},
                           "nodes": {name: {"op": op, "inputs": args} for name, op, args in graph["nodes"]},
                           "output": graph["nodes"][-1][0]}) + "\n"
    lines = ["inputs:", *(f"  {name}: {json.dumps(value.tolist())}" for name, value in graph["inputs"].items()), "nodes:"]
    for name, op, args in graph["nodes"]:
        symbol = OPS[op][1]
        if graph["formulas"] and symbol:
            lines.append(f"  {name}: {args[0]} {symbol} {args[1]}")
        else:
            lines.append(f"  {name}: {{op: {op}, inputs: [{', '.join(args)}]}}")
    lines.append(f"output: {graph['nodes'][-1][0]}")
    return "\n".join(lines) + "\n"


def expected(graph: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every value, and every gradient of the last node's sum (dout 1), in numpy."""
    values = dict(graph["inputs"])
    for name, op, args in graph["nodes"]:
        values[name] = OPS[op][2](*(values[arg] for arg in args))
    output = graph["nodes"][-1][0]
    grads = {name: np.zeros_like(value) for name, value in values.items()}
    grads[output] = np.ones_like(values[output])
    for name, op, args in reversed(graph["nodes"]):
        for arg, grad in zip(args, OPS[op][3](*(values[arg] for arg in args), grads[name])):
            grads[arg] = grads[arg] + grad
    return values, grads


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity tokens."""
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def server():
    forking = ForkingServer()
    yield forking
    forking.close()


def run(server: ForkingServer, folder: Path, name: str, data: bytes) -> tuple[int, str, str]:
    """``cgraph backward NAME --format json`` on ``data``, in a process of its own: status, stdout, stderr."""
    (folder / name).write_bytes(data)
    (folder / "stdin").write_bytes(b"")
    job = {"cwd": str(folder), "stdin": str(folder / "stdin"), "out": str(folder / "out"), "err": str(folder / "err"),
           "stdout": "file", "args": ["backward", name, "--format", "json"], "timeout": RUN_SECONDS}
    code = server.run(job)
    return code, (folder / "out").read_text(encoding="utf-8"), (folder / "err").read_text(encoding="utf-8")


def assert_sound(code: int, out: str, err: str, context: Any) -> None:
    """Exit 0 with strict JSON, or exit 1 with one line on stderr and nothing on stdout; nothing else."""
    assert code != TIMEOUT, ("hang", context)
    assert code in (0, 1), (code, context, err[-2000:])
    assert "Traceback" not in err and "Warning" not in err, (context, err[-2000:])
    assert all(line.isprintable() for line in err.splitlines()), (context, err[-2000:])
    if code == 0:
        strict_json(out)
        assert all(": warning: " in line for line in err.splitlines()), (context, err[-2000:])
    else:
        assert out == "", (context, out[-500:])
        assert err.count("\n") == 1 and err.endswith("\n") and ": error: " in err, (context, err[-2000:])


FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                HealthCheck.data_too_large])


@FUZZ_SETTINGS
@given(valid_graph())
def test_a_valid_graph_agrees_with_numpy(server: ForkingServer, tmp_path_factory: Any, graph: dict[str, Any]) -> None:
    folder = tmp_path_factory.mktemp("valid")
    text = document(graph)
    code, out, err = run(server, folder, "g.json" if graph["json"] else "g.yaml", text.encode())
    assert code == 0 and err == "", (text, err)
    result = strict_json(out)
    values, grads = expected(graph)
    assert result["output"] == graph["nodes"][-1][0], text
    assert list(result["nodes"]) == list(values), text
    for name, entry in result["nodes"].items():
        assert entry["shape"] == list(np.shape(values[name])), (text, name)
        np.testing.assert_allclose(np.array(entry["value"], dtype=float), values[name], rtol=1e-12, atol=1e-300,
                                   err_msg=f"{text}value of {name}")
        np.testing.assert_allclose(np.array(entry["grad"], dtype=float), grads[name], rtol=1e-9, atol=1e-12,
                                   err_msg=f"{text}gradient of {name}")


HUGE_INPUTS = ["{shape: [100000, 100000], fill: 1}", "{shape: [4294967296, 4294967296], random: normal}",
               "{shape: [1000000000000], fill: 0}", "{shape: [100000000, 100], random: uniform}"]
NAN_ATTRIBUTES = ["{op: sum, inputs: [x0], axis: .nan}", "{op: clip, inputs: [x0], min: .nan, max: 1}",
                  "{op: pow, inputs: [x0], exponent: .nan}", "{op: dropout, inputs: [x0], ratio: .nan}",
                  "{op: reshape, inputs: [x0], shape: [.nan]}", "{op: mean, inputs: [x0], keepdims: .nan}",
                  "{op: softmax, inputs: [x0], axis: .inf}", "{op: transpose, inputs: [x0], axes: [.nan]}"]


@st.composite
def broken_document(draw: Any) -> bytes:
    """A valid graph's file broken at a random place, in one or more of the ways a file gets broken."""
    graph = draw(valid_graph().filter(lambda graph: not graph["json"]))
    data = document(graph).encode()
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["cut", "flip", "repeat", "duplicate key", "huge shape", "nan attribute"]))
        lines = data.split(b"\n")
        if how == "cut":
            data = data[:draw(st.integers(0, max(0, len(data) - 1)))]
        elif how == "flip" and data:
            where = draw(st.integers(0, len(data) - 1))
            data = data[:where] + bytes([draw(st.integers(0, 255))]) + data[where + 1:]
        elif how == "repeat" and data:
            start = draw(st.integers(0, len(data) - 1))
            stop = draw(st.integers(start, min(len(data), start + 20)))
            data = data[:stop] + data[start:stop] + data[stop:]
        elif how == "duplicate key" and len(lines) > 2:
            where = draw(st.integers(1, len(lines) - 2))
            data = b"\n".join(lines[:where + 1] + [lines[where]] + lines[where + 1:])
        elif how == "huge shape":
            data = data.replace(b"  x0: ", f"  x0: {draw(st.sampled_from(HUGE_INPUTS))}\n  x_old: ".encode(), 1)
        elif how == "nan attribute":
            data = data.replace(b"nodes:\n", f"nodes:\n  bad: {draw(st.sampled_from(NAN_ATTRIBUTES))}\n".encode(), 1)
    return data


@FUZZ_SETTINGS
@given(broken_document())
def test_a_broken_graph_is_one_line_or_a_whole_result(server: ForkingServer, tmp_path_factory: Any, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("broken")
    code, out, err = run(server, folder, "g.yaml", data)
    assert_sound(code, out, err, data)


@pytest.mark.parametrize("line", HUGE_INPUTS + NAN_ATTRIBUTES)
def test_each_huge_shape_and_nan_attribute_is_refused(server: ForkingServer, tmp_path: Path, line: str) -> None:
    where = "  x0: " if "shape" in line and "op:" not in line else "  bad: "
    data = f"inputs:\n  x0: [1.0, 2.0]\nnodes:\n{where.replace('x0', 'x1') if where == '  x0: ' else where}{line}\n"
    data += "  n0: {op: tanh, inputs: [x0]}\n"
    code, out, err = run(server, tmp_path, "g.yaml", data.encode())
    assert_sound(code, out, err, data)
    assert code == 1, (data, out[-300:])
