"""The interactive page: one self-contained HTML file with the graph drawn as ``cgraph dot`` draws it,
every value and gradient in full, and the passes to step through with explain's rules and numbers.

The page's data is one JSON object (:func:`page_data`): the DOT text, the backward JSON that
``cgraph backward --format json`` prints, the steps that ``cgraph explain --format json`` prints
and, where asked for, ``cgraph check``'s results. The page (:func:`page`) is the template, styles
and scripts in ``cgraph/static`` with that data and the vendored layout library (Viz.js, Graphviz
compiled to WebAssembly) inlined, under a Content-Security-Policy that forbids network requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from importlib import resources
from typing import Iterable

from . import dot, explain, render
from .check import CheckReport
from .check import render_json as check_json
from .errors import CgraphError
from .graph import Graph

MAX_DRAWN = 2000  # inputs and nodes a page lays out; larger graphs are drawn in parts with --node
# Graphviz's x-positioning (network simplex) and crossing minimisation may take minutes on a big
# graph: past this many boxes, positioning is capped at POSITIONING_ITERATIONS and crossing
# minimisation at a fifth of its passes, which costs some compactness and some crossings.
CAPPED_LAYOUT = 300
POSITIONING_ITERATIONS = 100
# Members of explain's JSON steps left out of the page's data, which has them in the backward
# entries: a node step's value and dout are its node's value and grad, a sum step's grad its value's.
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


def page_data(graph: Graph, source: str, precision: int = 8, only: Iterable[str] = (),
              report: CheckReport | None = None, warnings: Iterable[str] = ()) -> str:
    """The page's data as JSON text, from ``graph`` after its backward pass: the file's name,
    DOT text, each layer's description, and the JSON of backward, explain and check (with each
    array once: see SHARED_KEYS)."""
    names = kept_names(graph, only)
    if len(names) > MAX_DRAWN:
        raise CgraphError(
            f"the page draws at most {MAX_DRAWN:,} inputs and nodes and this graph has {len(names):,}: "
            "draw part of it with --node NAME (repeatable), which keeps NAME and its neighbours")
    dot_text = dot.to_dot(graph, True, names, precision)
    if len(names) > CAPPED_LAYOUT:
        dot_text = dot_text.replace("{\n", f"{{\n  nslimit={POSITIONING_ITERATIONS / len(names):.4f}; mclimit=0.2;\n", 1)
    layers = {name: str(graph.layers[name]) for name in names if name in graph.layers}
    # Each array once: the steps' values and gradients of their own nodes are the backward entries',
    # and the page reads what each node sent back from the steps, not from the entries' input_grads.
    backward = json.loads(b"".join(render.render_json(graph, names)))
    for entry in backward["nodes"].values():
        entry.pop("input_grads", None)
    steps = json.loads(explain.render_json(graph, explain.explain(graph, precision), names))
    steps["steps"] = [step for step in steps["steps"] if step["name"] in backward["nodes"]]
    for step in steps["steps"]:
        for key in SHARED_KEYS[step["step"]]:
            del step[key]
    data = {
        "file": source,
        "precision": precision,
        "dot": dot_text,
        "layers": layers,
        "warnings": list(warnings),
        "backward": backward,
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
