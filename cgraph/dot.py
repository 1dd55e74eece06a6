"""The graph as Graphviz DOT text, and that text rendered to an image by Graphviz's ``dot`` program."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import tempfile
from typing import Iterable

import numpy as np

from .errors import CgraphError
from .graph import Graph
from .render import INLINE_ELEMENTS, entry_names, format_inline

IMAGE_FORMATS = ("svg", "png", "pdf")
INSTALL_HINT = "install Graphviz (Debian and Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"
GRAD_COLOR = "#c0392b"  # gradients in red, as in the book's figures


def to_dot(graph: Graph, backward: bool = False, only: Iterable[str] = (), precision: int = 8) -> str:
    """DOT text: a box per input and node (name, op, shape, small values and, with ``backward``,
    gradients) and an edge from each node's inputs to it, labelled with the gradient it carried
    back. Names are the node ids; the same graph gives the same bytes."""
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
        lines.append(f"  {_id(name)} [label=<{_label(graph, name, backward, precision)}>, fillcolor=\"{fill}\"{width}];")
    for name in names:
        node = graph.spec.nodes.get(name)
        if node is None:
            continue
        grads = graph.input_grads[name] if backward else (None,) * len(node.args)
        for arg, grad in zip(node.args, grads):
            if arg not in shown:
                continue
            attributes = ""
            if backward and np.size(grad) <= INLINE_ELEMENTS:
                attributes = f' [label="{_escape(format_inline(grad, precision, shape=False))}", fontcolor="{GRAD_COLOR}"]'
            lines.append(f"  {_id(arg)} -> {_id(name)}{attributes};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _label(graph: Graph, name: str, backward: bool, precision: int) -> str:
    """An HTML-like label: the name in bold, op and shape, then the value and gradient where small."""
    node = graph.spec.nodes.get(name)
    rows = [f"<b>{html.escape(name)}</b>", f"{node.op if node else 'input'}, shape {graph.shapes[name]}"]
    value = graph.values[name]
    if np.size(value) <= INLINE_ELEMENTS:
        rows.append(f"value {html.escape(format_inline(value, precision, shape=False))}")
    grad = graph.grads[name] if backward else None
    if backward and np.size(grad) <= INLINE_ELEMENTS:
        rows.append(f'<font color="{GRAD_COLOR}">grad {html.escape(format_inline(grad, precision, shape=False))}</font>')
    return "<br/>".join(rows)


def _id(name: str) -> str:
    """A name as a quoted DOT id (quoted, so names like 'node' or 'graph' are not keywords)."""
    return f'"{_escape(name)}"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_image(text: str, path: str) -> None:
    """Run Graphviz's dot on DOT ``text``, writing ``path`` (.svg, .png or .pdf) whole or not at all.

    An exception or SystemExit meanwhile (the command's handlers turn SIGINT, SIGTERM and
    SIGHUP into SystemExit) stops ``dot`` and removes the temporary file."""
    kind = os.path.splitext(path)[1].lower().lstrip(".")
    if kind not in IMAGE_FORMATS:
        raise CgraphError(f"--render: '{path}' does not end in {', '.join('.' + k for k in IMAGE_FORMATS)}")
    program = shutil.which("dot")
    if program is None:
        raise CgraphError(f"--render needs the Graphviz program 'dot', which is not installed: {INSTALL_HINT}; "
                          "without --render, cgraph writes DOT text")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".cgraph-", suffix="." + kind)
    except OSError as exc:
        raise CgraphError(f"--render: cannot write {path}: {exc.strerror or exc}") from None
    os.close(handle)
    try:
        result = subprocess.run([program, f"-T{kind}", "-o", temp], input=text.encode(), capture_output=True)
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip().splitlines()
            raise CgraphError(f"--render: dot failed: {message[0] if message else f'exit status {result.returncode}'}")
        if os.path.getsize(temp) == 0:
            raise CgraphError(f"--render: dot wrote nothing to {path}; the file is left as it was")
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException as exc:
        os.unlink(temp)
        if isinstance(exc, OSError):
            raise CgraphError(f"--render: cannot write {path}: {exc.strerror or exc}") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
