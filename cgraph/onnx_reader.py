"""ONNX models as graph specs, beside the YAML reader: the model's inputs and initializers become
inputs, each node cgraph nodes (by the op table in onnx_ops), named by its first output.

A model file is not trusted: the protobuf is parsed whole or refused in one line, every tensor's
declared size is checked against the limits before its data is read or allocated, and external
data is read only from files inside the model's folder.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np

from .arrays import DEFAULT_MAX_ELEMENTS, MAX_DIMS, suggest
from .errors import CgraphError, Position
from .onnx_ops import FIRST_OPSET, NEWEST_OPSET, Emitter, OnnxNode, converter, supported
from .onnx_wire import Span, split_raw_data
from .spec import GraphSpec, InputSpec

INSTALL = "reading ONNX models needs the onnx package: pip install 'cgraph-calc[onnx]'"
MAX_NAME_LENGTH = 1000
FLOAT_KINDS = "f"

def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise CgraphError(INSTALL) from None
    return onnx


def read_model(
    raw: bytes,
    source: str,
    base_dir: str = ".",
    overrides: Mapping[str, np.ndarray] | None = None,
    output: str | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    max_memory: int | None = None,
) -> GraphSpec:
    """The GraphSpec of the ONNX model serialized in ``raw``; ``overrides`` give the inputs' values."""
    onnx = _onnx()
    top = Position(source)
    split = split_raw_data(raw)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw if split is None else split[0])
    except Exception as error:  # protobuf's DecodeError, or a RecursionError on deep nesting
        raise CgraphError(f"not an ONNX model: the protobuf is truncated or corrupt ({type(error).__name__})", top) from None
    graph = model.graph
    if not model.ir_version or not graph.node:
        raise CgraphError("not an ONNX model: it has no IR version or no graph nodes", top)
    opset = _opset(model, top)
    tensors = _Tensors(onnx, source, base_dir, max_elements, raw)
    tensors.check_budget(graph, max_memory)
    overrides = dict(overrides or {})
    given = frozenset(overrides)

    wanted = output if output is not None else graph.output[0].name if graph.output else None
    # Each node's op, inputs and outputs read once: every read of a protobuf field makes new objects.
    read = [(proto, OnnxNode(proto.op_type, tuple(proto.input), tuple(proto.output), {}, opset)) for proto in graph.node]
    nodes = _feeding(read, wanted)
    used = {name for _, node in nodes for name in node.inputs}
    e = Emitter(source, max_elements=max_elements)
    spans = split[1] if split is not None else [None] * len(graph.initializer)
    initializers = {tensor.name: (tensor, span) for tensor, span in zip(graph.initializer, spans)}
    declared = {value.name: value for value in graph.input}
    missing = []
    for value in graph.input:
        name = _checked_name(value.name, top)
        dtype, dims = _value_type(onnx, value, top)
        if name in overrides:
            array = _given(overrides.pop(name), name, dtype, dims)
        elif name in initializers:
            array = tensors.array(*initializers[name])
        elif name in used:
            missing.append((name, dtype, dims))
            continue
        else:
            continue  # it feeds other outputs only
        if array.dtype.kind in FLOAT_KINDS:
            e.inputs[name] = InputSpec(name, array, top)
            e.shapes[name], e.dtypes[name] = array.shape, array.dtype
        else:  # integers (a shape, axes, labels): an attribute where used as one, else an input
            e.set_static(name, array)
    if missing:
        raise CgraphError(_missing_message(missing), top)
    _check_dims(e, declared, top)
    for name, (tensor, span) in initializers.items():
        if name in declared:
            continue
        _checked_name(name, top)
        if name in overrides:  # its declared dtype, its data not read
            array = _given(overrides.pop(name), name, tensors.declared(tensor, f"tensor '{name}'")[0], None)
        else:
            array = tensors.array(tensor, span)
        e.set_static(name, array)
        if array.dtype.kind in FLOAT_KINDS:
            e.parameters.add(name)
    if overrides:
        name = next(iter(overrides))
        kind = "is a node, not an input" if any(name in node.outputs for _, node in read) else \
            f"is not an input{suggest(name, [*declared, *initializers])}"
        raise CgraphError(f"--set: '{name}' {kind}")

    for proto, node in nodes:
        _convert(onnx, e, proto, node, tensors, top)

    chosen = _output(e, graph, output, top)
    parameters = [name for name in e.inputs if name in initializers and name not in declared]
    ordered = {name: e.inputs[name] for name in [*[n for n in e.inputs if n not in parameters], *parameters]}
    return GraphSpec(source, ordered, e.nodes, chosen, given, None, e.constants)


def _feeding(nodes: list[tuple[Any, OnnxNode]], output: str | None) -> list[tuple[Any, OnnxNode]]:
    """The (proto, node) pairs the tensor ``output`` is computed from, in the model's order (all of
    them where no node makes it): the model's other outputs may need inputs that this one does not."""
    producers = {name: index for index, (_, node) in enumerate(nodes) for name in node.outputs}
    if output not in producers:
        return nodes
    needed, pending = set(), [output]
    while pending:
        index = producers.get(pending.pop())
        if index is None or index in needed:
            continue
        needed.add(index)
        pending.extend(nodes[index][1].inputs)
    return [pair for index, pair in enumerate(nodes) if index in needed]


def _opset(model: Any, top: Position) -> int:
    versions = {entry.domain: entry.version for entry in model.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    if opset is None:
        raise CgraphError("the model imports no version of the default ONNX opset", top)
    if opset < FIRST_OPSET:
        raise CgraphError(f"opset {opset} is older than cgraph reads: opsets {FIRST_OPSET} to {NEWEST_OPSET}; "
                          "convert it with onnx.version_converter", top)
    return int(opset)


def _checked_name(name: str, top: Position) -> str:
    if not name:
        raise CgraphError("a tensor of the model has an empty name", top)
    if not name.isprintable():
        raise CgraphError(f"the tensor name '{name}' has characters that are not printable", top)
    if len(name) > MAX_NAME_LENGTH:
        raise CgraphError(f"a tensor name of {len(name)} characters is longer than the limit of {MAX_NAME_LENGTH}", top)
    return name


def _value_type(onnx: Any, value: Any, top: Position) -> tuple[np.dtype, list[Any] | None]:
    """A graph input's declared dtype and dims (ints, names of symbolic dims, or None where unknown)."""
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        raise CgraphError(f"input '{value.name}' is a {kind or 'value of no type'}; cgraph takes tensors", top)
    tensor_type = value.type.tensor_type
    dtype = _np_dtype(onnx, tensor_type.elem_type, f"input '{value.name}'", top)
    if not tensor_type.HasField("shape"):
        return dtype, None
    dims = [dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None) for dim in tensor_type.shape.dim]
    return dtype, dims


_DTYPES: dict[int, np.dtype] = {}  # the ONNX element types cgraph computes in, as found


def _np_dtype(onnx: Any, elem_type: int, what: str, top: Position) -> np.dtype:
    dtype = _DTYPES.get(elem_type)
    if dtype is not None:
        return dtype
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        dtype = None
    if dtype is None or dtype.kind not in "fiub" or dtype.itemsize > 8:
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() else elem_type
        raise CgraphError(f"{what} has dtype {name}, which cgraph does not compute", top)
    _DTYPES[elem_type] = dtype
    return dtype


def _shown_dims(dims: list[Any] | None) -> str:
    return "unknown" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _missing_message(missing: list[tuple[str, np.dtype, list[Any] | None]]) -> str:
    described = [f"'{name}' ({dtype.name}, shape {_shown_dims(dims)})" for name, dtype, dims in missing]
    if len(missing) == 1:
        return f"input {described[0]} has no value; give it with --set '{missing[0][0]}=@x.npy'"
    return (f"inputs {', '.join(described)} have no values; give each with --set NAME=VALUE "
            f"(such as --set '{missing[0][0]}=@x.npy')")


def _given(value: np.ndarray, name: str, dtype: np.dtype, dims: list[Any] | None) -> np.ndarray:
    """A --set value for input ``name`` in its declared dtype, its shape checked against ``dims``."""
    value = np.asarray(value)

    def declared() -> str:
        return f"input '{name}' ({dtype.name}, shape {_shown_dims(dims)})"

    if value.dtype.kind not in "fiub":
        raise CgraphError(f"--set {name}: {declared()} cannot take values of dtype {value.dtype.name}")
    if dims is not None:
        if len(dims) != value.ndim or any(type(d) is int and d != size for d, size in zip(dims, value.shape)):
            raise CgraphError(f"--set {name}: a value of shape {list(value.shape)} does not fit {declared()}")
    if value.dtype == dtype:
        return value
    if dtype.kind in "iub" and value.dtype.kind == "f":
        if not np.all(np.isfinite(value)) or not np.all(value == np.round(value)):
            raise CgraphError(f"--set {name}: {declared()} takes whole numbers; the value of dtype "
                              f"{value.dtype.name} has others")
    with np.errstate(invalid="ignore", over="ignore"):
        return value.astype(dtype)


def _check_dims(e: Emitter, declared: dict[str, Any], top: Position) -> None:
    """The symbolic dims of the inputs (``batch``) have one size across them."""
    sizes: dict[str, tuple[int, str]] = {}
    for name, value in declared.items():
        shape = e.shapes.get(name)
        if shape is None or not value.type.tensor_type.HasField("shape"):
            continue
        for dim, size in zip(value.type.tensor_type.shape.dim, shape):
            if dim.HasField("dim_param") and dim.dim_param:
                seen = sizes.setdefault(dim.dim_param, (size, name))
                if seen[0] != size:
                    raise CgraphError(f"dimension '{dim.dim_param}' is {seen[0]} in input '{seen[1]}' but {size} "
                                      f"in input '{name}'", top)


class _Tensors:
    """Tensor protos as arrays, each refused before its data is touched where its declared size is
    over the limits, or where its external data lies outside the model's folder. ``model`` is the
    serialized model, which holds the raw data that the parser was not given (at a tensor's span)."""

    def __init__(self, onnx: Any, source: str, base_dir: str, max_elements: int, model: bytes) -> None:
        self.onnx, self.top, self.base_dir, self.max_elements = onnx, Position(source), base_dir, max_elements
        self.model = model

    def declared(self, tensor: Any, what: str) -> tuple[np.dtype, tuple[int, ...]]:
        dtype = _np_dtype(self.onnx, tensor.data_type, what, self.top)
        dims = tuple(tensor.dims)
        if len(dims) > MAX_DIMS or any(d < 0 for d in dims):
            raise CgraphError(f"{what} declares the shape {list(dims)}: at most {MAX_DIMS} dimensions, none negative",
                              self.top)
        count = math.prod(dims)
        if count > self.max_elements or max(dims, default=0) > self.max_elements:
            raise CgraphError(f"{what} declares {count:,} elements (shape {list(dims)}), over the limit of "
                              f"{self.max_elements:,} (raise it with --max-elements)", self.top)
        return dtype, dims

    def check_budget(self, graph: Any, max_memory: int | None) -> None:
        """The initializers' declared bytes within ``max_memory``, before any is read."""
        if max_memory is None:
            return
        from .budget import format_bytes

        total = 0
        for tensor in graph.initializer:
            dtype, dims = self.declared(tensor, f"initializer '{tensor.name}'")
            total += dtype.itemsize * math.prod(dims)
        if total > max_memory:
            raise CgraphError(f"the model's initializers declare {format_bytes(total)}, over the limit of "
                              f"{format_bytes(max_memory)} (raise it with --max-memory)", self.top)

    def array(self, tensor: Any, span: Span | None = None, what: str | None = None) -> np.ndarray:
        """The array of ``tensor``, whose raw data is ``self.model[span]`` where the span is given."""
        what = what or f"tensor '{tensor.name}'"
        dtype, dims = self.declared(tensor, what)
        if tensor.data_location == self.onnx.TensorProto.EXTERNAL:
            return self._external(tensor, dtype, dims, what)
        if span is not None:
            start, end = span
            expected = math.prod(dims) * dtype.itemsize
            if end - start != expected:
                raise CgraphError(f"{what} declares shape {list(dims)} ({expected:,} bytes) but holds "
                                  f"{end - start:,} bytes", self.top)
            return np.frombuffer(self.model, dtype.newbyteorder("<"), math.prod(dims), start).astype(dtype).reshape(dims)
        if tensor.HasField("raw_data") and dtype.kind in "fiu":
            raw = tensor.raw_data  # a copy of the bytes each time it is read: read once
            expected = math.prod(dims) * dtype.itemsize
            if len(raw) != expected:
                raise CgraphError(f"{what} declares shape {list(dims)} ({expected:,} bytes) but holds "
                                  f"{len(raw):,} bytes", self.top)
            return np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype).reshape(dims)  # writable, as a span's
        if tensor.HasField("raw_data"):
            expected = math.prod(dims) * dtype.itemsize
            if len(tensor.raw_data) != expected:
                raise CgraphError(f"{what} declares shape {list(dims)} ({expected:,} bytes) but holds "
                                  f"{len(tensor.raw_data):,} bytes", self.top)
        try:
            array = self.onnx.numpy_helper.to_array(tensor)
        except Exception:
            raise CgraphError(f"{what} holds data that does not fit its declared shape {list(dims)}", self.top) from None
        if array.shape != dims:
            raise CgraphError(f"{what} holds data that does not fit its declared shape {list(dims)}", self.top)
        return np.ascontiguousarray(array, dtype)

    def _external(self, tensor: Any, dtype: np.dtype, dims: tuple[int, ...], what: str) -> np.ndarray:
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        folder = os.path.realpath(self.base_dir)
        if not location or os.path.isabs(location) or ".." in location.replace("\\", "/").split("/"):
            raise CgraphError(f"{what}: external data '{location}' must be a file inside the model's folder", self.top)
        path = os.path.realpath(os.path.join(folder, location))
        if os.path.commonpath([folder, path]) != folder:
            raise CgraphError(f"{what}: external data '{location}' leads out of the model's folder", self.top)
        try:
            offset = int(entries.get("offset", 0))
            length = int(entries["length"]) if "length" in entries else None
        except ValueError:
            raise CgraphError(f"{what}: external data has an offset or length that is not a number", self.top) from None
        expected = math.prod(dims) * dtype.itemsize
        if length is not None and length != expected:
            raise CgraphError(f"{what} declares shape {list(dims)} ({expected:,} bytes) but its external data "
                              f"has length {length:,}", self.top)
        try:
            with open(path, "rb") as file:
                if not os.path.isfile(path):
                    raise CgraphError(f"{what}: external data '{location}' is not a file", self.top)
                size = os.fstat(file.fileno()).st_size
                if offset < 0 or offset + expected > size:
                    raise CgraphError(f"{what}: external data '{location}' has {size:,} bytes, too few for "
                                      f"{expected:,} from offset {offset:,}", self.top)
                file.seek(offset)
                data = file.read(expected)
        except OSError as error:
            raise CgraphError(f"{what}: cannot read external data '{location}': {error.strerror or error}", self.top) from None
        return np.frombuffer(data, dtype.newbyteorder("<")).astype(dtype).reshape(dims)


def _attributes(onnx: Any, proto: Any, node: OnnxNode, tensors: _Tensors) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for attribute in proto.attribute:
        if attribute.type == onnx.AttributeProto.TENSOR:
            attrs[attribute.name] = tensors.array(attribute.t, None, f"node '{node.name}' attribute '{attribute.name}'")
        elif attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            attrs[attribute.name] = None  # subgraphs: the ops that take them are not in the table
        else:
            value = onnx.helper.get_attribute_value(attribute)
            attrs[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return attrs


def _constant(e: Emitter, node: OnnxNode) -> np.ndarray:
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in node.attrs:
            value = node.attrs[key]
            return value if dtype is None else np.array(value, dtype)
    raise e.fail(f"only tensor and number constants are supported, not {', '.join(node.attrs) or 'an empty one'}")


def _foldable(e: Emitter, node: OnnxNode) -> bool:
    """Whether every input of ``node`` is known when reading and none is a parameter."""
    names = [name for name in node.inputs if name]
    return bool(names) and all(
        name in e.statics and name not in e.inputs and name not in e.parameters for name in names)


def _fold(onnx: Any, e: Emitter, proto: Any, node: OnnxNode, opset: int) -> None:
    """Compute a node of constants now, with onnx's reference implementation."""
    from onnx.reference import ReferenceEvaluator

    names = [name for name in node.inputs if name]
    feeds = {name: e.statics[name] for name in names}
    inputs = [onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
              for name, value in feeds.items()]
    outputs = [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None) for name in node.outputs if name]
    model = onnx.helper.make_model(onnx.helper.make_graph([proto], "fold", inputs, outputs),
                                   opset_imports=[onnx.helper.make_opsetid("", opset)])
    try:
        results = ReferenceEvaluator(model).run(None, feeds)
    except Exception as error:
        raise e.fail(f"cannot compute it from its constant inputs: {type(error).__name__}") from None
    for name, value in zip([name for name in node.outputs if name], results):
        value = np.asarray(value)
        if value.size > e.max_elements:
            raise e.fail(f"its constant result has {value.size:,} elements, over the limit of {e.max_elements:,} "
                         "(raise it with --max-elements)")
        e.set_static(name, value)


def _convert(onnx: Any, e: Emitter, proto: Any, node: OnnxNode, tensors: _Tensors, top: Position) -> None:
    if not node.outputs:
        raise CgraphError(f"a {node.op} node has no outputs", top)
    _checked_name(node.name, top)
    e.node = node
    if proto.domain not in ("", "ai.onnx"):
        raise e.fail(f"ops of domain '{proto.domain}' are not supported, only the default ONNX ops")
    node.attrs = _attributes(onnx, proto, node, tensors)
    opset = node.opset
    if node.op == "Constant":
        e.set_static(node.name, _constant(e, node))
        return
    convert = converter(node.op, opset)
    if convert is None:
        raise e.fail(f"cgraph has no op for it; supported at opset {opset}: {', '.join(supported(opset))}")
    if _foldable(e, node) and node.op not in ("Shape", "Size", "ConstantOfShape"):
        _fold(onnx, e, proto, node, opset)
        return
    convert(e, node)
    for index, name in enumerate(node.outputs[1:], 2):
        if name:
            e.unavailable[name] = (f"it uses output {index} '{name}' of node '{node.name}' ({node.op}), "
                                   "which cgraph does not compute")


def _output(e: Emitter, graph: Any, requested: str | None, top: Position) -> str:
    chosen = requested if requested is not None else graph.output[0].name if graph.output else None
    where = "--output: " if requested is not None else "output: "
    if chosen is None:
        raise CgraphError("the model has no graph output: name one with --output", top)
    if chosen in e.nodes:
        return chosen
    if chosen in e.inputs:
        problem = f"'{chosen}' is an input; the output must be a node"
    elif chosen in e.statics:
        problem = f"'{chosen}' is a constant of the model, computed from constants alone; the output must be a node"
    elif chosen in e.unavailable:
        problem = e.unavailable[chosen]
    else:
        problem = f"unknown node '{chosen}'{suggest(chosen, e.nodes)}"
    raise CgraphError(where + problem, None if requested is not None else top)
