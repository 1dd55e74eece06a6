"""JSON output holds exactly the numbers of the run: every value and gradient as its float64
value (NaN and infinities as strings), whatever the array's dtype, layout or source."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import cgraph
from cgraph import render

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def expected(value) -> object:
    """The value as nested lists of Python floats, written independently of cgraph (None, the
    gradient of a constant in a formula, as null)."""
    if value is None:
        return None
    def cell(number: float) -> object:
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return number
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return cell(float(array))
    return [expected(row) for row in array]


def check_document(graph: cgraph.Graph) -> None:
    document = json.loads(b"".join(render.render_json(graph)))
    assert document["output"] == graph.output
    if graph.grads:
        assert document["dout"] == expected(graph.dout)
    assert list(document["nodes"]) == [*graph.spec.inputs, *graph.spec.nodes]
    for name, entry in document["nodes"].items():
        assert entry["value"] == expected(graph.values[name]), name
        assert entry["shape"] == list(graph.shapes[name])
        assert entry["dtype"] == render.dtype_name(graph.values[name])
        if graph.grads:
            assert entry["grad"] == expected(graph.grads[name]), name
        if name in graph.spec.nodes:
            assert entry["inputs"] == list(graph.spec.nodes[name].args)
            assert entry["input_shapes"] == [list(graph.shapes[arg]) for arg in graph.spec.nodes[name].args]
            if graph.grads:
                assert entry["input_grads"] == [expected(grad) for grad in graph.input_grads[name]], name
    lines = b"".join(render.render_jsonl(graph)).splitlines()
    assert [json.loads(line) for line in lines] == [{"name": name, **entry} for name, entry in document["nodes"].items()]


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda path: path.name)
def test_every_example_writes_its_numbers_exactly(path: Path) -> None:
    graph = cgraph.load(path)
    graph.forward()
    check_document(graph)
    graph.backward(1.0)
    check_document(graph)


def test_other_dtypes_layouts_and_non_finite_numbers(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.array([[0.1, 2.0], [3.0, 1e-300]]))
    text = f"""
inputs:
  m: {{file: {tmp_path / "m.npy"}}}
  h: {{value: [0.1, 65504], dtype: float16}}
  f: {{value: [[0.1, 0.2]], dtype: float32}}
  z: 0.0
nodes:
  t: {{op: transpose, inputs: [m]}}
  s: {{op: sum, inputs: [t], axis: 0}}
  hh: {{op: mul, inputs: [h, h]}}
  ff: {{op: add, inputs: [f, s]}}
  d: {{op: div, inputs: [ff, z]}}
  l: {{op: log, inputs: [z]}}
  out: {{op: sum, inputs: [d]}}
  all: {{op: add, inputs: [out, l]}}
  total: {{op: add, inputs: [all, hh]}}
"""
    graph = cgraph.loads(text)
    graph.backward(1.0)
    assert isinstance(graph.values["m"], np.memmap) and not graph.values["t"].flags.c_contiguous
    assert not graph.all_finite()
    check_document(graph)
    finite = cgraph.loads(text.replace("z: 0.0", "z: 3.0").replace("65504", "2"))
    finite.backward(1.0)
    assert finite.all_finite()
    check_document(finite)
