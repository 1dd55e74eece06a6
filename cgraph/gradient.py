"""The gradient as a graph: each layer's rules (BaseLayer.grad_graph) applied backward from the
output build nodes of ordinary ops, whose values are the gradients ``backward`` computes.

The nodes are simplified as they are made (``dout * 1``, ``x + 0``, a sum over no axes, double
negation, arithmetic of constants, the same node made twice) and those that no gradient asked
for needs are left out. :func:`gradient_graph` gives the result with the names it will have in
a graph file; cgraph.graphfile writes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import CgraphError
from .expr import expand, simple
from .graph import Graph
from .layers import REGISTRY, BaseLayer, Shape

FOLDED = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
          "div": lambda x, y: x / y if y else math.nan, "neg": lambda x: -x}


@dataclass
class Emitted:
    """A node of the gradient: its op, inputs and attributes, its shape, and the forward node
    whose rule made it (or, for a sum of several uses' gradients, the value they are of)."""

    op: str
    args: tuple[str, ...]
    attrs: dict[str, Any]
    shape: Shape
    origin: str
    summed: bool = False  # a gradient added up from the uses of ``origin``


@dataclass
class GradientGraph:
    """The nodes of dL/dX for L = sum(dout * output) in the order made (each after its inputs):
    those named by ``grad_V`` are gradients of values V, those named ``%V#N`` have no name yet
    (written inside the formulas using them, or given one). ``wrt`` maps each X to its gradient's
    node; ``dout`` is the name of the input holding dout."""

    graph: Graph
    dout: str
    wrt: dict[str, str]
    nodes: dict[str, Emitted]
    constants: dict[str, float]
    rules: dict[str, tuple[str, int]] = field(default_factory=dict)  # a node's forward node and input index
    taken: set[str] = field(default_factory=set)  # every name in use
    owners: dict[str, str] = field(default_factory=dict)  # a sub-expression's node -> the named node it is part of


class _Builder:
    """Builds the gradient's nodes under provisional names (``%1``, ``%2``, ...); see BaseLayer.grad_graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.shapes: dict[str, Shape] = dict(graph.shapes)
        self.constants: dict[str, float] = dict(graph.spec.constants)
        self.nodes: dict[str, Emitted] = {}
        self.made: dict[tuple, str] = {}
        self.origin = ""

    # --- what rules use ---

    def shape(self, name: str) -> Shape:
        return self.shapes[name]

    def number(self, value: float) -> str:
        value = float(value)
        if value.is_integer() and abs(value) < 1e15:
            text = str(int(value))
        else:
            text = repr(value)
        self.constants[text] = value
        self.shapes[text] = ()
        return text

    def constant(self, name: str) -> float | None:
        return self.constants.get(name) if name not in self.graph.spec.inputs else None

    def apply(self, op: str, *args: str, **attrs: Any) -> str:
        values = [self.constant(arg) for arg in args]
        if op in FOLDED and None not in values:
            return self.number(FOLDED[op](*values))
        simpler = self._simplified(op, args, values, attrs)
        if simpler is not None:
            return simpler
        layer = REGISTRY[op](**attrs)
        shape = layer.out_shape(*(self.shapes[arg] for arg in args))
        key = (op, args, repr(sorted((key, _plain(getattr(layer, key))) for key in layer.attrs)))
        name = self.made.get(key)
        if name is None:
            name = self.made[key] = f"%{len(self.nodes) + 1}"
            self.nodes[name] = Emitted(op, tuple(args), {key: _plain(value) for key, value in attrs.items()}, shape,
                                       self.origin)
            self.shapes[name] = shape
        return name

    def _simplified(self, op: str, args: tuple[str, ...], values: list[float | None], attrs: dict) -> str | None:
        """An existing name that ``op`` of ``args`` equals, or None."""
        shapes = [self.shapes[arg] for arg in args]
        if op in ("mul", "div") and values[1] == 1 and shapes[0] == _broadcast(shapes):
            return args[0]
        if op == "mul" and values[0] == 1 and shapes[1] == _broadcast(shapes):
            return args[1]
        if op == "mul" and -1 in values:
            other = 1 - values.index(-1)
            if shapes[other] == _broadcast(shapes):
                return self.apply("neg", args[other])
        if op in ("add", "sub") and values[1] == 0 and shapes[0] == _broadcast(shapes):
            return args[0]
        if op == "add" and values[0] == 0 and shapes[1] == _broadcast(shapes):
            return args[1]
        if op == "sub" and values[0] == 0 and shapes[1] == _broadcast(shapes):
            return self.apply("neg", args[1])
        if op == "pow" and values[1] == 1:
            return args[0]
        inner = self.nodes.get(args[0]) if op == "neg" else None
        if inner is not None and inner.op == "neg":
            return inner.args[0]
        if inner is not None and inner.op in ("mul", "div") and self.constant(inner.args[1]) is not None:
            return self.apply(inner.op, inner.args[0], self.number(-self.constant(inner.args[1])))  # exact: -(a / c) = a / -c
        if op in ("sum_to", "broadcast_to", "reshape") and tuple(attrs["shape"]) == shapes[0]:
            return args[0]
        if op == "transpose" and attrs.get("axes") is not None and tuple(attrs["axes"]) == tuple(range(len(shapes[0]))):
            return args[0]
        if op == "transpose" and len(shapes[0]) < 2:
            return args[0]
        return None

    def mul(self, x: str | None, y: str | None) -> str | None:
        return None if x is None or y is None else self.apply("mul", x, y)

    def add(self, x: str | None, y: str | None) -> str | None:
        return y if x is None else x if y is None else self.apply("add", x, y)

    def sub(self, x: str | None, y: str | None) -> str | None:
        return self.neg(y) if x is None else x if y is None else self.apply("sub", x, y)

    def div(self, x: str | None, y: str) -> str | None:
        return None if x is None else self.apply("div", x, y)

    def neg(self, x: str | None) -> str | None:
        return None if x is None else self.apply("neg", x)

    def sum_to(self, x: str | None, shape: Shape) -> str | None:
        return None if x is None else self.apply("sum_to", x, shape=list(shape))

    def broadcast_to(self, x: str | None, shape: Shape) -> str | None:
        return None if x is None else self.apply("broadcast_to", x, shape=list(shape))

    def reshape(self, x: str | None, shape: Shape) -> str | None:
        return None if x is None else self.apply("reshape", x, shape=list(shape))

    def transpose(self, x: str, axes: tuple[int, ...] | None = None) -> str:
        return self.apply("transpose", x, axes=None if axes is None else list(axes))


def _broadcast(shapes: list[Shape]) -> Shape:
    from .layers import broadcast_shapes

    return broadcast_shapes(*shapes)


def _plain(value: Any) -> Any:
    """An attribute's value as a graph file writes it: tuples as lists."""
    return [_plain(item) for item in value] if isinstance(value, (tuple, list)) else value


def reachable_inputs(graph: Graph, output: str) -> list[str]:
    """The inputs with a path to ``output``, in file order."""
    needed = {output}
    for name in reversed(graph.spec.nodes):
        if name in needed:
            needed.update(graph.spec.nodes[name].args)
    return [name for name in graph.spec.inputs if name in needed]


def _fresh(base: str, taken: set[str]) -> str:
    """``base``, or with the first suffix _2, _3, ... that makes it a new name; taken from then on."""
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}_{number}"
    taken.add(name)
    return name


def gradient_graph(graph: Graph, wrt: list[str] | None = None) -> GradientGraph:
    """The nodes of the gradient of ``graph``'s output with respect to the inputs ``wrt`` (default:
    every input with a path to the output). CgraphError, naming the node and its op, where an op
    on the way has no rule."""
    spec = graph.spec
    output = graph.output
    if wrt is None:
        wrt = reachable_inputs(graph, output)
    for name in wrt:
        if name not in spec.inputs:
            from .arrays import suggest

            kind = "is a node, not an input" if name in spec.nodes else f"is not an input{suggest(name, spec.inputs)}"
            raise CgraphError(f"--wrt: '{name}' {kind}")
    taken = {*spec.inputs, *spec.nodes, *spec.constants}
    dout = _fresh("dout", taken)
    builder = _Builder(graph)
    builder.shapes[dout] = graph.shapes[output]
    totals: dict[str, str | None] = {output: dout}
    contributions: dict[str, list[tuple[str, int]]] = {}  # value -> the (node, input index) that gave it a gradient
    rules: dict[str, tuple[str, int]] = {}
    moved = set(wrt)  # the values that depend on an input of wrt: only their nodes need rules
    for name, node in spec.nodes.items():
        if moved.intersection(node.args):
            moved.add(name)
    for name in reversed(spec.nodes):
        grad = totals.get(name)
        if grad is None or name not in moved:
            continue
        node = spec.nodes[name]
        layer: BaseLayer = graph.layers[name]
        builder.origin = name
        try:
            grads = layer.grad_graph(builder, node.args, name, grad)
        except NotImplementedError:
            raise CgraphError(f"node '{name}': grad has no rule for the op {node.op} yet; the gradient graph "
                              f"cannot pass through it", spec.position(name)) from None
        for index, (arg, arg_grad) in enumerate(zip(node.args, grads)):
            if arg_grad is None or arg in spec.constants:
                continue
            rules.setdefault(arg_grad, (name, index))
            contributions.setdefault(arg, []).append((name, index))
            previous = totals.get(arg)
            if previous is None:
                totals[arg] = arg_grad
            else:
                builder.origin = arg
                totals[arg] = builder.apply("add", previous, arg_grad)
                builder.nodes[totals[arg]].summed = True
                builder.origin = name
    return _named(graph, builder, totals, wrt, dout, taken, rules)


def _named(graph: Graph, builder: _Builder, totals: dict[str, str | None], wrt: list[str], dout: str,
           taken: set[str], rules: dict[str, tuple[str, int]]) -> GradientGraph:
    """The nodes the gradients of ``wrt`` need, renamed: grad_V for the gradient of each value V,
    grad_V_N for the other nodes that need a name."""
    spec = graph.spec
    nodes = builder.nodes
    claimed: dict[str, str] = {}  # provisional name -> final name
    outputs: dict[str, str] = {}
    for name in wrt:
        total = totals.get(name)
        builder.origin = name
        if total is None:
            total = builder.apply("zeros_like", name)
        while total not in nodes or total in claimed:  # the gradient of another value too: a node of its own
            total = builder.apply("identity", total)
        claimed[total] = _fresh(f"grad_{name}", taken)
        outputs[name] = total
    needed: set[str] = set()
    stack = list(outputs.values())
    while stack:
        name = stack.pop()
        if name in nodes and name not in needed:
            needed.add(name)
            stack.extend(nodes[name].args)
    for name in [*reversed(spec.nodes), *spec.inputs]:
        total = totals.get(name)
        if total in needed and total not in claimed and name.isidentifier():
            claimed[total] = _fresh(f"grad_{name}", taken)
    counts: dict[str, int] = {}
    for name in nodes:
        if name in needed and name not in claimed:
            origin = nodes[name].origin
            counts[origin] = counts.get(origin, 0) + 1
            claimed[name] = f"%{origin}#{counts[origin]}"  # to be written inside the formulas using it, or named
            taken.add(claimed[name])
    renamed = {}
    for name, node in nodes.items():
        if name in needed:
            node.args = tuple(claimed.get(arg, arg) for arg in node.args)
            renamed[claimed[name]] = node
    return GradientGraph(graph, dout, {name: claimed[total] for name, total in outputs.items()}, renamed,
                         builder.constants, {claimed[name]: rule for name, rule in rules.items() if name in claimed},
                         taken, owners(spec))


def owners(spec: Any) -> dict[str, str]:
    """For each node and input, the name of the named node (an input, or a node the file names)
    whose formula it is part of: itself, or for a sub-expression the formula that made it."""
    owner = {name: name for name in [*spec.inputs, *spec.nodes] if name.isidentifier()}
    for name in reversed(spec.nodes):
        for arg in spec.nodes[name].args:
            owner.setdefault(arg, owner.get(name, name))
    return owner


def subexpression_texts(data: dict, source: str) -> dict[str, str]:
    """For the nodes a file's formulas made of their sub-expressions, the text that names each
    (as a formula elsewhere in the file would write it): most are named by their text already,
    those of long texts by NODE#N."""
    from .errors import Position

    texts: dict[str, str] = {}
    for name, body in (data.get("nodes") or {}).items():
        if type(body) is not str:
            continue
        quick = simple(body)
        layer = REGISTRY.get(quick[0]) if quick else None
        if layer and not layer.required_attrs and layer.takes(len(quick[1])):
            continue
        try:
            expand(name, body, Position(source), texts)
        except CgraphError:
            continue
    return {name: text for text, name in texts.items()}


def dout_array(graph: Graph, dout: Any) -> np.ndarray:
    """``--dout`` broadcast to the output's shape in its dtype, as ``backward`` takes it."""
    from .arrays import cast
    from .layers import broadcast_shapes

    out_shape = graph.shapes[graph.output]
    dtype = np.asarray(graph.values[graph.output]).dtype if graph.values else np.float64
    array = cast(dout, dtype)
    try:
        fits = broadcast_shapes(array.shape, out_shape) == out_shape
    except ValueError:
        fits = False
    if not fits:
        raise CgraphError(f"--dout: shape {array.shape} does not broadcast to the shape {out_shape} "
                          f"of output '{graph.output}'")
    return np.array(np.broadcast_to(array, out_shape))
