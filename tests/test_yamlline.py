"""yaml_line writes what yaml.safe_dump writes, for any entry of plain data, without running the
dumper for the usual lines of graph files."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cgraph.yamlline import _dumped, yaml_line

# Texts that hit YAML's rules: indicators, spaces, colons, hashes, numbers and booleans as text, unicode.
TEXT = st.one_of(
    st.text(alphabet=string.printable + "éλ→\u2028\x85", max_size=12),
    st.text(alphabet="ab1.-+*/()@= :#,", max_size=8),
    st.sampled_from(["", "yes", "No", "null", "~", "1.5", "-1", "0x1F", "1_000", ".inf", "2001-12-14", "<<", "=",
                     "- x", "-x", "-", "-(x)", "...", "...x", "---", "--x", "x ", " x", "a  b", "(a) * b", "*a", "a * b",
                     "@a", "a @ b", "a/b", "=", "? x", ":x", "a: b", "a #b", "x,y", "[1]", "{a}", "'q'", "\"q\"", "x" * 130]),
)
SCALAR = st.one_of(TEXT, st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none())
DATA = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)


@settings(max_examples=600, deadline=None)
@given(TEXT, DATA)
def test_the_line_is_the_dumpers(key, value):
    assert yaml_line({key: value}) == _dumped({key: value})


def test_a_list_appearing_twice_is_left_to_the_dumper():
    shared = ["a"]
    assert yaml_line({"x": {"inputs": shared, "again": shared}}) == _dumped({"x": {"inputs": shared, "again": shared}})
    assert "&id001" in yaml_line({"x": {"inputs": shared, "again": shared}})


@pytest.mark.parametrize("entry", [
    {"grad_apple_price": "dout * tax"},
    {"price": {"op": "mul", "inputs": ["apple_price", "tax"]}},
    {"conv1": {"op": "conv2d", "inputs": ["x", "W1", "b1"], "stride": 1, "pad": [1, 0]}},
    {"dout": {"fill": 1.0, "shape": [3, 3]}},
    {"tax": 1.1},
    {"output": "grad_apple"},
])
def test_the_usual_lines_do_not_run_the_dumper(entry, monkeypatch):
    expected = _dumped(entry)
    monkeypatch.setattr(yaml, "safe_dump", lambda *args, **kwargs: pytest.fail("the dumper ran"))
    assert yaml_line(entry) == expected
