"""Every user mistake in a graph file: the message's essential words and its position."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import cgraph
from cgraph.cli import cli
from cgraph.errors import CgraphError, Position, printable

OK_NODES = "nodes: {b: {op: mul, inputs: [a, a]}}\n"
X23 = "inputs: {x: [[1, 2, 3], [4, 5, 6]]}\n"

# (graph text, words the message must contain, line, column); line None: no position in the file.
CASES = [
    ("", ["empty"], None, None),
    ("[1, 2]\n", ["top level", "mapping"], 1, 1),
    ("inputs: {a: 1}\n", ["no 'nodes'"], 1, 1),
    ("input: {a: 1}\n" + OK_NODES, ["unknown top-level key 'input'", "did you mean 'inputs'"], 1, 1),
    ("inputs: {a: 1}\nnodes: {}\n", ["'nodes'", "empty"], 2, 8),
    ("inputs: {a: 1}\nnodes: [1]\n", ["'nodes' must be a mapping"], 2, 8),
    ("inputs: [1]\n" + OK_NODES, ["'inputs' must be a mapping"], 1, 9),
    ("inputs: {a: 1}\nnodes: {b: {op: mull, inputs: [a, a]}}\n", ["unknown op 'mull'", "did you mean 'mul'", "mul, add"], 2, 17),
    ("inputs: {a: 1}\nnodes: {b: {inputs: [a, a]}}\n", ["no 'op'"], 2, 12),
    ("inputs: {a: 1}\nnodes: {b: {op: mul}}\n", ["no 'inputs'"], 2, 12),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a]}}\n", ["takes 2 inputs, got 1"], 2, 30),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: a}}\n", ["list of names"], 2, 30),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, c]}}\n", ["unknown name 'c'"], 2, 34),
    ("inputs: {apple: 1}\nnodes: {b: {op: mul, inputs: [apple, aple]}}\n", ["unknown name 'aple'", "did you mean 'apple'"], 2, 38),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, b]}}\n", ["'b' uses itself"], 2, 34),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inpts: [a, a]}}\n", ["unknown key 'inpts'", "did you mean 'inputs'"], 2, 22),
    ("inputs: {a: 1}\nnodes: {b: 3}\n", ["node 'b' must be a mapping"], 2, 12),
    ("inputs: {a: 1}\nnodes: {a: {op: mul, inputs: [a, a]}}\n", ["name of an input"], 2, 9),
    ("inputs: {2a: 1}\n" + OK_NODES, ["invalid name '2a'"], 1, 10),
    ("inputs: {a-b: 1}\n" + OK_NODES, ["invalid name 'a-b'"], 1, 10),
    (
        "inputs: {a: 1}\nnodes:\n  b: {op: mul, inputs: [a, d]}\n  c: {op: mul, inputs: [b, a]}\n  d: {op: add, inputs: [c, a]}\n",
        ["cycle: b -> c -> d -> b"], 3, 3,
    ),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, a]}, c: {op: add, inputs: [a, a]}}\n", ["2 nodes that feed no other", "b, c"], 1, 1),
    ("inputs: {a: 1}\n" + OK_NODES + "output: z\n", ["unknown node 'z'"], 3, 9),
    ("inputs: {a: 1}\n" + OK_NODES + "output: a\n", ["'a' is an input"], 3, 9),
    ("inputs: {a: 1, a: 2}\n" + OK_NODES, ["duplicate key 'a'", "line 1, column 10"], 1, 16),
    ("inputs: {a: 1}\nnodes:\n  b: {op: mul, inputs: [a, a]}\n  b: {op: add, inputs: [a, a]}\n", ["duplicate key 'b'", "line 3, column 3"], 4, 3),
    ("inputs: {a: &x 1}\n" + OK_NODES, ["anchors", "use it by name"], 1, 13),
    ("inputs: {a: 1, c: *x}\n" + OK_NODES, ["aliases"], 1, 19),
    ("inputs: {a: 1}\nnodes: {<<: {}, b: {op: mul, inputs: [a, a]}}\n", ["merge keys"], 2, 9),
    ("inputs: {a: !!python/object/apply:os.system [ls]}\n" + OK_NODES, ["tag '!!python/object/apply:os.system'"], 1, 13),
    ("inputs: {a: !custom 1}\n" + OK_NODES, ["tag '!custom'"], 1, 13),
    ("inputs: {a: [1\n", ["invalid YAML"], 2, 1),
    ("a: 1\n---\nb: 2\n", ["one YAML document"], 2, 1),
    ("inputs: {a: [1, [2]]}\n" + OK_NODES, ["ragged"], 1, 17),
    ("inputs: {a: [[1, 2], [3]]}\n" + OK_NODES, ["ragged", "1 items", "has 2"], 1, 22),
    ("inputs: {a: [[1, 2], 3]}\n" + OK_NODES, ["expected a list", "ragged"], 1, 22),
    ("inputs:\n  a:\n    - 1\n    - true\n" + OK_NODES, ["boolean true"], 4, 7),
    ("inputs: {a: [1, null]}\n" + OK_NODES, ["null"], 1, 17),
    ("inputs: {a: [1, 'x']}\n" + OK_NODES, ["string 'x'"], 1, 17),
    ("inputs: {a: yes}\n" + OK_NODES, ["string 'yes'"], 1, 13),
    ("inputs: {a: 010}\n" + OK_NODES, ["'010' is ambiguous", "octal"], 1, 13),
    ("inputs: {a: {shape: [2]}}\n" + OK_NODES, ["exactly one of", "found none"], 1, 13),
    ("inputs: {a: {fill: 1, value: 2}}\n" + OK_NODES, ["exactly one of", "value and fill"], 1, 13),
    ("inputs: {a: {fill: 1}}\n" + OK_NODES, ["'fill' needs a 'shape'"], 1, 13),
    ("inputs: {a: {fill: x, shape: [2]}}\n" + OK_NODES, ["'fill' must be a number"], 1, 20),
    ("inputs: {a: {fill: 1, shape: [2, -1]}}\n" + OK_NODES, ["'shape' must be a list of non-negative integers"], 1, 30),
    ("inputs: {a: {fill: 1, shape: [2.5]}}\n" + OK_NODES, ["'shape' must be a list"], 1, 30),
    ("inputs: {a: {random: gauss, shape: [2]}}\n" + OK_NODES, ["'random' must be one of", "normal, uniform"], 1, 22),
    ("inputs: {a: {random: normal, shape: [2], seed: x}}\n" + OK_NODES, ["'seed' must be a non-negative integer"], 1, 48),
    ("inputs: {a: {value: 1, seed: 1}}\n" + OK_NODES, ["'seed' goes with 'random'"], 1, 24),
    ("inputs: {a: {value: 1, shape: [1]}}\n" + OK_NODES, ["'shape' goes with 'fill' or 'random'"], 1, 24),
    ("inputs: {a: {value: 1, dtype: int32}}\n" + OK_NODES, ["'dtype' must be one of", "float64, float32, float16"], 1, 31),
    ("inputs: {a: {vale: 1}}\n" + OK_NODES, ["unknown key 'vale'", "did you mean 'value'"], 1, 14),
    ("inputs: {a: {file: missing.npy}}\n" + OK_NODES, ["file not found: missing.npy"], 1, 20),
    ("inputs: {a: {fill: 0, shape: [1000000, 1000000]}}\n" + OK_NODES, ["1,000,000,000,000 elements", "limit of 100,000,000"], 1, 30),
    (
        "inputs: {a: {fill: 1, shape: [100000, 1]}, c: {fill: 1, shape: [1, 100000]}}\nnodes: {b: {op: mul, inputs: [a, c]}}\n",
        ["node 'b': its value of 10,000,000,000 elements"], 2, 9,
    ),
    # zero elements, but a dimension past the element limit: refused before anything is built or printed
    ("inputs: {a: {shape: [4294967296, 2, 0], fill: 1}}\n" + OK_NODES, ["shape (4294967296, 2, 0)", "a dimension of 4,294,967,296", "--max-elements"], 1, 21),
    ("inputs: {a: {shape: [0, 4294967296], random: normal}}\n" + OK_NODES, ["a dimension of 4,294,967,296"], 1, 21),
    (
        "inputs: {a: {shape: [0], fill: 1}}\nnodes: {b: {op: reshape, inputs: [a], shape: [4294967296, 0]}}\n",
        ["node 'b': its value of shape (4294967296, 0), with a dimension of 4,294,967,296"], 2, 9,
    ),
    # characters YAML refuses, with a line and column
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, a\x00]}}\n", ["character U+0000 is not allowed"], 2, 35),
    ("inputs: {a: 1\x1b[2J}\n" + OK_NODES, ["character U+001B is not allowed"], 1, 14),
    (
        "inputs: {a: 1}\nnodes:\n" + "".join(f"  n{i}: {{op: add, inputs: [a, n{(i + 1) % 1000}]}}\n" for i in range(1000)),
        ["cycle: n0 -> n999 -> n998 -> n997 -> n996 -> ... -> n0 (1,000 nodes)"], 3, 3,
    ),
    ("inputs: {a: [1, 2], c: [1, 2, 3]}\nnodes: {b: {op: mul, inputs: [a, c]}}\n", ["node 'b'", "a (2,)", "c (3,)"], 2, 9),
    (
        "inputs: {x: {shape: [3, 2], fill: 1}, b: {shape: [3], fill: 1}}\nnodes: {y: {op: add, inputs: [x, b]}}\n",
        ["node 'y'", "x (3, 2)", "b (3,)"], 2, 9,
    ),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, a]}}\noutput: [b]\n", ["output must be a node's name"], 3, 9),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, a]}}\noutput: null\n", ["output must be a node's name, got null"], 3, 9),
    ("inputs: {a: " + "1" * 400 + "}\n" + OK_NODES, ["too large for float64"], 1, 13),
    ("inputs: {a: {fill: " + "9" * 400 + ", shape: [2]}}\n" + OK_NODES, ["too large for float64"], 1, 20),
    ("inputs: {a: " + "[" * 33 + "1" + "]" * 33 + "}\n" + OK_NODES, ["33 dimensions", "at most 32"], 1, 13),
    ("inputs: {a: {value: 1, dtype: [float32]}}\n" + OK_NODES, ["'dtype' must be one of"], 1, 31),
    ("inputs: {a: !!int 1.5}\n" + OK_NODES, ["'1.5' is not a valid !!int"], 1, 13),
    ("inputs: {a: !!bool 2}\n" + OK_NODES, ["'2' is not a valid !!bool"], 1, 13),
    ("inputs: {a: 1}\nnodes: {b: {op: [mul], inputs: [a, a]}}\n", ["unknown op a list"], 2, 17),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, null]}}\n", ["got null", "quote it"], 2, 34),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, true]}}\n", ["got boolean true", "quote it"], 2, 34),
    # attributes: wrong type, unknown, missing
    (X23 + "nodes: {s: {op: sum, inputs: [x], axis: x}}\n", ["sum attribute 'axis' must be an integer, a list of integers or null", "got string 'x'"], 2, 41),
    (X23 + "nodes: {s: {op: sum, inputs: [x], axis: [0, x]}}\n", ["attribute 'axis'", "got string 'x' in the list"], 2, 41),
    (X23 + "nodes: {s: {op: sum, inputs: [x], axis: 1.5}}\n", ["attribute 'axis'", "got 1.5"], 2, 41),
    (X23 + "nodes: {s: {op: mean, inputs: [x], axis: true}}\n", ["mean attribute 'axis'", "got boolean true"], 2, 42),
    (X23 + "nodes: {s: {op: sum, inputs: [x], keepdims: 1}}\n", ["attribute 'keepdims' must be true or false, got 1"], 2, 45),
    (X23 + "nodes: {s: {op: mean, inputs: [x], keepdims: yes}}\n", ["attribute 'keepdims' must be true or false", "string 'yes'"], 2, 46),
    (X23 + "nodes: {s: {op: sum, inputs: [x], axes: [0]}}\n", ["unknown key 'axes'", "did you mean 'axis'", "op, inputs, axis, keepdims"], 2, 35),
    (X23 + "nodes: {s: {op: mul, inputs: [x, x], axis: 0}}\n", ["unknown key 'axis'", "a 'mul' node has op, inputs"], 2, 38),
    (X23 + "nodes: {s: {op: reshape, inputs: [x]}}\n", ["op 'reshape' needs the attribute 'shape'"], 2, 12),
    (X23 + "nodes: {s: {op: reshape, inputs: [x], shape: [2, -2]}}\n", ["attribute 'shape' must be a list of non-negative integers, one of which may be -1", "[2, -2]"], 2, 46),
    (X23 + "nodes: {s: {op: reshape, inputs: [x], shape: [-1, -1]}}\n", ["attribute 'shape'", "got [-1, -1]"], 2, 46),
    (X23 + "nodes: {s: {op: reshape, inputs: [x], shape: six}}\n", ["attribute 'shape'", "string 'six'"], 2, 46),
    (X23 + "nodes: {s: {op: transpose, inputs: [x], axes: 0}}\n", ["attribute 'axes' must be a list of integers or null, got 0"], 2, 47),
    (X23 + "nodes: {s: {op: sum, inputs: [x], axis: 0, keepdims: false, axis: 1}}\n", ["duplicate key 'axis'"], 2, 61),
    ("inputs: {x: [1], W: [[1]]}\nnodes: {h: {op: affine, inputs: [x, W]}}\n", ["op 'affine' takes 3 inputs, got 2: affine(x, W, b)"], 2, 33),
    # attributes and shapes that do not fit
    (X23 + "nodes: {s: {op: sum, inputs: [x], axis: 2}}\n", ["sum cannot take shape x (2, 3)", "axis 2 is out of range for 'x', which has 2 dimensions"], 2, 41),
    (X23 + "nodes:\n  s:\n    op: mean\n    inputs: [x]\n    axis: [0, 1, 2]\n", ["mean cannot take shape x (2, 3)", "axis 2 is out of range"], 6, 11),
    (X23 + "nodes: {s: {op: sum, inputs: [x], axis: [0, -2]}}\n", ["axis 0 is given twice"], 2, 41),
    (X23 + "nodes: {s: {op: transpose, inputs: [x], axes: [0, 0]}}\n", ["axes [0, 0] are not an order of the 2 dimensions of 'x'"], 2, 47),
    (X23 + "nodes: {s: {op: reshape, inputs: [x], shape: [4, 2]}}\n", ["'x' has 6 elements, which do not match the shape [4, 2]"], 2, 46),
    (X23 + "nodes: {s: {op: reshape, inputs: [x], shape: [4, -1]}}\n", ["'x' has 6 elements, which do not fill the shape [4, -1]"], 2, 46),
    (X23 + "nodes: {s: {op: matmul, inputs: [x, x]}}\n", ["matmul cannot combine shapes x (2, 3) and x (2, 3)", "'x' has 3 columns (its last axis) but 'x' has 2 rows"], 2, 9),
    ("inputs: {A: [[1, 2]], B: [[1, 2]]}\nnodes: {s: {op: matmul, inputs: [A, B]}}\n", ["'A' has 2 columns (its last axis) but 'B' has 1 row (its second-to-last axis)"], 2, 9),
    ("inputs: {a: 1, b: [1, 2]}\nnodes: {s: {op: matmul, inputs: [a, b]}}\n", ["'a' is 0-d; a matrix product needs at least 1 dimension"], 2, 9),
    (
        "inputs: {a: {fill: 1, shape: [2, 2, 3]}, b: {fill: 1, shape: [3, 3, 4]}}\nnodes: {s: {op: matmul, inputs: [a, b]}}\n",
        ["the stacked axes (2,) of 'a' and (3,) of 'b' do not broadcast"], 2, 9,
    ),
    (
        "inputs: {x: {fill: 1, shape: [2, 3]}, W: {fill: 1, shape: [3, 4]}, b: [1, 2]}\nnodes: {h: {op: affine, inputs: [x, W, b]}}\n",
        ["affine cannot combine shapes x (2, 3), W (3, 4) and b (2,)", "the bias 'b' does not broadcast to the shape (2, 4) of 'x' @ 'W'"], 2, 9,
    ),
    (
        "inputs: {x: {fill: 1, shape: [2, 3]}, t: [0, 1, 2]}\nnodes: {l: {op: softmax_with_loss, inputs: [x, t]}}\n",
        ["the labels 't' must be one-hot with the shape (2, 3) of the scores 'x', or class indices with shape (2,)"], 2, 9,
    ),
    ("inputs: {x: 1}\nnodes: {p: {op: softmax, inputs: [x]}}\n", ["softmax cannot take shape x ()", "'x' is 0-d"], 2, 9),
    (
        "inputs: {x: {fill: 1, shape: [2, 0]}, t: [0, 0]}\nnodes: {l: {op: softmax_with_loss, inputs: [x, t]}}\n",
        ["'x' has a last axis of size 0"], 2, 9,
    ),
    # The YAML mistakes people make: a tab indenting (at the tab), a section indented under another
    # (at the misplaced key), a number where a name goes (with how to give a constant).
    ("inputs:\n\ta: 1\n" + OK_NODES, ["tabs cannot indent YAML; use spaces"], 2, 1),
    ("inputs:\n  a: 1\nnodes:\n  \tb: {op: mul, inputs: [a, a]}\n", ["tabs cannot indent YAML; use spaces"], 4, 3),
    ("inputs:\n  a: 1\nnodes:\n  b:\n\top: mul\n\tinputs: [a, a]\n", ["tabs cannot indent YAML; use spaces"], 5, 1),
    ("inputs:\n  a: 1\n  nodes:\n    b: {op: mul, inputs: [a, a]}\n", ["'nodes' was found inside 'inputs' at line 3"], 3, 3),
    ("nodes:\n  b: {op: mul, inputs: [a, a]}\n  inputs:\n    a: 1\n", ["'inputs' was found inside 'nodes' at line 3"], 3, 3),
    ("inputs: {a: 1}\nnodes:\n  b: {op: mul, inputs: [a, a]}\n  output: b\n", ["'output' was found inside 'nodes' at line 4"], 4, 3),
    ('{"inputs": {"a": 1, "nodes": {"b": {"op": "mul", "inputs": ["a", "a"]}}}}', ["'nodes' was found inside 'inputs'"], 1, 21),
    ("inputs: {a: 1}\nnodes: {b: {op: mul, inputs: [a, 2]}}\n",
     ["got 2; a constant is an input (such as 'c: 2' under 'inputs') used by its name, "
      "or a number in a formula (such as 'b: x * 2')"], 2, 34),
]


@pytest.mark.parametrize("text, words, line, col", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_bad_graph_is_refused_with_position(text: str, words: list[str], line: int | None, col: int | None) -> None:
    with pytest.raises(CgraphError) as caught:
        cgraph.loads(text, source="g.yaml")
    error = caught.value
    for word in words:
        assert word in error.message
    if line is None:
        assert error.pos is None or error.pos.line is None
    else:
        assert (error.pos.file, error.pos.line, error.pos.col) == ("g.yaml", line, col)


@pytest.mark.parametrize("text, words, line, col", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_command_reports_bad_graph_on_one_line(tmp_path: Path, text: str, words: list[str], line: int | None, col: int | None) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["backward", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    prefix = f"{path}:{line}:{col}: error: " if line else f"{path}: error: "
    assert result.stderr.startswith(prefix)
    assert all(word in result.stderr for word in words)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e3", 1000.0),
        ("-2.5E-3", -0.0025),
        (".inf", float("inf")),
        ("-.inf", float("-inf")),
        ("+1", 1.0),
        ("0", 0.0),
        ("0.5", 0.5),
        (".5", 0.5),
    ],
)
def test_numbers_read_as_yaml_1_2(text: str, expected: float) -> None:
    graph = cgraph.loads(f"inputs: {{a: {text}}}\nnodes: {{b: {{op: add, inputs: [a, a]}}}}\n")
    assert graph.spec.inputs["a"].value == expected


def test_yaml_1_1_words_as_keys_are_names() -> None:
    text = "inputs: {on: 2, no: 3, y: 4, null: 5, true: 6}\nnodes:\n  s: {op: add, inputs: [on, no]}\n  t: {op: add, inputs: [s, y]}\n  u: {op: add, inputs: [t, 'null']}\n  v: {op: add, inputs: [u, 'true']}\n"
    graph = cgraph.loads(text)
    assert list(graph.spec.inputs) == ["on", "no", "y", "null", "true"]
    assert graph.forward() == 20.0


def test_nan_is_accepted_as_a_number() -> None:
    graph = cgraph.loads("inputs: {a: .nan}\nnodes: {b: {op: add, inputs: [a, a]}}\n")
    assert graph.forward() != graph.forward()  # NaN


def test_set_of_unknown_input_is_refused() -> None:
    with pytest.raises(CgraphError, match="'tx' is not an input.*did you mean 'tax'"):
        cgraph.load("graphs/buy_apple.yaml", overrides={"tx": 1.0})
    with pytest.raises(CgraphError, match="'price' is a node, not an input"):
        cgraph.load("graphs/buy_apple.yaml", overrides={"price": 1.0})


def test_unreadable_file() -> None:
    with pytest.raises(CgraphError, match="cannot read no/such.yaml"):
        cgraph.load("no/such.yaml")


def test_non_utf8_file(tmp_path) -> None:
    path = tmp_path / "g.yaml"
    path.write_bytes(b"inputs: {a: \xff}\n")
    with pytest.raises(CgraphError, match="not UTF-8"):
        cgraph.load(path)


@pytest.mark.parametrize("hostile", ["\r", "\n", "\x1b[2J", "\x1b]0;title\x07", "\x00", "\x9b", "\u2028", "\u202e", "\xa0",
                                     "\U00018cd6"])
def test_control_characters_in_messages_are_escaped(hostile: str) -> None:
    error = CgraphError(f"unknown name 'a{hostile}b'", Position(f"g{hostile}.yaml", 1, 2))
    line = str(error)
    assert line.isprintable() and "\\" in line
    assert line.startswith("g\\") and line.endswith("b'")
    assert printable(hostile) == hostile.encode("unicode_escape").decode().replace("\\u009b", "\\x9b")


def test_control_characters_from_the_command_line_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("inputs: {a: 1}\n" + OK_NODES)
    result = CliRunner().invoke(cli, ["forward", str(path), "--node", "x\x1b]0;pwned\x07\ry"])
    assert result.exit_code == 1
    assert result.stderr == "cgraph: error: --node: unknown name 'x\\x1b]0;pwned\\x07\\ry'\n"


def test_tabs_that_do_not_indent_are_fine() -> None:
    # YAML allows a tab after a key's colon and inside a flow list; only indentation must be spaces.
    graph = cgraph.loads("inputs:\n  a:\t[1,\n\t2]\nnodes:\n  b: {op: neg, inputs: [a]}\n")
    assert graph.forward().tolist() == [-1.0, -2.0]
