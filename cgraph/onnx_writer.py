"""A graph as an ONNX model, the inverse of onnx_reader: each input a graph input (or, for the
parameters named, an initializer holding its value), the output a graph output, and each node
one ONNX op or the few ONNX ops of its formula.

A renderer: it works on the built graph (its spec, shapes and the dtypes of one forward pass), so
it does not know which format the graph came from. One table, ``EXPORT``, keyed by cgraph op.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Collection

import numpy as np

from .errors import CgraphError
from .layers import REGISTRY, parse_key

if TYPE_CHECKING:
    from .graph import Graph
    from .spec import NodeSpec

OPSET = 18  # Reduce ops take their axes as an input from here on
INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
PRODUCER = "cgraph"
INSTALL = "writing ONNX models needs the onnx package: pip install 'cgraph-calc[onnx]'"


class _Writer:
    """The ONNX nodes and initializers of a graph under construction, and each tensor's dtype."""

    def __init__(self, onnx: Any, graph: Graph) -> None:
        self.onnx, self.graph = onnx, graph
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.dtypes: dict[str, np.dtype] = {}
        self.taken: set[str] = {*graph.spec.inputs, *graph.spec.nodes}
        self.numbers: dict[tuple[str, str], str] = {}
        self.current = ""

    def fresh(self, hint: str) -> str:
        """A tensor name of the current node's formula, unused so far."""
        base = f"{self.current}/{hint}"
        name, count = base, 1
        while name in self.taken:
            count += 1
            name = f"{base}{count}"
        self.taken.add(name)
        return name

    def constant(self, value: Any, hint: str) -> str:
        """An initializer holding ``value`` (the array as it is), by a fresh name."""
        name = self.fresh(hint)
        array = np.asarray(value)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        self.dtypes[name] = array.dtype
        return name

    def ints(self, values: Collection[int], hint: str) -> str:
        return self.constant(np.array(list(values), np.int64), hint)

    def number(self, text: str, dtype: np.dtype) -> str:
        """The graph's constant ``text`` (a number in a formula) as a 0-d initializer of ``dtype``."""
        key = (text, dtype.name)
        if key not in self.numbers:
            name = text if dtype == np.float64 else f"{text}:{dtype.name}"
            while name in self.taken:
                name += "'"
            self.taken.add(name)
            self.initializers.append(self.onnx.numpy_helper.from_array(np.array(float(text), dtype), name))
            self.dtypes[name] = dtype
            self.numbers[key] = name
        return self.numbers[key]

    def op(self, op_type: str, inputs: list[str], dtype: np.dtype, out: str | None = None, **attrs: Any) -> str:
        """An ONNX node of ``op_type`` whose (one) output has ``dtype``; its output's name (``out``,
        or a fresh one)."""
        out = out or self.fresh(op_type)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        self.dtypes[out] = np.dtype(dtype)
        return out

    def as_dtype(self, name: str, dtype: np.dtype) -> str:
        """``name`` cast to ``dtype`` where it has another."""
        if self.dtypes[name] == dtype:
            return name
        return self.op("Cast", [name], dtype, to=self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


Export = Callable[[_Writer, "NodeSpec", list[str], np.dtype], None]
EXPORT: dict[str, Export] = {}
# The registered ops that are not written, and why: the gradient ops of the convolutional layers,
# which `cgraph grad` writes, have no single ONNX op (ConvTranspose could carry conv2d_transpose;
# it is not written yet).
REFUSED: dict[str, str] = {
    "conv2d_transpose": "conv2d's input gradient is not written as ONNX's ConvTranspose yet",
    "conv2d_filter_grad": "conv2d's filter gradient has no ONNX op",
    "max_pool2d_grad": "max pooling's gradient has no ONNX op",
    "max_pool2d_select": "max pooling's gradient has no ONNX op",
    "avg_pool2d_grad": "average pooling's gradient has no ONNX op",
    "log_softmax_grad": "log_softmax's gradient has no single ONNX op",
}


def exports(*ops: str) -> Callable[[Export], Export]:
    """Enter an exporter in EXPORT for the cgraph ``ops``."""

    def enter(export: Export) -> Export:
        for op in ops:
            EXPORT[op] = export
        return export

    return enter


def _shape(w: _Writer, name: str) -> tuple[int, ...]:
    return tuple(w.graph.shapes[name])


def _layer(w: _Writer, node: NodeSpec) -> Any:
    return w.graph.layers[node.name]


def _axes(axis: Any, ndim: int) -> list[int]:
    """A reduction's axis attribute (None, an int, or several) as the axes it reduces, non-negative."""
    if axis is None:
        return list(range(ndim))
    chosen = [axis] if isinstance(axis, int) else list(axis)
    return sorted(a % max(ndim, 1) for a in chosen)


# --- elementwise ---------------------------------------------------------------------------

_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max", "minimum": "Min"}
_UNARY = {"neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "relu": "Relu",
          "sigmoid": "Sigmoid", "tanh": "Tanh", "sign": "Sign", "identity": "Identity"}
_COMPARE = {"equal": "Equal", "greater": "Greater"}


@exports(*_BINARY)
def _binary(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    w.op(_BINARY[node.op], [w.as_dtype(arg, dtype) for arg in args], dtype, node.name)


@exports(*_UNARY)
def _unary(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    w.op(_UNARY[node.op], [w.as_dtype(args[0], dtype)], dtype, node.name)


@exports("square")
def _square(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    x = w.as_dtype(args[0], dtype)
    w.op("Mul", [x, x], dtype, node.name)


@exports(*_COMPARE)
def _compare(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    """1 where the comparison holds, else 0, in the inputs' dtype: the comparison's booleans cast."""
    both = [w.as_dtype(arg, dtype) for arg in args]
    truth = w.op(_COMPARE[node.op], both, np.dtype(bool))
    w.op("Cast", [truth], dtype, node.name, to=w.onnx.helper.np_dtype_to_tensor_dtype(dtype))


@exports("clip")
def _clip(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    layer = _layer(w, node)
    bounds = ["" if bound is None else w.constant(np.array(bound, dtype), name)
              for bound, name in ((layer.min, "min"), (layer.max, "max"))]
    while bounds and not bounds[-1]:
        bounds.pop()
    w.op("Clip", [args[0], *bounds], dtype, node.name)


@exports("cast")
def _cast(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    w.op("Cast", args, dtype, node.name, to=w.onnx.helper.np_dtype_to_tensor_dtype(dtype))


@exports("dropout")
def _dropout(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    """x times the layer's mask, which its seed fixes for x's shape: a constant of the model."""
    mask = REGISTRY["dropout"](**node.attrs).forward(np.ones(_shape(w, node.args[0]), dtype))
    w.op("Mul", [w.as_dtype(args[0], dtype), w.constant(np.asarray(mask, dtype), "mask")], dtype, node.name)


@exports("zeros_like")
def _zeros_like(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    shape = w.op("Shape", args, np.dtype(np.int64))
    zero = w.onnx.numpy_helper.from_array(np.zeros(1, dtype))
    w.op("ConstantOfShape", [shape], dtype, node.name, value=zero)


# --- reductions ----------------------------------------------------------------------------


@exports("sum", "mean")
def _reduce(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    layer = _layer(w, node)
    ndim = len(_shape(w, node.args[0]))
    axes = _axes(layer.axis, ndim)
    x = w.as_dtype(args[0], dtype)
    if not axes:  # a 0-d input, or no axes: nothing to reduce
        w.op("Identity", [x], dtype, node.name)
        return
    op = "ReduceSum" if node.op == "sum" else "ReduceMean"
    w.op(op, [x, w.ints(axes, "axes")], dtype, node.name, keepdims=int(layer.keepdims))


@exports("sum_to")
def _sum_to(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    """x summed over the axes a value of the target shape is broadcast along, then shaped to it."""
    shape, target = _shape(w, node.args[0]), _shape(w, node.name)
    lead = len(shape) - len(target)
    axes = [*range(lead), *(lead + i for i, size in enumerate(target) if size == 1 and shape[lead + i] != 1)]
    x = w.op("ReduceSum", [args[0], w.ints(axes, "axes")], dtype, keepdims=1) if axes else args[0]
    w.op("Reshape", [x, w.ints(target, "shape")], dtype, node.name)


@exports("argmax")
def _argmax(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    """The index as a number of x's dtype; of the flattened x where no axis is given."""
    axis = _layer(w, node).axis
    x = args[0]
    if axis is None:
        x, axis = w.op("Reshape", [x, w.ints([-1], "flat")], w.dtypes[x]), 0
    index = w.op("ArgMax", [x], np.dtype(np.int64), axis=axis, keepdims=0)
    w.op("Cast", [index], dtype, node.name, to=w.onnx.helper.np_dtype_to_tensor_dtype(dtype))


# --- shapes --------------------------------------------------------------------------------


@exports("transpose")
def _transpose(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    order = _layer(w, node)._order(len(_shape(w, node.args[0])))
    if order:
        w.op("Transpose", args, dtype, node.name, perm=list(order))
    else:  # a 0-d input: nothing to reorder
        w.op("Identity", args, dtype, node.name)


@exports("reshape", "flatten")
def _reshape(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    w.op("Reshape", [args[0], w.ints(_shape(w, node.name), "shape")], dtype, node.name)


@exports("broadcast_to")
def _broadcast_to(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    w.op("Expand", [args[0], w.ints(_shape(w, node.name), "shape")], dtype, node.name)


def _basic_key(key: str, shape: tuple[int, ...]) -> list[Any]:
    """A key's parts, one per axis of ``shape`` (``...`` spelled out as full slices)."""
    parts = list(parse_key(key))
    if Ellipsis in parts:
        at = parts.index(Ellipsis)
        parts[at:at + 1] = [slice(None)] * (len(shape) - len(parts) + 1)
    return parts + [slice(None)] * (len(shape) - len(parts))


@exports("index")
def _index(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    """x[key] as one Slice of the axes the key narrows and a Squeeze of those it takes one item of."""
    shape = _shape(w, node.args[0])
    starts, ends, axes, steps, dropped = [], [], [], [], []
    for axis, (part, size) in enumerate(zip(_basic_key(_layer(w, node).key, shape), shape)):
        if isinstance(part, int):
            start = part % size
            starts.append(start), ends.append(start + 1), axes.append(axis), steps.append(1)
            dropped.append(axis)
        elif part != slice(None):
            start, stop, step = part.indices(size)
            if step < 0 and stop < 0:
                stop = INT64_MIN  # before the first item: -1 would count from the end
            starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
    x = args[0]
    if axes:
        x = w.op("Slice", [x, w.ints(starts, "starts"), w.ints(ends, "ends"), w.ints(axes, "axes"),
                           w.ints(steps, "steps")], dtype, None if dropped else node.name)
    if dropped:
        w.op("Squeeze", [x, w.ints(dropped, "axes")], dtype, node.name)
    elif not axes:
        w.op("Identity", [x], dtype, node.name)


@exports("scatter")
def _scatter(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    """Zeros of the shape with x at key: x's items scattered into the flattened zeros at the
    positions the key takes (constants of the model), then shaped."""
    target = _shape(w, node.name)
    positions = np.arange(math.prod(target), dtype=np.int64).reshape(target)[parse_key(_layer(w, node).key)]
    zeros = w.constant(np.zeros(math.prod(target), dtype), "zeros")
    flat = w.op("Reshape", [args[0], w.ints([-1], "flat")], dtype)
    placed = w.op("ScatterND", [zeros, w.constant(positions.reshape(-1, 1), "positions"), flat], dtype)
    w.op("Reshape", [placed, w.ints(target, "shape")], dtype, node.name)


@exports("concat")
def _concat(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    axis = _layer(w, node).axis % max(len(_shape(w, node.name)), 1)
    w.op("Concat", [w.as_dtype(arg, dtype) for arg in args], dtype, node.name, axis=axis)


@exports("stack")
def _stack(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    axis = _layer(w, node).axis % len(_shape(w, node.name))
    axes = w.ints([axis], "axes")
    items = [w.op("Unsqueeze", [w.as_dtype(arg, dtype), axes], dtype) for arg in args]
    w.op("Concat", items, dtype, node.name, axis=axis)


# --- matrix products and the network's layers ------------------------------------------------


@exports("matmul")
def _matmul(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    w.op("MatMul", [w.as_dtype(arg, dtype) for arg in args], dtype, node.name)


@exports("affine")
def _affine(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    x, W, b = (w.as_dtype(arg, dtype) for arg in args)
    w.op("Add", [w.op("MatMul", [x, W], dtype), b], dtype, node.name)


def _swapped(w: _Writer, name: str, ndim: int) -> str:
    """``name`` with its last two axes swapped."""
    perm = [*range(ndim - 2), ndim - 1, ndim - 2]
    return w.op("Transpose", [name], w.dtypes[name], perm=perm)


@exports("gemm")
def _gemm(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    layer = _layer(w, node)
    x, y = (w.as_dtype(arg, dtype) for arg in args)
    if layer.trans_x:
        x = _swapped(w, x, len(_shape(w, node.args[0])))
    if layer.trans_y:
        y = _swapped(w, y, len(_shape(w, node.args[1])))
    w.op("MatMul", [x, y], dtype, node.name)


@exports("softmax", "log_softmax")
def _softmax(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    w.op("Softmax" if node.op == "softmax" else "LogSoftmax", args, dtype, node.name, axis=-1)


def _one_hot(w: _Writer, labels: str, classes: int, dtype: np.dtype) -> str:
    """Class indices as one-hot rows along a new last axis, in ``dtype``."""
    column = w.op("Unsqueeze", [labels, w.ints([-1], "axes")], w.dtypes[labels])
    numbers = w.constant(np.arange(classes, dtype=w.dtypes[labels]), "classes")
    truth = w.op("Equal", [column, numbers], np.dtype(bool))
    return w.op("Cast", [truth], dtype, to=w.onnx.helper.np_dtype_to_tensor_dtype(dtype))


@exports("one_hot")
def _one_hot_node(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    w.op("Identity", [_one_hot(w, args[0], _layer(w, node).classes, dtype)], dtype, node.name)


@exports("softmax_with_loss")
def _softmax_with_loss(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    """-sum(t * log_softmax(x)) / N, t one-hot (class indices made so)."""
    shape = _shape(w, node.args[0])
    x, t = args
    log_p = w.op("LogSoftmax", [x], dtype, axis=-1)
    if _shape(w, node.args[1]) != shape:
        t = _one_hot(w, t, shape[-1], dtype)
    total = w.op("ReduceSum", [w.op("Mul", [w.as_dtype(t, dtype), log_p], dtype)], dtype, keepdims=0)
    rows = w.constant(np.array(math.prod(shape[:-1]), dtype), "rows")
    w.op("Div", [w.op("Neg", [total], dtype), rows], dtype, node.name)


@exports("batchnorm")
def _batchnorm(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    """The training form, as the layer computes it: statistics of the batch (and of H, W)."""
    shape = _shape(w, node.args[0])
    x, gamma, beta = (w.as_dtype(arg, dtype) for arg in args)
    axes = w.ints([0] if len(shape) == 2 else [0, 2, 3], "axes")
    centered = w.op("Sub", [x, w.op("ReduceMean", [x, axes], dtype, keepdims=1)], dtype)
    variance = w.op("ReduceMean", [w.op("Mul", [centered, centered], dtype), axes], dtype, keepdims=1)
    eps = w.constant(np.array(_layer(w, node).eps, dtype), "eps")
    normal = w.op("Div", [centered, w.op("Sqrt", [w.op("Add", [variance, eps], dtype)], dtype)], dtype)
    if len(shape) == 4:
        per_channel = w.ints([1, shape[1], 1, 1], "per_channel")
        gamma, beta = (w.op("Reshape", [value, per_channel], dtype) for value in (gamma, beta))
    w.op("Add", [w.op("Mul", [gamma, normal], dtype), beta], dtype, node.name)


# --- images --------------------------------------------------------------------------------


def _pair(value: Any) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def _window_attrs(layer: Any) -> dict[str, Any]:
    pad = _pair(layer.pad)
    return {"strides": _pair(layer.stride), "pads": pad + pad}


@exports("conv2d")
def _conv2d(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    kernel = list(_shape(w, node.args[1])[2:])
    w.op("Conv", [w.as_dtype(arg, dtype) for arg in args], dtype, node.name, kernel_shape=kernel,
         **_window_attrs(_layer(w, node)))


@exports("max_pool2d", "avg_pool2d")
def _pool(w: _Writer, node: NodeSpec, args: list[str], dtype: np.dtype) -> None:
    layer = _layer(w, node)
    extra = {"count_include_pad": 1} if node.op == "avg_pool2d" else {}
    if layer.ceil:
        extra["ceil_mode"] = 1
    w.op("MaxPool" if node.op == "max_pool2d" else "AveragePool", args, dtype, node.name,
         kernel_shape=_pair(layer.size), **_window_attrs(layer), **extra)


# --- the model -----------------------------------------------------------------------------


def _dtype(value: Any) -> np.dtype:
    return np.result_type(value) if not isinstance(value, float) else np.dtype(np.float64)


def model(graph: Graph, params: Collection[str] = (), extra_outputs: Collection[str] = ()) -> Any:
    """The ONNX ModelProto of ``graph`` after a forward pass: its inputs graph inputs, those in
    ``params`` initializers holding their values; its output the graph output, and the nodes of
    ``extra_outputs`` graph outputs after it."""
    try:
        import onnx
    except ImportError:
        raise CgraphError(INSTALL) from None
    spec = graph.spec
    for name in params:
        if name not in spec.inputs:
            from .arrays import suggest

            kind = "is a node, not an input" if name in spec.nodes else f"is not an input{suggest(name, spec.inputs)}"
            raise CgraphError(f"--params: '{name}' {kind}")
    for name, node in spec.nodes.items():
        if node.op in REFUSED or node.op not in EXPORT:
            reason = REFUSED.get(node.op, "it has no ONNX form")
            raise CgraphError(f"node '{name}': op '{node.op}' cannot be written as ONNX: {reason}", spec.position(name))
    w = _Writer(onnx, graph)
    inputs = []
    for name, item in spec.inputs.items():
        w.dtypes[name] = item.value.dtype
        if name in params:
            w.initializers.append(onnx.numpy_helper.from_array(np.asarray(item.value), name))
        else:
            inputs.append(_value_info(onnx, name, item.value.dtype, item.value.shape))
    for name, node in spec.nodes.items():
        w.current = name
        dtype = _dtype(graph.values[name])
        args = [w.number(arg, _float_type(graph, node, dtype)) if arg in spec.constants else arg for arg in node.args]
        EXPORT[node.op](w, node, args, dtype)
    for name in extra_outputs:
        if name not in spec.nodes:
            raise CgraphError(f"--node: '{name}' is an input; the graph outputs written are nodes")
    chosen = dict.fromkeys([spec.output, *extra_outputs])
    outputs = [_value_info(onnx, name, w.dtypes[name], _shape(w, name)) for name in chosen]
    onnx_graph = onnx.helper.make_graph(w.nodes, "cgraph", inputs, outputs, w.initializers)
    proto = onnx.helper.make_model(onnx_graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name=PRODUCER)
    proto.ir_version = min(proto.ir_version, 9)  # what onnxruntime of 2023 on reads
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CgraphError(f"the model written does not pass onnx.checker: {first}") from None
    return proto


def _float_type(graph: Graph, node: NodeSpec, dtype: np.dtype) -> np.dtype:
    """The dtype of a number in a formula: that of the node's other float inputs (numpy's weak
    Python floats), else the node's own where it is a float type, else float64."""
    others = [_dtype(graph.values[arg]) for arg in node.args if arg not in graph.spec.constants]
    floats = [kind for kind in others if kind.kind == "f"]
    if floats:
        return np.result_type(*floats)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _value_info(onnx: Any, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> Any:
    return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape))


def write(graph: Graph, path: str, params: Collection[str], extra_outputs: Collection[str], named: str) -> None:
    """Write ``graph`` as an ONNX model to ``path``, whole or not at all, never over a file it read."""
    from .save import Guard, atomic_write

    data = model(graph, params, extra_outputs).SerializeToString()
    atomic_write(path, lambda file: file.write(data), Guard(graph.spec), named)
