"""The interactive page: one self-contained HTML file with the graph drawn box by box (each array
as a heatmap), its values and gradients, and the passes to step through with explain's rules and numbers.

The page's data is one JSON object (:func:`page_data`): each input's and node's op, inputs, shape,
dtype, value and gradient, the steps that ``cgraph explain --format json`` prints and, where asked
for, ``cgraph check``'s results. Arrays are embedded as base64 binary (float32 as float32, others as
float64); an array of more than FULL_ELEMENTS elements as a summary: its shape, its finite minimum
and maximum, and a strided sample of at most SAMPLE_ELEMENTS elements (``full=True`` embeds all).
The page (:func:`page`) is the template, styles and scripts in ``cgraph/static`` with that data and
the vendored layout library (Viz.js, Graphviz compiled to WebAssembly) inlined, under a
Content-Security-Policy that forbids network requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

import numpy as np

from . import explain, render
from .check import CheckReport
from .check import render_json as check_json
from .dot import op_label
from .errors import CgraphError
from .graph import Graph

MAX_DRAWN = 2000  # inputs and nodes a page lays out; larger graphs are drawn in parts with --node
FULL_ELEMENTS = 20_000  # arrays of up to this many elements are embedded whole, larger ones summarised
SAMPLE_ELEMENTS = 4_096  # elements of a summarised array's strided sample
# Members of explain's JSON steps left out of the page's data, which has them in the node entries:
# a node step's value and dout are its node's value and grad, a sum step's grad its value's.
SHARED_KEYS = {"node": ("value", "dout"), "sum": ("grad",)}


def kept_names(graph: Graph, only: Iterable[str] = ()) -> list[str]:
    """The names a page draws: all, or those in ``only`` with their neighbours (the inputs of
    each and the nodes using it), inputs first in file order, then nodes in dependency order."""
    named = set(only)
    wanted = set(named)
    for name, node in graph.spec.nodes.items():
        if name in named:
            wanted.update(node.args)
        elif named.intersection(node.args):
            wanted.add(name)
    return render.entry_names(graph, wanted)


def encode_array(value: Any, full: bool = False) -> Any:
    """A value for the page's data: a 0-d value as its number (NaN and infinities as the strings
    JSON allows); an array as ``{"shape", "dtype", "bytes", "data"}``, ``data`` the base64 of its
    little-endian float32 (``bytes`` 4, for float32 arrays) or float64 (8) numbers in C order.
    Past FULL_ELEMENTS elements (unless ``full``), a summary: also ``min`` and ``max`` of its finite
    numbers (null if none) and ``step``, the stride along each axis of the float32 sample in ``data``."""
    if type(value) is float:
        return render.json_value(value)
    array = np.asarray(value)
    if array.ndim == 0:
        return render.json_value(array.item() if array.dtype.kind in "fc" else float(array))
    encoded: dict[str, Any] = {"shape": list(array.shape), "dtype": render.dtype_name(array)}
    if array.size > FULL_ELEMENTS and not full:
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        encoded["min"] = float(finite.min()) if finite.size else None
        encoded["max"] = float(finite.max()) if finite.size else None
        encoded["step"] = step = sample_steps(array.shape, SAMPLE_ELEMENTS)
        array = array[tuple(slice(None, None, k) for k in step)].astype("<f4")
    else:
        array = array.astype("<f4" if array.dtype == np.float32 else "<f8", copy=False)
    encoded["bytes"] = array.itemsize
    encoded["data"] = base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()
    return encoded


def sample_steps(shape: tuple[int, ...], most: int) -> list[int]:
    """Strides along each axis that leave at most ``most`` elements of an array of ``shape``,
    taken from the axes that keep the most elements first."""
    step = [1] * len(shape)
    kept = list(shape)
    while math.prod(kept) > most:
        axis = max(range(len(shape)), key=lambda k: kept[k])
        step[axis] += 1
        kept[axis] = -(-shape[axis] // step[axis])
    return step


def page_data(graph: Graph, source: str, precision: int = 4, only: Iterable[str] = (),
              report: CheckReport | None = None, warnings: Iterable[str] = (), full: bool = False) -> str:
    """The page's data as JSON text, from ``graph`` after its backward pass: the file's name, each
    input's and node's entry and layer description, and the JSON of explain and check (with each
    array once: see SHARED_KEYS). ``precision`` is the digits the boxes and rules show."""
    names = kept_names(graph, only)
    if len(names) > MAX_DRAWN:
        raise CgraphError(
            f"the page draws at most {MAX_DRAWN:,} inputs and nodes and this graph has {len(names):,}: "
            "draw part of it with --node NAME (repeatable), which keeps NAME and its neighbours")
    spec_nodes = graph.spec.nodes

    def encode(value: Any) -> Any:
        return encode_array(value, full)

    entries = {}
    for name in names:
        node = spec_nodes.get(name)
        value = graph.values[name]
        entries[name] = {
            "op": node.op if node else "input",
            "label": op_label(graph, node) if node else "input",
            "inputs": list(node.args) if node else [],
            "shape": list(graph.shapes[name]),
            "dtype": render.dtype_name(value),
            "value": encode(value),
            "grad": encode(graph.grads[name]),
        }
    shown = set(names)
    steps = explain.json_steps(graph, [step for step in explain.explain(graph, precision) if step.name in shown],
                               names, encode)
    for step in steps["steps"]:
        for key in SHARED_KEYS[step["step"]]:
            del step[key]
    data = {
        "file": source,
        "precision": precision,
        "layers": {name: graph.layers[name].signature(graph.spec.nodes[name].args,
                                                      [graph.shapes[arg] for arg in graph.spec.nodes[name].args],
                                                      graph.shapes[name])
                   for name in names if name in graph.layers},
        "warnings": list(warnings),
        "backward": {"output": graph.output, "dout": encode(graph.dout), "nodes": entries},
        "explain": steps,
        "check": json.loads(check_json(graph, report)) if report is not None else None,
    }
    return json.dumps(data, ensure_ascii=False, allow_nan=False)


def error_data(source: str, message: str) -> str:
    """The data of a page that shows an error in place of the graph."""
    return json.dumps({"file": source, "error": message})


def page(data: str, live: bool = False, version: str = "") -> str:
    """The whole HTML page around ``data`` (JSON text from :func:`page_data` or :func:`error_data`).

    ``live`` pages poll their server's ``/update`` for data newer than ``version``; others make
    no request at all. The same data gives the same bytes.
    """
    template, style, script, layout = _static_files()
    config = json.dumps({"live": live, "version": version} if live else {"live": False})
    connect = "'self'" if live else "'none'"
    policy = (f"default-src 'none'; script-src {_hash(layout)} {_hash(script)} 'wasm-unsafe-eval'; "
              f"style-src {_hash(style)}; img-src data:; connect-src {connect}; base-uri 'none'; form-action 'none'")
    replacements = {
        "{{policy}}": policy,
        "{{style}}": style,
        "{{data}}": _script_json(data),
        "{{config}}": _script_json(config),
        "{{layout}}": layout,
        "{{script}}": script,
    }
    parts = template.split("{{")
    out = [parts[0]]
    for part in parts[1:]:
        key, _, rest = part.partition("}}")
        out.append(replacements["{{" + key + "}}"] + rest)
    return "".join(out)


def _hash(text: str) -> str:
    """A Content-Security-Policy source that allows the inline script or style ``text``, and no other."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def _script_json(text: str) -> str:
    """JSON text safe inside a <script> element: '<' only occurs in JSON strings, where \\u003c means it too."""
    return text.replace("<", "\\u003c")


@lru_cache(maxsize=1)
def _static_files() -> tuple[str, str, str, str]:
    folder = resources.files("cgraph") / "static"
    return tuple((folder / name).read_text(encoding="utf-8")  # type: ignore[return-value]
                 for name in ("page.html", "page.css", "page.js", "viz-global.js"))
