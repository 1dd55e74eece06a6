"""Renderers: a graph's values and gradients as text for people, or JSON and JSON Lines for programs."""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import orjson

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


def json_text(value: Any) -> str:
    """A value as JSON text (see json_value); a float straight to its shortest repr."""
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return json.dumps(json_value(value), allow_nan=False)


def quoted_names(names: Iterable[str]) -> dict[str, str]:
    """Each name as a JSON string."""
    return {name: f'"{name}"' if name.isascii() else json.dumps(name) for name in names}


def json_entries(graph: Graph, names: list[str]) -> list[dict[str, Any]]:
    """Each input's and node's record: op, inputs, shape, dtype, value and, after backward,
    grad; nodes also attrs (if any), input_shapes and, after backward, input_grads. ``names``
    are inputs, then nodes, as entry_names gives them. Values are arrays as they are, for
    :func:`json_bytes` to write; NaN and infinities are the strings JSON allows.

    Built column by column, so that a graph of a million nodes prints in seconds.
    """
    spec_nodes, shapes, backward = graph.spec.nodes, graph.shapes, bool(graph.grads)
    values = [graph.values[name] for name in names]
    dtypes = list(map(dtype_name, values))
    grads = [graph.grads[name] for name in names] if backward else [None] * len(names)
    input_grads = [graph.input_grads.get(name) for name in names] if backward else [None] * len(names)
    if not graph.all_finite() or any(dtype != "float64" for dtype in dtypes):
        # As json_value gives them: non-finite numbers as strings, other dtypes' numbers as float64's.
        values = list(map(json_value, values))
        if backward:
            grads = list(map(json_value, grads))
            input_grads = [arrays and tuple(map(json_value, arrays)) for arrays in input_grads]
    entries = []
    for name, dtype, value, grad, arg_grads in zip(names, dtypes, values, grads, input_grads):
        node = spec_nodes.get(name)
        if node is None:
            entry = {"op": "input", "inputs": (), "shape": shapes[name], "dtype": dtype, "value": value}
            if backward:
                entry["grad"] = grad
        else:
            entry = {"op": node.op, "inputs": node.args, "shape": shapes[name], "dtype": dtype, "value": value}
            if backward:
                entry["grad"] = grad
            layer = graph.layers[name]
            if layer.attrs:
                entry["attrs"] = {key: json_value(getattr(layer, key)) for key in layer.attrs}
            entry["input_shapes"] = tuple(map(shapes.__getitem__, node.args))
            if backward:
                entry["input_grads"] = arg_grads
        entries.append(entry)
    return entries


def json_bytes(data: Any) -> bytes:
    """``data`` as compact JSON, its numpy arrays and numbers written as they are (orjson's
    shortest round-trip digits). The caller has made every number finite or a string."""
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY, default=_plain)


def _plain(value: Any) -> Any:
    """What orjson does not write itself (0-d, non-contiguous and memory-mapped arrays) as lists and numbers."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def render_json(graph: Graph, only: Iterable[str] = ()) -> str:
    """The whole result as one strict JSON object."""
    names = entry_names(graph, only)
    document: dict[str, Any] = {"output": graph.output}
    if graph.grads:
        document["dout"] = json_value(graph.dout)
    document["nodes"] = dict(zip(names, json_entries(graph, names)))
    return json_bytes(document).decode()


def render_jsonl(graph: Graph, only: Iterable[str] = ()) -> Iterator[str]:
    """One JSON object per input and node, each with its ``name``."""
    names = entry_names(graph, only)
    for name, entry in zip(names, json_entries(graph, names)):
        yield json_bytes({"name": name, **entry}).decode()


# --- text -----------------------------------------------------------------


def scientific(values: Any, precision: int) -> bool:
    """Whether an array's numbers are written in scientific notation at ``precision``: where
    one of its finite non-zero magnitudes is 1e16 or more, or too small to show a digit in
    positional notation (under 1e-4, or under 10 ** -precision). One choice per array, so
    that its elements are written alike."""
    if type(values) is float:
        magnitude = abs(values)
        return magnitude != 0 and math.isfinite(magnitude) and not _positional_range(precision) <= magnitude < 1e16
    array = np.asarray(values)
    magnitudes = np.abs(array[np.isfinite(array) & (array != 0)]) if array.size else array
    if not magnitudes.size:
        return False
    return float(magnitudes.max()) >= 1e16 or float(magnitudes.min()) < _positional_range(precision)


def _positional_range(precision: int) -> float:
    """The smallest magnitude written in positional notation at ``precision``."""
    return max(1e-4, 10.0 ** -precision)


def format_scalar(value: float, precision: int, in_scientific: bool | None = None) -> str:
    """A number as people write it, to at most ``precision`` decimals: 715.0, 2.2, 1e-10, nan.

    ``in_scientific`` is the notation of the array the number belongs to (see
    :func:`scientific`); by default, the number's own.
    """
    if in_scientific is None:
        in_scientific = scientific(float(value), precision)
    if not in_scientific and (type(value) is float or type(value) is np.float64) and precision:
        text = repr(float(value))  # the shortest form that reads back the same, as numpy's unique=True gives
        if "e" not in text and "n" not in text and len(text) - text.index(".") - 1 <= precision:
            return text
        if math.isfinite(value):
            text = f"{value:.{precision}f}".rstrip("0")
            return text + "0" if text.endswith(".") else text
    value = value if isinstance(value, np.floating) else float(value)
    if not math.isfinite(value):
        return str(float(value))
    if value == 0 or not in_scientific:
        return np.format_float_positional(value, precision=precision, unique=True, trim="0")
    return np.format_float_scientific(value, precision=precision, unique=True, trim="-")


INLINE_ELEMENTS = 6  # arrays up to this size are written out on one line; larger ones by their shape


def format_inline(value: Any, precision: int, shape: bool = True) -> str:
    """A value on one line: ``715``, ``(2,) [9, 12]`` (without the shape if not ``shape``),
    or ``(1000, 100) array`` for arrays of more than INLINE_ELEMENTS elements.
    The numbers of an array share one notation (see :func:`scientific`)."""
    array = np.asarray(value)
    if array.ndim == 0:
        return _number(array[()], precision, scientific(array, precision))
    if array.size > INLINE_ELEMENTS:
        return f"{array.shape} array"
    text = _nested(array, precision, scientific(array, precision))
    return f"{array.shape} {text}" if shape else text


def _nested(array: np.ndarray, precision: int, in_scientific: bool) -> str:
    if array.ndim == 0:
        return _number(array[()], precision, in_scientific)
    return "[" + ", ".join(_nested(row, precision, in_scientific) for row in array) + "]"


def _number(value: Any, precision: int, in_scientific: bool) -> str:
    """format_scalar without a trailing '.0': 715, 2.2."""
    text = format_scalar(value, precision, in_scientific)
    return text[:-2] if text.endswith(".0") else text


def format_array(value: Any, precision: int, full: bool, indent: int) -> str:
    """A value for the text view: a number, or an array aligned at ``indent``.

    Arrays up to SUMMARY_THRESHOLD elements print as numpy prints them; larger ones
    are summarised by numpy, or with ``full`` printed whole by :func:`format_full`.
    """
    if type(value) is float:
        return format_scalar(value, precision)
    array = np.asarray(value)
    if array.ndim == 0:
        return format_scalar(array[()], precision)
    if full and array.size > SUMMARY_THRESHOLD:
        text = format_full(array, precision)
    else:
        text = format_small(array, precision)  # the usual small array, in positional notation
        if text is None and array.dtype.kind == "f" and scientific(array, precision):
            # where numpy would write some as 0
            text = np.array2string(array, threshold=SUMMARY_THRESHOLD, separator=" ",
                                   formatter={"float_kind": _scientific_cell(array, precision)})
        elif text is None:
            text = np.array2string(array, precision=precision, threshold=SUMMARY_THRESHOLD, separator=" ")
    return text.replace("\n", "\n" + " " * indent)


def _scientific_cell(array: np.ndarray, precision: int) -> Callable[[Any], str]:
    """A formatter writing an element of ``array`` in scientific notation, right-aligned to the widest."""
    cell = f"%.{precision}e"
    magnitudes = np.abs(array[np.isfinite(array) & (array != 0)])  # the widest exponents are at the ends
    widest = max(len(cell % magnitudes.max()), len(cell % magnitudes.min())) if magnitudes.size else 3
    widest = max(widest + bool((array < 0).any()), 4 if np.isneginf(array).any() else 3)
    return lambda value: (cell % value if np.isfinite(value) else str(float(value))).rjust(widest)


SMALL_ELEMENTS = 100  # arrays up to this size are tried by format_small
LINE_WIDTH = 75  # numpy's


def format_small(array: np.ndarray, precision: int) -> str | None:
    """``np.array2string(array, precision=precision, separator=" ")``, many times faster, for the
    arrays it covers: float64, 1 to SMALL_ELEMENTS elements, all finite, that numpy writes in
    positional notation with no non-zero number written as 0. None for any other array.

    As numpy does: each number is its shortest repr, rounded to ``precision`` decimals where
    that is longer; trailing zeros dropped, the point kept; integer parts right-aligned and
    decimals left-aligned to the widest of the array.
    """
    if array.dtype != np.float64 or not 0 < array.size <= SMALL_ELEMENTS:
        return None
    numbers = array.ravel().tolist()
    if not math.isfinite(sum(numbers)):
        return None  # NaN or infinity (or a sum that overflows): numpy's layout for those
    magnitudes = [abs(number) for number in numbers if number]
    if magnitudes:
        largest, smallest = max(magnitudes), min(magnitudes)
        if largest >= 1e8 or smallest < 1e-4 or largest > 1000 * smallest or smallest < 10.0 ** -precision:
            return None  # numpy writes these in scientific notation, or would write some as 0
    rounded = ("\0".join([f"%.{precision}f" if precision else "%.0f."] * len(numbers)) % tuple(numbers)).split("\0")
    texts = []
    for number, text in zip(numbers, rounded):
        if float(text) == number:  # then its shortest repr (positional, as |number| < 1e8) may be shorter
            shortest = repr(number)
            if len(shortest) - shortest.index(".") <= precision + 1:
                text = shortest
        texts.append(text.rstrip("0"))
    points = [text.index(".") for text in texts]
    left = max(points)
    width = left + max(len(text) - point for text, point in zip(texts, points))
    cells = [(" " * (left - point) + text).ljust(width) for text, point in zip(texts, points)]
    ndim, columns = array.ndim, array.shape[-1]
    # numpy wraps a row where a line, indented by the depth, would pass LINE_WIDTH less the depth
    per_line = max(1, (LINE_WIDTH - 2 * ndim - width) // (width + 1) + 1)
    rows = [_row(cells[start:start + columns], per_line, ndim) for start in range(0, len(cells), columns)]
    return _nest(rows, array.shape[:-1], 0) if ndim > 1 else "[" + rows[0] + "]"


def _row(cells: list[str], per_line: int, indent: int) -> str:
    """Cells of a row, ``per_line`` to a line; lines after the first indented by ``indent``,
    lines before the last without trailing spaces."""
    if len(cells) <= per_line:
        return " ".join(cells)
    lines = [" ".join(cells[at:at + per_line]) for at in range(0, len(cells), per_line)]
    return ("\n" + " " * indent).join([line.rstrip() for line in lines[:-1]] + lines[-1:])


def _nest(rows: list[str], shape: tuple[int, ...], depth: int) -> str:
    """Rows of an array of leading axes ``shape`` in numpy's brackets: sub-arrays of an axis
    separated by a line break per axis below it, each line indented by its depth."""
    if not shape:
        return "[" + rows[0] + "]"
    count = len(rows) // shape[0]
    parts = [_nest(rows[i * count:(i + 1) * count], shape[1:], depth + 1) for i in range(shape[0])]
    return "[" + ("\n" * len(shape) + " " * (depth + 1)).join(parts) + "]"


def format_full(array: np.ndarray, precision: int, width: int = 75) -> str:
    """Every element of a non-empty array, in numpy's nested-bracket layout, in linear time.

    (numpy's own full print takes minutes for a million elements.) Elements are printed
    to ``precision`` decimals, without trailing zeros, in scientific notation where some
    are too large or too small for that; right-aligned; long rows wrap at ``width``.
    """
    rows = array.reshape(-1, array.shape[-1])
    in_scientific = scientific(array, precision)
    cell = f"%.{precision}{'e' if in_scientific else 'f'}"
    cells = ("\0".join([cell] * array.size) % tuple(rows.ravel().tolist())).split("\0")
    if not in_scientific:
        cells = [text.rstrip("0") if "." in text else text for text in cells]
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
    """One block of lines per input and node: what it is, the layer's shapes, value and gradients."""
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
            head = f"\n{name} = {node.op}({', '.join(node.args)})  {graph.layers[name]}{dtype}"
        else:
            head = f"\n{name}: input, shape {graph.shapes[name]}{dtype}"
        if graph.grads:
            rows.append(("grad", graph.grads[name]))
            if node:
                layer = graph.layers[name]
                rows += [(f"d{role} ({arg})", grad) for role, arg, grad in zip(layer.args, node.args, graph.input_grads[name])
                         if grad is not None]  # None: a constant, which takes no gradient
        width = max([len(label) for label, _ in rows]) + 1
        indent = 2 + width + 1
        yield "\n".join([head, *[f"  {label + ':':<{width}} {format_array(array, precision, full, indent)}"
                                  for label, array in rows]])
