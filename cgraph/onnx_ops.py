"""The ONNX op table: each ONNX op, over a range of opsets, as cgraph nodes.

One table, ``TABLE``, keyed by (ONNX op, first opset, last opset); each entry converts one ONNX
node through an :class:`Emitter`, which writes cgraph nodes (one, or a few for an op that is a
formula of cgraph ops) and keeps every tensor's shape and dtype, and the values known when the
model is read (Constant nodes, integer initializers, shapes): those become attributes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .arrays import DEFAULT_MAX_ELEMENTS
from .errors import CgraphError, Position
from .layers import REGISTRY, Shape
from .spec import InputSpec, NodeSpec

FIRST_OPSET = 7
NEWEST_OPSET = 28  # the newest opset the table was written against; newer ones are read as this one


@dataclass
class OnnxNode:
    """One ONNX node as read: its op, input and output tensor names ('' for a missing optional one),
    attributes as Python values, and the opset of its domain."""

    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]
    opset: int

    @property
    def name(self) -> str:
        """The cgraph name of the node: its first output tensor."""
        return self.outputs[0]

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass
class Emitter:
    """The cgraph graph under construction: inputs, nodes, constants, and each tensor's shape,
    dtype and, where it is known when the model is read, value (``statics``)."""

    source: str
    max_elements: int = DEFAULT_MAX_ELEMENTS
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    constants: dict[str, float] = field(default_factory=dict)
    shapes: dict[str, Shape] = field(default_factory=dict)
    dtypes: dict[str, np.dtype] = field(default_factory=dict)
    statics: dict[str, np.ndarray] = field(default_factory=dict)
    parameters: set[str] = field(default_factory=set)  # float initializers: inputs where used as data
    unavailable: dict[str, str] = field(default_factory=dict)  # outputs cgraph does not compute: why
    shape_of: dict[str, str] = field(default_factory=dict)  # a Shape node's whole output: the tensor it measured
    node: OnnxNode | None = None
    top: Position = field(init=False)  # where every node and input of the model is: the model file

    def __post_init__(self) -> None:
        self.top = Position(self.source)

    # --- reading the current node's inputs ---------------------------------------------------

    def fail(self, message: str) -> CgraphError:
        """An error about the current node."""
        node = self.node
        return CgraphError(f"node '{node.name}' ({node.op}, opset {node.opset}): {message}", self.top)

    def has(self, index: int) -> bool:
        """Whether the current node has its input ``index`` (optional ones may be missing)."""
        return index < len(self.node.inputs) and self.node.inputs[index] != ""

    def data(self, index: int) -> str:
        """The cgraph name of input ``index`` as data: a value known when reading becomes an input."""
        if not self.has(index):
            raise self.fail(f"input {index + 1} is missing")
        return self.value_name(self.node.inputs[index])

    def value_name(self, name: str) -> str:
        """``name`` as a cgraph input or node, made an input where it is a value known when reading."""
        if name in self.unavailable:
            raise self.fail(self.unavailable[name])
        if name in self.inputs or name in self.nodes:
            return name
        if name in self.statics:
            value = self.statics[name]
            self.inputs[name] = InputSpec(name, value, self.top)
            return name
        raise self.fail(f"input '{name}' is neither a graph input, an initializer nor an earlier node's output")

    def static(self, index: int, what: str) -> np.ndarray | None:
        """The value of input ``index``, which must be known when reading (None where it is missing)."""
        if not self.has(index):
            return None
        name = self.node.inputs[index]
        if name in self.statics and name not in self.inputs:
            return self.statics[name]
        if name in self.inputs and name not in self.parameters:  # a graph input: the value it was given
            return self.inputs[name].value
        raise self.fail(f"its {what} (input '{name}') must be a constant of the model, not a computed value")

    def shape(self, name: str) -> Shape:
        return self.shapes[self.value_name(name)]

    def in_shape(self, index: int = 0) -> Shape:
        """The shape of input ``index``."""
        return self.shapes[self.data(index)]

    def number(self, value: float) -> str:
        """A number as a constant of the graph (no gradient), by its text."""
        text = repr(float(value))
        self.constants[text] = float(value)
        return text

    # --- writing nodes -------------------------------------------------------------------------

    def emit(self, op: str, *args: str, **attrs: Any) -> str:
        """A cgraph node, part of the current node's formula, named after it; its name."""
        base = f"{self.node.name}:{op}"
        name, count = base, 1
        while name in self.shapes or name in self.statics:
            count += 1
            name = f"{base}{count}"
        return self._add(name, op, args, attrs)

    def out(self, op: str, *args: str, **attrs: Any) -> str:
        """The cgraph node named by the current node's first output."""
        name = self.node.name
        if name in self.shapes or name in self.statics:
            raise self.fail(f"its output '{name}' is already defined")
        return self._add(name, op, args, attrs)

    def _add(self, name: str, op: str, args: tuple[str, ...], attrs: dict[str, Any]) -> str:
        layer_class = REGISTRY[op]
        try:
            layer = layer_class(**attrs)
            shape = layer.out_shape(*[self.shapes.get(arg, ()) for arg in args])
        except (ValueError, TypeError) as error:
            message = str(error)
            for role, arg in zip(layer_class.args if not layer_class.variadic else (), args):
                message = message.replace("{" + role + "}", f"'{arg}'")
            raise self.fail(message.replace("{x1}", "its first input")) from None
        self.nodes[name] = NodeSpec(name, op, args, self.top, attrs)
        self.shapes[name] = shape
        self.dtypes[name] = np.dtype(attrs["dtype"]) if op == "cast" else self._result_type(args)
        return name

    def _result_type(self, args: tuple[str, ...]) -> np.dtype:
        """The dtype of a node computed from ``args`` (float64 where none has one)."""
        dtypes = {self.dtypes[arg] for arg in args if arg in self.dtypes}
        return dtypes.pop() if len(dtypes) == 1 else np.result_type(*dtypes) if dtypes else np.dtype(np.float64)

    def set_static(self, name: str, value: np.ndarray) -> None:
        """Record a value known when reading (a shape, a constant folded)."""
        self.statics[name] = value
        self.shapes[name] = value.shape
        self.dtypes[name] = value.dtype


Converter = Callable[[Emitter, OnnxNode], None]
TABLE: dict[tuple[str, int, int], Converter] = {}


def converts(*ops: str, since: int = FIRST_OPSET, until: int = NEWEST_OPSET) -> Callable[[Converter], Converter]:
    """Enter a converter in TABLE for ``ops`` at opsets ``since`` to ``until``."""

    def enter(convert: Converter) -> Converter:
        for op in ops:
            TABLE[(op, since, until)] = convert
        return convert

    return enter


@functools.cache
def converter(op: str, opset: int) -> Converter | None:
    """The table's converter of ``op`` at ``opset``, or None (looked up once per op and opset)."""
    opset = min(opset, NEWEST_OPSET)
    for (name, since, until), convert in TABLE.items():
        if name == op and since <= opset <= until:
            return convert
    return None


def supported(opset: int) -> list[str]:
    """The ONNX ops the table converts at ``opset``."""
    opset = min(opset, NEWEST_OPSET)
    return sorted({name for name, since, until in TABLE if since <= opset <= until})


def _flexible(shape: Shape, at: int = 0) -> list[int]:
    """``shape`` for a reshape, with -1 at ``at`` (the batch axis) where that is unambiguous, so that
    a batch of another size still fits."""
    sizes = list(shape)
    if sizes and 0 <= at < len(sizes) and all(size > 0 for size in sizes):
        sizes[at] = -1
    return sizes


def _axis(axis: int, ndim: int, e: Emitter) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise e.fail(f"axis {axis} is out of range for an input of {ndim} dimensions")
    return axis % max(ndim, 1)


def _ints(value: np.ndarray | None) -> list[int] | None:
    return None if value is None else [int(item) for item in np.asarray(value).reshape(-1)]


# --- elementwise ---------------------------------------------------------------------------

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Equal": "equal", "Greater": "greater"}
_UNARY = {"Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Abs": "abs", "Relu": "relu",
          "Sigmoid": "sigmoid", "Tanh": "tanh", "Sign": "sign", "Identity": "identity"}


@converts(*_BINARY)
def _binary(e: Emitter, n: OnnxNode) -> None:
    e.out(_BINARY[n.op], e.data(0), e.data(1))


@converts("Pow")
def _pow(e: Emitter, n: OnnxNode) -> None:
    """x ** y in x's dtype: an integer exponent is cast to it first."""
    x, y = e.data(0), e.data(1)
    if e.dtypes[y].kind != "f" and e.dtypes[x].kind == "f":
        y = e.emit("cast", y, dtype=_CAST[e.dtypes[x]])
    e.out("pow", x, y)


@converts(*_UNARY)
def _unary(e: Emitter, n: OnnxNode) -> None:
    e.out(_UNARY[n.op], e.data(0))


@converts("Max", "Min", "Sum", "Mean")
def _variadic(e: Emitter, n: OnnxNode) -> None:
    op = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}[n.op]
    names = [e.data(i) for i in range(len(n.inputs))]
    if len(names) == 1:
        e.out("identity", names[0])
        return
    total = names[0]
    for index, name in enumerate(names[1:], 2):
        last = index == len(names) and n.op != "Mean"
        total = e.out(op, total, name) if last else e.emit(op, total, name)
    if n.op == "Mean":
        e.out("div", total, e.number(len(names)))


@converts("Reciprocal")
def _reciprocal(e: Emitter, n: OnnxNode) -> None:
    e.out("div", e.number(1.0), e.data(0))


@converts("LeakyRelu")
def _leaky_relu(e: Emitter, n: OnnxNode) -> None:
    """relu(x) + alpha * (x - relu(x)): the gradient at 0 is alpha, as PyTorch's."""
    x = e.data(0)
    positive = e.emit("relu", x)
    negative = e.emit("sub", x, positive)
    e.out("add", positive, e.emit("mul", negative, e.number(n.attr("alpha", 0.01))))


@converts("Softplus")
def _softplus(e: Emitter, n: OnnxNode) -> None:
    e.out("log", e.emit("add", e.emit("exp", e.data(0)), e.number(1.0)))


@converts("Softsign")
def _softsign(e: Emitter, n: OnnxNode) -> None:
    x = e.data(0)
    e.out("div", x, e.emit("add", e.emit("abs", x), e.number(1.0)))


@converts("HardSigmoid")
def _hard_sigmoid(e: Emitter, n: OnnxNode) -> None:
    scaled = e.emit("add", e.emit("mul", e.data(0), e.number(n.attr("alpha", 0.2))), e.number(n.attr("beta", 0.5)))
    e.out("clip", scaled, min=0.0, max=1.0)


def _bound(value: Any) -> float | None:
    if value is None:
        return None
    number = float(np.asarray(value).reshape(-1)[0])
    return None if abs(number) >= np.finfo(np.float32).max else number


def _clip(e: Emitter, low: float | None, high: float | None) -> None:
    """clip(x, low, high); where low > high ONNX makes every value high (cgraph's own clip refuses
    that contradiction in a graph file)."""
    if low is not None and high is not None and low > high:
        low = high
    e.out("clip", e.data(0), min=low, max=high)


@converts("Clip", until=10)
def _clip_attrs(e: Emitter, n: OnnxNode) -> None:
    _clip(e, _bound(n.attr("min")), _bound(n.attr("max")))


@converts("Clip", since=11)
def _clip_inputs(e: Emitter, n: OnnxNode) -> None:
    low, high = e.static(1, "lower bound"), e.static(2, "upper bound")
    _clip(e, None if low is None else float(low), None if high is None else float(high))


@converts("Dropout", until=11)
def _dropout_attrs(e: Emitter, n: OnnxNode) -> None:
    e.out("identity", e.data(0))


@converts("Dropout", since=12)
def _dropout_inputs(e: Emitter, n: OnnxNode) -> None:
    training = e.static(2, "training_mode")
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        raise e.fail("dropout in training mode is not supported; export the model in eval mode")
    e.out("identity", e.data(0))


_CAST = {np.dtype(name): name for name in ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")}


@converts("Cast")
def _cast(e: Emitter, n: OnnxNode) -> None:
    from onnx import helper

    target = np.dtype(helper.tensor_dtype_to_np_dtype(n.attr("to")))
    x = e.data(0)
    if e.dtypes[x] == target:
        e.out("identity", x)
    elif target in _CAST:
        e.out("cast", x, dtype=_CAST[target])
    else:
        raise e.fail(f"a cast to {target.name} is not supported; casts go to {', '.join(_CAST.values())}")


# --- matrix products -----------------------------------------------------------------------


@converts("MatMul")
def _matmul(e: Emitter, n: OnnxNode) -> None:
    e.out("matmul", e.data(0), e.data(1))


@converts("Gemm")
def _gemm(e: Emitter, n: OnnxNode) -> None:
    """alpha * A' @ B' + beta * C, A' and B' transposed where transA, transB say so."""
    a, b = e.data(0), e.data(1)
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    if n.attr("transA", 0):
        a = e.emit("transpose", a)
    if n.attr("transB", 0):
        b = e.emit("transpose", b)
    if not e.has(2) or beta == 0:
        if alpha == 1:
            e.out("matmul", a, b)
        else:
            e.out("mul", e.emit("matmul", a, b), e.number(alpha))
        return
    c = e.data(2)
    if alpha == 1 and beta == 1 and len(e.shapes[a]) == 2:
        e.out("affine", a, b, c)
        return
    product = e.emit("matmul", a, b)
    if alpha != 1:
        product = e.emit("mul", product, e.number(alpha))
    e.out("add", product, c if beta == 1 else e.emit("mul", c, e.number(beta)))


# --- reductions and softmax ----------------------------------------------------------------


def _reduce(e: Emitter, n: OnnxNode, axes: list[int] | None) -> None:
    op = {"ReduceSum": "sum", "ReduceMean": "mean"}[n.op]
    x = e.data(0)
    if not axes:
        if n.attr("noop_with_empty_axes", 0):
            e.out("identity", x)
            return
        axes = None
    e.out(op, x, axis=axes, keepdims=bool(n.attr("keepdims", 1)))


@converts("ReduceMean", until=17)
@converts("ReduceSum", until=12)
def _reduce_attr(e: Emitter, n: OnnxNode) -> None:
    _reduce(e, n, n.attr("axes"))


@converts("ReduceMean", since=18)
@converts("ReduceSum", since=13)
def _reduce_input(e: Emitter, n: OnnxNode) -> None:
    _reduce(e, n, _ints(e.static(1, "axes")))


def _along_axis(e: Emitter, n: OnnxNode, op: str, axis: int, flattened: bool) -> None:
    """``op`` (softmax or log_softmax, which work on the last axis) along ``axis``: of the 2-D
    view (rows: the axes before it) where ``flattened``, as before opset 13, else of that one axis."""
    x = e.data(0)
    shape = e.shapes[x]
    axis = _axis(axis, len(shape), e)
    if axis == len(shape) - 1:
        e.out(op, x)
    elif flattened:
        rows = e.emit("reshape", x, shape=[-1, math.prod(shape[axis:])] if math.prod(shape[axis:]) else
                      [math.prod(shape[:axis]), -1])
        e.out("reshape", e.emit(op, rows), shape=_flexible(shape))
    else:
        order = [i for i in range(len(shape)) if i != axis] + [axis]
        moved = e.emit("transpose", x, axes=order)
        e.out("transpose", e.emit(op, moved), axes=[int(i) for i in np.argsort(order)])


@converts("Softmax", "LogSoftmax", until=12)
def _softmax_2d(e: Emitter, n: OnnxNode) -> None:
    _along_axis(e, n, "softmax" if n.op == "Softmax" else "log_softmax", n.attr("axis", 1), True)


@converts("Softmax", "LogSoftmax", since=13)
def _softmax(e: Emitter, n: OnnxNode) -> None:
    _along_axis(e, n, "softmax" if n.op == "Softmax" else "log_softmax", n.attr("axis", -1), False)


@converts("ArgMax")
def _argmax(e: Emitter, n: OnnxNode) -> None:
    if n.attr("select_last_index", 0):
        raise e.fail("select_last_index=1 is not supported: cgraph's argmax takes the first largest value")
    x = e.data(0)
    shape = e.shapes[x]
    axis = _axis(n.attr("axis", 0), len(shape), e)
    if not n.attr("keepdims", 1):
        e.out("argmax", x, axis=axis)
        return
    kept = shape[:axis] + (1,) + shape[axis + 1:]
    e.out("reshape", e.emit("argmax", x, axis=axis), shape=_flexible(kept, 0 if axis else -1))


def _extreme(e: Emitter, n: OnnxNode, axes: list[int] | None) -> None:
    """ReduceMax, ReduceMin as a tree of elementwise maximum (minimum) nodes: along each axis, the
    first half against the second, an odd last item against every result, until one item is left."""
    op = "maximum" if n.op == "ReduceMax" else "minimum"
    x = e.data(0)
    shape = e.shapes[x]
    if not axes:
        if n.attr("noop_with_empty_axes", 0) or not shape:
            e.out("identity", x)
            return
        axes = list(range(len(shape)))
    chosen = sorted({_axis(a, len(shape), e) for a in axes})
    for axis in chosen:
        size = shape[axis]
        if size == 0:
            raise e.fail(f"axis {axis} of the input of shape {list(shape)} is empty: it has no {op}")
        lead = [":"] * axis
        while size > 1:
            half = size // 2
            low = e.emit("index", x, key=_key([*lead, f"0:{half}"]))
            high = e.emit("index", x, key=_key([*lead, f"{half}:{2 * half}"]))
            folded = e.emit(op, low, high)
            if size % 2:
                folded = e.emit(op, folded, e.emit("index", x, key=_key([*lead, f"{size - 1}:{size}"])))
            x, size = folded, half
    if n.attr("keepdims", 1):
        e.out("identity", x)
    else:
        e.out("index", x, key=_key(["0" if i in chosen else ":" for i in range(len(shape))]))


@converts("ReduceMax", "ReduceMin", until=17)
def _extreme_attr(e: Emitter, n: OnnxNode) -> None:
    _extreme(e, n, n.attr("axes"))


@converts("ReduceMax", "ReduceMin", since=18)
def _extreme_input(e: Emitter, n: OnnxNode) -> None:
    _extreme(e, n, _ints(e.static(1, "axes")))


@converts("Where")
def _where(e: Emitter, n: OnnxNode) -> None:
    """X where the condition holds, else Y, as X·c + Y·(1 − c) with c the condition as 0 or 1 (an
    infinite or NaN value in the branch not taken makes NaN there)."""
    x, y = e.data(1), e.data(2)
    dtype = np.result_type(e.dtypes[x], e.dtypes[y])
    condition = e.data(0)
    if e.dtypes[condition] != dtype:
        condition = e.emit("cast", condition, dtype=_CAST[dtype])
    other = e.emit("sub", e.number(1.0), condition)
    e.out("add", e.emit("mul", x, condition), e.emit("mul", y, other))


@converts("ScatterND", since=11)
def _scatter_nd(e: Emitter, n: OnnxNode) -> None:
    """Updates (K,) put into constant zeros (P,) at K distinct constant positions (K, 1), the form
    cgraph onnx writes scatter in: one cgraph scatter per run of evenly spaced positions, added up."""
    form = "only updates of 1 dimension put into constant zeros of 1 dimension at distinct constant positions"
    if n.attr("reduction", "none") != "none":
        raise e.fail(f"reduction '{n.attr('reduction')}' is not supported; {form} are")
    data, indices, updates = e.static(0, "data"), e.static(1, "indices"), e.data(2)
    if data.ndim != 1 or np.any(data != 0) or indices.shape != (*e.shapes[updates], 1) or len(e.shapes[updates]) != 1:
        raise e.fail(f"{form} are supported")
    size = data.shape[0]
    positions = [int(i) % size if -size <= int(i) < size else size for i in indices.reshape(-1)]
    if size in positions or len(set(positions)) != len(positions):
        raise e.fail(f"positions out of range or repeated; {form} are supported")
    runs = _runs(positions)
    if len(runs) > 256:
        raise e.fail(f"{len(runs)} runs of evenly spaced positions; at most 256 are supported")
    parts = []
    for first, count, step in runs:
        piece = updates if len(runs) == 1 else e.emit("index", updates, key=f"{first}:{first + count}")
        start = positions[first]
        stop = start + step * (count - 1) + (1 if step > 0 else -1)
        key = f"{start}:{'' if stop < 0 else stop}" + (f":{step}" if step != 1 else "")
        parts.append((e.out if len(runs) == 1 else e.emit)("scatter", piece, key=key, shape=[size]))
    total = parts[0]
    for index, part in enumerate(parts[1:], 2):
        total = (e.out if index == len(parts) else e.emit)("add", total, part)


def _runs(positions: list[int]) -> list[tuple[int, int, int]]:
    """``positions`` cut into runs of evenly spaced ones: (first item, count, step) each."""
    runs: list[tuple[int, int, int]] = []
    first = 0
    while first < len(positions):
        count, step = 1, 1
        if first + 1 < len(positions):
            step = positions[first + 1] - positions[first]
            count = 2
            while first + count < len(positions) and positions[first + count] - positions[first + count - 1] == step:
                count += 1
        runs.append((first, count, step))
        first += count
    return runs


# --- shapes --------------------------------------------------------------------------------


@converts("Transpose")
def _transpose(e: Emitter, n: OnnxNode) -> None:
    perm = n.attr("perm")
    e.out("transpose", e.data(0), axes=None if perm is None else list(perm))


@converts("Reshape")
def _reshape(e: Emitter, n: OnnxNode) -> None:
    x = e.data(0)
    shape = _ints(e.static(1, "shape"))
    in_shape = e.shapes[x]
    if not n.attr("allowzero", 0):
        for i, size in enumerate(shape):
            if size == 0:
                if i >= len(in_shape):
                    raise e.fail(f"shape {shape} copies axis {i}, which the input of shape {list(in_shape)} lacks")
                shape[i] = in_shape[i]
    e.out("reshape", x, shape=shape)


@converts("Flatten")
def _flatten(e: Emitter, n: OnnxNode) -> None:
    x = e.data(0)
    shape = e.shapes[x]
    axis = n.attr("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise e.fail(f"axis {n.attr('axis')} is out of range for an input of {len(shape)} dimensions")
    if axis == 1 and len(shape) >= 1:
        e.out("flatten", x)
    else:
        e.out("reshape", x, shape=[math.prod(shape[:axis]), math.prod(shape[axis:])])


def _squeeze(e: Emitter, n: OnnxNode, axes: list[int] | None) -> None:
    x = e.data(0)
    shape = e.shapes[x]
    chosen = [i for i, size in enumerate(shape) if size == 1] if axes is None else [_axis(a, len(shape), e) for a in axes]
    for axis in chosen:
        if shape[axis] != 1:
            raise e.fail(f"axis {axis} has size {shape[axis]}, not 1, in the input of shape {list(shape)}")
    if not chosen:
        e.out("identity", x)
        return
    e.out("index", x, key=", ".join("0" if i in chosen else ":" for i in range(len(shape))))


@converts("Squeeze", until=12)
def _squeeze_attr(e: Emitter, n: OnnxNode) -> None:
    _squeeze(e, n, n.attr("axes"))


@converts("Squeeze", since=13)
def _squeeze_input(e: Emitter, n: OnnxNode) -> None:
    _squeeze(e, n, _ints(e.static(1, "axes")))


def _unsqueeze(e: Emitter, n: OnnxNode, axes: list[int]) -> None:
    x = e.data(0)
    shape = e.shapes[x]
    rank = len(shape) + len(axes)
    placed = sorted(_axis(a, rank, e) for a in axes)
    if len(set(placed)) != len(placed):
        raise e.fail(f"axes {axes} name an axis twice")
    sizes = iter(shape)
    new = [1 if i in placed else next(sizes) for i in range(rank)]
    first = next((i for i in range(rank) if i not in placed), -1)
    e.out("reshape", x, shape=_flexible(tuple(new), first))


@converts("Unsqueeze", until=12)
def _unsqueeze_attr(e: Emitter, n: OnnxNode) -> None:
    _unsqueeze(e, n, list(n.attr("axes", [])))


@converts("Unsqueeze", since=13)
def _unsqueeze_input(e: Emitter, n: OnnxNode) -> None:
    _unsqueeze(e, n, _ints(e.static(1, "axes")))


@converts("Expand")
def _expand(e: Emitter, n: OnnxNode) -> None:
    """x broadcast with the shape given (both ways, as ONNX's Expand: the larger size wins)."""
    x = e.data(0)
    shape = _ints(e.static(1, "shape"))
    try:
        target = np.broadcast_shapes(e.shapes[x], tuple(shape))
    except ValueError:
        raise e.fail(f"the input of shape {list(e.shapes[x])} does not broadcast with the shape {shape}") from None
    if target == e.shapes[x]:
        e.out("identity", x)
    else:
        e.out("broadcast_to", x, shape=list(target))


@converts("Concat")
def _concat(e: Emitter, n: OnnxNode) -> None:
    e.out("concat", *[e.data(i) for i in range(len(n.inputs))], axis=n.attr("axis", 0))


def _key(parts: list[str]) -> str:
    return ", ".join(parts) if parts else "..."


@converts("Gather")
def _gather(e: Emitter, n: OnnxNode) -> None:
    """Constant indices along ``axis``: one index, a slice where they are evenly spaced, else the
    items stacked."""
    x = e.data(0)
    shape = e.shapes[x]
    indices = e.static(1, "indices")
    axis = _axis(n.attr("axis", 0), len(shape), e)
    size = shape[axis]
    flat = [int(i) for i in np.asarray(indices).reshape(-1)]
    for i in flat:
        if not -size <= i < size:
            raise e.fail(f"index {i} is out of range for axis {axis} of size {size}")
    flat = [i % size for i in flat]
    lead = [":"] * axis
    if indices.ndim == 0:
        e.out("index", x, key=_key([*lead, str(flat[0])]))
        return
    if indices.ndim > 1:
        raise e.fail("indices of more than 1 dimension are not supported")
    steps = {b - a for a, b in zip(flat, flat[1:])}
    if len(flat) == 1 or (len(steps) == 1 and 0 not in steps):
        step = steps.pop() if steps else 1
        stop = flat[-1] + (1 if step > 0 else -1)
        bounds = f"{flat[0]}:{'' if stop < 0 else stop}" + (f":{step}" if step != 1 else "")
        e.out("index", x, key=_key([*lead, bounds]))
        return
    if len(flat) > 256:
        raise e.fail(f"{len(flat)} indices that are not evenly spaced; at most 256 are supported")
    items = [e.emit("index", x, key=_key([*lead, str(i)])) for i in flat]
    e.out("stack", *items, axis=axis)


@converts("Slice", until=9)
def _slice_attrs(e: Emitter, n: OnnxNode) -> None:
    _slice(e, list(n.attr("starts")), list(n.attr("ends")), n.attr("axes"), None)


@converts("Slice", since=10)
def _slice_inputs(e: Emitter, n: OnnxNode) -> None:
    _slice(e, _ints(e.static(1, "starts")), _ints(e.static(2, "ends")), _ints(e.static(3, "axes")),
           _ints(e.static(4, "steps")))


def _slice(e: Emitter, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None) -> None:
    x = e.data(0)
    shape = e.shapes[x]
    axes = list(range(len(starts))) if axes is None else [_axis(a, len(shape), e) for a in axes]
    steps = steps or [1] * len(starts)
    parts = [":"] * len(shape)
    for axis, start, end, step in zip(axes, starts, ends, steps):
        if step == 0:
            raise e.fail("a slice step of 0")
        limit = 2 * shape[axis] + 1  # ONNX's INT_MAX ends, clamped as numpy clamps them
        start, end = max(min(start, limit), -limit), max(min(end, limit), -limit)
        parts[axis] = f"{start}:{end}" + (f":{step}" if step != 1 else "")
    e.out("index", x, key=_key(parts))


# --- images --------------------------------------------------------------------------------


def _window(e: Emitter, n: OnnxNode, x_shape: Shape, kernel: list[int]) -> tuple[list[int], list[int]]:
    """Strides and symmetric pads of a 2-D window op; the attributes cgraph cannot follow refused."""
    if len(x_shape) != 4 or len(kernel) != 2:
        raise e.fail(f"only 2-D windows over images (N, C, H, W) are supported; the input has shape {list(x_shape)}")
    if any(d != 1 for d in n.attr("dilations", [1, 1])):
        raise e.fail(f"dilations {list(n.attr('dilations'))} are not supported, only 1")
    strides = list(n.attr("strides", [1, 1]))
    auto_pad = n.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        totals = [max((-(-size // s) - 1) * s + k - size, 0) for size, s, k in zip(x_shape[2:], strides, kernel)]
        pads = [t // 2 for t in totals] + [t - t // 2 for t in totals]
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = list(n.attr("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise e.fail(f"pads {pads} are not the same on both sides; only symmetric padding is supported")
    return strides, pads[:2]


def _floor(shape: Shape, kernel: list[int], strides: list[int], pads: list[int]) -> dict[str, bool]:
    """``floor=True`` where the windows do not fit exactly (ONNX leaves out the rest), else nothing."""
    exact = all((size + 2 * p - k) % s == 0 for size, k, s, p in zip(shape[2:], kernel, strides, pads))
    return {} if exact else {"floor": True}


@converts("Conv")
def _conv(e: Emitter, n: OnnxNode) -> None:
    x, w = e.data(0), e.data(1)
    if n.attr("group", 1) != 1:
        raise e.fail(f"group {n.attr('group')} is not supported, only 1")
    w_shape = e.shapes[w]
    kernel = list(n.attr("kernel_shape", w_shape[2:]))
    strides, pads = _window(e, n, e.shapes[x], kernel)
    if e.has(2):
        b = e.data(2)
    else:  # conv2d takes a bias: one of zeros, which changes nothing
        b = f"{n.name}:zero_bias"
        e.set_static(b, np.zeros(w_shape[:1], e.dtypes[w]))
        e.value_name(b)
    e.out("conv2d", x, w, b, stride=strides, pad=pads, **_floor(e.shapes[x], kernel, strides, pads))


def _rounding(n: OnnxNode, shape: Shape, kernel: list[int], strides: list[int], pads: list[int]) -> dict[str, bool]:
    """A pooling's attribute for windows that do not fit exactly: ``ceil`` with ceil_mode=1, else ``floor``."""
    rounding = _floor(shape, kernel, strides, pads)
    return {"ceil": True} if rounding and n.attr("ceil_mode", 0) else rounding


@converts("MaxPool")
def _max_pool(e: Emitter, n: OnnxNode) -> None:
    x = e.data(0)
    kernel = list(n.attr("kernel_shape"))
    strides, pads = _window(e, n, e.shapes[x], kernel)
    if n.attr("storage_order", 0):
        raise e.fail("storage_order=1 is not supported")
    e.out("max_pool2d", x, size=kernel, stride=strides, pad=pads, **_rounding(n, e.shapes[x], kernel, strides, pads))


@converts("AveragePool")
def _average_pool(e: Emitter, n: OnnxNode) -> None:
    """avg_pool2d counts padded zeros (in ceil mode, not the part of a last window past the padding);
    without count_include_pad each mean is divided again by the share of its window inside the image."""
    x = e.data(0)
    shape = e.shapes[x]
    kernel = list(n.attr("kernel_shape"))
    strides, pads = _window(e, n, shape, kernel)
    rounding = _rounding(n, shape, kernel, strides, pads)
    if n.attr("count_include_pad", 0) or not any(pads):
        e.out("avg_pool2d", x, size=kernel, stride=strides, pad=pads, **rounding)
        return
    pooled = e.emit("avg_pool2d", x, size=kernel, stride=strides, pad=pads, **rounding)
    inside = np.zeros((shape[2] + 2 * pads[0], shape[3] + 2 * pads[1]))
    inside[pads[0]:pads[0] + shape[2], pads[1]:pads[1] + shape[3]] = 1
    oh, ow = e.shapes[pooled][2:]
    share = np.array([[inside[i * strides[0]:i * strides[0] + kernel[0], j * strides[1]:j * strides[1] + kernel[1]].mean()
                       for j in range(ow)] for i in range(oh)], e.dtypes[x]).reshape(1, 1, oh, ow)
    name = f"{n.name}:window_share"
    e.set_static(name, share)
    e.out("div", pooled, e.value_name(name))


@converts("GlobalAveragePool")
def _global_average_pool(e: Emitter, n: OnnxNode) -> None:
    x = e.data(0)
    e.out("mean", x, axis=list(range(2, len(e.shapes[x]))), keepdims=True)


@converts("GlobalMaxPool")
def _global_max_pool(e: Emitter, n: OnnxNode) -> None:
    x = e.data(0)
    shape = e.shapes[x]
    if len(shape) != 4:
        raise e.fail(f"only images (N, C, H, W) are supported; the input has shape {list(shape)}")
    e.out("max_pool2d", x, size=list(shape[2:]))


@converts("BatchNormalization")
def _batch_norm(e: Emitter, n: OnnxNode) -> None:
    """The inference form: (x - mean) / sqrt(var + epsilon) * scale + B, per channel (axis 1)."""
    if n.attr("training_mode", 0):
        raise e.fail("training_mode=1 is not supported; export the model in eval mode")
    if not n.attr("spatial", 1):
        raise e.fail("spatial=0 is not supported")
    x = e.data(0)
    shape = e.shapes[x]
    if len(shape) < 2:
        raise e.fail(f"the input has shape {list(shape)}; it needs a channel axis (axis 1)")
    per_channel = [shape[1]] + [1] * (len(shape) - 2)

    def channel(index: int) -> str:
        name = e.data(index)
        return e.emit("reshape", name, shape=per_channel) if len(shape) > 2 else name

    scale, bias, mean, var = (channel(i) for i in range(1, 5))
    std = e.emit("sqrt", e.emit("add", var, e.number(n.attr("epsilon", 1e-5))))
    normal = e.emit("div", e.emit("sub", x, mean), std)
    e.out("add", e.emit("mul", normal, scale), bias)


# --- losses --------------------------------------------------------------------------------


def _classes_last(e: Emitter, scores: str) -> str:
    """Scores (N, C, d1, ...) with the classes moved to the last axis."""
    rank = len(e.shapes[scores])
    if rank < 2:
        raise e.fail(f"the scores have shape {list(e.shapes[scores])}; they need a class axis (axis 1)")
    return scores if rank == 2 else e.emit("transpose", scores, axes=[0, *range(2, rank), 1])


def _picked_loss(e: Emitter, n: OnnxNode, log_p: str) -> None:
    """-log_p at each label, weighted, reduced by ``reduction``; log_p has the classes last."""
    reduction = n.attr("reduction", "mean")
    reduction = reduction.decode() if isinstance(reduction, bytes) else reduction
    if reduction not in ("mean", "sum", "none"):
        raise e.fail(f"reduction '{reduction}' is not supported: mean, sum or none")
    labels = e.data(1)
    classes = e.shapes[log_p][-1]
    label_shape = e.shapes[labels]
    if label_shape != e.shapes[log_p][:-1]:
        raise e.fail(f"the labels have shape {list(label_shape)} where the scores need {list(e.shapes[log_p][:-1])}")
    dtype = e.dtypes[log_p]
    as_float = e.emit("cast", labels, dtype=_CAST[dtype])
    column = e.emit("reshape", as_float, shape=_flexible((*label_shape, 1)))
    name = f"{n.name}:class_numbers"
    e.set_static(name, np.arange(classes, dtype=dtype))
    one_hot = e.emit("equal", column, e.value_name(name))
    picked = e.emit("sum", e.emit("mul", one_hot, log_p), axis=-1)
    weight = None
    if e.has(2):
        weight = e.emit("matmul", one_hot, e.data(2))
    ignore = n.attr("ignore_index")
    if ignore is not None:
        kept = e.emit("sub", e.number(1.0), e.emit("equal", as_float, e.number(ignore)))
        weight = kept if weight is None else e.emit("mul", weight, kept)
    if weight is not None:
        picked = e.emit("mul", picked, weight)
    if reduction == "none":
        e.out("neg", picked)
    elif reduction == "sum":
        e.out("neg", e.emit("sum", picked))
    elif weight is None:
        e.out("neg", e.emit("mean", picked))
    else:
        e.out("neg", e.emit("div", e.emit("sum", picked), e.emit("sum", weight)))


@converts("SoftmaxCrossEntropyLoss", since=12)
def _softmax_cross_entropy(e: Emitter, n: OnnxNode) -> None:
    scores = e.data(0)
    plain = len(e.shapes[scores]) == 2 and not e.has(2) and n.attr("ignore_index") is None
    reduction = n.attr("reduction", "mean")
    if plain and reduction in ("mean", b"mean"):
        e.out("softmax_with_loss", scores, e.data(1))
        return
    _picked_loss(e, n, e.emit("log_softmax", _classes_last(e, scores)))


@converts("NegativeLogLikelihoodLoss", since=12)
def _nll_loss(e: Emitter, n: OnnxNode) -> None:
    _picked_loss(e, n, _classes_last(e, e.data(0)))


# --- values known when reading -------------------------------------------------------------


@converts("Shape")
def _shape(e: Emitter, n: OnnxNode) -> None:
    shape = e.in_shape(0)
    start, end = n.attr("start", 0), n.attr("end")
    e.set_static(n.name, np.array(shape[start:end], np.int64))
    if start == 0 and end is None:
        e.shape_of[n.name] = e.data(0)


@converts("ConstantOfShape", since=9)
def _constant_of_shape(e: Emitter, n: OnnxNode) -> None:
    """zeros_like(x) where the shape is Shape(x) and the value 0 in x's dtype (cgraph onnx writes
    zeros_like so); otherwise the filled array, a constant of the model."""
    shape = _ints(e.static(0, "shape"))
    value = n.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    measured = e.shape_of.get(n.inputs[0])
    if measured is not None and value[0] == 0 and e.dtypes[measured] == value.dtype:
        e.out("zeros_like", measured)
        return
    if any(size < 0 for size in shape):
        raise e.fail(f"the shape {shape} has a negative size")
    if math.prod(shape) > e.max_elements:
        raise e.fail(f"its {math.prod(shape):,} elements are over the limit of {e.max_elements:,} "
                     "(raise it with --max-elements)")
    e.set_static(n.name, np.full(shape, value[0], value.dtype))


@converts("Size")
def _size(e: Emitter, n: OnnxNode) -> None:
    e.set_static(n.name, np.array(math.prod(e.in_shape(0)), np.int64))
