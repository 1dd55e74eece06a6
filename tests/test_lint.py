"""`cgraph lint`, `--lint` and explain's notes: the mistakes that run without error, found from shapes,
dtypes and names alone."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import cgraph
from cgraph.cli import cli
from cgraph.lint import lint, skeleton


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def warnings_of(text: str) -> list[str]:
    return [warning.message for warning in lint(cgraph.loads(text))]


# pred (3,) - target (3, 1) broadcasts to (3, 3): 9 squared errors where 3 were meant.
MSE = """\
inputs:
  pred: [1, 2, 3]
  target: [[1], [2], [4]]
nodes:
  err: {op: sub, inputs: [pred, target]}
  sq: {op: mul, inputs: [err, err]}
  loss: {op: mean, inputs: [sq]}
"""


def test_a_broadcast_larger_than_every_input_is_reported_with_the_shapes_meant() -> None:
    result = run("lint", "-", stdin=MSE)
    assert result.exit_code == 0
    assert result.stdout == ("<stdin>:5:3: warning: node 'err': sub broadcasts (3,) and (3, 1) to (3, 3): "
                             "did you mean (3,) and (3,)?\n")
    strict = run("lint", "-", "--strict", stdin=MSE)
    assert strict.exit_code == 1 and strict.stdout == result.stdout


@pytest.mark.parametrize("shapes, expected", [
    (("[2, 1]", "[1, 3]"), "node 'o': mul broadcasts (2, 1) and (1, 3) to (2, 3)"),  # an outer product: no suggestion
    (("[3, 1]", "[1, 3]"), "node 'o': mul broadcasts (3, 1) and (1, 3) to (3, 3): did you mean (3,) and (3,)?"),
])
def test_broadcast_suggestions_only_where_the_sizes_agree(shapes: tuple[str, str], expected: str) -> None:
    text = (f"inputs: {{a: {{shape: {shapes[0]}, fill: 1}}, b: {{shape: {shapes[1]}, fill: 1}}}}\n"
            "nodes: {o: {op: mul, inputs: [a, b]}}\n")
    assert warnings_of(text) == [expected]


@pytest.mark.parametrize("text", [
    # A bias added to a batch: the value is as large as the batch, nothing is enlarged.
    "inputs: {x: {shape: [4, 3], fill: 1}, b: [1, 2, 3]}\nnodes: {y: {op: add, inputs: [x, b]}}\n",
    # A matrix product is not a broadcast, though (3, 1) @ (1, 3) is larger than both.
    "inputs: {c: [[1], [2], [3]], r: [[4, 5, 6]]}\nnodes: {o: {op: matmul, inputs: [c, r]}}\n",
    "inputs: {x: [[1, 2]], w: [[1, 2], [3, 4]], b: [1, 1]}\nnodes: {y: {op: affine, inputs: [x, w, b]}}\n",
])
def test_no_warning_where_nothing_is_wrong(text: str) -> None:
    assert warnings_of(text) == []


def test_inputs_and_nodes_with_no_path_to_the_output() -> None:
    text = "inputs: {a: 1, b: 2, c: 3}\nnodes:\n  y: {op: mul, inputs: [a, b]}\n  z: {op: neg, inputs: [c]}\noutput: y\n"
    result = run("lint", "-", stdin=text)
    assert result.stdout == (
        "<stdin>:1:22: warning: input 'c' has no path to the output 'y', so its gradient is 0\n"
        "<stdin>:4:3: warning: node 'z' has no path to the output 'y', so its gradient is 0\n")


def test_float32_mixed_with_float64() -> None:
    text = "inputs: {h: {value: [1, 2], dtype: float32}, w: [3, 4], k: {value: 2, dtype: float16}}\n" \
           "nodes: {y: {op: mul, inputs: [h, w]}, z: {op: mul, inputs: [h, k]}, s: {op: add, inputs: [y, z]}}\n"
    # y = float32 * float64 is float64 (numpy's promotion), and so s = y + z mixes z's float32 with it.
    # z = float32 * float16 is float32: no float64 there.
    assert warnings_of(text) == [
        "node 'y': mul mixes float32 (h) and float64 (w); numpy promotes the result to float64",
        "node 's': add mixes float32 (z) and float64 (y); numpy promotes the result to float64",
    ]


def test_names_differing_only_by_case_or_lookalike_letters() -> None:
    # 'аpple' starts with CYRILLIC SMALL LETTER A; 'Αpple' with GREEK CAPITAL LETTER ALPHA; 'ﬁle' is NFKC 'file'.
    text = "inputs: {apple: 1, аpple: 2, Apple: 3, Αpple: 4, file: 5, ﬁle: 6}\nnodes:\n" \
           "  s: {op: add, inputs: [apple, аpple]}\n  t: {op: add, inputs: [Apple, Αpple]}\n" \
           "  u: {op: add, inputs: [file, ﬁle]}\n  v: {op: add, inputs: [s, t]}\n  w: {op: add, inputs: [v, u]}\n"
    assert warnings_of(text) == [
        "names 'apple' and 'аpple' differ only by lookalike letters ('а' is CYRILLIC SMALL LETTER A)",
        "names 'apple' and 'Apple' differ only by case",
        "names 'apple' and 'Αpple' differ only by lookalike letters ('Α' is GREEK CAPITAL LETTER ALPHA)",
        "names 'file' and 'ﬁle' differ only by lookalike letters ('ﬁ' is LATIN SMALL LIGATURE FI)",
    ]
    assert skeleton("раураl") == skeleton("paypal")  # Cyrillic р, а, у
    assert skeleton("x_1") != skeleton("x_l")


def test_lint_does_not_run_the_passes() -> None:
    # log of 0 would warn about -inf if the passes ran; lint says nothing about values.
    text = "inputs: {x: 0}\nnodes: {y: {op: log, inputs: [x]}}\n"
    result = run("lint", "-", stdin=text)
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""


def test_node_option_keeps_the_warnings_about_a_name() -> None:
    text = MSE.replace("  target:", "  spare: 1\n  target:")
    assert len(run("lint", "-", stdin=text).stdout.splitlines()) == 2
    assert run("lint", "-", "--node", "spare", stdin=text).stdout.splitlines() == [
        "<stdin>:3:3: warning: input 'spare' has no path to the output 'loss', so its gradient is 0"]


@pytest.mark.parametrize("command", ["forward", "backward"])
def test_lint_option_warns_once_on_stderr_before_the_output(command: str) -> None:
    result = run(command, "-", "--lint", "--format", "json", stdin=MSE)
    assert result.exit_code == 0
    assert result.stderr == ("<stdin>:5:3: warning: node 'err': sub broadcasts (3,) and (3, 1) to (3, 3): "
                             "did you mean (3,) and (3,)?\n")
    assert json.loads(result.stdout)["output"] == "loss"
    assert run(command, "-", stdin=MSE).stderr == ""  # without --lint, a broadcast may be meant


def test_explain_notes_the_warnings_at_the_nodes_concerned() -> None:
    result = run("explain", "-", stdin=MSE)
    blocks = result.stdout.split("\n\n")
    err = next(block for block in blocks if block.startswith("err = "))
    assert err.rstrip("\n").endswith("\n  note: node 'err': sub broadcasts (3,) and (3, 1) to (3, 3): did you mean (3,) and (3,)?")
    assert sum("note:" in block for block in blocks) == 1
    steps = json.loads(run("explain", "-", "--format", "json", stdin=MSE).stdout)["steps"]
    assert {step["name"]: step["notes"] for step in steps if step["step"] == "node"} == {
        "loss": [], "sq": [], "err": ["node 'err': sub broadcasts (3,) and (3, 1) to (3, 3): did you mean (3,) and (3,)?"]}


def test_constants_of_formulas_take_the_dtype_beside_them() -> None:
    # x * 2 + 1 stays float32 (the constants are Python floats); adding the float64 w mixes dtypes.
    assert warnings_of("inputs:\n  x: {value: [1, 2], dtype: float32}\nnodes:\n  y: x * 2 + 1\n") == []
    assert warnings_of("inputs:\n  x: {value: [1, 2], dtype: float32}\n  w: [1, 2]\nnodes:\n  y: x * 2 + w\n") == [
        "node 'y': add mixes float32 (x * 2) and float64 (w); numpy promotes the result to float64"]
