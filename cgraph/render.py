"""Renderers: a graph's values and gradients as text for people, or JSON and JSON Lines for programs."""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Iterable, Iterator

import numpy as np

from .graph import Graph

SUMMARY_THRESHOLD = 1000  # numpy's default: larger arrays are summarised unless printed in full


def entry_names(graph: Graph, only: Iterable[str] = ()) -> list[str]:
    """Inputs in file order, then nodes in dependency order; only those in ``only`` if it is not empty."""
    names = [*graph.spec.inputs, *graph.spec.nodes]
    wanted = set(only)
    return [name for name in names if name in wanted] if wanted else names


# --- JSON -----------------------------------------------------------------


def json_value(value: Any) -> Any:
    """An array as a number or nested lists; NaN and infinities as the strings JSON allows."""
    if type(value) is float and math.isfinite(value):
        return value
    array = np.asarray(value)
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return array.tolist()
    cells = array.astype(object)
    cells[np.isnan(array)] = "NaN"
    cells[array == np.inf] = "Infinity"
    cells[array == -np.inf] = "-Infinity"
    return cells.tolist()


def dtype_name(value: Any) -> str:
    """The dtype of an array or of a Python float, by name."""
    if type(value) is float:
        return "float64"
    dtype = value.dtype
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return name


_DTYPE_NAMES: dict[Any, str] = {}


def json_entry(graph: Graph, name: str) -> dict[str, Any]:
    """One input's or node's record: op, inputs, shape, dtype, value, the op's attributes and, after backward, gradients."""
    value = graph.values[name]
    node = graph.spec.nodes.get(name)
    entry: dict[str, Any] = {
        "op": node.op if node else "input",
        "inputs": list(node.args) if node else [],
        "shape": list(graph.shapes[name]),
        "dtype": dtype_name(value),
        "value": json_value(value),
    }
    if graph.grads:
        entry["grad"] = json_value(graph.grads[name])
    if node:
        layer = graph.layers[name]
        if layer.attrs:
            entry["attrs"] = {key: json_value(getattr(layer, key)) for key in layer.attrs}
        entry["input_shapes"] = [list(graph.shapes[arg]) for arg in node.args]
        if graph.grads:
            entry["input_grads"] = [json_value(grad) for grad in graph.input_grads[name]]
    return entry


def render_json(graph: Graph, only: Iterable[str] = ()) -> str:
    """The whole result as one strict JSON object."""
    result: dict[str, Any] = {"output": graph.output}
    if graph.grads:
        result["dout"] = json_value(graph.dout)
    result["nodes"] = {name: json_entry(graph, name) for name in entry_names(graph, only)}
    return json.dumps(result, allow_nan=False)


def render_jsonl(graph: Graph, only: Iterable[str] = ()) -> Iterator[str]:
    """One JSON object per input and node, each with its ``name``."""
    for name in entry_names(graph, only):
        yield json.dumps({"name": name, **json_entry(graph, name)}, allow_nan=False)


# --- text -----------------------------------------------------------------


def format_scalar(value: float, precision: int) -> str:
    """A number as people write it: 715.0, 2.2, 1e-10, nan."""
    value = float(value) if not isinstance(value, np.floating) else value
    if not math.isfinite(value):
        return str(float(value))
    if value == 0 or 1e-4 <= abs(value) < 1e16:
        return np.format_float_positional(value, precision=precision, unique=True, trim="0")
    return np.format_float_scientific(value, precision=precision, unique=True, trim="0")


def format_array(value: Any, precision: int, full: bool, indent: int) -> str:
    """A value for the text view: a number, or an array aligned at ``indent``.

    Arrays up to SUMMARY_THRESHOLD elements print as numpy prints them; larger ones
    are summarised by numpy, or with ``full`` printed whole by :func:`format_full`.
    """
    array = np.asarray(value)
    if array.ndim == 0:
        return format_scalar(array[()], precision)
    if full and array.size > SUMMARY_THRESHOLD:
        text = format_full(array, precision)
    else:
        text = np.array2string(array, precision=precision, threshold=SUMMARY_THRESHOLD, separator=" ")
    return text.replace("\n", "\n" + " " * indent)


def format_full(array: np.ndarray, precision: int, width: int = 75) -> str:
    """Every element of a non-empty array, in numpy's nested-bracket layout, in linear time.

    (numpy's own full print takes minutes for a million elements.) Elements are
    printed with ``%.{precision}g`` and right-aligned; long rows wrap at ``width``.
    """
    rows = array.reshape(-1, array.shape[-1])
    cells = ("\0".join([f"%.{precision}g"] * array.size) % tuple(rows.ravel().tolist())).split("\0")
    cell_width = max(map(len, cells))
    per_line = max(1, (width - array.ndim - 1) // (cell_width + 1))
    columns = array.shape[-1]
    lead = array.shape[:-1]
    lines = []
    for row, index in enumerate(np.ndindex(*lead) if lead else [()]):
        opened = 1 + _trailing(index, (0,) * len(index))
        closed = 1 + _trailing(index, tuple(size - 1 for size in lead))
        row_cells = [cell.rjust(cell_width) for cell in cells[row * columns:(row + 1) * columns]]
        chunks = [" ".join(row_cells[i:i + per_line]) for i in range(0, columns, per_line)] or [""]
        pad = " " * array.ndim
        body = ("\n" + pad).join(chunks)
        lines.append(" " * (array.ndim - opened) + "[" * opened + body + "]" * closed)
    return "\n".join(lines)


def _trailing(index: tuple[int, ...], edge: tuple[int, ...]) -> int:
    """How many of the last entries of ``index`` equal those of ``edge``."""
    count = 0
    for position, bound in zip(reversed(index), reversed(edge)):
        if position != bound:
            break
        count += 1
    return count


def render_text(graph: Graph, only: Iterable[str] = (), precision: int = 8, full: bool = False) -> Iterator[str]:
    """One block per input and node: what it is, the layer's shapes, value and gradients."""
    yield f"{'backward' if graph.grads else 'forward'}, output '{graph.output}'"
    if graph.grads:
        yield f"  dout: {format_array(graph.dout, precision, full, 8)}"
    for name in entry_names(graph, only):
        value = graph.values[name]
        node = graph.spec.nodes.get(name)
        dtype = dtype_name(value)
        dtype = "" if dtype == "float64" else f", {dtype}"
        rows = [("value", value)]
        if node:
            yield f"\n{name} = {node.op}({', '.join(node.args)})  {graph.layers[name]}{dtype}"
        else:
            yield f"\n{name}: input, shape {graph.shapes[name]}{dtype}"
        if graph.grads:
            rows.append(("grad", graph.grads[name]))
            if node:
                layer = graph.layers[name]
                for role, arg, grad in zip(layer.args, node.args, graph.input_grads[name]):
                    rows.append((f"d{role} ({arg})", grad))
        width = max(len(label) for label, _ in rows) + 1
        for label, array in rows:
            indent = 2 + width + 1
            yield f"  {label + ':':<{width}} {format_array(array, precision, full, indent)}"
