"""The graph as Graphviz DOT text, and that text rendered to an image by Graphviz's ``dot`` program."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from typing import Any, Iterable

import numpy as np

from . import save, signals
from .errors import CgraphError
from .graph import Graph
from .render import INLINE_ELEMENTS, entry_names, format_array, format_inline
from .spec import NodeSpec

IMAGE_FORMATS = ("svg", "png", "pdf")
INSTALL_HINT = "install Graphviz (Debian and Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"
GRAD_COLOR = "#c0392b"  # gradients in red, as in the book's figures
LEFT_BREAK = '<br align="left"/>'  # ends a line of an HTML-like label, aligning it on the left


def to_dot(graph: Graph, backward: bool = False, only: Iterable[str] = (), precision: int = 4, full: bool = False) -> str:
    """DOT text: a box per input and node (name, op, shape, value and, with ``backward``, gradient)
    and an edge from each node's inputs to it, labelled with the gradient it carried back. Arrays of
    more than INLINE_ELEMENTS elements are shown by their shape, or with ``full`` in full.
    Names are the node ids; the same graph gives the same bytes."""
    names = entry_names(graph, only)
    shown = set(names)
    lines = [
        "digraph cgraph {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for name in names:
        node = graph.spec.nodes.get(name)
        fill = "#fdf2d0" if node else "#e3eefb"
        width = ", penwidth=2" if name == graph.output else ""
        lines.append(f"  {_id(name)} [label=<{_label(graph, name, backward, precision, full)}>, fillcolor=\"{fill}\"{width}];")
    for name in names:
        node = graph.spec.nodes.get(name)
        if node is None:
            continue
        grads = graph.input_grads[name] if backward else (None,) * len(node.args)
        for arg, grad in zip(node.args, grads):
            if arg not in shown:
                continue
            attributes = ""
            if backward:
                rows = [_escape(line) for line in _array_lines(grad, precision, full)]
                text = rows[0] if len(rows) == 1 else "".join(row + "\\l" for row in rows)  # \l: left-aligned lines
                attributes = f' [label="{text}", fontcolor="{GRAD_COLOR}"]'
            lines.append(f"  {_id(arg)} -> {_id(name)}{attributes};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _array_lines(value: Any, precision: int, full: bool) -> list[str]:
    """A value as lines of text: one line (``[1, 2]``, ``(3, 4) array``), or with ``full`` an array
    of more than INLINE_ELEMENTS elements in full, one row per line."""
    if full and np.size(value) > INLINE_ELEMENTS:
        return format_array(value, precision, True, 0).split("\n")
    return [format_inline(value, precision, shape=False)]


def _html_array(value: Any, precision: int, full: bool) -> str:
    """A value for an HTML-like label: inline, or rows in a fixed-width font, aligned on the left."""
    lines = _array_lines(value, precision, full)
    if len(lines) == 1:
        return html.escape(lines[0])
    rows = "".join(f'{html.escape(line).replace(" ", "&#160;")}{LEFT_BREAK}' for line in lines)
    return f'{LEFT_BREAK}<font face="Courier">{rows}</font>'


def _label(graph: Graph, name: str, backward: bool, precision: int, full: bool) -> str:
    """An HTML-like label: the name in bold, op and shape, then the value and gradient."""
    node = graph.spec.nodes.get(name)
    rows = [f"<b>{html.escape(name)}</b>", f"{html.escape(op_label(graph, node)) if node else 'input'}, shape {graph.shapes[name]}"]
    rows.append(f"value {_html_array(graph.values[name], precision, full)}")
    if backward:
        rows.append(f'<font color="{GRAD_COLOR}">grad {_html_array(graph.grads[name], precision, full)}</font>')
    # A row of an array in full ends its lines itself (aligned on the left).
    return "".join(row if row.endswith(f"{LEFT_BREAK}</font>") else row + "<br/>" for row in rows[:-1]) + rows[-1]


def op_label(graph: Graph, node: NodeSpec) -> str:
    """The node's op, with the constants it uses in their places (``div(1, ·)``), as they have no box."""
    constants = graph.spec.constants
    if not constants or constants.keys().isdisjoint(node.args):
        return node.op
    return f"{node.op}({', '.join(arg if arg in constants else '·' for arg in node.args)})"


def _id(name: str) -> str:
    """A name as a quoted DOT id (quoted, so names like 'node' or 'graph' are not keywords)."""
    return f'"{_escape(name)}"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_image(text: str, path: str, guard: save.Guard) -> None:
    """Run Graphviz's dot on DOT ``text``, writing ``path`` (.svg, .png or .pdf) whole or not at
    all (see :func:`cgraph.save.atomic_write`, whose ``guard`` refuses a file the graph read).

    An exception or SystemExit meanwhile (as signals raise within
    :func:`cgraph.signals.stopping_by_exception`) stops ``dot``."""
    kind = os.path.splitext(path)[1].lower().lstrip(".")
    if kind not in IMAGE_FORMATS:
        raise CgraphError(f"--render: '{path}' does not end in {', '.join('.' + k for k in IMAGE_FORMATS)}")
    program = shutil.which("dot")
    if program is None:
        raise CgraphError(f"--render needs the Graphviz program 'dot', which is not installed: {INSTALL_HINT}; "
                          "without --render, cgraph writes DOT text")
    named = f"--render {path}"
    guard.check(path, named)  # before running dot, which may take long
    save.check_folder(path)
    process = None
    try:
        with signals.held():  # a signal here would leave the child behind
            process = subprocess.Popen([program, f"-T{kind}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, preexec_fn=signals.release)
        image, errors = process.communicate(text.encode())
    except BaseException:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        raise
    if process.returncode != 0:
        message = errors.decode(errors="replace").strip().splitlines()
        raise CgraphError(f"--render: dot failed: {message[0] if message else f'exit status {process.returncode}'}")
    if not image:
        raise CgraphError(f"--render: dot wrote nothing to {path}; the file is left as it was")
    save.atomic_write(path, lambda file: file.write(image), guard, named)
