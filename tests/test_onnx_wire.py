"""The initializers' raw data found in a model's wire format: the model without them parses as the
protobuf parser reads the whole one, and a load copies each array once, from the model's bytes."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'cgraph-calc[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import cgraph  # noqa: E402
from cgraph.onnx_wire import split_raw_data  # noqa: E402


def _initializers() -> list[TensorProto]:
    """Initializers of each kind, the large ones just over the size split off."""
    rng = np.random.default_rng(0)
    return [
        numpy_helper.from_array(rng.standard_normal((64, 80)).astype(np.float32), "w"),  # raw_data, large
        numpy_helper.from_array(rng.standard_normal(80).astype(np.float64), "b"),  # raw_data, small
        helper.make_tensor("f", TensorProto.FLOAT, [5000], np.arange(5000.0)),  # float_data, no raw_data
        numpy_helper.from_array(rng.standard_normal(2100), "table"),  # raw_data, float64, large
        numpy_helper.from_array(np.arange(2100, dtype=np.int64), "indices"),  # raw_data, integers, large
        numpy_helper.from_array(np.arange(17000) % 3 == 0, "mask"),  # bool: left to the parser
    ]


def _model_bytes() -> bytes:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)], _initializers())
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _parsed(raw: bytes) -> onnx.ModelProto | None:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except Exception:  # the parser's verdict on bytes that are not a model
        return None
    return model


def _check_against_the_parser(raw: bytes) -> None:
    """Where split_raw_data splits ``raw``: the rest parses as the whole does with those raw_data
    fields cleared, and each span holds that tensor's raw_data."""
    split = split_raw_data(raw)
    if split is None:
        return
    rest, spans = split
    whole, parsed = _parsed(raw), _parsed(rest)
    assert (whole is None) == (parsed is None)
    if whole is None:
        return
    assert len(spans) == len(whole.graph.initializer)
    for tensor, span in zip(whole.graph.initializer, spans):
        if span is not None:
            assert raw[span[0]:span[1]] == tensor.raw_data
            tensor.ClearField("raw_data")
    assert parsed == whole


def test_the_rest_parses_as_the_whole_and_the_spans_hold_the_raw_data() -> None:
    raw = _model_bytes()
    rest, spans = split_raw_data(raw)
    whole = _parsed(raw)
    split = {tensor.name: span is not None for tensor, span in zip(whole.graph.initializer, spans)}
    assert split == {"w": True, "b": False, "f": False, "table": True, "indices": True, "mask": False}
    assert len(rest) < len(raw) - (64 * 80 * 4 + 2100 * 8 + 2100 * 8)
    _check_against_the_parser(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_changed_or_cut_bytes_split_as_the_parser_reads_them_or_not_at_all(data: st.DataObject) -> None:
    raw = bytearray(_model_bytes())
    for _ in range(data.draw(st.integers(0, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.just(len(raw)), st.integers(0, len(raw))))
    _check_against_the_parser(bytes(raw[:cut]))


def _varint(value: int) -> bytes:
    out = b""
    while value >= 0x80:
        out, value = out + bytes([value & 0x7F | 0x80]), value >> 7
    return out + bytes([value])


def test_a_field_twice_is_left_to_the_parser() -> None:
    tensor = numpy_helper.from_array(np.arange(5000, dtype=np.float32), "w")
    twice = tensor.SerializeToString() + TensorProto(raw_data=np.ones(5000, np.float32).tobytes()).SerializeToString()
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    graph_bytes = graph.SerializeToString() + b"\x2a" + _varint(len(twice)) + twice  # field 5: an initializer
    model.ClearField("graph")
    with_twice = model.SerializeToString() + b"\x3a" + _varint(len(graph_bytes)) + graph_bytes  # field 7: the graph
    assert split_raw_data(with_twice) is None
    assert np.array_equal(cgraph.loads(with_twice).spec.inputs["w"].value, np.ones(5000, np.float32))  # the last wins
    whole = _model_bytes()
    assert split_raw_data(whole + whole) is None  # the graph twice: the parser merges them


def test_millions_of_fields_are_left_to_the_parser_quickly() -> None:
    raw = _model_bytes() + b"\xf8\x07\x01" * 1_000_000  # field 127, unknown, a million times
    started = time.perf_counter()
    assert split_raw_data(raw) is None
    assert time.perf_counter() - started < 2


def test_a_load_copies_each_array_once_into_arrays_of_its_own() -> None:
    graph = cgraph.loads(_model_bytes(), overrides={"x": np.ones((2, 64), np.float32)})
    w, b = map(numpy_helper.to_array, _initializers()[:2])
    for name, expected in (("w", w), ("b", b)):
        value = graph.spec.inputs[name].value
        assert value.dtype == expected.dtype and np.array_equal(value, expected)
        assert value.flags.writeable and value.flags.aligned and value.flags.c_contiguous
    graph.forward()
    assert np.allclose(graph.values["y"], np.ones((2, 64), np.float32) @ w + b)
