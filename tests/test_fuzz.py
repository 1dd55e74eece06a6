"""No input, however broken, gets a traceback: random documents and command lines through the command."""

from __future__ import annotations

import string

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgraph.cli import cli
from cgraph.layers import REGISTRY

NAMES = ["a", "b", "c", "x", "y", "n1", "on", "null", "苹果", "2x", ""]
KEYS = ["inputs", "nodes", "output", "op", "inputs", "value", "shape", "fill", "random", "seed", "file", "dtype",
        "axis", "keepdims", "axes", "exponent", "input"]

scalars = st.one_of(
    st.sampled_from(["1", "-2.5", "1e3", ".inf", "-.inf", ".nan", "010", "0x10", "true", "null", "~", "yes", "'s'",
                     "1" * 400, "1e400", "-0", "float32", "float16", "int8", "normal", "uniform", "data.npy",
                     *REGISTRY, *NAMES, *KEYS]),
    st.integers(-5, 5).map(str),
    st.text(alphabet=string.printable, max_size=6),
)


def values(depth: int = 3):
    if depth == 0:
        return scalars
    inner = values(depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(st.sampled_from(KEYS + NAMES), inner), max_size=4).map(
            lambda pairs: "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"),
    )


INPUT_VALUES = ["1", "-2.5", "[1, 2]", "[[1, 2], [3, 4]]", "[[0.5], [2]]", "{shape: [2], fill: 0.5}",
                "{shape: [2, 2], random: normal, seed: 3}", "{value: [1, 2], dtype: float32}", ".nan", "[]",
                "{value: 2, dtype: float16}"]
ATTRS = ["", ", axis: 0", ", axis: -1, keepdims: true", ", axes: [1, 0]", ", shape: [-1]", ", axis: 5", ", keepdims: 1"]


@st.composite
def graph_document(draw):
    """Mostly well-formed graphs over small arrays, many of them valid, with random mistakes; some garbage."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(values().map(lambda text: f"nodes: {text}\n"), st.text(max_size=60)))
    inputs = draw(st.lists(st.sampled_from(INPUT_VALUES), min_size=1, max_size=3))
    names = ["a", "b", "c"][: len(inputs)]
    lines = ["inputs:"] + [f"  {name}: {value}" for name, value in zip(names, inputs)]
    if draw(st.integers(0, 4)) == 0:
        lines.append(f"  {draw(st.sampled_from(NAMES))}: {draw(values(2))}")
    lines.append("nodes:")
    for i in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(sorted(REGISTRY)))
        arity = len(REGISTRY[op].args) if draw(st.integers(0, 5)) else draw(st.integers(0, 3))
        args = [draw(st.sampled_from(names)) for _ in range(arity)]
        own = [f", {key}: {draw(st.sampled_from(['0', '-1', 'true', '[1, 0]', '[-1]', 'null']))}"
               for key in REGISTRY[op].attrs]
        attrs = draw(st.sampled_from(["", *own, *own, *ATTRS])) if draw(st.integers(0, 2)) == 0 or own else ""
        lines.append(f"  n{i}: {{op: {op}, inputs: [{', '.join(args)}]{attrs}}}")
        names.append(f"n{i}")
    if draw(st.booleans()):
        lines.append(f"output: {draw(st.sampled_from(names + NAMES))}")
    return "\n".join(lines) + "\n"


options = st.lists(st.one_of(
    st.tuples(st.just("--set"), st.tuples(st.sampled_from(NAMES), scalars).map(lambda pair: f"{pair[0]}={pair[1]}")),
    st.tuples(st.just("--dout"), st.one_of(scalars, values(2))),
    st.tuples(st.just("--node"), st.sampled_from(NAMES)),
    st.tuples(st.just("--output"), st.sampled_from(NAMES)),
    st.tuples(st.just("--precision"), st.sampled_from(["0", "3", "-1", "x"])),
    st.tuples(st.just("--format"), st.sampled_from(["text", "json", "jsonl", "xml"])),
    st.tuples(st.just("--max-elements"), st.sampled_from(["1", "10", "0"])),
), max_size=3)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["forward", "backward", "explain", "dot", "check"]), graph_document(), options)
def test_no_traceback_for_any_input(command: str, document: str, chosen: list[tuple[str, str]]) -> None:
    args = [command, "-"] + [item for pair in chosen for item in pair]
    result = CliRunner().invoke(cli, args, input=document)
    # An exception other than SystemExit is a traceback a user would see.
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, document, result.exception)
    assert result.exit_code in (0, 1, 2)
    if command == "check" and result.exit_code == 1 and result.stdout:
        assert "FAIL" in result.stdout  # check's own verdict, not an error
    elif result.exit_code != 0:
        assert result.stdout == ""
        assert result.stderr.strip(), "an error must say what went wrong"
