"""argmax and equal, the ops of an accuracy node: values by hand, zero gradients, errors.

Their gradients (0) and values on random inputs are also checked in test_layers.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import cgraph
from cgraph.errors import CgraphError
from cgraph.layers import ArgmaxLayer, EqualLayer

ACCURACY = {
    "inputs": {
        "y": [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]],
        "t": [[0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]],
    },
    "nodes": {
        "predicted": {"op": "argmax", "inputs": ["y"], "axis": 1},
        "label": {"op": "argmax", "inputs": ["t"], "axis": 1},
        "hit": {"op": "equal", "inputs": ["predicted", "label"]},
        "accuracy": {"op": "mean", "inputs": ["hit"]},
    },
}


def test_accuracy_node_by_hand():
    graph = cgraph.from_dict(ACCURACY)
    # rows' largest scores are at 1, 0, 2, 1; the labels at 1, 2, 2, 0: rows 0 and 2 agree
    assert graph.forward() == pytest.approx(0.5)
    np.testing.assert_array_equal(graph.values["predicted"], [1, 0, 2, 1])
    np.testing.assert_array_equal(graph.values["label"], [1, 2, 2, 0])
    np.testing.assert_array_equal(graph.values["hit"], [1, 0, 1, 0])
    grads = graph.backward()
    np.testing.assert_array_equal(grads["y"], np.zeros((4, 3)))
    np.testing.assert_array_equal(grads["t"], np.zeros((4, 3)))
    assert graph.values["predicted"].dtype == np.float64


def test_argmax_takes_the_first_of_equal_values_and_flattens_without_an_axis():
    layer = ArgmaxLayer()
    assert float(layer.forward(np.array([[1.0, 3.0], [3.0, 0.0]]))) == 1.0  # the first 3, flattened
    assert ArgmaxLayer(axis=0).forward(np.array([[2.0, 2.0], [2.0, 5.0]])).tolist() == [0.0, 1.0]
    scalar = ArgmaxLayer()
    assert scalar.forward(4.0) == 0.0  # a Python float, in a graph of 0-d values
    assert scalar.backward(1.0) == (0.0,)


def test_argmax_keeps_the_dtype_of_its_input():
    out = ArgmaxLayer(axis=1).forward(np.ones((2, 3), np.float32))
    assert out.dtype == np.float32 and out.shape == (2,)


@pytest.mark.parametrize(("shape", "axis", "expected"), [
    ((2, 3), None, ()), ((2, 3), 0, (3,)), ((2, 3), -1, (2,)), ((4, 5, 6), 1, (4, 6)), ((), None, ()),
])
def test_argmax_shape(shape, axis, expected):
    assert ArgmaxLayer(axis=axis).out_shape(shape) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("inputs: {y: [[1, 2]]}\nnodes:\n  a: {op: argmax, inputs: [y], axis: 2}\n",
     "<string>:3:38: error: node 'a': argmax cannot take shape y (1, 2): axis 2 is out of range for 'y', which has 2 dimensions"),
    ("inputs: {y: {shape: [0, 2], fill: 0}}\nnodes:\n  a: {op: argmax, inputs: [y], axis: 1}\n",
     "<string>:3:3: error: node 'a': argmax cannot take shape y (0, 2): 'y' is empty: it has no largest value"),
    ("inputs: {y: [[1, 2]]}\nnodes:\n  a: {op: argmax, inputs: [y], axis: [1]}\n",
     "<string>:3:38: error: node 'a': argmax attribute 'axis' must be an integer or null, got a list"),
])
def test_argmax_errors_are_placed(text, message):
    with pytest.raises(CgraphError) as caught:
        cgraph.loads(text)
    assert str(caught.value) == message


def test_equal_broadcasts_and_is_zero_or_one():
    layer = EqualLayer()
    out = layer.forward(np.array([[1.0, 2.0], [3.0, 2.0]]), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(out, [[1, 1], [0, 1]])
    dx, dy = layer.backward(np.ones((2, 2)))
    assert dx.shape == (2, 2) and dy.shape == (2,) and not dx.any() and not dy.any()
    assert EqualLayer().forward(2.0, 2.0) == 1.0 and EqualLayer().forward(2.0, 3.0) == 0.0
    assert EqualLayer().forward(np.float32([1, 2]), np.float32([1, 3])).dtype == np.float32


def test_accuracy_written_as_an_expression_is_the_mapping_form_s():
    written = cgraph.from_dict({
        "inputs": ACCURACY["inputs"],
        "nodes": {"accuracy": "mean(equal(argmax(y, axis=1), argmax(t, axis=1)))"},
    })
    assert written.forward() == pytest.approx(0.5)  # rows 0 and 2 of 4, as by hand above
