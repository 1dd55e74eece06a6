"""The quick reader agrees with the full YAML reader on everything it accepts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgraph.api import loads  # imported here, before any test replaces the YAML parser
from cgraph.errors import CgraphError
from cgraph.spec import build_spec
from cgraph.yamlsafe import NodeColumns, key_position_of, parse, quick_columns, quick_parse, quick_position

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def typed(value):
    """The value with every scalar's type spelled out, so 1 and 1.0 and True differ; NaN equals NaN."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def full(text: str):
    try:
        return typed(parse(text, "t"))
    except CgraphError:
        return "error"


def check(text: str) -> None:
    quick = quick_parse(text)
    if quick is not None:
        assert typed(quick) == full(text), text


# Examples whose data are .npy files (a path is not a JSON-like value) take the full reader.
@pytest.mark.parametrize("path", [path for path in sorted(GRAPHS.glob("*.yaml")) if "{file: " not in path.read_text()],
                         ids=lambda path: path.name)
def test_examples_are_read_quickly_and_alike(path: Path) -> None:
    text = path.read_text()
    assert quick_parse(text) is not None
    check(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1e3", "a: -2.5E-3", "a: .5", "a: +1", "a: 1.", "a: 010", "a: 0x10", "a: 1_000", "a: .inf", "a: -.inf",
        "a: .nan", "a: NaN", "a: -Infinity", "a: True", "a: TRUE", "a: true", "a: null", "a: Null", "a: ~", "a: yes",
        "a: no", "a: on", "a: [1, 2,]", "a: {b: }", "a: {b:c}", "a: b:c", "a: x y", "a: 'q'", 'a: "q"', "a: [a: 1]",
        "a: &x 1", "a: *x", "a: !!str 1", "a: [1, [2, [3]]]", "a:\n  b: 1\n   c: 2", "a:\n  - 1", "a: 1\na: 2",
        "a: {b: 1, b: 2}", "a: 1 # c", "a: 1 #c\n# d\nb: [2] # e", "a: [1, 2]#x", "a: b#c", "a: 苹果", "苹果: 1",
        "a:\n\n  b: [1, 2]\n\n  c: {op: mul, inputs: [b, b]}\n", "a: -b", "a: b-c", "a: 1e", "a: e3", "a: _x",
        "{\"a\": 1, \"a\": 2}", "{\"a\": NaN}", "{\"a\": [1, 2]}", "  a: 1", "a:\tb", "a: data/x.npy", "a: {}", "a: []",
        "- 1", "a: [1, 2] extra", "a: [1, 2]]", "a: [[1, 2]", "a: {b: [1, {c: d}]}", "a: 0", "a: -0", "a: 00",
    ],
)
def test_tricky_snippets(text: str) -> None:
    check(text)


def test_json_documents_are_read_as_json() -> None:
    data = {"inputs": {"x": [1.5, -2e-3], "c": 3}, "nodes": {"y": {"op": "mul", "inputs": ["x", "c"]}}}
    assert quick_parse(json.dumps(data)) == data


def test_quick_reader_declines_what_needs_positions_or_is_unsafe() -> None:
    for text in ("a: 1\na: 2", "a: &x 1\nb: *x", "a: !!python/object/apply:os.system [ls]", "a: 010"):
        assert quick_parse(text) is None


scalars = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.sampled_from(["1e3", "-2.5E-3", ".5", "+1", "1.", "true", "false", "null", "True", "~", "yes", "010",
                     ".inf", "-.inf", ".nan", "NaN", "x", "n1", "_a", "苹果", "e3", "'s'", '"s"', "a-b"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
)


def flows(depth: int = 2):
    if depth == 0:
        return scalars
    inner = flows(depth - 1)
    keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(keys, inner), max_size=3).map(lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"),
    )


lines = st.one_of(
    st.tuples(st.sampled_from(["", "  ", "    "]), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,4}", fullmatch=True),
              st.one_of(st.just(""), flows()), st.sampled_from(["", "  # note", "#x"]))
    .map(lambda parts: f"{parts[0]}{parts[1]}:{(' ' + parts[2]) if parts[2] else ''}{parts[3]}"),
    st.sampled_from(["", "# comment", "   "]),
)


# Characters where YAML and JSON, or YAML and reading line by line, part ways.
ODD_CHARACTERS = ["\r", "\r\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\ufeff", "\ufffe",
                  "\xa0", "\x0b", "\x0c"]


@settings(max_examples=400, deadline=None)
@given(st.lists(lines, min_size=1, max_size=8), st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(ODD_CHARACTERS)),
                                                       max_size=2))
def test_random_documents_read_alike(document: list[str], odd: list[tuple[int, str]]) -> None:
    text = "\n".join(document) + "\n"
    for where, character in odd:
        where %= len(text) + 1
        text = text[:where] + character + text[where:]
    check(text)


@pytest.mark.parametrize("character", ODD_CHARACTERS)
@pytest.mark.parametrize("template", ["a: 1{}\nb: 2\n", "a: [1,{} 2]\n", '{{"a": [1,{} 2]}}', '{{"a": "x{}y"}}',
                                      "a:\n  b: [1, 2]{}\n  c: 3\n"])
def test_odd_characters_read_alike(template: str, character: str) -> None:
    check(template.format(character))


def test_a_bare_carriage_return_is_left_to_the_yaml_parser() -> None:
    assert quick_parse("a: 1\rb: 2\n") is None
    assert quick_parse("a: 1\r\nb: 2\r\n") == {"a": 1, "b": 2}


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda path: path.name)
def test_positions_found_quickly_are_those_of_the_yaml_parser(path: Path) -> None:
    text = path.read_text()
    sources = [json.dumps(parse(text, "g"), indent=1)]
    if quick_parse(text) is not None:
        sources.append(text)
    for source in sources:
        data = parse(source, "g")
        for section in ("inputs", "nodes"):
            for name in data.get(section) or {}:
                assert quick_position(source, "g", section, name) == key_position_of(data[section], name), name


def test_a_warning_in_a_large_json_graph_does_not_read_it_again(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from cgraph import yamlsafe
    from cgraph.cli import cli

    nodes = {f"n{i}": {"op": "add", "inputs": ["x", f"n{i - 1}" if i else "x"]} for i in range(2000)}
    nodes["bad"] = {"op": "log", "inputs": ["z"]}
    nodes["out"] = {"op": "add", "inputs": ["n1999", "bad"]}
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"inputs": {"x": 1, "z": -1}, "nodes": nodes}, indent=2))

    def refused(*args, **kwargs):
        raise AssertionError("read again with positions")

    monkeypatch.setattr(yamlsafe, "parse", refused)
    result = CliRunner().invoke(cli, ["forward", str(path), "--node", "out"])
    assert result.exit_code == 0
    # "bad" is the 2001st key of "nodes": line 2 + 2000 * 7 + ... as json.dumps(indent=2) lays it out.
    line = path.read_text().splitlines().index('    "bad": {') + 1
    assert result.stderr.startswith(f"{path}:{line}:5: warning: node 'bad' (log) produced ")


def check_columns(text: str) -> bool:
    """Where the quick reader reads the nodes as columns, they are the nodes the YAML parser reads."""
    data = quick_columns(text)
    if data is None:
        return False
    assert type(data["nodes"]) is NodeColumns
    assert typed({**data, "nodes": data["nodes"].as_mapping()}) == full(text), text
    return True


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda path: path.name)
def test_examples_read_as_columns_alike(path: Path) -> None:
    check_columns(path.read_text())


def test_a_long_chain_is_read_as_columns() -> None:
    lines = ["inputs:", "  x: 1.0", "  c: 2.0", "nodes:"]
    lines += [f"  n{i}: {{op: {'mul' if i % 2 else 'add'}, inputs: [{f'n{i - 1}' if i else 'x'}, c]}}" for i in range(50)]
    text = "\n".join(lines) + "\noutput: n49\n"
    assert check_columns(text)
    columns, mapping = quick_columns(text), quick_parse(text)
    assert columns["nodes"].names == [f"n{i}" for i in range(50)]
    assert build_spec(columns, "t").nodes == build_spec(mapping, "t").nodes
    parsed = parse(text, "t")
    nodes = build_spec(parsed, "t").nodes
    assert [(node.name, node.op, node.args) for node in nodes.values()] == [
        (name, body["op"], tuple(body["inputs"])) for name, body in parsed["nodes"].items()]
    assert [node.pos for node in nodes.values()] == [parsed["nodes"].key_pos[name] for name in nodes]


node_names = st.sampled_from(["a", "b", "x", "n1", "null", "True", "nodes", "inputs", "_z", "é"])
node_lines = st.one_of(
    st.tuples(node_names, st.sampled_from(["mul", "add", "exp", "true", "matmul"]), st.lists(node_names, min_size=1, max_size=3))
    .map(lambda parts: f"  {parts[0]}: {{op: {parts[1]}, inputs: [{', '.join(parts[2])}]}}"),
    st.sampled_from(["", "  # note", "   a: {op: mul, inputs: [x, x]}", "  b: x * 2", "  c: {op: add, inputs: [x, x]}  ",
                     "  d: {op: add, inputs: [x,x]}", "  e: {op: add, inputs: [x, x]} # c", "nodes:", "output: a"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(node_lines, min_size=1, max_size=6), st.sampled_from(["", "output: a\n", "inputs:\n  y: 2\n", "nodes: 1\n"]),
       st.booleans())
def test_random_node_sections_read_alike(lines: list[str], after: str, newline_at_end: bool) -> None:
    text = "inputs:\n  x: 1.0\nnodes:\n" + "\n".join(lines) + ("\n" if newline_at_end or after else "") + after
    check_columns(text)


WRONG_NODES = [
    "  a: {op: mul, inputs: [b, x]}\n  b: {op: add, inputs: [a, x]}\n",  # a cycle
    "  a: {op: mul, inputs: [a, x]}\n",  # uses itself
    "  a: {op: mul, inputs: [x, y]}\n",  # an unknown name
    "  x: {op: mul, inputs: [x, x]}\n",  # the name of an input
    "  a: {op: mul, inputs: [x]}\n",  # too few inputs
    "  a: {op: mull, inputs: [x, x]}\n",  # an unknown op
    "  a: {op: sum_to, inputs: [x]}\n",  # an op that needs an attribute
]


@pytest.mark.parametrize("nodes", WRONG_NODES)
@pytest.mark.parametrize("overrides", [{}, {"q": 1.0}, {"a": 1.0}])
def test_nodes_read_as_columns_fail_as_the_yaml_parser_says(nodes: str, overrides: dict) -> None:
    """The same error, at the same place, as the nodes read one by one from the YAML parser's mapping."""
    text = "inputs:\n  x: 1.0\nnodes:\n" + nodes
    assert quick_columns(text) is not None
    with pytest.raises(CgraphError) as expected:
        build_spec(parse(text, "t"), "t", overrides={name: np.asarray(value) for name, value in overrides.items()})
    with pytest.raises(CgraphError) as found:
        loads(text, source="t", overrides=overrides)
    assert (found.value.message, found.value.pos) == (expected.value.message, expected.value.pos)
