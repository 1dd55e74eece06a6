"""No input, however broken, gets a traceback, a Python warning or an error of more than one
line: random documents and command lines through the command, in-process and in real processes."""

from __future__ import annotations

import string

import pytest

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgraph.cli import cli
from cgraph.layers import REGISTRY
from forking import ForkingServer

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


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


# --- real processes -------------------------------------------------------------------------
#
# Each example runs the command in a process of its own (forked by the server of forking.py),
# with files on disk, its standard streams on real file descriptors (closed, broken or
# ASCII-only where drawn), and Python warnings turned into errors.


@pytest.fixture(scope="module")
def forking_server():
    server = ForkingServer()
    yield server
    server.close()


NPY_HEADER = "{{'descr': '<f8', 'fortran_order': False, 'shape': {}, }}"
NPY_FILES = {
    "ok.npy": None,
    "empty_huge.npy": "(4294967296, 0)",
    "huge.npy": "(100000, 100000)",
    "unterminated.npy": "(2,), ",
    "short.npy": "(1000,)",
    "text.npy": "",
}
HOSTILE_TEXT = ["\r", "\x1b[2J", "\x1b]0;title\x07", "\x00", "\u2028", "\x85", "\t", "\x9b"]
HOSTILE_INPUTS = [
    "{shape: [4294967296, 2, 0], fill: 1}", "{shape: [0, 4294967296], random: normal}", "{shape: [0, 3], fill: 1}",
    "{shape: [100000, 100000], fill: 0}", "{file: ok.npy}", "{file: empty_huge.npy}", "{file: huge.npy}",
    "{file: unterminated.npy}", "{file: short.npy}", "{file: text.npy}", "{value: 1e300, dtype: float16}",
    "{shape: [40, 40], random: normal}",
]
STDOUT_MODES = ["file", "file", "file", "closed", "broken", "ascii"]


@st.composite
def hostile_document(draw):
    """A graph document, often with a hostile input or character spliced in."""
    text = draw(graph_document())
    if draw(st.booleans()):
        text = text.replace("  a: ", f"  a: {draw(st.sampled_from(HOSTILE_INPUTS))}\n  a_old: ", 1)
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.integers(0, len(text)))
        text = text[:where] + draw(st.sampled_from(HOSTILE_TEXT)) + text[where:]
    return text


hostile_options = st.lists(st.one_of(
    options.map(lambda chosen: [item for pair in chosen for item in pair]),
    st.tuples(st.just("--set"), st.sampled_from(["a=@ok.npy", "a=@empty_huge.npy", "a=@text.npy", "a=[1e6]",
                                                 "a\x1b[2J=1", "b=[[1, 2]]"])).map(list),
    st.tuples(st.just("--node"), st.sampled_from(HOSTILE_TEXT).map(lambda text: f"a{text}")).map(list),
    st.tuples(st.just("--max-memory"), st.sampled_from(["1K", "1M", "x", "0"])).map(list),
    st.tuples(st.just("--max-work"), st.sampled_from(["10", "1e12", "-1"])).map(list),
    st.just(["--full"]),
), max_size=2).map(lambda groups: [item for group in groups for item in group])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["forward", "backward", "explain", "dot", "check"]), hostile_document(), hostile_options,
       st.sampled_from(STDOUT_MODES), st.booleans())
def test_no_traceback_warning_or_long_error_in_a_real_process(forking_server, tmp_path_factory, command: str,
                                                              document: str, chosen: list[str], stdout: str,
                                                              from_file: bool) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    _write_npy_files(folder)
    (folder / "g.yaml").write_text(document, encoding="utf-8", newline="")
    (folder / "stdin").write_text(document if not from_file else "", encoding="utf-8", newline="")
    args = [command, "g.yaml" if from_file else "-", *chosen]
    job = {"cwd": str(folder), "stdin": str(folder / "stdin"), "out": str(folder / "out"), "err": str(folder / "err"),
           "stdout": stdout, "args": args}
    code = forking_server.run(job)
    out = (folder / "out").read_text(encoding="utf-8", errors="replace")
    err = (folder / "err").read_text(encoding="utf-8", errors="replace")
    context = (args, document, stdout, out[-500:], err[-2000:])
    assert "Traceback" not in err and "Warning" not in err, context
    assert code in (0, 1, 2, 141), context
    assert all(line.isprintable() for line in err.splitlines()), context  # nothing raw reaches the terminal
    if code == 141:
        assert stdout == "broken" and ": error: " not in err, context  # warnings may come before, no error
    elif code == 1 and command == "check" and "FAIL" in out:
        pass  # check's own verdict, not an error
    elif code != 0:
        errors = [line for line in err.splitlines() if ": error: " in line]
        assert len(errors) == 1 and err.endswith(errors[0] + "\n"), context  # one error line, and last
        assert out == "", context
    if stdout == "closed" and code != 0:
        assert err.splitlines()[-1].endswith("error: cannot write the output: standard output is closed") or (
            "error:" in err), context


def _write_npy_files(folder) -> None:
    import numpy as np

    np.save(folder / "ok.npy", np.arange(6.0).reshape(2, 3))
    for name, shape in NPY_FILES.items():
        if shape is None:
            continue
        if not shape:
            (folder / name).write_bytes(b"just text")
            continue
        body = NPY_HEADER.format(shape).encode("latin1")
        body += b" " * (-(len(body) + 11) % 64) + b"\n"
        (folder / name).write_bytes(b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body)
