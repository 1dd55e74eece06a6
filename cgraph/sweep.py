"""Sweeps: one graph run at many settings of its inputs in one process, each point's output and
gradients as a JSON line or a row of a table.

A setting's values come from a SPEC: ``START:STOP:NUM`` (NUM evenly spaced numbers from START
to STOP inclusive, as numpy's linspace), a YAML or JSON list, or ``@file.npy`` (one value per row).
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .arrays import array_from_data, check_shape, load_npy, parse_option_yaml
from .errors import CgraphError
from .graph import Graph
from .render import format_inline, json_bytes, json_value
from .yamlsafe import resolve_plain

_SPEC_FORMS = "START:STOP:NUM, a list of values such as '[1, 2, 3]', or @file.npy"
_RANGE = re.compile(r"\s*([^:\s]+)\s*:\s*([^:\s]+)\s*:\s*([^:\s]+)\s*\Z")


def parse_spec(text: str, option: str, max_elements: int) -> np.ndarray:
    """The values a SPEC gives, along the first axis of an array of float64."""
    try:
        if text.startswith("@"):
            values = np.asarray(load_npy(text[1:], None, ".", np.float64, max_elements))
        elif _RANGE.match(text):
            values = _linspace(*_RANGE.match(text).groups(), max_elements)  # type: ignore[union-attr]
        else:
            data = parse_option_yaml(text, option, _SPEC_FORMS)
            if not isinstance(data, list):
                raise CgraphError(f"expected {_SPEC_FORMS}")
            values = array_from_data(data, None)
            check_shape(values.shape, max_elements, None)
    except CgraphError as error:
        raise CgraphError(f"{option}: {error.message}") from None
    if values.ndim == 0 or len(values) == 0:
        raise CgraphError(f"{option}: there are no values (one per row) to try")
    return values


def _linspace(start: str, stop: str, num: str, max_elements: int) -> np.ndarray:
    ends = []
    for text in (start, stop):
        value = _number(text)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise CgraphError(f"START and STOP must be finite numbers, got '{text}'")
        ends.append(float(value))
    count = _number(num)
    if type(count) is not int or count < 1:
        raise CgraphError(f"NUM must be a whole number of at least 1, got '{num}'")
    check_shape((count,), max_elements, None)
    return np.linspace(ends[0], ends[1], count)


def _number(text: str) -> Any:
    try:
        return resolve_plain(text)
    except ValueError:
        return text


def points(varied: Mapping[str, np.ndarray], zipped: bool) -> Iterator[tuple[int, ...]]:
    """Each point as the index of its value for each name: every combination (the first name
    outermost), or, ``zipped``, the first values of all, then the second values, and so on."""
    lengths = {name: len(values) for name, values in varied.items()}
    if not zipped:
        return itertools.product(*map(range, lengths.values()))
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"'{name}' {length}" for name, length in lengths.items())
        raise CgraphError(f"--zip: every --vary needs as many values; got {listed}")
    return ((i,) * len(lengths) for i in range(next(iter(lengths.values()))))


def count(varied: Mapping[str, np.ndarray], zipped: bool) -> int:
    """How many points there are."""
    lengths = [len(values) for values in varied.values()]
    return (lengths[0] if lengths else 0) if zipped else math.prod(lengths)


class Sweep:
    """Runs ``graph`` at each point, reporting the output and the gradients of ``names``."""

    def __init__(self, graph: Graph, varied: Mapping[str, np.ndarray], names: Sequence[str], dout: Any) -> None:
        self.graph, self.dout = graph, dout
        self.names = list(names) or list(graph.spec.inputs)
        # Each value in its input's dtype once, so that setting it is only a swap.
        self.varied = {name: np.asarray(values, dtype=graph.spec.inputs[name].value.dtype)
                       for name, values in varied.items()}
        try:  # the shapes of the first point are those of every point
            graph.set_inputs({name: values[0] for name, values in self.varied.items()})
        except CgraphError as error:
            raise CgraphError(error.message.replace("set_input", "--vary", 1), error.pos) from None
        # where every value is finite, a line of floats is written as it is (else NaN needs strings)
        self._finite_values = all(bool(np.isfinite(values).all()) for values in self.varied.values())
        self.first_non_finite: tuple[int, str, str] | None = None  # (point, name, message)
        self.non_finite_points = 0

    def run(self, point_number: int, indices: Sequence[int]) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        """The values set, the output's value and the reported gradients at one point (numbered from 1)."""
        graph = self.graph
        # values[i, ...] is an array even for a number (0-d), which set_inputs takes as it is
        point = {name: values[i, ...] for (name, values), i in zip(self.varied.items(), indices)}
        graph.set_inputs(point)
        output = graph.forward()
        grads = graph.backward(self.dout)
        reported = {name: grads[name] for name in self.names}
        if not _all_finite(output, reported.values()):
            self.non_finite_points += 1
            if self.first_non_finite is None:
                found = graph.non_finite()
                name, message = found[0] if found else ("", "NaN or infinity")
                self.first_non_finite = (point_number, name, message)
        return point, output, reported

    def json_line(self, point_number: int, indices: Sequence[int], output: Any, grads: Mapping[str, Any]) -> str:
        """``{"point": n, "set": {name: value}, "output": value, "grads": {name: gradient}}`` on one line."""
        point = {name: values[i] for (name, values), i in zip(self.varied.items(), indices)}
        numbers = [output, *grads.values()]
        if self._finite_values and all(type(number) is float for number in numbers) and math.isfinite(sum(numbers)):
            line = {"point": point_number, "set": point, "output": output, "grads": grads}  # the common case
        else:
            line = {"point": point_number, "set": {name: json_value(value) for name, value in point.items()},
                    "output": json_value(output), "grads": {name: json_value(grad) for name, grad in grads.items()}}
        return json_bytes(line).decode()


def _all_finite(output: Any, grads: Iterable[Any]) -> bool:
    """Whether the output and the gradients are free of NaN and infinity."""
    values = [output, *grads]
    if all(type(value) is float for value in values) and math.isfinite(sum(values)):
        return True  # the common case at once: a sum of floats is finite only where they all are
    return all(math.isfinite(value) if type(value) is float else bool(np.isfinite(value).all()) for value in values)


TABLE_BLOCK = 1000  # rows whose widths set the columns before any row is written


def table(graph: Graph, rows: Iterable[tuple[Mapping[str, Any], Any, Mapping[str, Any]]],
          precision: int) -> Iterator[str]:
    """The points as a table, written as they come: the varied values, the output, and the
    gradients (``d NAME``). Columns are as wide as their widest cell among the header and the
    first TABLE_BLOCK rows, and widen where a later cell is wider, so no sweep is held whole."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    point, _, grads = first
    header = [*point, graph.output, *(f"d {name}" for name in grads)]
    block = [_cells(row, precision) for row in itertools.chain([first], itertools.islice(rows, TABLE_BLOCK - 1))]
    widths = [max(len(line[i]) for line in [header, *block]) for i in range(len(header))]
    for line in itertools.chain([header], block, (_cells(row, precision) for row in rows)):
        widths = [max(width, len(cell)) for width, cell in zip(widths, line)]
        yield "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()


def _cells(row: tuple[Mapping[str, Any], Any, Mapping[str, Any]], precision: int) -> list[str]:
    point, output, grads = row
    return [*(format_inline(value, precision) for value in point.values()), format_inline(output, precision),
            *(format_inline(grad, precision) for grad in grads.values())]
