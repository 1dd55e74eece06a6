"""Gradient check: every input's backward gradient against central finite differences in float64.

Like "Deep Learning from Scratch"'s gradient_check.py and PyTorch's gradcheck. For
L = sum(dout * output), the numeric gradient of element x of an input is
(L(x + h) - L(x - h)) / 2h with h = eps * max(1, |x|), from two forward passes of a
float64 copy of the graph. An element passes where
|analytic - numeric| <= atol + rtol * |numeric|, as numpy.isclose has it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import CgraphError
from .graph import Graph
from .layers import Shape
from .render import dtype_name, format_inline, json_value

DEFAULT_EPS = 1e-6
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8
DEFAULT_SAMPLES = 20
DEFAULT_SEED = 0


@dataclass
class Worst:
    """The element of an input furthest outside the tolerance: its index and both gradients there."""

    index: tuple[int, ...]
    analytic: float
    numeric: float


@dataclass
class InputCheck:
    """One input's result: how many of its elements were compared, the largest errors, PASS or FAIL.

    An input that holds discrete data (class indices) is not checked: ``skipped`` says why.
    """

    name: str
    shape: Shape
    dtype: str
    checked: int  # fewer than the input's size where a random sample was checked
    max_abs: float
    max_rel: float  # of |analytic - numeric| / max(|analytic|, |numeric|)
    passed: bool
    worst: Worst | None = None  # None where nothing was checked
    skipped: str | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class CheckReport:
    """The settings of a check and its result per input."""

    eps: float
    rtol: float
    atol: float
    samples: int
    seed: int
    inputs: list[InputCheck]

    @property
    def passed(self) -> bool:
        return all(item.passed for item in self.inputs)


def check(
    graph: Graph,
    names: Iterable[str] = (),
    eps: float = DEFAULT_EPS,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
    progress: Callable[[int], None] | None = None,
) -> CheckReport:
    """Check the gradients ``graph``'s backward pass gave (it must have run) of the inputs in
    ``names`` (all if empty). Inputs of more than ``samples`` elements (if ``samples`` is not 0)
    are checked at that many elements, drawn at random with ``seed``. ``progress`` is called
    with 1 after each element checked."""
    names = list(names) or list(graph.spec.inputs)
    for name in names:
        if name not in graph.spec.inputs:
            raise CgraphError(f"--node: '{name}' is a node; check compares the gradients of inputs")
    # A float64 copy to perturb; its inputs are fresh arrays, so the loaded graph is left as it was.
    inputs = {name: dataclasses.replace(item, value=np.array(item.value, dtype=np.float64))
              for name, item in graph.spec.inputs.items()}
    copy = Graph(dataclasses.replace(graph.spec, inputs=inputs), max(map(math.prod, graph.shapes.values())))
    # The gradients to check: the loaded graph's, or where it has lower-precision inputs, its float64 copy's.
    if all(item.value.dtype == np.float64 for item in graph.spec.inputs.values()):
        grads = graph.grads
    else:
        grads = copy.backward(graph.dout)
    analytic = {name: np.array(grads[name], dtype=np.float64) for name in names}
    dout = np.asarray(graph.dout, dtype=np.float64)

    discrete = discrete_inputs(graph)
    rng = np.random.default_rng(seed)
    results = []
    for name in names:
        if name in discrete:
            results.append(InputCheck(name, graph.shapes[name], dtype_name(graph.spec.inputs[name].value), 0,
                                      0.0, 0.0, True, skipped=discrete[name]))
            continue
        flat = copy.spec.inputs[name].value.reshape(-1)  # a view: writing to it changes the input
        if samples and flat.size > samples:
            indices = np.sort(rng.choice(flat.size, size=samples, replace=False))
        else:
            indices = np.arange(flat.size)
        numeric = np.empty(len(indices))
        with np.errstate(all="ignore"):
            for k, index in enumerate(indices):
                x = flat[index]
                h = eps * max(1.0, abs(x))
                flat[index] = x + h
                plus = np.asarray(copy.forward(), dtype=np.float64)
                flat[index] = x - h
                minus = np.asarray(copy.forward(), dtype=np.float64)
                flat[index] = x
                # Summing dout * (plus - minus) rather than subtracting two sums keeps rounding small.
                numeric[k] = np.sum(dout * (plus - minus)) / ((x + h) - (x - h))
                if progress is not None:
                    progress(1)
            expected = analytic[name].reshape(-1)[indices]
            error = np.abs(expected - numeric)
            scale = np.maximum(np.abs(expected), np.abs(numeric))
            relative = np.where(scale > 0, error / np.where(scale > 0, scale, 1), np.where(np.isnan(error), np.nan, 0.0))
            excess = error / (atol + rtol * np.abs(numeric))  # over 1 fails; NaN (a NaN gradient) fails first
            passed = bool(np.all(error <= atol + rtol * np.abs(numeric)))
        worst = None
        if len(indices):
            k = int(np.argmax(np.where(np.isnan(excess), np.inf, excess)))
            index = tuple(int(i) for i in np.unravel_index(indices[k], graph.shapes[name]))
            worst = Worst(index, float(expected[k]), float(numeric[k]))
        results.append(InputCheck(
            name, graph.shapes[name], dtype_name(graph.spec.inputs[name].value), len(indices),
            float(np.max(error, initial=0.0)), float(np.max(relative, initial=0.0)), passed, worst,
        ))
    return CheckReport(eps, rtol, atol, samples, seed, results)


def discrete_inputs(graph: Graph) -> dict[str, str]:
    """Inputs that a node takes as discrete data (class indices), with what says so: their gradient
    is defined as 0, and a step of eps would make them invalid, so they cannot be checked."""
    found: dict[str, str] = {}
    for name, node in graph.spec.nodes.items():
        layer = graph.layers[name]
        for index in layer.discrete_args(*(graph.shapes[arg] for arg in node.args)):
            arg = node.args[index]
            if arg in graph.spec.inputs:
                found.setdefault(arg, f"class indices for node '{name}' ({node.op})")
    return found


# --- output ---------------------------------------------------------------


def render_text(graph: Graph, report: CheckReport, precision: int = 8) -> Iterator[str]:
    """A header with the settings, a table of inputs with PASS or FAIL, and notes on sampling and dtypes."""
    yield f"check, output '{graph.output}', dout = {format_inline(graph.dout, precision)}"
    yield f"numeric gradients: central differences in float64, step eps * max(1, |x|), eps {report.eps:g}"
    yield f"an element passes where |analytic - numeric| <= atol + rtol * |numeric|, rtol {report.rtol:g}, atol {report.atol:g}"
    yield ""
    header = ("input", "shape", "checked", "max abs error", "max rel error", "result")
    rows = [header] + [
        (item.name, str(item.shape), "0", "-", "-", "SKIP") if item.skipped else
        (item.name, str(item.shape), f"{item.checked}" if item.checked == item.size else f"{item.checked} of {item.size}",
         f"{item.max_abs:.2e}", f"{item.max_rel:.2e}", "PASS" if item.passed else "FAIL")
        for item in report.inputs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        yield "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()

    failed = [item for item in report.inputs if not item.passed]
    worst = [(item.name, item.worst) for item in failed if item.worst]  # every failed input had elements checked
    if worst:
        yield ""
    for name, element in worst:
        yield (f"{name}: furthest outside the tolerance at [{', '.join(map(str, element.index))}]: "
               f"analytic {format_inline(element.analytic, precision)}, numeric {format_inline(element.numeric, precision)}")
    skipped = [item for item in report.inputs if item.skipped]
    if skipped:
        yield ""
        yield (f"not checked: {'; '.join(f'{item.name}, {item.skipped}' for item in skipped)}: discrete data, whose "
               "gradient is defined as 0 and which a small step would make invalid")
    sampled = [item for item in report.inputs if item.checked < item.size and not item.skipped]
    if sampled:
        yield ""
        yield (f"sampled at random, {report.samples} elements of: {', '.join(item.name for item in sampled)} "
               f"(--samples {report.samples} --seed {report.seed}; --samples 0 checks every element)")
    narrow = [item for item in report.inputs if item.dtype != "float64"]
    if narrow:
        yield ""
        yield (f"not float64: {', '.join(f'{item.name} ({item.dtype})' for item in narrow)}; "
               "the gradients checked are those of a float64 copy of the graph")
    yield ""
    checked = len(report.inputs) - len(skipped)
    if failed:
        yield f"FAIL: {len(failed)} of {checked} inputs ({', '.join(item.name for item in failed)})"
    else:
        yield f"PASS: {checked} input{'s' if checked != 1 else ''}" + (f", {len(skipped)} not checked" if skipped else "")


def render_json(graph: Graph, report: CheckReport) -> str:
    """The settings and per-input results as one strict JSON object."""
    return json.dumps({
        "output": graph.output,
        "dout": json_value(graph.dout),
        "eps": report.eps,
        "rtol": report.rtol,
        "atol": report.atol,
        "samples": report.samples,
        "seed": report.seed,
        "passed": report.passed,
        "inputs": [
            {
                "name": item.name,
                "shape": list(item.shape),
                "dtype": item.dtype,
                "elements": item.size,
                "checked": item.checked,
                "max_abs_error": json_value(item.max_abs),
                "max_rel_error": json_value(item.max_rel),
                "passed": item.passed,
                "worst": item.worst and {"index": list(item.worst.index), "analytic": json_value(item.worst.analytic),
                                         "numeric": json_value(item.worst.numeric)},
                "skipped": item.skipped,
            }
            for item in report.inputs
        ],
    }, allow_nan=False)
