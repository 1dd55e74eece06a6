"""Second derivatives from the gradient graph: the Hessian of L = sum(dout * output) with respect to
inputs, its rows computed in batches of directions, and its check against central differences of
the gradients that ``backward`` computes."""

from __future__ import annotations

import math
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import CgraphError, Position
from .graph import Graph

BATCH_ELEMENTS = 1 << 22  # directions are batched so that no batched value holds more elements (32 MiB of float64)


@dataclass
class Hessian:
    """The blocks d²L / dX dY, each of shape shape(X) + shape(Y), for L = sum(dout * output)."""

    output: str
    dout: np.ndarray
    wrt: list[str]
    blocks: dict[str, dict[str, np.ndarray]]
    shapes: dict[str, tuple[int, ...]]


def read_file(file: str) -> tuple[str, dict]:
    """A graph file's text and its parsed data: the gradient graph is written over a file's own
    nodes, so an ONNX model is refused."""
    from .api import decode, is_onnx
    from .yamlsafe import parse, quick_parse

    try:
        with open(file, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise CgraphError(f"cannot read {file}: {error.strerror or error}") from None
    if is_onnx(raw, file):
        raise CgraphError(f"the gradient graph is written for YAML and JSON graph files, not ONNX models; "
                          f"'cgraph backward {file}' gives the gradients", Position(file))
    text = decode(raw, file)
    data = quick_parse(text)
    return text, data if data is not None else parse(text, file)


def gradient_of(graph: Graph, data: dict, source: str, wrt: list[str], dout: np.ndarray) -> tuple[Graph, dict[str, str]]:
    """The gradient graph of ``graph`` (read from ``data``, the file ``source``) loaded, with the
    inputs' values of ``graph`` (which --set may have replaced), and the name of each input's gradient."""
    from . import api
    from .gradient import gradient_graph, subexpression_texts
    from .graphfile import render_gradient

    built = gradient_graph(graph, wrt)
    text = render_gradient(built, data, source, source, dout, subexpression_texts(data, source))
    gradient = api.loads(text, source=f"<the gradient graph of {source}>", base_dir=os.path.dirname(source) or ".",
                         max_elements=graph.max_elements)
    gradient.set_inputs({name: item.value for name, item in graph.spec.inputs.items()})
    return gradient, built.wrt


def check_size(graph: Graph, wrt: list[str], max_elements: int) -> int:
    """The number of elements of the inputs ``wrt``; CgraphError where the Hessian's square of it is over ``max_elements``."""
    count = sum(math.prod(graph.shapes[name]) for name in wrt)
    if count * count > max_elements:
        raise CgraphError(f"the Hessian would hold {count * count:,} numbers ({count:,} elements of "
                          f"{', '.join(wrt)}, squared), over --max-elements {max_elements:,}")
    return count


def hessian(graph: Graph, data: dict, source: str, wrt: list[str], dout: np.ndarray,
            bar: Callable[[int], Any] | None = None) -> Hessian:
    """The Hessian of ``graph``'s output with respect to ``wrt``. For each X, the gradient graph's
    own gradient graph from grad_X (whose dout is a direction V, its grad_Y the products H·V) is
    evaluated for a batch of the one-hot directions at once (cgraph.batched): row i of each block
    is d(dL/dX[i]) / dY, what a backward pass of the gradient graph from grad_X with a one-hot dout gives."""
    from .batched import evaluate
    from .gradient import gradient_graph

    gradient, names = gradient_of(graph, data, source, wrt, dout)
    gradient.forward()
    blocks = {x: {y: np.zeros(graph.shapes[x] + graph.shapes[y]) for y in wrt} for x in wrt}
    total = sum(math.prod(graph.shapes[name]) for name in wrt)
    with bar(total) if bar else nullcontext() as progress:
        for x in wrt:
            gradient.output = names[x]
            second = gradient_graph(gradient, wrt)
            shapes = {**gradient.shapes, **dict.fromkeys(second.constants, ())}
            values = {**gradient.values, **second.constants}
            size = math.prod(graph.shapes[x])
            largest = max([size, *(math.prod(node.shape) for node in second.nodes.values())])
            step = max(1, min(size, BATCH_ELEMENTS // max(1, largest)))
            for start in range(0, size, step):
                count = min(step, size - start)
                directions = np.zeros((count, size))
                directions[np.arange(count), start + np.arange(count)] = 1.0
                rows = evaluate(second.nodes, values, shapes, {second.dout: directions.reshape(count, *graph.shapes[x])},
                                [second.wrt[y] for y in wrt])
                for y in wrt:
                    blocks[x][y].reshape(size, -1)[start:start + count] = rows[second.wrt[y]].reshape(count, -1)
                if progress is not None:
                    progress.update(count)
    return Hessian(graph.output, dout, wrt, blocks, {name: graph.shapes[name] for name in wrt})


def from_file(file: str, output: str | None, wrt: tuple[str, ...], dout_text: str, max_elements: int,
              bar: Callable[[int], Any] | None = None) -> Hessian:
    """``cgraph hessian``: the Hessian of FILE's output."""
    from . import api
    from .arrays import parse_array_option
    from .gradient import dout_array, reachable_inputs

    text, data = read_file(file)
    graph = api.loads(text, source=file, base_dir=os.path.dirname(file) or ".", output=output,
                      max_elements=max_elements)
    names = list(wrt) or reachable_inputs(graph, graph.output)
    check_size(graph, [name for name in names if name in graph.shapes], max_elements)
    graph.forward()
    dout = dout_array(graph, parse_array_option(dout_text, "--dout", max_elements))
    return hessian(graph, data, file, names, dout, bar)


def element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """``x`` for a 0-d value, else ``x[0]``, ``W[1,2]``, ... in row-major order."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, index))}]" for index in np.ndindex(shape)]


def render_text(result: Hessian, precision: int) -> list[str]:
    """Each block as a matrix, rows labelled by X's elements and columns by Y's."""
    lines = [f"hessian of L = sum(dout * {result.output}), {len(result.wrt)} input{'s' * (len(result.wrt) != 1)}"]
    for x in result.wrt:
        for y in result.wrt:
            rows = element_names(x, result.shapes[x])
            columns = element_names(y, result.shapes[y])
            matrix = result.blocks[x][y].reshape(len(rows), len(columns))
            cells = [[f"{value:.{precision}g}" for value in row] for row in matrix]
            width = max([len(name) for name in columns] + [len(cell) for row in cells for cell in row])
            label = max(len(name) for name in rows)
            lines += ["", f"d²L / d{x} d{y}", " " * label + "  " + "  ".join(name.rjust(width) for name in columns)]
            lines += [name.ljust(label) + "  " + "  ".join(cell.rjust(width) for cell in row)
                      for name, row in zip(rows, cells)]
    return lines


def _json_number(value: float) -> Any:
    return value if math.isfinite(value) else ("NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity")


def _nested(array: np.ndarray) -> Any:
    if array.ndim == 0:
        return _json_number(float(array))
    return [_nested(item) for item in array]


def render_json(result: Hessian) -> str:
    """``{"output", "dout", "wrt", "hessian": {X: {Y: nested lists of shape shape(X) + shape(Y)}}}``."""
    import orjson

    document = {"output": result.output, "dout": _nested(np.asarray(result.dout, dtype=np.float64)),
                "wrt": result.wrt,
                "hessian": {x: {y: _nested(result.blocks[x][y]) for y in result.wrt} for x in result.wrt}}
    return orjson.dumps(document).decode()


@dataclass
class BlockCheck:
    """One block d²L / dX dY against central differences of backward's gradient of X in Y."""

    x: str
    y: str
    max_abs: float
    max_rel: float
    passed: bool


def check_second_order(graph: Graph, data: dict, source: str, wrt: list[str], dout: np.ndarray, eps: float,
                       rtol: float, atol: float, bar: Callable[[int], Any] | None = None) -> list[BlockCheck]:
    """The Hessian from the gradient graph against (g(y + h) - g(y - h)) / 2h, g being backward's
    gradient and h = eps * max(1, |y|), for every element y of every input of ``wrt``. An entry
    passes where |analytic - numeric| <= atol + rtol * |numeric|."""
    result = hessian(graph, data, source, wrt, dout, bar)
    numeric = {x: {y: np.zeros_like(result.blocks[x][y]) for y in wrt} for x in wrt}
    for y in wrt:
        original = np.array(graph.spec.inputs[y].value, dtype=np.float64)
        for index in np.ndindex(original.shape):
            step = eps * max(1.0, abs(float(original[index])))
            sides = []
            for sign in (1, -1):
                moved = original.copy()
                moved[index] += sign * step
                graph.set_input(y, moved)
                graph.forward()
                sides.append({x: np.asarray(grad, dtype=np.float64) for x, grad in graph.backward(dout).items()})
            for x in wrt:
                numeric[x][y][(Ellipsis, *index)] = (sides[0][x] - sides[1][x]) / (2 * step)
        graph.set_input(y, original)
    checks = []
    for x in wrt:
        for y in wrt:
            analytic, expected = result.blocks[x][y], numeric[x][y]
            error = np.abs(analytic - expected)
            scale = np.maximum(np.abs(analytic), np.abs(expected))
            relative = np.divide(error, scale, out=np.zeros_like(error), where=scale > 0)
            passed = bool(np.all(error <= atol + rtol * np.abs(expected)))
            checks.append(BlockCheck(x, y, float(error.max(initial=0.0)), float(relative.max(initial=0.0)), passed))
    return checks


def render_check_text(graph: Graph, checks: list[BlockCheck]) -> list[str]:
    """The second-order check's table: one line per block, and the verdict."""
    rows = [("block", "max abs error", "max rel error", "result")]
    rows += [(f"d²L / d{c.x} d{c.y}", f"{c.max_abs:.3g}", f"{c.max_rel:.3g}", "PASS" if c.passed else "FAIL")
             for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"check --order 2, output '{graph.output}': the Hessian from the gradient graph against central "
             "differences of the gradients", ""]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    failed = sum(not c.passed for c in checks)
    lines += ["", f"FAIL: {failed} of {len(checks)} blocks" if failed else f"PASS: {len(checks)} blocks"]
    return lines


def render_check_json(graph: Graph, checks: list[BlockCheck]) -> str:
    """The second-order check as JSON: the output, whether all passed, and each block's errors."""
    import orjson

    return orjson.dumps({"output": graph.output, "order": 2, "passed": all(c.passed for c in checks),
                         "blocks": [{"x": c.x, "y": c.y, "max_abs": c.max_abs, "max_rel": c.max_rel,
                                     "passed": c.passed} for c in checks]}).decode()
