"""Renderers: a graph's values and gradients as text for people, or JSON and JSON Lines for programs."""

from __future__ import annotations

import json
import math
import mmap
import re
from bisect import bisect_left
from contextlib import contextmanager
from functools import partial
from itertools import accumulate, chain, repeat
from operator import attrgetter
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import orjson

from .graph import Graph
from .layers import REGISTRY

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
# What rendering holds at most, a chunk of an array as JSON (up to 25 bytes a number) or as text cells,
# a batch of entries and the writer's buffer, stays under what budget.output_bytes counts for it.

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
        text = b",".join(map(b":".join, zip(_column(batch_names), entries)))
        yield from _spliced(text, [array_json(array) for _, arrays in large for array in arrays])
    yield b"}"


def render_jsonl(graph: Graph, only: Iterable[str] = ()) -> Iterator[bytes]:
    """One JSON object per input and node, each with its ``name``, a line each, in chunks of bounded size."""
    names = entry_names(graph, only)
    for batch_names, entries, large in entry_batches(graph, names):
        lines = [b'{"name":' + name + b"," + entry[1:] for name, entry in zip(_column(batch_names), entries)]
        at = 0
        for index, arrays in large:
            if index > at:
                yield b"\n".join(lines[at:index]) + b"\n"
            yield from _spliced(lines[index], map(array_json, arrays))
            yield b"\n"
            at = index + 1
        if at < len(lines):
            yield b"\n".join(lines[at:]) + b"\n"


def entry_batches(graph: Graph, names: list[str]) -> Iterator[tuple[list[str], list[bytes], list[tuple[int, list[Any]]]]]:
    """Each input's and node's record as JSON text, in batches of about BATCH_WEIGHT elements: op,
    inputs, shape, dtype, value and, after backward, grad; nodes also attrs (if any), input_shapes
    and, after backward, input_grads. ``names`` are inputs, then nodes, as entry_names gives them.
    NaN and infinities are the strings JSON allows. An array of more than CHUNK_ELEMENTS elements
    is left out, its place marked (a NUL byte) for :func:`array_json` to fill: each batch comes
    with the arrays left out of its entries, by the entry's index in the batch.

    Built column by column (each field of all entries of a batch written together, then joined),
    so that a graph of a million nodes prints in seconds.
    """
    spec_nodes, shapes, backward = graph.spec.nodes, graph.shapes, bool(graph.grads)
    values = _in_order(graph.values, names)
    dtypes = ["float64"] * len(values) if {float}.issuperset(map(type, values)) else [*map(dtype_name, values)]
    grads = _in_order(graph.grads, names) if backward else []
    nodes = [*map(spec_nodes.get, names)]
    inputs_count = sum(map(graph.spec.inputs.__contains__, names))  # the inputs come first
    node_args = [node.args for node in nodes[inputs_count:]]
    input_grads = _in_order(graph.input_grads, names[inputs_count:]) if backward else []
    shape_sizes = {shape: math.prod(shape) for shape in set(shapes.values())}
    sizes = dict(zip(shapes, map(shape_sizes.__getitem__, shapes.values())))
    entry_sizes = [*map(sizes.__getitem__, names)]
    # As json_value gives them: non-finite numbers as strings, other dtypes' numbers as float64's.
    convert = not graph.all_finite() or not {"float64"}.issuperset(dtypes)
    large_names = {name for name, size in sizes.items() if size > CHUNK_ELEMENTS}
    left_out_at: dict[int, list[Any]] = {}  # the arrays left out of entry k, by k
    if large_names:
        for k, name in enumerate(names):
            node = nodes[k]
            if name in large_names or (backward and node and not large_names.isdisjoint(node.args)):
                left_out: list[Any] = []
                values[k] = _placed(values[k], left_out, convert)
                if backward:
                    grads[k] = _placed(grads[k], left_out, convert)
                    if node:
                        input_grads[k - inputs_count] = tuple([_placed(grad, left_out, convert)
                                                               for grad in input_grads[k - inputs_count]])
                left_out_at[k] = left_out
    if convert:
        values = [value if k in left_out_at else json_value(value) for k, value in enumerate(values)]
        if backward:
            grads = [grad if k in left_out_at else json_value(grad) for k, grad in enumerate(grads)]
            input_grads = [grads_ if k + inputs_count in left_out_at else tuple(map(json_value, grads_))
                           for k, grads_ in enumerate(input_grads)]

    if backward:  # each entry counts one, its value's and gradient's elements and its inputs' gradients'
        arg_sizes = [*map(len, node_args)] if len(shape_sizes) == 1 and 1 in shape_sizes.values() else [
            *map(sum, map(map, repeat(sizes.__getitem__), node_args))]
        weights = [1 + 2 * size for size in entry_sizes]
        weights[inputs_count:] = map(int.__add__, weights[inputs_count:], arg_sizes)
    else:
        weights = [1 + size for size in entry_sizes]
    # a batch ends at the entry that brings its weight to BATCH_WEIGHT, or at the last
    totals, start = [*accumulate(weights)], 0
    while start < len(weights):
        stop = min(bisect_left(totals, (totals[start - 1] if start else 0) + BATCH_WEIGHT, start) + 1, len(weights))
        large = [(k - start, left_out_at[k]) for k in sorted(left_out_at) if start <= k < stop]
        with _ROOM.kept():
            entries = _entries(graph, names, nodes, node_args, values, dtypes, grads, input_grads, inputs_count,
                               start, stop)
        yield names[start:stop], entries, large
        start = stop


def _in_order(mapping: Mapping[str, Any], names: list[str]) -> list[Any]:
    """The items of ``names`` in ``mapping``: taken as they are where ``names`` are all of its
    names in its order (the whole graph's output), else looked up one by one."""
    if len(names) == len(mapping) and names == list(mapping):
        return list(mapping.values())
    return [*map(mapping.__getitem__, names)]


def _entries(graph: Graph, names: list[str], nodes: list[Any], node_args: list[tuple[str, ...]], values: list[Any],
             dtypes: list[str], grads: list[Any], input_grads: list[Any], inputs_count: int, start: int,
             stop: int) -> list[bytes]:
    """The JSON objects of entries ``start`` to ``stop``, each field written for all of them at once."""
    shapes, backward = graph.shapes, bool(grads)
    shape_texts = {shape: _dumps(shape) for shape in set(shapes.values())}
    dtype_texts = {dtype: _dumps(dtype) for dtype in set(dtypes[start:stop])}
    entries: list[bytes] = []
    middle = max(start, min(stop, inputs_count))  # entries start to middle are inputs, the others nodes
    if start < middle:
        batch = names[start:middle]
        columns: list[bytes | Iterable[bytes]] = [
            b'{"op":"input","inputs":[],"shape":', _texts(shape_texts, map(shapes.__getitem__, batch)),
            b',"dtype":', _texts(dtype_texts, dtypes[start:middle]), b',"value":', _column(values[start:middle])]
        if backward:
            columns += [b',"grad":', _column(grads[start:middle])]
        entries += _side_by_side([*columns, b"}"])
    if middle < stop:
        batch, first, last = names[middle:stop], middle - inputs_count, stop - inputs_count
        args = node_args[first:last]
        ops = [*map(attrgetter("op"), nodes[middle:stop])]
        op_texts = {op: _dumps(op) for op in set(ops)}
        if len(shape_texts) == 1:  # one shape for all: an entry's input shapes are told by their number
            counts = [*map(len, args)]
            count_texts = {count: _dumps([next(iter(shape_texts))] * count) for count in set(counts)}
            input_shapes = _texts(count_texts, counts)
        else:
            arg_shapes = [*map(tuple, map(map, repeat(shapes.__getitem__), args))]
            input_shapes = _texts({arg_shape: _dumps(arg_shape) for arg_shape in set(arg_shapes)}, arg_shapes)
        attrs: bytes | list[bytes] = b""
        if any(REGISTRY[op].attrs for op in op_texts):
            attrs = [b',"attrs":' + _dumps({key: json_value(value) for key, value in layer.shown_attrs().items()})
                     if layer.attrs else b"" for layer in map(graph.layers.__getitem__, batch)]
        columns = [b'{"op":', _texts(op_texts, ops), b',"inputs":', _column(args),
                   b',"shape":', _texts(shape_texts, map(shapes.__getitem__, batch)),
                   b',"dtype":', _texts(dtype_texts, dtypes[middle:stop]), b',"value":', _column(values[middle:stop])]
        if backward:
            columns += [b',"grad":', _column(grads[middle:stop])]
        columns += [attrs, b',"input_shapes":', input_shapes]
        if backward:
            columns += [b',"input_grads":', _column(input_grads[first:last])]
        entries += _side_by_side([*columns, b"}"])
    return entries


def _texts(texts: dict[Any, bytes], keys: Iterable[Any]) -> bytes | Iterable[bytes]:
    """The text of each key: one text for all where ``texts`` holds one."""
    if len(texts) == 1:
        return next(iter(texts.values()))
    return map(texts.__getitem__, keys)


def _side_by_side(columns: list[bytes | Iterable[bytes]]) -> Iterator[bytes]:
    """Each entry's text, its columns' pieces joined; a bytes column is every entry's piece
    (neighbouring ones joined once, beforehand)."""
    merged: list[bytes | Iterable[bytes]] = []
    for column in columns:
        if isinstance(column, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += column
        else:
            merged.append(column)
    return map(b"".join, zip(*[repeat(column) if isinstance(column, bytes) else column for column in merged]))


def _column(items: list[Any]) -> list[bytes]:
    """Each of ``items`` as JSON text, all in one call to orjson: the items written as one list,
    a mark between them (a control byte, which orjson never writes itself) to split it at.
    (Many small texts, each of orjson's own, cost several times the one call.)"""
    if not items:
        return []
    if {float}.issuperset(map(type, items)):
        return orjson.dumps(items)[1:-1].split(b",")
    spaced = [_APART] * (2 * len(items) - 1)
    spaced[::2] = items
    return _dumps(spaced)[1:-1].split(b",\1,")


_APART = orjson.Fragment(b"\1")  # between the items of a column (see _column)


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


_dumps = partial(orjson.dumps, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)  # json_bytes, without a call of its own


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
    return _laid_out(*_aligned(_shortest(numbers, precision, max(magnitudes, default=0.0)), len(numbers)),
                     array.shape)[0]


def _shortest(numbers: list[float], precision: int, largest: float) -> list[str]:
    """Each number as numpy writes it in positional notation: its shortest repr, or rounded to
    ``precision`` decimals where that is longer; trailing zeros dropped, the point kept.
    All numbers are written by one printf and read back at once. ``largest``: the largest
    magnitude among them.

    Where the numbers' spacing (at most ``largest`` * 2**-52) is below the rounding's step
    10**-precision, a shortest repr of at most ``precision`` decimals is the rounding itself
    (both are the step's point nearest the number), so the roundings are all there is to write."""
    joined = "\0".join([f"%.{precision}f" if precision else "%.0f."] * len(numbers)) % tuple(numbers)
    if largest < 2.0 ** 51 * 10.0 ** -precision:  # a factor of 2 spare
        return _TRAILING_ZEROS.sub("", joined).split("\0")
    rounded = joined.split("\0")
    # where the rounded text reads back as the number, its shortest repr (positional, as |number| < 1e8) may be shorter
    if len(numbers) <= SMALL_ELEMENTS:  # one array: numpy's overhead would cost more than the loop
        exact = [index for index, (number, text) in enumerate(zip(numbers, rounded)) if float(text) == number]
    else:
        exact = np.flatnonzero(np.fromiter(map(float, rounded), np.float64, len(rounded)) == np.array(numbers)).tolist()
    for index in exact:
        shortest = repr(numbers[index])
        if len(shortest) - shortest.index(".") <= precision + 1:
            rounded[index] = shortest
    return _TRAILING_ZEROS.sub("", "\0".join(rounded)).split("\0")


_TRAILING_ZEROS = re.compile("0+(?=\0|\\Z)")  # at the end of each number of a NUL-joined run


def _aligned(texts: list[str], size: int) -> tuple[list[str], list[int]]:
    """``texts``, the numbers of consecutive arrays of ``size`` elements, as cells, and each array's
    cell width: integer parts right-aligned and decimals left-aligned to the widest of the array."""
    if len(texts) == size:  # one array: without numpy's overhead
        points = [text.index(".") for text in texts]
        left = max(points)
        width = left + max([len(text) - point for text, point in zip(texts, points)])
        return [(" " * (left - point) + text).ljust(width) for text, point in zip(texts, points)], [width]
    points = np.fromiter(map(str.index, texts, repeat(".")), np.int64, len(texts)).reshape(-1, size)
    tails = np.fromiter(map(len, texts), np.int64, len(texts)).reshape(-1, size) - points
    left = points.max(axis=1)
    widths = left + tails.max(axis=1)
    leads = (left[:, None] - points).ravel().tolist()
    trails = (widths[:, None] - left[:, None] - tails).ravel().tolist()
    cells = ("\0".join(["%*s%s%*s"] * len(texts)) % tuple(chain.from_iterable(
        zip(leads, repeat(""), texts, trails, repeat(""))))).split("\0")
    return cells, widths.tolist()


_TEMPLATES: dict[tuple[int, ...], str] = {}  # by shape: numpy's brackets around one line per row of %s cells


def _laid_out(cells: list[str], widths: list[int], shape: tuple[int, ...]) -> list[str]:
    """Arrays of ``shape``, given as all their cells and each one's cell width, in numpy's layout
    (see :func:`format_small`): those whose rows fit on a line through one template at once."""
    ndim, columns, size = len(shape), shape[-1], math.prod(shape)
    template = _TEMPLATES.get(shape)
    if template is None:
        rows = [" ".join(["%s"] * columns)] * (size // columns)
        template = _TEMPLATES[shape] = _nest(rows, shape[:-1], 0) if ndim > 1 else "[" + rows[0] + "]"
    # numpy wraps a row where a line, indented by the depth, would pass LINE_WIDTH less the depth
    per_line = [max(1, (LINE_WIDTH - 2 * ndim - width) // (width + 1) + 1) for width in widths]
    if len(widths) == 1 and per_line[0] >= columns:
        return [template % tuple(cells)]
    if min(per_line) >= columns:
        return ("\0".join([template] * len(widths)) % tuple(cells)).split("\0")
    texts = []
    for number, line in enumerate(per_line):
        own = cells[number * size:(number + 1) * size]
        if line >= columns:
            texts.append(template % tuple(own))
            continue
        rows = [_row(own[start:start + columns], line, ndim) for start in range(0, size, columns)]
        texts.append(_nest(rows, shape[:-1], 0) if ndim > 1 else "[" + rows[0] + "]")
    return texts


def format_small_stack(stack: np.ndarray, precision: int) -> list[str | None]:
    """:func:`format_small` of each ``stack[i]``, a float64 array of 1 to SMALL_ELEMENTS elements,
    for many arrays of one shape at once: the checks made on all of them together, the numbers
    of those it covers written in one pass. None for the others."""
    count, shape = len(stack), stack.shape[1:]
    flat = stack.reshape(count, -1)
    with np.errstate(invalid="ignore", over="ignore"):
        magnitudes = np.abs(flat)
        nonzero = magnitudes != 0
        largest = np.where(nonzero, magnitudes, 0.0).max(axis=1)
        smallest = np.where(nonzero, magnitudes, np.inf).min(axis=1)
        refused = ~np.isfinite(flat).all(axis=1) | (nonzero.any(axis=1) & (
            (largest >= 1e8) | (smallest < 1e-4) | (largest > 1000 * smallest) | (smallest < 10.0 ** -precision)))
    covered = np.flatnonzero(~refused)
    texts: list[str | None] = [None] * count
    if covered.size:
        numbers = flat[covered].ravel().tolist()
        written = _shortest(numbers, precision, float(largest[covered].max()))
        for index, text in zip(covered.tolist(), _laid_out(*_aligned(written, flat.shape[1]), shape)):
            texts[index] = text
    return texts


def format_column(values: list[Any], precision: int, full: bool = False) -> list[str]:
    """``format_array(value, precision, full, 0)`` of each value (any sizes, shapes and dtypes),
    written together: Python floats and small float64 arrays of each shape in one pass each."""
    texts: list[Any] = [None] * len(values)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    rounding, smallest = f"%.{precision}f", _positional_range(precision)
    for index, value in enumerate(values):
        if type(value) is np.float64 or type(value) is np.ndarray and not value.ndim and value.dtype == np.float64:
            value = float(value)  # written as the Python float of the number
        if type(value) is float:
            # format_scalar's choices for a number in positional notation, without its checks one by one
            text = repr(value)  # an exponent where |value| < 1e-4 or >= 1e16; 'n' in nan and inf
            if not precision or "e" in text or "n" in text or (value and abs(value) < smallest):
                text = format_scalar(value, precision)
            elif len(text) - text.index(".") - 1 > precision:
                text = (rounding % value).rstrip("0")
                if text.endswith("."):
                    text += "0"
            texts[index] = text
        elif type(value) is np.ndarray and value.dtype == np.float64 and value.ndim and 0 < value.size <= SMALL_ELEMENTS:
            by_shape.setdefault(value.shape, []).append(index)
    for indices in by_shape.values():
        for index, text in zip(indices, format_small_stack(np.stack([values[index] for index in indices]), precision)):
            texts[index] = text
    return [format_array(value, precision, full, 0) if text is None else text for value, text in zip(values, texts)]


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
    bounded size (see :func:`format_array_pieces`).

    Written a batch of entries at a time, column by column: the batch's heads, then all its
    values and gradients formatted together (see :func:`format_column`)."""
    yield f"{'backward' if graph.grads else 'forward'}, output '{graph.output}'"
    if graph.grads:
        yield from _labelled("  dout: ", graph.dout, precision, full, 8)
    for batch in _text_batches(graph, entry_names(graph, only)):
        yield from _text_blocks(graph, batch, precision, full)


def _text_batches(graph: Graph, names: list[str]) -> Iterator[list[str]]:
    """``names`` in batches of about BATCH_WEIGHT elements of the arrays their blocks show (an
    array counting at most SUMMARY_THRESHOLD, as a larger one is summarised or written in pieces,
    and each entry one more), so that a batch's text stays small."""
    shapes, spec_nodes, backward = graph.shapes, graph.spec.nodes, bool(graph.grads)
    shown = {shape: min(math.prod(shape), SUMMARY_THRESHOLD) for shape in set(shapes.values())}
    sizes = {name: shown[shape] for name, shape in shapes.items()}
    start, weight = 0, 0
    for index, name in enumerate(names):
        weight += 1 + sizes[name] * (1 + backward)
        if backward and name in spec_nodes:
            weight += sum(map(sizes.__getitem__, spec_nodes[name].args))
        if weight >= BATCH_WEIGHT:
            yield names[start:index + 1]
            start, weight = index + 1, 0
    if start < len(names):
        yield names[start:]


def _text_blocks(graph: Graph, names: list[str], precision: int, full: bool) -> Iterator[str]:
    """The blocks of ``names``, each one item, or in pieces where ``full`` prints a large array.

    A block is a template filled in by ``str.format`` with its names and the texts of its arrays;
    blocks that differ in nothing else (kind, op, shapes, dtype, the lengths of the names of the
    inputs taking gradients) share one, built once (see :func:`_template`)."""
    spec_nodes, layers, shapes, backward = graph.spec.nodes, graph.layers, graph.shapes, bool(graph.grads)
    nodes = [*map(spec_nodes.get, names)]
    values = [*map(graph.values.__getitem__, names)]
    suffixes = [""] * len(values) if {float}.issuperset(map(type, values)) else [
        "" if dtype == "float64" else f", {dtype}" for dtype in map(dtype_name, values)]
    # Each entry's arrays: value, and after backward grad and each input's gradient but for a
    # constant's (None), which takes no gradient and has no row.
    arrays: list[list[Any]] = [[value] for value in values]
    input_grads: list[Any] = [None] * len(names)
    if backward:
        for entry, grad in zip(arrays, map(graph.grads.__getitem__, names)):
            entry.append(grad)
        for k, (name, node) in enumerate(zip(names, nodes)):
            if node:
                input_grads[k] = grads = graph.input_grads[name]
                arrays[k] += [grad for grad in grads if grad is not None]
    pieced = ([any(np.size(array) > CHUNK_ELEMENTS for array in entry) for entry in arrays] if full
              else [False] * len(names))
    texts = format_column([array for entry, whole in zip(arrays, pieced) if not whole for array in entry],
                          precision, full)
    multiline = "\n" in "".join(texts)
    one_shape = len(set(shapes.values())) == 1  # then a node's input shapes are told by their number
    constants = any(grad is None for grads in input_grads if grads for grad in grads)  # inputs taking no gradient
    templates: dict[tuple[Any, ...], tuple[str, int] | None] = {}
    at = 0
    for name, node, entry, suffix, grads, whole in zip(names, nodes, arrays, suffixes, input_grads, pieced):
        if whole:
            head, labels = _head_and_labels(graph, name, node, grads, suffix, len(entry), _as_it_is)
            width = max(length for _, length in labels) + 1
            yield head
            for (label, _), array in zip(labels, entry):
                yield from _labelled(f"  {label + ':':<{width}} ", array, precision, full, 2 + width + 1)
            continue
        if node is None:
            key: tuple[Any, ...] = (shapes[name], suffix)
            fields: tuple[str, ...] = (name,)
        else:
            layer, args = layers[name], node.args
            key = (type(layer), layer.args, node.op, len(args) if one_shape else tuple(map(shapes.__getitem__, args)),
                   shapes[name], suffix, tuple(map(len, args)),
                   constants and grads is not None and tuple(grad is None for grad in grads),
                   repr(layer.shown_attrs()) if layer.attrs else None)  # a layer's attributes are in its text
            fields = (name, *args)
        found = templates.get(key, False)
        if found is False:
            head = _head_and_labels(graph, name, node, grads, suffix, len(entry), _as_it_is)[0]
            found = templates[key] = None if "\0" in head else _template(
                *_head_and_labels(graph, name, node, grads, suffix, len(entry), _marked), len(fields))
        own = texts[at:at + len(entry)]
        at += len(entry)
        if found is None:  # the layer's text holds a NUL byte, which marks the places of a template
            yield _plain_block(*_head_and_labels(graph, name, node, grads, suffix, len(entry), _as_it_is), own)
            continue
        template, indent = found
        if multiline:
            pad = "\n" + " " * indent
            own = [text.replace("\n", pad) for text in own]
        yield template.format(*fields, *own)


def _as_it_is(number: int, name: str) -> str:
    """The name itself, for a block written out (see :func:`_head_and_labels`)."""
    return name


def _marked(number: int, name: str) -> str:
    """Where field ``number`` of a template (see :func:`_template`) goes."""
    return f"\0{number}\0"


def _head_and_labels(graph: Graph, name: str, node: Any, grads: Any, suffix: str, rows: int,
                     shown: Callable[[int, str], str]) -> tuple[str, list[tuple[str, int]]]:
    """A block's first line, and the labels of its first ``rows`` rows (value, grad, and the
    gradients of the inputs taking one) with their printed lengths; ``shown(number, name)`` is
    written for the block's name (0) and its inputs' names (1 on)."""
    labels = [("value", 5), ("grad", 4)]
    if node is None:
        return f"\n{shown(0, name)}: input, shape {graph.shapes[name]}{suffix}", labels[:rows]
    layer, args, shapes = graph.layers[name], node.args, graph.shapes
    names = [shown(number, arg) for number, arg in enumerate(args, 1)]
    signature = layer.signature(names, [shapes[arg] for arg in args], shapes[name])
    labels += [(f"d{role} -> {shown(number, arg)}", len(role) + 5 + len(arg))
               for number, (role, arg, grad) in enumerate(zip(layer.args, args, grads or ()), 1) if grad is not None]
    return f"\n{shown(0, name)} = {node.op}({', '.join(names)})  {signature}{suffix}", labels[:rows]


def _template(head: str, labels: list[tuple[str, int]], fields: int) -> tuple[str, int]:
    """A block's template for ``str.format``, and the indent of its arrays' lines after the first:
    ``head``, then a line ``  LABEL: TEXT`` per (label, printed length), padded to the longest.
    ``head`` and the labels hold the mark NUL n NUL (see :func:`_marked`) where field n of
    ``fields`` goes; the arrays' texts are the fields after those."""
    width = max(length for _, length in labels) + 1
    rows = [f"  {label}:{' ' * (width - length - 1)} {_marked(fields + number, '')}"
            for number, (label, length) in enumerate(labels)]
    pieces = "\n".join([head, *rows]).split("\0")
    pieces[::2] = [piece.replace("{", "{{").replace("}", "}}") for piece in pieces[::2]]
    pieces[1::2] = ["{" + piece + "}" for piece in pieces[1::2]]
    return "".join(pieces), 2 + width + 1


def _plain_block(head: str, labels: list[tuple[str, int]], texts: list[str]) -> str:
    """A block written out from its head, labels and arrays' texts, without a template."""
    width = max(length for _, length in labels) + 1
    pad = "\n" + " " * (2 + width + 1)
    return "\n".join([head, *(f"  {label}:{' ' * (width - length - 1)} {text.replace(chr(10), pad)}"
                               for (label, length), text in zip(labels, texts))])


def _labelled(label: str, value: Any, precision: int, full: bool, indent: int) -> Iterator[str]:
    """A value's lines after its label, in pieces."""
    pieces = format_array_pieces(value, precision, full, indent)
    yield label + next(pieces)
    yield from pieces
