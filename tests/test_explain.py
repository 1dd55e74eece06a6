"""`cgraph explain`: golden text worked out by hand for the book's example, broadcasting and fan-out."""

from __future__ import annotations

import ast
import json
import math
import re
import string
from pathlib import Path

import pytest
from click.testing import CliRunner

import cgraph
from cgraph.cli import cli
from cgraph.explain import NodeStep, SumStep, explain
from cgraph.layers import REGISTRY

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
HEADER = "(d v is the gradient of v; in each node's rules, dout is the gradient of that node)"


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, ["explain", *args], input=stdin)


# "Deep Learning from Scratch", 5.5.3: price 715 = (2 * 100 + 3 * 150) * 1.1. Backward from
# dout 1: d all_price = tax = 1.1, d tax = all_price = 650; add passes 1.1 to both prices;
# d apple = 1.1 * 2 = 2.2, d apple_num = 1.1 * 100 = 110, d orange = 1.1 * 3 = 3.3,
# d orange_num = 1.1 * 150 = 165.
BUY_APPLE_ORANGE = f"""\
backward, output 'price', dout = 1
{HEADER}

price = all_price * tax          = 650 * 1.1 = 715
  d all_price = dout * tax       = 1 * 1.1   = 1.1
  d tax       = dout * all_price = 1 * 650   = 650

all_price = apple_price + orange_price = 200 + 450 = 650
  d apple_price  = dout * 1            = 1.1 * 1   = 1.1
  d orange_price = dout * 1            = 1.1 * 1   = 1.1

orange_price = orange * orange_num = 150 * 3   = 450
  d orange     = dout * orange_num = 1.1 * 3   = 3.3
  d orange_num = dout * orange     = 1.1 * 150 = 165

apple_price = apple * apple_num  = 100 * 2   = 200
  d apple     = dout * apple_num = 1.1 * 2   = 2.2
  d apple_num = dout * apple     = 1.1 * 100 = 110
"""

# y = x * w + b with x (3, 2), w (2,), b (2,) and dout all ones (3, 2): w and b were broadcast
# over the 3 rows, so their gradients are summed over axis 0: d w = column sums of x = [9, 12],
# d b = [3, 3]; d x = dout * w = [10, 100] in every row.
BIAS_BATCH = f"""\
backward, output 'y', dout = (3, 2) [[1, 1], [1, 1], [1, 1]]
{HEADER}

y = xw + b                              = (3, 2) [[10, 200], [30, 400], [50, 600]] + (2,) [0.5, 0.5] = (3, 2) [[10.5, 200.5], [30.5, 400.5], [50.5, 600.5]]
  d xw = dout * 1                       = (3, 2) [[1, 1], [1, 1], [1, 1]] * 1                        = (3, 2) [[1, 1], [1, 1], [1, 1]]
  d b  = sum over axes (0,) of dout * 1 : (3, 2) -> (2,)                                             = (2,) [3, 3]

xw = x * w                             = (3, 2) [[1, 2], [3, 4], [5, 6]] * (2,) [10, 100] = (3, 2) [[10, 200], [30, 400], [50, 600]]
  d x = dout * w                       = (3, 2) [[1, 1], [1, 1], [1, 1]] * (2,) [10, 100] = (3, 2) [[10, 100], [10, 100], [10, 100]]
  d w = sum over axes (0,) of dout * x : (3, 2) -> (2,)                                   = (2,) [9, 12]
"""

# y = x * x + x at x = 3: square = 9, y = 12. x reaches y three times: twice through square
# (dout * the other x = 1 * 3 each) and once directly (1), so d x = 3 + 3 + 1 = 7 = 2x + 1.
FAN_OUT = f"""\
backward, output 'y', dout = 1
{HEADER}

y = square + x        = 9 + 3 = 12
  d square = dout * 1 = 1 * 1 = 1
  d x      = dout * 1 = 1 * 1 = 1

square = x * x                = 3 * 3 = 9
  d x (as mul's x) = dout * x = 1 * 3 = 3
  d x (as mul's y) = dout * x = 1 * 3 = 3

d x = 3 (from square, as mul's x) + 3 (from square, as mul's y) + 1 (from y) = 7
"""


@pytest.mark.parametrize(
    "name, expected",
    [("buy_apple_orange.yaml", BUY_APPLE_ORANGE), ("bias_batch.yaml", BIAS_BATCH), ("fan_out.yaml", FAN_OUT)],
)
def test_explain_text_is_the_chain_rule_worked_by_hand(name: str, expected: str) -> None:
    result = run(str(GRAPHS / name), "--dout", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda path: path.name)
def test_explain_runs_on_every_example_and_shows_every_node(path: Path) -> None:
    result = run(str(path))
    assert result.exit_code == 0, result.stderr
    graph = cgraph.load(path)
    unreached = re.search(r"^no path to '\w+', gradient 0: (.*)$", result.stdout, re.MULTILINE)
    for name, node in graph.spec.nodes.items():
        if unreached and name in unreached.group(1).split(", "):
            continue  # a node the output does not depend on, such as an accuracy
        assert re.search(rf"^{re.escape(shown(name))} = ", result.stdout, re.MULTILINE)
        for arg in node.args:
            if arg not in graph.spec.constants:  # constants take no gradient
                assert re.search(rf"^  d {re.escape(shown(arg))}(?= )", result.stdout, re.MULTILINE)


def shown(name: str) -> str:
    """A name as the equations show it: an operator's part of a formula (``-dot``, ``w[0] * x[0]``) in parentheses."""
    tree = ast.parse(name, mode="eval").body if not name.isidentifier() else None
    return f"({name})" if isinstance(tree, (ast.BinOp, ast.UnaryOp)) else name


def test_every_rule_in_the_text_holds_for_the_book_example() -> None:
    # Each "= a op b = c" line is arithmetic a reader can redo: check it.
    checked = 0
    for line in run(str(GRAPHS / "buy_apple_orange.yaml")).stdout.splitlines():
        match = re.search(r"= ([\d.]+) ([*+]) ([\d.]+) += ([\d.]+)$", line)
        if match:
            a, op, b, c = match.groups()
            assert (float(a) * float(b) if op == "*" else float(a) + float(b)) == pytest.approx(float(c))
            checked += 1
    assert checked == 12  # 4 nodes, each with its value and 2 gradients


def test_json_has_the_same_steps_as_data() -> None:
    result = run(str(GRAPHS / "fan_out.yaml"), "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["output"] == "y" and data["dout"] == 1.0 and data["unreached"] == []
    assert [(step["step"], step["name"]) for step in data["steps"]] == [("node", "y"), ("node", "square"), ("sum", "x")]
    square = data["steps"][1]
    assert square["rule"] == "x * x" and square["numbers"] == "3 * 3" and square["value"] == 9.0
    assert square["dout"] == 1.0
    assert [(grad["input"], grad["as"], grad["rule"], grad["grad"]) for grad in square["grads"]] == [
        ("x", "x", "dout * x", 3.0), ("x", "y", "dout * x", 3.0)]
    assert data["steps"][2] == {
        "step": "sum", "name": "x", "grad": 7.0,
        "contributions": [{"from": "square", "as": "x", "grad": 3.0}, {"from": "square", "as": "y", "grad": 3.0},
                          {"from": "y", "as": None, "grad": 1.0}],
    }


def test_json_records_the_broadcast_sum() -> None:
    data = json.loads(run(str(GRAPHS / "bias_batch.yaml"), "--format", "json").stdout)
    xw = data["steps"][1]
    w = xw["grads"][1]
    assert w == {"input": "w", "as": "y", "rule": "sum over axes (0,) of dout * x", "numbers": "(3, 2) -> (2,)",
                 "grad": [9.0, 12.0], "shape": [2], "summed_axes": [0]}
    assert xw["grads"][0]["summed_axes"] == []


def _squeezed(text: str) -> list[str]:
    """Lines with runs of spaces made one, for checking content apart from alignment."""
    return [" ".join(line.split()) for line in text.splitlines()]


def test_broadcast_over_a_size_one_axis_and_a_leading_axis() -> None:
    # a (2, 1, 3) * c (4, 1) -> out (2, 4, 3). a was broadcast along its size-1 axis 1: each of
    # its gradients sums 4 elements of dout * c = 2, giving 8. c was broadcast along the leading
    # axis 0 and along its size-1 axis (out axis 2): each sums 2 * 3 elements of dout * a = 1.
    graph = "inputs: {a: {shape: [2, 1, 3], fill: 1}, c: {shape: [4, 1], fill: 2}}\nnodes: {m: {op: mul, inputs: [a, c]}}\n"
    lines = _squeezed(run("-", stdin=graph).stdout)
    assert "d a = sum over axes (1,) of dout * c : (2, 4, 3) -> (2, 1, 3) = (2, 1, 3) [[[8, 8, 8]], [[8, 8, 8]]]" in lines
    assert "d c = sum over axes (0, 2) of dout * a : (2, 4, 3) -> (4, 1) = (4, 1) [[6], [6], [6], [6]]" in lines


def test_large_arrays_are_shown_by_shape() -> None:
    graph = "inputs: {a: {shape: [10, 100], fill: 2}, s: 3}\nnodes: {m: {op: mul, inputs: [a, s]}}\n"
    lines = _squeezed(run("-", stdin=graph).stdout)
    assert lines[0] == "backward, output 'm', dout = (10, 100) array"
    assert "m = a * s = (10, 100) array * 3 = (10, 100) array" in lines
    assert "d a = dout * s = (10, 100) array * 3 = (10, 100) array" in lines
    # d s sums the 1000 elements of dout * a = 2.
    assert "d s = sum over axes (0, 1) of dout * a : (10, 100) -> () = 2000" in lines


def test_node_option_shows_the_steps_about_a_name() -> None:
    result = run(str(GRAPHS / "buy_apple_orange.yaml"), "--node", "tax")
    blocks = result.stdout.split("\n\n")
    assert len(blocks) == 2 and blocks[1].startswith("price = all_price * tax")
    result = run(str(GRAPHS / "fan_out.yaml"), "--node", "square")
    assert [block.split(" ")[0] for block in result.stdout.split("\n\n")[1:]] == ["y", "square"]


def test_nodes_off_the_path_to_the_output_are_left_out_and_listed() -> None:
    # With output apple_price = apple * apple_num and apple = [1, 2]: dout = [1, 1];
    # d apple = dout * 2 = [2, 2]; d apple_num = 1 * 1 + 1 * 2 = 3, summed over the broadcast axis.
    result = run(str(GRAPHS / "buy_apple_orange.yaml"), "--output", "apple_price", "--set", "apple=[1, 2]")
    assert result.exit_code == 0
    assert result.stdout.split("\n\n", 1)[1] == (
        "apple_price = apple * apple_num                    = (2,) [1, 2] * 2 = (2,) [2, 4]\n"
        "  d apple     = dout * apple_num                   = (2,) [1, 1] * 2 = (2,) [2, 2]\n"
        "  d apple_num = sum over axes (0,) of dout * apple : (2,) -> ()      = 3\n"
        "\n"
        "no path to 'apple_price', gradient 0: orange, orange_num, tax, orange_price, all_price, price\n"
    )


def test_precision_applies_to_the_numbers() -> None:
    result = run(str(GRAPHS / "buy_apple_orange.yaml"), "--set", "tax=1.123456", "--precision", "2")
    assert "price = all_price * tax          = 650 * 1.12 = 730.25" in result.stdout


def test_errors_are_the_cores() -> None:
    result = run(str(GRAPHS / "fan_out.yaml"), "--node", "z")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "cgraph: error: --node: unknown name 'z'\n"
    assert run(str(GRAPHS / "fan_out.yaml"), "--format", "jsonl").exit_code == 2


def test_steps_as_data() -> None:
    graph = cgraph.load(GRAPHS / "fan_out.yaml")
    graph.backward()
    steps = explain(graph)
    assert [type(step) for step in steps] == [NodeStep, NodeStep, SumStep]
    assert steps[2].parts == [("square", "x", 3.0), ("square", "y", 3.0), ("y", None, 1.0)]


@pytest.mark.parametrize("op", sorted(REGISTRY))
def test_every_op_has_rules_for_explaining(op: str) -> None:
    cls = REGISTRY[op]
    allowed = {*cls.args, "out", *cls.attrs}
    assert cls.formula and len(cls.grad_formulas) == len(cls.args)
    for formula in (cls.formula, *cls.grad_formulas):
        fields = {field for _, field, _, _ in string.Formatter().parse(formula) if field is not None}
        assert fields <= allowed, f"{op}: {formula!r} uses {fields - allowed}"


# --- numbers written so that they read correctly --------------------------------------------------

# q = a / b = 2 / -0.5 = -4; n = -d = -(-4) = 4. Backward from dout 1 through s = q + n:
# d a = 1 / -0.5 = -2, d b = -1 * 2 / (-0.5)**2 = -2 / 0.25 = -8, d d = -1.
NEGATIVES = "inputs: {a: 2, b: -0.5, d: -4}\nnodes:\n  q: {op: div, inputs: [a, b]}\n  n: {op: neg, inputs: [d]}\n  s: {op: add, inputs: [q, n]}\n"


def test_negative_numbers_are_parenthesised_where_the_rule_would_bind_them() -> None:
    lines = _squeezed(run("-", stdin=NEGATIVES).stdout)
    assert "n = -d = -(-4) = 4" in lines
    assert "d d = -dout = -(1) = -1" in lines
    assert "q = a / b = 2 / (-0.5) = -4" in lines
    assert "d a = dout / b = 1 / (-0.5) = -2" in lines
    assert "d b = -dout * a / b**2 = -(1) * 2 / (-0.5)**2 = -8" in lines
    assert not any("--" in line or "-0.5**" in line for line in lines)


# Ops whose rules are arithmetic a reader can type into Python: with negative inputs, each rule's
# numbers, evaluated as Python, must give the value or gradient printed after them.
ARITHMETIC_OPS = ["mul", "add", "sub", "div", "pow", "neg", "exp", "sigmoid", "tanh"]
PYTHON = {"exp": math.exp, "tanh": math.tanh, "log": math.log, "sqrt": math.sqrt, "max": max}


@pytest.mark.parametrize("op", ARITHMETIC_OPS)
@pytest.mark.parametrize("x, y", [(-0.5, -2.0), (-3.0, 2.0), (1.5, -1.0)])
def test_the_numbers_of_every_arithmetic_rule_evaluate_to_its_result(op: str, x: float, y: float) -> None:
    args = ["x", "y"][:len(REGISTRY[op].args)]
    graph = f"inputs: {{x: {x}, y: {y}, w: -1.5}}\nnodes:\n  f: {{op: {op}, inputs: [{', '.join(args)}]}}\n  g: {{op: mul, inputs: [f, w]}}\n"
    result = run("-", "--format", "json", stdin=graph)
    assert result.exit_code == 0, result.stderr
    step = next(step for step in json.loads(result.stdout)["steps"] if step["name"] == "f")
    assert step["dout"] == -1.5  # a negative dout, so that -dout must be written -(-1.5)
    checked = [(step["numbers"], step["value"])] + [(grad["numbers"], grad["grad"]) for grad in step["grads"]]
    for numbers, expected in checked:
        if expected == "NaN":
            continue  # log of a negative number (pow's dy): not real, in Python's math either
        assert eval(numbers, {"__builtins__": {}}, PYTHON) == pytest.approx(expected, rel=1e-6), numbers


def test_one_notation_per_array() -> None:
    # 0.000123 and 1.67e-05 need scientific notation at 8 digits (under 1e-4) and at 3 (under 1e-3):
    # so does every element beside them, and no element is written as 0.
    graph = "inputs: {x: [0.000123, 1.67e-05, 1], two: 2}\nnodes: {y: {op: mul, inputs: [x, two]}}\n"
    for precision in ("8", "3"):
        lines = _squeezed(run("-", "--precision", precision, stdin=graph).stdout)
        assert "y = x * two = (3,) [1.23e-04, 1.67e-05, 1e+00] * 2 = (3,) [2.46e-04, 3.34e-05, 2e+00]" in lines
    # At precision 2, 0.004 would be written 0 in positional notation: the whole array goes scientific.
    lines = _squeezed(run("-", "--precision", "2", "--set", "x=[0.004, 0.5, 1]", stdin=graph).stdout)
    assert "y = x * two = (3,) [4e-03, 5e-01, 1e+00] * 2 = (3,) [8e-03, 1e+00, 2e+00]" in lines


def test_a_matrix_product_with_a_1d_input_shows_the_rule_applied() -> None:
    # v (2,) @ W (2, 3) = [1 + 8, 2 + 10, 3 + 12] = [9, 12, 15]. With dout ones (3,): d v = dout @ W.T =
    # [1 + 2 + 3, 4 + 5 + 6] = [6, 15]; d W = outer(v, dout) = [[1, 1, 1], [2, 2, 2]] (v.T @ dout would be a number).
    graph = "inputs: {v: [1, 2], W: [[1, 2, 3], [4, 5, 6]], u: [1, 1]}\nnodes:\n  p: {op: matmul, inputs: [v, W]}\n  q: {op: matmul, inputs: [u, v]}\n"
    lines = _squeezed(run("-", "--output", "p", stdin=graph).stdout)
    assert "d v = dout @ W.T = (3,) [1, 1, 1] @ ((2, 3) [[1, 2, 3], [4, 5, 6]]).T = (2,) [6, 15]" in lines
    assert "d W = outer(v, dout) = outer((2,) [1, 2], (3,) [1, 1, 1]) = (2, 3) [[1, 1, 1], [2, 2, 2]]" in lines
    # u . v = 3, a 0-d output: the gradients are dout times the other vector.
    lines = _squeezed(run("-", "--output", "q", "--dout", "2", stdin=graph).stdout)
    assert "d u = dout * v = 2 * (2,) [1, 2] = (2,) [2, 4]" in lines
    assert "d v = dout * u = 2 * (2,) [1, 1] = (2,) [2, 2]" in lines


def test_a_matrix_product_is_not_shown_as_a_broadcast_sum() -> None:
    # c (3, 1) @ r (1, 3) is an outer product: d c = dout @ r.T is (3, 1) at once, nothing is summed
    # over broadcast axes. Each row of dout (ones) times r.T = 4 + 5 + 6 = 15; each column of c.T @ dout is 6.
    graph = "inputs: {c: [[1], [2], [3]], r: [[4, 5, 6]]}\nnodes: {o: {op: matmul, inputs: [c, r]}}\n"
    lines = _squeezed(run("-", stdin=graph).stdout)
    assert "d c = dout @ r.T = (3, 3) array @ ((1, 3) [[4, 5, 6]]).T = (3, 1) [[15], [15], [15]]" in lines
    assert "d r = c.T @ dout = ((3, 1) [[1], [2], [3]]).T @ (3, 3) array = (1, 3) [[6, 6, 6]]" in lines


def test_mean_gives_the_number_it_divides_by() -> None:
    # The mean over axis 1 of a (2, 3) array averages 3 values: each gradient is dout / 3.
    graph = "inputs: {x: [[1, 2, 3], [4, 5, 6]]}\nnodes: {m: {op: mean, inputs: [x], axis: 1}}\n"
    lines = _squeezed(run("-", "--dout", "[3, 6]", stdin=graph).stdout)
    assert ("d x = dout / 3 repeated along the averaged axes (3 values in each mean) = (2,) [3, 6] / 3 repeated "
            "along the averaged axes (3 values in each mean) = (2, 3) [[1, 1, 1], [2, 2, 2]]") in lines


def test_an_indexed_array_is_parenthesised() -> None:
    # w[2] of [2, -3, -3] is -3; the array written with its shape is put in parentheses before [2].
    graph = "inputs: {w: [2, -3, -3]}\nnodes: {v: {op: index, inputs: [w], key: '2'}}\n"
    assert "v = w[2] = ((3,) [2, -3, -3])[2] = -3" in _squeezed(run("-", stdin=graph).stdout)
