"""The command line, through click's CliRunner and as the installed `cgraph` command."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cgraph import __version__
from cgraph.cli import cli

ROOT = Path(__file__).resolve().parent.parent
APPLE = str(ROOT / "graphs" / "buy_apple.yaml")
APPLE_ORANGE = str(ROOT / "graphs" / "buy_apple_orange.yaml")
MATRICES = str(ROOT / "graphs" / "matrices.yaml")


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def run_json(*args: str, stdin: str | None = None) -> dict:
    result = run(*args, "--format", "json", stdin=stdin)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_forward_text_shows_values_and_layer_shapes() -> None:
    result = run("forward", APPLE_ORANGE)
    assert result.exit_code == 0
    assert "price = mul(all_price, tax)  MulLayer(x=all_price (), y=tax ()) -> out ()" in result.stdout
    assert "value: 715.0" in result.stdout
    assert "grad" not in result.stdout


def test_blocks_alike_but_for_attributes_names_and_constants_are_each_their_own() -> None:
    # out = sum(f), f = e + c, e = 2 d, d = 3 c, c = sum(x, 0) + sum(x, 1). dout reaches c once
    # directly and once through d (2 * 3), 7 in all; k's gradient is sum(2 c) = 2 (7 + 13), each x
    # element's 7 + 7 (through a and through bb). The two sums differ only in axis, the two adds
    # in the lengths of their inputs' names (which pad the labels); the constant 2 has no row.
    text = ("inputs:\n  x: [[1, 2], [3, 4]]\n  k: 3\nnodes:\n  a: {op: sum, inputs: [x], axis: 0}\n"
            "  bb: {op: sum, inputs: [x], axis: 1}\n  c: {op: add, inputs: [a, bb]}\n  d: c * k\n"
            "  e: d * 2\n  f: {op: add, inputs: [e, c]}\n  out: {op: sum, inputs: [f]}\n")
    result = run("backward", "-", stdin=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "backward, output 'out'\n  dout: 1.0\n\n"
        "x: input, shape (2, 2)\n  value: [[1. 2.]\n          [3. 4.]]\n  grad:  [[14. 14.]\n          [14. 14.]]\n\n"
        "k: input, shape ()\n  value: 3.0\n  grad:  40.0\n\n"
        "a = sum(x)  SumLayer(x=x (2, 2), axis=0, keepdims=False) -> out (2,)\n"
        "  value:   [4. 6.]\n  grad:    [7. 7.]\n  dx -> x: [[7. 7.]\n            [7. 7.]]\n\n"
        "bb = sum(x)  SumLayer(x=x (2, 2), axis=1, keepdims=False) -> out (2,)\n"
        "  value:   [3. 7.]\n  grad:    [7. 7.]\n  dx -> x: [[7. 7.]\n            [7. 7.]]\n\n"
        "c = add(a, bb)  AddLayer(x=a (2,), y=bb (2,)) -> out (2,)\n"
        "  value:    [ 7. 13.]\n  grad:     [7. 7.]\n  dx -> a:  [7. 7.]\n  dy -> bb: [7. 7.]\n\n"
        "d = mul(c, k)  MulLayer(x=c (2,), y=k ()) -> out (2,)\n"
        "  value:   [21. 39.]\n  grad:    [2. 2.]\n  dx -> c: [6. 6.]\n  dy -> k: 40.0\n\n"
        "e = mul(d, 2)  MulLayer(x=d (2,), y=2 ()) -> out (2,)\n"
        "  value:   [42. 78.]\n  grad:    [1. 1.]\n  dx -> d: [2. 2.]\n\n"
        "f = add(e, c)  AddLayer(x=e (2,), y=c (2,)) -> out (2,)\n"
        "  value:   [49. 91.]\n  grad:    [1. 1.]\n  dx -> e: [1. 1.]\n  dy -> c: [1. 1.]\n\n"
        "out = sum(f)  SumLayer(x=f (2,), axis=None, keepdims=False) -> out ()\n"
        "  value:   140.0\n  grad:    1.0\n  dx -> f: [1. 1.]\n")


def test_layer_lines_name_the_users_inputs_beside_the_layers_roles() -> None:
    # The book's buy-apple graph: price = apple_price * tax, so d apple_price = tax = 1.1 and
    # d tax = apple_price = 200; the layer's x and y are the user's apple_price and tax.
    text = "inputs: {x: 3, y: 5}\nnodes: {f: {op: mul, inputs: [y, x]}}\n"
    result = run("backward", APPLE, "--node", "price")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith(
        "price = mul(apple_price, tax)  MulLayer(x=apple_price (), y=tax ()) -> out ()\n"
        "  value:             220.0\n"
        "  grad:              1.0\n"
        "  dx -> apple_price: 1.1\n"
        "  dy -> tax:         200.0\n")
    # Inputs called y and x, taken by the layer as its x and y in the other order: f = y * x.
    result = run("backward", "-", stdin=text)
    assert "f = mul(y, x)  MulLayer(x=y (), y=x ()) -> out ()\n" in result.stdout
    assert "  dx -> y: 3.0\n  dy -> x: 5.0\n" in result.stdout


def test_backward_text_shows_gradients_of_inputs_and_layer_inputs() -> None:
    result = run("backward", APPLE_ORANGE, "--dout", "1")
    assert result.exit_code == 0
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["dy", "->", "tax:", "650.0"] in lines
    assert ["dx", "->", "apple:", "2.2"] in lines
    assert result.stdout.count("grad:") == 9


def test_backward_json_matches_the_book() -> None:
    data = run_json("backward", APPLE_ORANGE)
    assert data["output"] == "price"
    assert data["dout"] == 1.0
    nodes = data["nodes"]
    assert list(nodes) == ["apple", "apple_num", "orange", "orange_num", "tax",
                           "apple_price", "orange_price", "all_price", "price"]
    assert nodes["tax"]["grad"] == 650.0
    assert nodes["apple"] == {"op": "input", "inputs": [], "shape": [], "dtype": "float64", "value": 100.0,
                              "grad": pytest.approx(2.2)}
    price = nodes["price"]
    assert price["op"] == "mul" and price["inputs"] == ["all_price", "tax"]
    assert price["input_shapes"] == [[], []]
    assert price["input_grads"] == [pytest.approx(1.1), 650.0]


def test_forward_json_has_no_gradients() -> None:
    data = run_json("forward", APPLE)
    assert "dout" not in data
    assert data["nodes"]["price"]["value"] == pytest.approx(220.0)
    assert all("grad" not in entry and "input_grads" not in entry for entry in data["nodes"].values())


def test_jsonl_is_one_entry_per_line_with_its_name() -> None:
    result = run("backward", APPLE, "--format", "jsonl")
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [entry["name"] for entry in entries] == ["apple", "apple_num", "tax", "apple_price", "price"]
    assert entries[2]["grad"] == 200.0


def test_set_replaces_an_input_and_node_filters() -> None:
    data = run_json("backward", APPLE_ORANGE, "--set", "tax=1.2", "--node", "apple", "--node", "price")
    assert list(data["nodes"]) == ["apple", "price"]
    assert data["nodes"]["price"]["value"] == pytest.approx(650 * 1.2)
    assert data["nodes"]["apple"]["grad"] == pytest.approx(2 * 1.2)


def test_set_may_change_an_inputs_shape() -> None:
    data = run_json("backward", APPLE, "--set", "apple=[100, 200]")
    assert data["nodes"]["price"]["value"] == pytest.approx([220.0, 440.0])
    assert data["nodes"]["tax"]["grad"] == pytest.approx(600.0)


def test_output_option_picks_another_node() -> None:
    data = run_json("backward", APPLE_ORANGE, "--output", "apple_price")
    nodes = data["nodes"]
    assert data["output"] == "apple_price"
    assert nodes["apple"]["grad"] == 2.0
    assert nodes["tax"]["grad"] == 0.0 and nodes["price"]["grad"] == 0.0


def test_stdin_graph() -> None:
    text = Path(APPLE).read_text()
    data = run_json("backward", "-", "--set", "tax=1.2", "--node", "apple", "--node", "tax", stdin=text)
    assert data["nodes"]["tax"]["grad"] == 200.0
    assert data["nodes"]["apple"]["grad"] == pytest.approx(2.4)


def test_json_graph_is_accepted() -> None:
    graph = {"inputs": {"a": 3, "b": [1, 2]}, "nodes": {"c": {"op": "mul", "inputs": ["a", "b"]}}}
    data = run_json("backward", "-", stdin=json.dumps(graph))
    assert data["nodes"]["a"]["grad"] == 3.0
    assert data["nodes"]["b"]["grad"] == [3.0, 3.0]


def test_dout_list_and_npy_file(tmp_path: Path) -> None:
    data = run_json("backward", MATRICES, "--dout", "[[1, 0], [0, 1]]")
    assert data["nodes"]["a"]["grad"] == [[5.0, 0.0], [0.0, 8.0]]
    np.save(tmp_path / "dout.npy", np.array([[0.0, 2.0], [0.0, 0.0]]))
    data = run_json("backward", MATRICES, "--dout", f"@{tmp_path / 'dout.npy'}")
    assert data["nodes"]["a"]["grad"] == [[0.0, 12.0], [0.0, 0.0]]
    assert data["dout"] == [[0.0, 2.0], [0.0, 0.0]]


def test_dout_is_broadcast_to_the_output_shape() -> None:
    data = run_json("backward", MATRICES, "--dout", "[1, 2]")
    assert data["dout"] == [[1.0, 2.0], [1.0, 2.0]]
    assert data["nodes"]["c"]["grad"] == [[1.0, 2.0], [1.0, 2.0]]


def test_non_finite_values_are_strict_json() -> None:
    graph = "inputs: {a: [.inf, 1, .nan]}\nnodes: {b: {op: mul, inputs: [a, a]}}\n"
    result = run("backward", "-", "--format", "json", stdin=graph)
    data = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert data["nodes"]["b"]["value"] == ["Infinity", 1.0, "NaN"]
    assert data["nodes"]["a"]["grad"] == ["Infinity", 2.0, "NaN"]


def test_float32_input_keeps_its_dtype_in_gradients() -> None:
    graph = "inputs: {a: {value: [1, 2], dtype: float32}, s: 3}\nnodes: {b: {op: mul, inputs: [a, s]}}\n"
    data = run_json("backward", "-", stdin=graph)
    assert data["nodes"]["a"]["dtype"] == "float32"
    assert data["nodes"]["a"]["grad"] == [3.0, 3.0]
    assert data["nodes"]["b"]["dtype"] == "float64"


def test_precision_and_full() -> None:
    graph = "inputs: {a: {shape: [2000], fill: 0.123456789}}\nnodes: {b: {op: add, inputs: [a, a]}}\n"
    summarised = run("forward", "-", "--precision", "3", stdin=graph)
    assert "0.123 0.123" in summarised.stdout and "..." in summarised.stdout
    full = run("forward", "-", "--full", "--node", "a", stdin=graph)
    assert "..." not in full.stdout
    assert full.stdout.count("0.12345679") == 2000


@pytest.mark.filterwarnings("error")
def test_float16_scalars_print_without_warnings() -> None:
    graph = "inputs: {a: {value: 2, dtype: float16}}\nnodes: {b: {op: add, inputs: [a, a]}}\n"
    result = run("backward", "-", stdin=graph)
    assert result.exit_code == 0
    assert result.stderr == ""
    assert ["value:", "4.0"] in [line.split() for line in result.stdout.splitlines()]


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["forward", "missing.yaml"], None, "cgraph: error: cannot read missing.yaml"),
        (["forward", "-"], "inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, c]}}\n", "<stdin>:2:34: error: node 'b' uses unknown name 'c'"),
        (["backward", MATRICES, "--dout", "[1, 2, 3]"], None, "cgraph: error: --dout: shape (3,) does not broadcast to the shape (2, 2)"),
        (["backward", MATRICES, "--dout", "abc"], None, "cgraph: error: --dout: expected a number or a list of numbers, got string 'abc'"),
        (["backward", MATRICES, "--dout", "@nope.npy"], None, "cgraph: error: --dout: file not found: nope.npy"),
        (["forward", APPLE, "--set", "tax=[1, 2", ], None, "cgraph: error: --set tax: cannot read '[1, 2': did not find expected ',' or ']' at its end; expected a number"),
        (["backward", APPLE, "--dout", "[1, 2"], None, "cgraph: error: --dout: cannot read '[1, 2': did not find expected ',' or ']' at its end; expected a number, a list like '[1, 2]'"),
        (["backward", APPLE, "--dout", "[1, ]]"], None, "cgraph: error: --dout: cannot read '[1, ]]': there is more after the value's end at column 6"),
        (["backward", APPLE, "--dout", "{fill: 1"], None, "cgraph: error: --dout: cannot read '{fill: 1': did not find expected ',' or '}' at its end"),
        (["sweep", APPLE, "--vary", "tax=[1, 2"], None, "cgraph: error: --vary tax: cannot read '[1, 2': did not find expected ',' or ']' at its end; expected START:STOP:NUM"),
        (["forward", APPLE, "--set", "tx=1"], None, "cgraph: error: --set: 'tx' is not an input (did you mean 'tax'?)"),
        (["forward", APPLE, "--node", "prize"], None, "cgraph: error: --node: unknown name 'prize' (did you mean 'price'?)"),
        (["forward", APPLE, "--output", "prize"], None, "cgraph: error: --output: unknown node 'prize' (did you mean 'price'?)"),
        (["forward", MATRICES, "--set", "a=[1, 2, 3]"], None, "matrices.yaml:8:3: error: node 'ab': mul cannot combine shapes a (3,) (from --set) and b (2, 2)"),
    ],
)
def test_user_errors_are_one_line_on_stderr_and_exit_1(args: list[str], stdin: str | None, message: str) -> None:
    result = run(*args, stdin=stdin)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_usage_errors_exit_2() -> None:
    for args in (["forward"], ["forward", APPLE, "--set", "tax"], ["forward", APPLE, "--format", "xml"], ["nope"]):
        result = run(*args)
        assert result.exit_code == 2
        assert result.stdout == ""


def test_version_and_help_with_examples() -> None:
    assert run("--version").stdout == f"cgraph {__version__}\n"
    for command in ("forward", "backward", "explain", "dot", "check"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert f"$ cgraph {command} graphs/" in result.stdout
        words = " ".join(result.stdout.split())
        assert "[default: 1e11]" in words and "(1e11)" not in words  # --max-work's default, as the others'


cgraph_bin = shutil.which("cgraph")
installed = pytest.mark.skipif(cgraph_bin is None, reason="the cgraph command is not installed")


@installed
def test_installed_command_runs_the_book_example() -> None:
    result = subprocess.run([cgraph_bin, "backward", APPLE_ORANGE, "--format", "json"], capture_output=True, text=True)
    assert result.returncode == 0
    assert json.loads(result.stdout)["nodes"]["tax"]["grad"] == 650.0


@installed
def test_installed_command_reports_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, a]}, b: {op: add, inputs: [a, a]}}\n")
    result = subprocess.run([cgraph_bin, "forward", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"{bad}:2:39: error: duplicate key 'b' (first defined at line 2, column 9)\n"


@installed
def test_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    graph = tmp_path / "big.yaml"
    graph.write_text("inputs: {a: {shape: [200000], fill: 1}}\nnodes: {b: {op: add, inputs: [a, a]}}\n")
    pipeline = f"'{cgraph_bin}' backward '{graph}' --full | head -1; echo \"status ${{PIPESTATUS[0]}}\""
    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.stdout == "backward, output 'b'\nstatus 141\n"  # as a program killed by SIGPIPE
    assert result.stderr == ""


@installed
def test_write_errors_and_closed_stdin_are_one_line() -> None:
    full = subprocess.run(f"'{cgraph_bin}' backward '{APPLE}' > /dev/full", shell=True, capture_output=True, text=True)
    assert full.returncode == 1
    assert full.stderr == "cgraph: error: cannot write the output: No space left on device\n"
    closed = subprocess.run(f"'{cgraph_bin}' forward - <&-", shell=True, capture_output=True, text=True)
    assert closed.returncode == 1
    assert closed.stderr == "cgraph: error: there is no standard input to read the graph from\n"


@pytest.mark.parametrize("precision", [0, 1, 3, 8, 17])
def test_precision_rounds_as_numpy_does(precision: int) -> None:
    graph = "inputs: {a: 0.5, b: 2.2, c: 715.0000000000001}\nnodes: {d: {op: add, inputs: [a, b]}, e: {op: mul, inputs: [d, c]}}\n"
    result = run("forward", "-", "--precision", str(precision), stdin=graph)
    values = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("  value:")]
    expected = [np.format_float_positional(v, precision=precision, unique=True, trim="0")
                for v in (0.5, 2.2, 715.0000000000001, 0.5 + 2.2, (0.5 + 2.2) * 715.0000000000001)]
    if precision == 0:
        expected[0] = "5e-01"  # 0.5 has no digit before the point: scientific, never written as 0
    assert values == expected


def test_single_infinite_numbers_are_strict_json() -> None:
    graph = "inputs: {a: .inf, b: -.inf, c: 1e308}\nnodes: {d: {op: add, inputs: [a, b]}, e: {op: mul, inputs: [c, c]}}\noutput: e\n"
    data = run_json("backward", "-", stdin=graph)
    assert data["nodes"]["d"]["value"] == "NaN"
    assert data["nodes"]["e"]["value"] == "Infinity"
    assert data["nodes"]["c"]["grad"] == "Infinity"


def test_nan_dout_is_reported_and_fails_strict() -> None:
    result = run("backward", MATRICES, "--dout", ".nan", "--strict")
    assert result.exit_code == 1
    # NaN broadcast to the output's shape (2, 2): the first element is [0, 0].
    assert result.stderr == "cgraph: error: --dout holds NaN at [0, 0] in the output's dtype float64\n"


def test_usage_mistakes_in_options_exit_2() -> None:
    assert run("dot", APPLE, "--dout", "2").exit_code == 2
    twice = run("forward", APPLE, "--set", "tax=1", "--set", "tax=2")
    assert twice.exit_code == 2 and "'tax' is set twice" in twice.stderr


NON_FINITE = "inputs: {a: [1, 0], z: 0}\nnodes:\n  l: {op: mul, inputs: [a, a]}\n  m: {op: add, inputs: [l, z]}\n"


def test_non_finite_input_is_a_warning_naming_the_input() -> None:
    result = run("backward", "-", "--set", "z=.inf", "--format", "json", stdin=NON_FINITE)
    assert result.exit_code == 0
    assert result.stderr == "<stdin>:1:21: warning: input 'z' holds inf\n"
    assert json.loads(result.stdout)["nodes"]["m"]["value"] == ["Infinity", "Infinity"]


def test_strict_fails_on_the_node_that_overflowed() -> None:
    # 1e300 * 1e300 overflows to inf in float64: node l produces it from finite inputs.
    result = run("backward", "-", "--set", "a=[1e300, 2]", "--strict", stdin=NON_FINITE)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "<stdin>:3:3: error: node 'l' (mul) produced inf at [0] from finite inputs\n"


def test_non_finite_gradient_from_finite_values_is_reported() -> None:
    # dout = 1e300 is finite, but d a = dout * 2a = 2e300 * 1e10 overflows in l's backward.
    result = run("backward", "-", "--set", "a=[1e10, 1]", "--dout", "1e300", stdin=NON_FINITE)
    assert result.exit_code == 0
    assert result.stderr == ("<stdin>:3:3: warning: node 'l' (mul) backward produced inf at [0] in the gradient of 'a' "
                             "from a finite gradient\n")


def test_non_finite_messages_name_the_first_element() -> None:
    # log of [[1, 2, 0], [0, 1, 1]]: the first -inf is at [0, 2], not at [1, 0]; its backward
    # dout / x is inf at the same place.
    graph = "inputs: {x: [[1, 2, 0], [0, 1, 1]]}\nnodes: {lp: {op: log, inputs: [x]}, s: {op: sum, inputs: [lp]}}\n"
    result = run("backward", "-", stdin=graph)
    assert result.exit_code == 0
    assert result.stderr == (
        "<stdin>:2:9: warning: node 'lp' (log) produced -inf at [0, 2] from finite inputs\n"
        "<stdin>:2:9: warning: node 'lp' (log) backward produced inf at [0, 2] in the gradient of 'x' from a finite gradient\n")


def test_strict_is_one_error_line_naming_the_first_cause() -> None:
    # An input holding NaN makes the nodes after it NaN too: the warnings name the input, the node
    # that made an inf of its own and its backward; --strict gives only the first, as one error line.
    graph = "inputs: {x: [1, 0], y: [1, .nan]}\nnodes: {lp: {op: log, inputs: [x]}, s: {op: add, inputs: [lp, y]}}\n"
    warned = run("backward", "-", stdin=graph)
    assert warned.exit_code == 0 and warned.stderr.count("warning:") == 3
    strict = run("backward", "-", "--strict", stdin=graph)
    assert strict.exit_code == 1 and strict.stdout == ""
    assert strict.stderr == "<stdin>:1:21: error: input 'y' holds NaN at [1]\n"


def test_strict_catches_a_gradient_that_overflows_when_fan_out_contributions_are_added() -> None:
    # y = x * x at x = 1 with dout 1e308: each use gives x a finite 1e308, and their sum overflows.
    graph = "inputs: {x: 1}\nnodes: {y: {op: mul, inputs: [x, x]}}\n"
    result = run("backward", "-", "--dout", "1e308", "--strict", "--format", "json", stdin=graph)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == ("<stdin>:1:10: error: the gradient of 'x' became inf when the 2 gradients from its uses "
                             "(y, y), each finite, were added up\n")
    # With x = [1, 0.5], each use gives [1e308, 5e307]: the sum overflows at [0] only.
    arrays = run("backward", "-", "--dout", "1e308", "--strict", "--set", "x=[1, 0.5]", stdin=graph)
    assert arrays.exit_code == 1 and "the gradient of 'x' became inf at [0] when" in arrays.stderr


def test_strict_catches_a_gradient_that_overflows_when_cast_to_a_narrower_dtype() -> None:
    # h is float16 (largest finite 65504); y = h * w is float64, and d h = dout * w = [70000, 1]
    # is finite in float64 but inf once cast to h's dtype.
    graph = "inputs: {h: {value: [1, 2], dtype: float16}, w: [70000, 1]}\nnodes: {y: {op: mul, inputs: [h, w]}}\n"
    result = run("backward", "-", "--strict", stdin=graph)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "<stdin>:1:10: error: the gradient of 'h' became inf at [0] when cast to its value's dtype float16\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_outputs_refuse_to_replace_a_special_file(tmp_path: Path) -> None:
    """-o, --save and --render write a temporary file and rename it into place: onto a device or a
    pipe (as root, /dev/null) that rename would put a plain file in its place."""
    commands = [["html", APPLE, "-o", "{}"], ["train", APPLE, "--param", "tax", "--steps", "1", "--save", "{}"]]
    if shutil.which("dot"):
        commands.append(["dot", APPLE, "--render", "{}"])
    for number, command in enumerate(commands):
        pipe = tmp_path / f"pipe{number}.svg"
        os.mkfifo(pipe)
        result = run(*(str(pipe) if arg == "{}" else arg for arg in command))
        assert result.exit_code == 1 and result.stdout == ""
        assert f"cannot write {pipe}: not a regular file" in result.stderr
        assert stat.S_ISFIFO(os.stat(pipe).st_mode)


@pytest.mark.parametrize("size", [3, 2000])  # printed whole, and summarised by numpy
def test_text_output_never_writes_a_non_zero_number_as_zero(size: int) -> None:
    # At 2 digits after the point, 0.001123 would be written 0. in positional notation: the whole
    # array is written in scientific notation instead, each element read back within 1%.
    graph = f"inputs: {{x: {{shape: [{size}], fill: 0.001123}}, w: [0.5, -0.25, 2]}}\nnodes: {{y: {{op: neg, inputs: [x]}}}}\n"
    for flags in ([], ["--full"]):
        result = run("forward", "-", "--precision", "2", "--node", "x", *flags, stdin=graph)
        cells = " ".join(result.stdout.split("value:")[1].split()).strip("[]").replace("...", "").split()
        assert cells and all(re.fullmatch(r"1\.12e-03", cell) for cell in cells), cells
    mixed = run("forward", "-", "--precision", "2", "--node", "x", "--set", "x=[0.001, -0.5, 1]", stdin=graph)
    assert "value: [ 1.00e-03 -5.00e-01  1.00e+00]" in mixed.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["backward", APPLE, "--dout", "[1, 2"], "cgraph: error: --dout: cannot read '[1, 2': did not find expected ',' or ']' at its end"),
    (["backward", APPLE, "--dout", "abc"], "cgraph: error: --dout: expected a number or a list of numbers, got string 'abc'"),
    (["forward", APPLE, "--set", "tax={fill: 1"], "cgraph: error: --set tax: cannot read '{fill: 1': did not find expected ',' or '}' at its end"),
])
def test_a_typo_in_an_option_value_names_the_option_in_the_real_command(args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "cgraph", *args], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert "YAML" not in result.stderr
