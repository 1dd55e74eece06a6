"""Where an ONNX model's initializers keep their raw data, read from the protobuf wire format.

A protobuf parser copies every bytes field it reads, and reading ``raw_data`` copies it again:
a model's weights would be copied twice. :func:`split_raw_data` finds each initializer's
``raw_data`` in the serialized model and gives the model without them, so the parser reads the
small rest and each large array is copied once, from the model's own bytes. It walks three levels
only (the model, its graph, the graph's initializers), and gives up (None) on anything but the
plain layout every writer produces; the caller then parses the whole model as it is, so a
malformed file gets the parser's verdict.
"""

from __future__ import annotations

# Field numbers of onnx.proto: ModelProto.graph, GraphProto.initializer, TensorProto.data_type
# and TensorProto.raw_data.
MODEL_GRAPH, GRAPH_INITIALIZER, TENSOR_DATA_TYPE, TENSOR_RAW_DATA = 7, 5, 2, 9
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
# The fields walked at most (about a tenth of a second): past them the parser reads the model
# whole, as quick at millions of fields as the walk is slow.
MAX_FIELDS = 100_000
# Initializers smaller than this are left to the parser: copying them twice costs less than the
# walk through their fields.
MIN_SPLIT_BYTES = 16_384
# The TensorProto data types whose raw data is the array's bytes, little-endian: the float and
# integer types numpy has (not bool, whose bytes may be other than 0 and 1, nor the packed ones).
PLAIN_DATA_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13})

Span = tuple[int, int]


class _Irregular(Exception):
    """The bytes are not laid out as the walk expects (truncated, or a field twice)."""


def _varint(data: bytes, at: int, end: int) -> tuple[int, int]:
    """The varint at ``data[at]`` and the position after it."""
    value = shift = 0
    while at < end and shift < 64:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
    raise _Irregular


def _fields(data: bytes, start: int, end: int, limit: int) -> list[tuple[int, int, int, int, int]]:
    """Each field of the message in ``data[start:end]``, at most ``limit`` of them: (number, wire
    type, where the field starts, where its value starts, where it ends)."""
    fields = []
    at = start
    while at < end:
        if len(fields) == limit:
            raise _Irregular
        key = data[at]  # the varints inline where they are one byte, as most keys and sizes are
        key, value_at = (key, at + 1) if key < 0x80 else _varint(data, at, end)
        wire = key & 7
        if wire == LENGTH_DELIMITED:
            if value_at < end and data[value_at] < 0x80:
                stop = value_at + 1 + data[value_at]
                value_at += 1
            else:
                size, value_at = _varint(data, value_at, end)
                stop = value_at + size
        elif wire == VARINT:
            stop = value_at + 1 if value_at < end and data[value_at] < 0x80 else _varint(data, value_at, end)[1]
        elif wire == FIXED64 or wire == FIXED32:
            stop = value_at + (8 if wire == FIXED64 else 4)
        else:  # groups, or no wire type at all
            raise _Irregular
        if key < 8 or stop > end:  # field number 0, or past the message's end
            raise _Irregular
        fields.append((key >> 3, wire, at, value_at, stop))
        at = stop
    return fields


def _key(number: int, wire: int) -> bytes:
    return _encoded((number << 3) | wire)


def _encoded(value: int) -> bytes:
    """``value`` as a varint."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def split_raw_data(model: bytes) -> tuple[bytes, list[Span | None]] | None:
    """The serialized ``model`` without the raw data of its large initializers, and for each
    initializer, in the graph's order, the (start, end) of its raw data in ``model`` (None where it
    kept its data). None where nothing is to be split or the layout is not the plain one."""
    try:
        fields = _fields(model, 0, len(model), MAX_FIELDS)
        graphs = [(wire, at, value_at, stop) for number, wire, at, value_at, stop in fields if number == MODEL_GRAPH]
        if len(graphs) != 1 or graphs[0][0] != LENGTH_DELIMITED:
            return None
        _, graph_at, graph_start, graph_end = graphs[0]
        pieces: list[bytes | memoryview] = []
        spans: list[Span | None] = []
        view, copied_up_to = memoryview(model), graph_start
        graph_fields = _fields(model, graph_start, graph_end, MAX_FIELDS - len(fields))
        left = MAX_FIELDS - len(fields) - len(graph_fields)
        for number, wire, at, value_at, stop in graph_fields:
            if number != GRAPH_INITIALIZER:
                continue
            if wire != LENGTH_DELIMITED:
                return None
            if stop - value_at < MIN_SPLIT_BYTES:
                spans.append(None)
                continue
            tensor_fields = _fields(model, value_at, stop, left)
            left -= len(tensor_fields)
            span, rest = _tensor_raw_data(model, tensor_fields, value_at, stop)
            spans.append(span)
            if span is not None:
                pieces += [view[copied_up_to:at], _key(GRAPH_INITIALIZER, LENGTH_DELIMITED),
                           _encoded(sum(map(len, rest))), *rest]
                copied_up_to = stop
    except _Irregular:
        return None
    if not any(spans):
        return None
    pieces.append(view[copied_up_to:graph_end])
    graph = b"".join(pieces)
    head = b"".join([view[:graph_at], _key(MODEL_GRAPH, LENGTH_DELIMITED), _encoded(len(graph))])
    return b"".join([head, graph, view[graph_end:]]), spans


def _tensor_raw_data(model: bytes, fields: list[tuple[int, int, int, int, int]], start: int,
                     end: int) -> tuple[Span | None, list[memoryview]]:
    """The span of the raw data of the TensorProto in ``model[start:end]``, of ``fields`` (None
    where it has none or its type is not a plain one), and the tensor's other fields, as pieces of
    ``model``."""
    raw_data, data_type = [], None
    for number, wire, at, value_at, stop in fields:
        if number == TENSOR_RAW_DATA:
            if wire != LENGTH_DELIMITED:
                raise _Irregular
            raw_data.append((at, value_at, stop))
        elif number == TENSOR_DATA_TYPE and wire == VARINT:
            data_type = _varint(model, value_at, end)[0]
    if len(raw_data) > 1:
        raise _Irregular  # the parser keeps the last; one is the layout this walk knows
    if not raw_data or data_type not in PLAIN_DATA_TYPES:
        return None, []
    at, value_at, stop = raw_data[0]
    view = memoryview(model)
    return (value_at, stop), [view[start:at], view[stop:end]]
