"""Renderers: a graph's values and gradients as text for people, or JSON and JSON Lines for programs."""

from __future__ import annotations

import json
import math
import mmap
from contextlib import contextmanager
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


CHUNK_ELEMENTS = 1 << 16  # a larger array is written this many elements at a time (JSON, or text with --full)
BATCH_WEIGHT = 1 << 16  # smaller entries are written together up to this many elements, each entry counting one more
# What rendering holds at most stays under budget.OUTPUT_BYTES: a chunk of an array as JSON (up to 25
# bytes a number) or as text cells, a batch of entries, orjson's room and the writer's buffer.

_SLOT = orjson.Fragment(b"\0")  # where a large array's chunks go: orjson writes no NUL byte of its own
_ROOM_BYTES = 8 << 20  # more than orjson needs for a chunk or a batch


class _Room:
    """Address space kept free for orjson, which crashes where it cannot allocate: mapped (not
    touched, so using no memory) before each use and let go for it, so that where memory runs out,
    taking it back fails first, as a MemoryError."""

    def __init__(self) -> None:
        self._block: mmap.mmap | None = None

    def _take(self) -> None:
        try:
            self._block = mmap.mmap(-1, _ROOM_BYTES)
        except OSError:
            raise MemoryError from None

    @contextmanager
    def kept(self) -> Iterator[None]:
        if self._block is None:
            self._take()
        self._block.close()
        self._block = None
        yield
        self._take()


_ROOM = _Room()


def render_json(graph: Graph, only: Iterable[str] = ()) -> Iterator[bytes]:
    """The whole result as one strict JSON object, in chunks of bounded size: each input's and
    node's record (see :func:`entry_batches`) under ``nodes``."""
    names = entry_names(graph, only)
    head: dict[str, Any] = {"output": graph.output}
    large: list[Any] = []
    if graph.grads:
        head["dout"] = _SLOT if np.size(graph.dout) > CHUNK_ELEMENTS else json_value(graph.dout)
        if head["dout"] is _SLOT:
            large.append(graph.dout)
    head["nodes"] = _SLOT
    with _ROOM.kept():
        text = json_bytes(head)
    yield from _spliced(text, [*map(array_json, large), _nodes_json(graph, names)])


def _nodes_json(graph: Graph, names: list[str]) -> Iterator[bytes]:
    yield b"{"
    for number, (batch_names, entries, large) in enumerate(entry_batches(graph, names)):
        if number:
            yield b","
        with _ROOM.kept():
            text = json_bytes(dict(zip(batch_names, entries)))
        yield from _spliced(text, [array_json(array) for _, arrays in large for array in arrays], 1, len(text) - 1)
    yield b"}"


def render_jsonl(graph: Graph, only: Iterable[str] = ()) -> Iterator[bytes]:
    """One JSON object per input and node, each with its ``name``, a line each, in chunks of bounded size."""
    names = entry_names(graph, only)
    for batch_names, entries, large in entry_batches(graph, names):
        with _ROOM.kept():
            lines = [json_bytes({"name": name, **entry}) for name, entry in zip(batch_names, entries)]
        at = 0
        for index, arrays in large:
            if index > at:
                yield b"\n".join(lines[at:index]) + b"\n"
            yield from _spliced(lines[index], map(array_json, arrays))
            yield b"\n"
            at = index + 1
        if at < len(lines):
            yield b"\n".join(lines[at:]) + b"\n"


def entry_batches(graph: Graph, names: list[str]) -> Iterator[tuple[list[str], list[dict[str, Any]], list[tuple[int, list[Any]]]]]:
    """Each input's and node's record, in batches of about BATCH_WEIGHT elements: op, inputs,
    shape, dtype, value and, after backward, grad; nodes also attrs (if any), input_shapes and,
    after backward, input_grads. ``names`` are inputs, then nodes, as entry_names gives them.
    Values are arrays as they are, for :func:`json_bytes` to write; NaN and infinities are the
    strings JSON allows. An array of more than CHUNK_ELEMENTS elements is left out, its place
    marked for :func:`array_json` to fill: each batch comes with the arrays left out of its
    entries, by the entry's index in the batch.

    Built column by column, so that a graph of a million nodes prints in seconds.
    """
    spec_nodes, shapes, backward = graph.spec.nodes, graph.shapes, bool(graph.grads)
    values = [graph.values[name] for name in names]
    dtypes = list(map(dtype_name, values))
    grads = [graph.grads[name] for name in names] if backward else [None] * len(names)
    input_grads = [graph.input_grads.get(name) for name in names] if backward else [None] * len(names)
    shape_sizes = {shape: math.prod(shape) for shape in set(shapes.values())}
    sizes = {name: shape_sizes[shape] for name, shape in shapes.items()}
    large_names = {name for name, size in sizes.items() if size > CHUNK_ELEMENTS}
    # As json_value gives them: non-finite numbers as strings, other dtypes' numbers as float64's.
    convert = not graph.all_finite() or any(dtype != "float64" for dtype in dtypes)
    batch_names: list[str] = []
    entries: list[dict[str, Any]] = []
    large: list[tuple[int, list[Any]]] = []
    weight = 0
    for name, dtype, value, grad, arg_grads in zip(names, dtypes, values, grads, input_grads):
        node = spec_nodes.get(name)
        size = sizes[name]
        if large_names and (name in large_names or (backward and node and not large_names.isdisjoint(node.args))):
            left_out: list[Any] = []
            value, grad = _placed(value, left_out, convert), _placed(grad, left_out, convert) if backward else None
            if backward and node:
                arg_grads = tuple([_placed(arg_grad, left_out, convert) for arg_grad in arg_grads])
            large.append((len(entries), left_out))
        elif convert:
            value = json_value(value)
            if backward:
                grad = json_value(grad)
                arg_grads = arg_grads and tuple(map(json_value, arg_grads))
        if node is None:
            entry = {"op": "input", "inputs": (), "shape": shapes[name], "dtype": dtype, "value": value}
            if backward:
                entry["grad"] = grad
            weight += 1 + size * (1 + backward)
        else:
            entry = {"op": node.op, "inputs": node.args, "shape": shapes[name], "dtype": dtype, "value": value}
            if backward:
                entry["grad"] = grad
            layer = graph.layers[name]
            if layer.attrs:
                entry["attrs"] = {key: json_value(value) for key, value in layer.shown_attrs().items()}
            entry["input_shapes"] = tuple(map(shapes.__getitem__, node.args))
            if backward:
                entry["input_grads"] = arg_grads
                weight += 1 + 2 * size + sum(map(sizes.__getitem__, node.args))
            else:
                weight += 1 + size
        batch_names.append(name)
        entries.append(entry)
        if weight >= BATCH_WEIGHT:
            yield batch_names, entries, large
            batch_names, entries, large, weight = [], [], [], 0
    if entries:
        yield batch_names, entries, large


def _placed(value: Any, left_out: list[Any], convert: bool) -> Any:
    """``value`` as an entry holds it; an array too large for that is left out (added to ``left_out``) and its place marked."""
    if value is None or np.size(value) <= CHUNK_ELEMENTS:
        return json_value(value) if convert else value
    left_out.append(value)
    return _SLOT


def _spliced(text: bytes, fillers: Iterable[Iterable[bytes]], start: int = 0, stop: int | None = None) -> Iterator[bytes]:
    """``text[start:stop]`` with each of its marked places filled, in turn, by the chunks of one of ``fillers``."""
    view = memoryview(text)
    stop = len(text) if stop is None else stop
    for filler in fillers:
        place = text.index(b"\0", start)
        yield view[start:place]
        yield from filler
        start = place + 1
    yield view[start:stop]


def array_json(value: Any) -> Iterator[bytes]:
    """An array of any size as JSON, CHUNK_ELEMENTS elements at a time: the bytes json_value and
    :func:`json_bytes` write for it as a whole."""
    array = np.asarray(value)
    if array.size <= CHUNK_ELEMENTS:
        with _ROOM.kept():
            text = json_bytes(_json_part(array))
        yield text
        return
    row = array.size // len(array)
    rows = CHUNK_ELEMENTS // row
    yield b"["
    if not rows:  # one row is too large: each in turn
        for index in range(len(array)):
            if index:
                yield b","
            yield from array_json(array[index])
    else:
        for start in range(0, len(array), rows):
            with _ROOM.kept():
                text = json_bytes(_json_part(array[start:start + rows]))
            if start:
                yield b","
            yield memoryview(text)[1:-1]
    yield b"]"


def _json_part(array: np.ndarray) -> Any:
    """A part of an array as orjson writes it: float64 numbers as they are, NaN and infinities as strings."""
    if array.dtype.kind == "f" and array.ndim and np.isfinite(array).all():
        return np.ascontiguousarray(array, dtype=np.float64)
    return json_value(array)


def json_bytes(data: Any) -> bytes:
    """``data`` as compact JSON, its numpy arrays and numbers written as they are (orjson's
    shortest round-trip digits). The caller has made every number finite or a string."""
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY, default=_plain)


def _plain(value: Any) -> Any:
    """What orjson does not write itself (0-d, non-contiguous and memory-mapped arrays) as lists and numbers."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


# --- text -----------------------------------------------------------------


def scientific(values: Any, precision: int) -> bool:
    """Whether an array's numbers are written in scientific notation at ``precision``: where
    one of its finite non-zero magnitudes is 1e16 or more, or too small to show a digit in
    positional notation (under 1e-4, or under 10 ** -precision). One choice per array, so
    that its elements are written alike."""
    if type(values) is float:
        magnitude = abs(values)
        return magnitude != 0 and math.isfinite(magnitude) and not _positional_range(precision) <= magnitude < 1e16
    extremes = magnitude_range(np.asarray(values))
    return extremes is not None and (extremes[1] >= 1e16 or extremes[0] < _positional_range(precision))


def _parts(array: np.ndarray) -> Iterator[np.ndarray]:
    """An array's elements in order, CHUNK_ELEMENTS at a time (views where it is contiguous)."""
    if array.size <= CHUNK_ELEMENTS:
        yield array.reshape(-1)
        return
    flat = array.reshape(-1) if array.flags.c_contiguous else array.flat
    for start in range(0, array.size, CHUNK_ELEMENTS):
        yield np.asarray(flat[start:start + CHUNK_ELEMENTS])


def magnitude_range(array: np.ndarray) -> tuple[float, float] | None:
    """The smallest and the largest finite non-zero magnitude in ``array``; None where there is none."""
    lows, highs = [], []
    for part in _parts(array):
        magnitudes = np.abs(part[np.isfinite(part) & (part != 0)])
        if magnitudes.size:
            lows.append(float(magnitudes.min()))
            highs.append(float(magnitudes.max()))
    return (min(lows), max(highs)) if lows else None


def _any(array: np.ndarray, test: Callable[[np.ndarray], np.ndarray]) -> bool:
    """Whether ``test`` holds for an element of ``array``, looked at a chunk at a time."""
    return any(bool(test(part).any()) for part in _parts(array))


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
    extremes = magnitude_range(array)  # the widest exponents are at the ends
    widest = max(len(cell % extremes[0]), len(cell % extremes[1])) if extremes else 3
    widest = max(widest + _any(array, lambda part: part < 0), 4 if _any(array, np.isneginf) else 3)
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


def format_array_pieces(value: Any, precision: int, full: bool, indent: int) -> Iterator[str]:
    """format_array's text in pieces of whole lines, to be joined by newlines: a large array with
    ``full`` CHUNK_ELEMENTS elements at a time, so that it is written in bounded memory."""
    if not (full and np.ndim(value) and np.size(value) > SUMMARY_THRESHOLD):
        yield format_array(value, precision, full, indent)
        return
    pad = "\n" + " " * indent
    for number, piece in enumerate(full_lines(np.asarray(value), precision)):
        piece = piece.replace("\n", pad)
        yield pad[1:] + piece if number else piece


def format_full(array: np.ndarray, precision: int, width: int = 75) -> str:
    """Every element of a non-empty array, in numpy's nested-bracket layout, in linear time.

    (numpy's own full print takes minutes for a million elements.) Elements are printed
    to ``precision`` decimals, without trailing zeros, in scientific notation where some
    are too large or too small for that; right-aligned; long rows wrap at ``width``.
    """
    return "\n".join(full_lines(array, precision, width))


def full_lines(array: np.ndarray, precision: int, width: int = 75) -> Iterator[str]:
    """format_full's text in pieces of whole lines, to be joined by newlines, each of about
    CHUNK_ELEMENTS elements."""
    in_scientific = scientific(array, precision)
    cell = f"%.{precision}{'e' if in_scientific else 'f'}"
    cell_width, texts = _cell_width(array, cell, in_scientific)
    ndim, columns, lead = array.ndim, array.shape[-1], array.shape[:-1]
    per_line = max(1, (width - ndim - 1) // (cell_width + 1))
    pad = " " * ndim
    flat = array.reshape(-1) if array.flags.c_contiguous else array.flat
    indices = np.ndindex(*lead) if lead else iter([()])
    firsts, lasts = (0,) * len(lead), tuple(size - 1 for size in lead)
    if columns <= CHUNK_ELEMENTS:  # whole rows at a time
        rows, batch = array.size // columns, max(1, CHUNK_ELEMENTS // columns)
        for first in range(0, rows, batch):
            stop = min(rows, first + batch)
            part = texts if texts is not None else _cells(flat[first * columns:stop * columns], cell, in_scientific)
            cells = [text.rjust(cell_width) for text in part]
            lines = []
            for row in range(stop - first):
                index = next(indices)
                opened, closed = 1 + _trailing(index, firsts), 1 + _trailing(index, lasts)
                row_cells = cells[row * columns:(row + 1) * columns]
                chunks = [" ".join(row_cells[i:i + per_line]) for i in range(0, columns, per_line)] or [""]
                lines.append(" " * (ndim - opened) + "[" * opened + ("\n" + pad).join(chunks) + "]" * closed)
            yield "\n".join(lines)
        return
    segment = per_line * max(1, CHUNK_ELEMENTS // per_line)  # a row too long for one piece: whole lines of it
    for row, index in enumerate(indices):
        opened, closed = 1 + _trailing(index, firsts), 1 + _trailing(index, lasts)
        for start in range(0, columns, segment):
            stop = min(columns, start + segment)
            cells = [text.rjust(cell_width) for text in
                     _cells(flat[row * columns + start:row * columns + stop], cell, in_scientific)]
            text = ("\n" + pad).join([" ".join(cells[i:i + per_line]) for i in range(0, len(cells), per_line)])
            text = (" " * (ndim - opened) + "[" * opened if not start else pad) + text
            yield text + "]" * closed if stop == columns else text


def _cells(values: Any, cell: str, in_scientific: bool) -> list[str]:
    """Elements as ``cell`` (a printf format) writes them; without trailing zeros in positional notation."""
    numbers = np.asarray(values).tolist()
    texts = ("\0".join([cell] * len(numbers)) % tuple(numbers)).split("\0")
    return texts if in_scientific else [text.rstrip("0") if "." in text else text for text in texts]


def _cell_width(array: np.ndarray, cell: str, in_scientific: bool) -> tuple[int, list[str] | None]:
    """The widest of the array's cells, and the cells themselves where the array is one chunk.

    A chunk at a time, until one is as wide as a cell can be: a sign where one is set, and the
    digits of the largest magnitude (in scientific notation, the widest exponent of the smallest
    or largest); in the usual array, the first chunk has one."""
    extremes = magnitude_range(array)
    numbers = [0.0] if extremes is None else extremes if in_scientific else extremes[1:]
    bound = max(map(len, (cell % number for number in numbers)))
    bound += _any(array, lambda part: np.signbit(part) & np.isfinite(part))
    if _any(array, lambda part: ~np.isfinite(part)):
        bound = max(bound, 4 if _any(array, np.isneginf) else 3)
    widest = 0
    for part in _parts(array):
        texts = _cells(part, cell, in_scientific)
        widest = max(widest, max(map(len, texts)))
        if widest >= bound:
            break
    return widest, texts if array.size <= CHUNK_ELEMENTS else None


def _trailing(index: tuple[int, ...], edge: tuple[int, ...]) -> int:
    """How many of the last entries of ``index`` equal those of ``edge``."""
    count = 0
    for position, bound in zip(reversed(index), reversed(edge)):
        if position != bound:
            break
        count += 1
    return count


def render_text(graph: Graph, only: Iterable[str] = (), precision: int = 8, full: bool = False) -> Iterator[str]:
    """One block of lines per input and node: what it is, the layer's shapes, value and gradients.
    Items are to be joined by newlines; with ``full``, a large array's lines come in pieces of
    bounded size (see :func:`format_array_pieces`)."""
    yield f"{'backward' if graph.grads else 'forward'}, output '{graph.output}'"
    if graph.grads:
        yield from _labelled("  dout: ", graph.dout, precision, full, 8)
    for name in entry_names(graph, only):
        value = graph.values[name]
        node = graph.spec.nodes.get(name)
        dtype = dtype_name(value)
        dtype = "" if dtype == "float64" else f", {dtype}"
        rows = [("value", value)]
        if node:
            signature = graph.layers[name].signature(node.args, [graph.shapes[arg] for arg in node.args], graph.shapes[name])
            head = f"\n{name} = {node.op}({', '.join(node.args)})  {signature}{dtype}"
        else:
            head = f"\n{name}: input, shape {graph.shapes[name]}{dtype}"
        if graph.grads:
            rows.append(("grad", graph.grads[name]))
            if node:
                layer = graph.layers[name]
                rows += [(f"d{role} -> {arg}", grad) for role, arg, grad in zip(layer.args, node.args, graph.input_grads[name])
                         if grad is not None]  # None: a constant, which takes no gradient
        width = max([len(label) for label, _ in rows]) + 1
        indent = 2 + width + 1
        if full and any(np.size(array) > CHUNK_ELEMENTS for _, array in rows):
            yield head
            for label, array in rows:
                yield from _labelled(f"  {label + ':':<{width}} ", array, precision, full, indent)
        else:
            yield "\n".join([head, *[f"  {label + ':':<{width}} {format_array(array, precision, full, indent)}"
                                      for label, array in rows]])


def _labelled(label: str, value: Any, precision: int, full: bool, indent: int) -> Iterator[str]:
    """A value's lines after its label, in pieces."""
    pieces = format_array_pieces(value, precision, full, indent)
    yield label + next(pieces)
    yield from pieces
