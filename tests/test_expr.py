"""Formulas as nodes: the grammar, constants, indexing, naming, positions of refusals, hostile
text, and formulas typed with -e. Expected numbers are worked out by hand or with numpy here."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cgraph
from cgraph.cli import cli
from cgraph.errors import CgraphError
from cgraph.expr import NAME_LIMIT

ROOT = Path(__file__).resolve().parent.parent


def load(nodes: str, inputs: str = "x: 2\n  y: 3\n  z: -4", output: str = "") -> cgraph.Graph:
    text = f"inputs:\n  {inputs}\nnodes:\n{nodes}\n" + (f"output: {output}\n" if output else "")
    return cgraph.loads(text, source="g.yaml")


def error_of(nodes: str, inputs: str = "x: 2\n  y: 3\n  z: -4") -> str:
    with pytest.raises(CgraphError) as caught:
        load(nodes, inputs).forward()
    return str(caught.value)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


# --- the grammar ------------------------------------------------------------------------


@pytest.mark.parametrize(("formula", "expected"), [
    ("x + y * z", 2 + 3 * -4),
    ("(x + y) * z", (2 + 3) * -4),
    ("x - y - z", (2 - 3) - -4),
    ("x / y / z", (2 / 3) / -4),
    ("x ** y ** 2", 2 ** (3 ** 2)),
    ("-x ** 2", -(2 ** 2)),
    ("(-x) ** 2", 4),
    ("-(-x) + y", 5),
    ("x * -2", -4),
    ("+x * y", 6),
    ("1 / (1 + exp(-x))", 1 / (1 + np.exp(-2))),
    ("maximum(x, y) - minimum(x, y) + abs(z) + square(z)", 3 - 2 + 4 + 16),
    ("clip(z, min=-1, max=null) + clip(x, max=1.5) + clip(y, min=None, max=None)", -1 + 1.5 + 3),
])
def test_precedence_and_associativity_follow_python(formula: str, expected: float) -> None:
    graph = load(f"  f: {formula}")
    assert graph.forward() == pytest.approx(expected)


def test_calls_take_attributes_as_keywords() -> None:
    inputs = "m: [[1, 2, 3], [4, 5, 6]]"
    m = np.array([[1.0, 2, 3], [4, 5, 6]])
    cases = {
        "sum(m, axis=0, keepdims=true)": m.sum(axis=0, keepdims=True),
        "sum(m, axis=1, keepdims=True)": m.sum(axis=1, keepdims=True),
        "mean(m, axis=[0, 1])": m.mean(),
        "transpose(m, axes=[1, 0])": m.T,
        "reshape(m, shape=[-1])": m.reshape(-1),
        "concat(m, m, axis=1)": np.concatenate([m, m], axis=1),
        "stack(m, m, m)": np.stack([m, m, m]),
    }
    for formula, expected in cases.items():
        value = load(f"  f: {formula}", inputs).forward()
        np.testing.assert_array_equal(value, expected, err_msg=formula)


@pytest.mark.parametrize(("formula", "expected"), [
    ("m[0]", [1, 2, 3]),
    ("m[-1]", [4, 5, 6]),
    ("m[:, 1:3]", [[2, 3], [5, 6]]),
    ("m[::-1, ::2]", [[4, 6], [1, 3]]),
    ("m[..., 0]", [1, 4]),
    ("m[1, -1]", 6),
    ("m[0][1:]", [2, 3]),
])
def test_indexing_takes_numpy_basic_indices(formula: str, expected) -> None:
    graph = load(f"  f: {formula}", "m: [[1, 2, 3], [4, 5, 6]]")
    np.testing.assert_array_equal(graph.forward(), expected)


def test_index_gradient_is_dout_scattered_into_zeros() -> None:
    graph = load("  f: sum(m[:, 1:3] * m[:, 1:3]) + m[1, 0]", "m: [[1, 2, 3], [4, 5, 6]]")
    graph.forward()
    grads = graph.backward()
    # d/dm of sum(m[:, 1:3]**2) is 2m on columns 1 and 2; m[1, 0] adds 1 at (1, 0).
    np.testing.assert_array_equal(grads["m"], [[0, 4, 6], [1, 10, 12]])


def test_index_op_in_mapping_form_is_the_same_node() -> None:
    mapping = load("  f: {op: index, inputs: [m], key: ':, 1:3'}", "m: [[1, 2, 3], [4, 5, 6]]")
    formula = load("  f: m[:, 1:3]", "m: [[1, 2, 3], [4, 5, 6]]")
    np.testing.assert_array_equal(mapping.forward(), formula.forward())
    assert mapping.layers["f"].key == formula.layers["f"].key == ":, 1:3"


def test_mapping_and_formula_nodes_mix_in_one_file() -> None:
    graph = load("  q: {op: add, inputs: [x, y]}\n  f: q * z")
    assert graph.forward() == -20.0
    assert graph.backward()["x"] == -4.0


# --- constants ------------------------------------------------------------------------------


def test_numbers_are_constants_without_gradients_or_entries() -> None:
    graph = load("  f: 2 * x + 1")
    assert graph.forward() == 5.0
    grads = graph.backward()
    assert set(grads) == {"x", "y", "z", "2 * x", "f"}
    assert grads["x"] == 2.0
    assert graph.input_grads["2 * x"] == (None, 2.0)
    data = json.loads(run("backward", "-e", "f = 2 * x + 1", "--set", "x=2", "--format", "json").stdout)
    assert list(data["nodes"]) == ["x", "2 * x", "f"]
    assert data["nodes"]["2 * x"]["inputs"] == ["2", "x"]
    assert data["nodes"]["2 * x"]["input_grads"] == [None, 2.0]


def test_constants_keep_float32_as_python_scalars_do() -> None:
    graph = load("  f: x * 2.5 + 1", "x: {value: [1, 2], dtype: float32}")
    value = graph.forward()
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, np.array([1, 2], np.float32) * 2.5 + 1)
    assert graph.backward()["x"].dtype == np.float32


def test_square_by_a_constant_exponent_has_no_nan_gradient() -> None:
    result = run("backward", "-e", "f = x ** 2", "--set", "x=-3", "--format", "json", "--strict")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    nodes = json.loads(result.stdout)["nodes"]
    assert nodes["x"]["grad"] == -6.0  # 2x at x = -3
    assert nodes["f"]["input_grads"] == [-6.0, None]


def test_an_expression_of_constants_runs() -> None:
    graph = load("  f: 1 / 4 + x * 0", output="f")
    assert graph.forward() == 0.25
    graph = load("  g: 1 / (1 + square(0.5))\n  f: m * g", "m: [1, 2]")  # among arrays: its value is an array
    np.testing.assert_allclose(graph.forward(), [0.8, 1.6])
    np.testing.assert_allclose(graph.backward()["m"], [0.8, 0.8])
    assert graph.values["g"].dtype == np.float64 and graph.grads["g"].shape == ()
    assert list(graph.spec.nodes) == ["g", "f"]  # 1 + square(0.5) is the constant 1.25: no node of its own
    assert graph.spec.constants == {"1": 1.0, "1.25": 1.25}


# --- naming ---------------------------------------------------------------------------------


def test_sub_expressions_are_named_by_their_text() -> None:
    graph = load("  h: relu(x @ W1 + b1)", "x: [[1, 2]]\n  W1: [[1, 0], [0, 1]]\n  b1: [0, -5]")
    assert list(graph.spec.nodes) == ["x @ W1", "x @ W1 + b1", "h"]
    assert graph.spec.nodes["x @ W1"].args == ("x", "W1")
    assert graph.spec.nodes["h"].args == ("x @ W1 + b1",)
    text = run("forward", "-e", "h = relu(x @ W1 + b1)", "--set", "x=[[1, 2]]", "--set", "W1=[[1, 0], [0, 1]]",
               "--set", "b1=[0, -5]").stdout
    assert "x @ W1 = matmul(x, W1)" in text
    assert "h = relu(x @ W1 + b1)" in text


def test_same_sub_expression_is_one_node_and_its_gradient_adds_up() -> None:
    graph = load("  a: exp(x) * y\n  b: exp(x) + a", output="b")
    assert [name for name in graph.spec.nodes if name == "exp(x)"] == ["exp(x)"]
    graph.forward()
    # b = e^x + e^x * y: db/dx = e^x (1 + y) = 4 e^2
    assert graph.backward()["x"] == pytest.approx(4 * np.exp(2))


def test_names_are_canonical_and_never_identifiers() -> None:
    graph = load("  f: (x+y)*  exp( -z )")
    names = list(graph.spec.nodes)
    assert names == ["x + y", "-z", "exp(-z)", "f"]
    assert not any(name.isidentifier() for name in names[:-1])


def test_long_sub_expressions_are_named_by_node_and_number() -> None:
    terms = " + ".join(f"x * {i}" for i in range(1, 12))
    graph = load(f"  f: exp({terms})")
    long_names = [name for name in graph.spec.nodes if name.startswith("f#")]
    assert long_names  # a sum of 11 products is longer than NAME_LIMIT characters
    assert all(len(name) <= NAME_LIMIT for name in graph.spec.nodes)
    assert graph.forward() == pytest.approx(np.exp(2 * sum(range(1, 12))))


# --- refusals, with their positions ---------------------------------------------------------


@pytest.mark.parametrize(("node", "message"), [
    ("  f: x.T", "g.yaml:6:6: error: node 'f': attribute access ('.') is not allowed"),
    ("  f: x + y.real", "g.yaml:6:10: error: node 'f': attribute access ('.') is not allowed"),
    ('  f: "exp(lambda: x)"', "g.yaml:6:11: error: node 'f': lambda is not allowed"),
    ("  f: exp(x)(y)", "g.yaml:6:6: error: node 'f': only ops can be called, by their names"),
    ("  f: sum([x for x in y])", "g.yaml:6:10: error: node 'f': comprehensions are not allowed"),
    ("  f: exp('x')", "g.yaml:6:10: error: node 'f': strings are not allowed"),
    ("  f: __import__(x)", "g.yaml:6:6: error: node 'f': unknown op '__import__'"),
    ("  f: x < y", "g.yaml:6:6: error: node 'f': comparisons are not allowed"),
    ("  f: x % y", "g.yaml:6:8: error: node 'f': operator '%' is not supported"),
    ("  f: (x) // y", "g.yaml:6:10: error: node 'f': operator '//' is not supported"),
    ("  f: expp(x)", "g.yaml:6:6: error: node 'f': unknown op 'expp' (did you mean 'exp'?)"),
    ("  f: x * exp(x, y)", "g.yaml:6:10: error: node 'exp(x, y)': op 'exp' takes 1 input, got 2: exp(x)"),
    ("  f: sum(x, axs=0)", "g.yaml:6:13: error: node 'f': sum has no attribute 'axs' (did you mean 'axis'?); "
                           "its attributes: axis, keepdims"),
    ("  f: exp(x, axis=0)", "g.yaml:6:13: error: node 'f': exp has no attribute 'axis'; its attributes: none"),
    ("  f: sum(x, 0)", "g.yaml:6:13: error: node 'f': op 'sum' takes 1 input, got 2: attributes are keywords, "
                       "such as sum(x, axis=...)"),
    ("  f: summ(x, axs=0)", "g.yaml:6:6: error: node 'f': unknown op 'summ' (did you mean 'sum'?)"),
    ("  f: sum(x, axis=y)", "g.yaml:6:18: error: node 'f': an attribute's value must be a number"),
    ("  f: sum(x, axis=0.5)", "g.yaml:6:13: error: node 'f': sum attribute 'axis' must be"),
    ("  f: reshape(x)", "g.yaml:6:6: error: node 'f': op 'reshape' needs the attribute 'shape'"),
    ("  f: x + yy", "g.yaml:6:10: error: node 'f' uses unknown name 'yy' (did you mean 'y'?)"),
    ("  f: 2 * (x + yy)", "g.yaml:6:15: error: node 'x + yy' uses unknown name 'yy'"),
    ("  f: f + 1", "g.yaml:6:6: error: node 'f' uses itself as an input"),
    ("  f: x", "g.yaml:6:6: error: node 'f': the expression is only the name 'x'"),
    ("  f: '2'", "g.yaml:6:7: error: node 'f': the expression is only a number"),
    ("  f: x +", "g.yaml:6:9: error: node 'f': invalid expression: invalid syntax"),
    ("  f: exp(x", "g.yaml:6:9: error: node 'f': invalid expression: '(' was never closed"),
    ("  f: x + * 2", "g.yaml:6:10: error: node 'f': invalid expression: invalid syntax"),
    ("  f: x[0.5]", "g.yaml:6:8: error: node 'f': an index must be an integer"),
    ("  f: x[y]", "g.yaml:6:8: error: node 'f': an index must be an integer"),
    ("  f: x[1, ..., ...]", "g.yaml:6:8: error: node 'f': index key must have at most one '...'"),
    ("  f: x[::0]", "g.yaml:6:8: error: node 'f': index key has a slice step of 0"),
    ("  f: sum(*x)", "g.yaml:6:10: error: node 'f': '*' unpacking is not allowed"),
    ("  f: sum(x, **y)", "g.yaml:6:13: error: node 'f': '**' unpacking is not allowed"),
    ("  f: sum(x, axis=0, axis=1)", "g.yaml:6:21: error: node 'f': the attribute 'axis' is given twice"),
    ("  f: x + True", "g.yaml:6:10: error: node 'f': true is not a number"),
    ("  f: x * 1e999", "g.yaml:6:10: error: node 'f': the number 1e999 is too large"),
    ("  f: x[5]", "g.yaml:6:8: error: node 'f': index cannot take shape x (): [5] indexes 1 axes, but 'x' has 0"),
    ('  f: "x + yy"', "g.yaml:6:11: error: node 'f' uses unknown name 'yy'"),
    ("  f: 'exp(x) + y.T'", "g.yaml:6:16: error: node 'f': attribute access"),
    ("  f: |\n    exp(x)\n      + yy", "g.yaml:8:9: error: node 'f' uses unknown name 'yy'"),
    ("  f: >\n    exp(x)\n    + yy", "g.yaml:6:6: error: node 'f' uses unknown name 'yy'"),  # folded: inexact
    ("  f: exp(x)\n     + yy", "g.yaml:6:6: error: node 'f' uses unknown name 'yy'"),  # plain on two lines
])
def test_refusals_point_at_the_offending_token(node: str, message: str) -> None:
    assert error_of(node).startswith(message)


def test_shape_errors_point_at_the_operator() -> None:
    message = error_of("  f: sum(a @ b)", "a: [[1, 2, 3]]\n  b: [[1, 2, 3]]")
    assert message.startswith("g.yaml:5:12: error: node 'a @ b': matmul cannot combine shapes a (1, 3) and b (1, 3)")


def test_errors_in_a_file_read_by_the_quick_reader_have_positions() -> None:
    text = "inputs:\n  x: 1\nnodes:\n  a: x * 2\n  f: exp(a) + xx\n"
    with pytest.raises(CgraphError) as caught:
        cgraph.loads(text, source="q.yaml")
    assert str(caught.value).startswith("q.yaml:5:15: error: node 'f' uses unknown name 'xx' (did you mean 'x'?)")


# --- hostile text -----------------------------------------------------------------------------


@pytest.mark.parametrize(("formula", "message"), [
    ("(" * 100_000 + "x" + ")" * 100_000, "the expression has 200,001 characters, over the limit of 10,000"),
    ("x + " * 250_000 + "x", "the expression has 1,000,001 characters, over the limit of 10,000"),
    ("(" * 2_000 + "x" + ")" * 2_000, "the expression is nested more than 64 brackets deep"),
    ("-" * 5_000 + "x", "the expression has 5,000 operators, over the limit of 1,000"),
    ("x" + "+x" * 999, "the expression nests more than 100 operations inside one another"),
    ("exp(" * 60 + "x ** " * 60 + "x" + ")" * 60, "the expression nests more than 100 operations"),
    ("x[" * 40 + "0" + "]" * 40, "node 'f': an index must be an integer"),
    ("1" * 5_000 + " * x", "node 'f': a number has more than 100 digits"),
    ("x +\0 y", "node 'f': the expression holds the control character U+0000"),
])
def test_hostile_formulas_give_one_clear_error_quickly(formula: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(CgraphError) as caught:
        cgraph.from_dict({"inputs": {"x": 1.0}, "nodes": {"f": formula}})
    assert time.perf_counter() - started < 5  # a bound against hanging, not a speed figure
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_deep_nesting_from_the_command_line_is_one_line_without_traceback() -> None:
    result = subprocess.run([sys.executable, "-m", "cgraph", "forward", "-e", "f = " + "(" * 100_000 + "x"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == ("<expr 1>:1:5: error: node 'f': the expression has 100,001 characters, "
                             "over the limit of 10,000\n")


def test_dunder_names_are_just_unknown_names() -> None:
    for formula in ("__builtins__ + x", "x + __class__", "__import__(x)"):
        with pytest.raises(CgraphError, match="unknown"):
            cgraph.from_dict({"inputs": {"x": 1.0}, "nodes": {"f": formula}})


# --- every command ------------------------------------------------------------------------------


def test_every_command_takes_formulas() -> None:
    args = ["-e", "q = x + y", "-e", "f = q * z", "--set", "x=-2", "--set", "y=5", "--set", "z=-4"]
    assert "f = mul(q, z)" in run("forward", *args).stdout
    backward = json.loads(run("backward", *args, "--format", "json").stdout)["nodes"]
    assert (backward["x"]["grad"], backward["y"]["grad"], backward["z"]["grad"]) == (-4.0, -4.0, 3.0)
    assert "f = q * z" in run("explain", *args).stdout
    assert '"q" -> "f"' in run("dot", *args).stdout
    result = run("check", *args)
    assert result.exit_code == 0 and "PASS: 3 inputs" in result.stdout


def test_expr_positions_and_missing_names() -> None:
    result = run("forward", "-e", "f = (x + y) * zz.T", "--set", "x=1")
    assert result.exit_code == 1
    assert result.stderr.startswith("<expr 1>:1:15: error: node 'f': attribute access")
    result = run("forward", "-e", "q = x + y", "-e", "f = q * z * w")
    assert result.stderr == "cgraph: error: no value for x, y, z, w: give each with --set NAME=VALUE\n"
    result = run("forward", "-e", "q = x + 1", "-e", "q = x")
    assert result.stderr == "<expr 2>:1:1: error: 'q' is defined twice, by expressions 1 and 2\n"


def test_bare_expression_is_named_out_and_the_last_is_the_output() -> None:
    data = json.loads(run("forward", "-e", "2 * x", "--set", "x=3", "--format", "json").stdout)
    assert data["output"] == "out" and data["nodes"]["out"]["value"] == 6.0
    data = json.loads(run("forward", "-e", "a = 2 * x", "-e", "b = a + 1", "--set", "x=3", "--format", "json").stdout)
    assert data["output"] == "b"
    data = json.loads(run("forward", "-e", "a = 2 * x", "-e", "b = x + 1", "--set", "x=3", "--output", "a",
                          "--format", "json").stdout)
    assert data["output"] == "a"


def test_file_or_expr_but_not_both_nor_neither() -> None:
    assert run("forward", "-e", "f = x * 2", str(ROOT / "graphs" / "buy_apple.yaml")).exit_code == 2
    assert run("forward").exit_code == 2


def test_set_takes_the_mapping_forms_of_inputs() -> None:
    args = ["forward", "-e", "f = r + b", "--set", "r={shape: [3, 2], random: normal, seed: 1}",
            "--set", "b={shape: [2], fill: 0.5}", "--format", "json"]
    data = json.loads(run(*args).stdout)["nodes"]
    expected = np.random.default_rng(1).standard_normal((3, 2))
    np.testing.assert_array_equal(data["r"]["value"], expected)
    np.testing.assert_array_equal(data["f"]["value"], expected + 0.5)
    # in a file's graph too: the file's input replaced by a seeded random array
    data = run_json_file("--set", "tax={shape: [], random: uniform, seed: 3}")
    assert data["nodes"]["tax"]["value"] == np.random.default_rng(3).random(())


def run_json_file(*args: str) -> dict:
    result = run("forward", str(ROOT / "graphs" / "buy_apple.yaml"), *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(("value", "message"), [
    # columns in the VALUE, counted from 1 at its first character
    ("r={shape: [3, 2], random: normall}", "--set r:1:25: error: 'random' must be one of: normal, uniform"),
    ("r={shape: [3, 2], fil: 1}", "--set r:1:17: error: unknown key 'fil' in an input (did you mean 'fill'?)"),
    ("r=[1, [2]]", "--set r:1:5: error: expected a number, got a nested list"),
    ("r={shape: [2], fill: 1", "--set r: error: cannot read '{shape: [2], fill: 1': did not find expected ',' or '}' at its end"),
    # a VALUE that is wrong as a whole is placed at its option, not at the formulas
    ("r=true", "--set r: error: expected a number or a list of numbers, got boolean true"),
    ("r=", "--set r: error: expected a number or a list of numbers, got null"),
])
def test_errors_in_a_set_value_say_where_in_the_value(value: str, message: str) -> None:
    result = run("forward", "-e", "f = r * 2", "--set", value)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr


# --- the quick reader ---------------------------------------------------------------------------


FORMULA_LINES = ["x + y", "(q * z) / 2", "w[0] * x[:, 1:3]", "sum(x, axis=0, keepdims=true)", "-x", "x @ W1 + b1",
                 ".5 * x", "x[...,0]", "+x", "x ** -2", "exp(-(w0*x0 + w1*x1 + w2))", "x[1:]", "a_1+b_2"]


@pytest.mark.parametrize("formula", FORMULA_LINES)
def test_quick_reader_reads_formula_lines_as_yaml_does(formula: str) -> None:
    from cgraph.yamlsafe import parse, quick_parse

    text = f"inputs:\n  x: 1\nnodes:\n  f: {formula}\n"
    quick = quick_parse(text)
    assert quick is not None  # read on the quick path
    assert quick == json.loads(json.dumps(parse(text, "f.yaml")))


@pytest.mark.parametrize("value", ["- x", "x:", "x: y", "-010", "- 1", "x #"])
def test_quick_reader_leaves_what_yaml_reads_otherwise_to_the_parser(value: str) -> None:
    from cgraph.yamlsafe import quick_parse

    text = f"nodes:\n  f: {value}\n"
    quick = quick_parse(text)
    assert quick is None or quick == {"nodes": {"f": "x"}}  # 'x #': the comment is dropped, as YAML does


def test_lint_takes_constants_as_python_numbers() -> None:
    from cgraph.lint import lint, value_dtypes

    graph = load("  f: sum(h * 2 + 0.5)", "h: {value: [1, 2], dtype: float32}")
    assert value_dtypes(graph)["h * 2 + 0.5"] == np.float32  # as numpy runs it: float32 stays float32
    assert [warning.kind for warning in lint(graph)] == []
    graph = load("  f: sum(h * 2 + y)", "h: {value: [1, 2], dtype: float32}\n  y: [1, 2]")
    assert [warning.kind for warning in lint(graph)] == ["dtype"]


def test_train_html_and_sweep_take_formulas_and_serve_needs_a_file() -> None:
    result = run("train", "-e", "loss = sum(square(w - 3))", "--set", "w=[0, 1]", "--param", "w", "--steps", "1",
                 "--lr", "0.1", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    # one SGD step: w - 0.1 * 2 (w - 3) = [0.6, 1.4]
    assert json.loads(result.stdout.splitlines()[-1])["loss"] == pytest.approx(9 + 4)
    assert run("html", "-e", "f = x * 2", "--set", "x=1").exit_code == 0
    result = run("sweep", "-e", "f = x * 2", "--set", "x=0", "--vary", "x=1:2:3", "--format", "jsonl")
    assert [json.loads(line)["output"] for line in result.stdout.splitlines()] == [2.0, 3.0, 4.0]
    result = run("serve", "-e", "f = x * 2", "--set", "x=1")
    assert result.exit_code == 2 and "give FILE" in result.stderr


@pytest.mark.parametrize("number, column", [("0x10", 9), ("1_000", 9), ("1j", 9), ("007", 9), ("00", 9), ("0b1", 9),
                                            ("0o7", 9), ("00.5", 9), ("2 * 0X1F", 13)])
def test_a_number_not_decimal_is_an_error_at_its_column(number: str, column: int) -> None:
    result = subprocess.run([sys.executable, "-m", "cgraph", "forward", "-e", f"y = x * {number}", "--set", "x=1"],
                            capture_output=True, text=True, timeout=60)
    token = number.split()[-1]
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"<expr 1>:1:{column}: error: node 'y': '{token}' is not a number as formulas write them: "
                             "digits with an optional fraction and exponent, such as 16, 0.5, .5, 1e-3\n")


@pytest.mark.parametrize("number", ["0", "16", "2.5", ".5", "5.", "1e-3", "2E+10", "0e0", "0.0"])
def test_decimal_numbers_are_the_numbers_they_write(number: str) -> None:
    result = subprocess.run([sys.executable, "-m", "cgraph", "forward", "-e", f"y = x * {number}", "--set", "x=3",
                             "--format", "json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["nodes"]["y"]["value"] == 3 * float(number)
