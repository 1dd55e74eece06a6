"""The graph's compiled plan gives exactly what the layers' own methods give.

The plan calls each broadcasting layer's ``grads`` and sums over broadcast axes only where
an input was broadcast; these tests hold it to the generic ``backward`` bit for bit, its
broadcasting rules and sums to numpy's own, and the one NaN/infinity check over all
arrays to a check of each array by itself.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cgraph
from cgraph.layers import REGISTRY, BroadcastLayer, broadcast_shapes, sum_to, summing_to

SHAPES = [(), (0,), (1,), (2,), (3,), (1, 1), (2, 1), (1, 2), (3, 2), (2, 3), (0, 1), (2, 0), (1, 3, 1), (2, 1, 2)]


def test_broadcast_shapes_agrees_with_numpy() -> None:
    for count in (1, 2, 3):
        for shapes in itertools.product(SHAPES, repeat=count):
            try:
                expected = tuple(np.broadcast_shapes(*shapes))
            except ValueError:
                with pytest.raises(ValueError, match="do not broadcast"):
                    broadcast_shapes(*shapes)
                continue
            assert broadcast_shapes(*shapes) == expected, shapes


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_planned_sum_is_sum_to_bit_for_bit_and_numpy_sum(data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    extra = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4))
    grad_shape = extra + tuple(data.draw(st.sampled_from([size, 3])) if size == 1 else size for size in shape)
    assume(grad_shape != shape)  # the plan sums only where an input was broadcast
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.float16]))
    grad = data.draw(hnp.arrays(dtype, grad_shape, elements=st.floats(-1e3, 1e3, width=16)))
    planned = summing_to(grad_shape, shape)(grad)
    generic = sum_to(grad, shape)
    assert np.shape(planned) == shape and np.asarray(planned).dtype == dtype
    assert np.asarray(planned).tobytes() == np.asarray(generic).tobytes()
    # numpy's sum over the broadcast axes, reshaped: the same numbers
    lead = len(grad_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad_shape[lead + i] != 1)
    assert np.asarray(planned).tobytes() == np.sum(grad, axis=axes).reshape(shape).tobytes()


BINARY = sorted(op for op, cls in REGISTRY.items() if issubclass(cls, BroadcastLayer))


@st.composite
def broadcast_graphs(draw):
    """Inputs of shapes that broadcast together, and a chain of broadcasting ops using them."""
    base = tuple(draw(st.lists(st.integers(1, 3), max_size=3)))
    inputs = {}
    for i in range(3):
        drop = draw(st.integers(0, len(base)))
        shape = tuple(size if draw(st.booleans()) else 1 for size in base[drop:])
        inputs[f"in{i}"] = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.5, 2.0)))
    nodes, available = {}, list(inputs)
    for j in range(draw(st.integers(1, 6))):
        args = [draw(st.sampled_from(available)), draw(st.sampled_from(available))]
        nodes[f"n{j}"] = {"op": draw(st.sampled_from(BINARY)), "inputs": args}
        available.append(f"n{j}")
    return {"inputs": inputs, "nodes": nodes, "output": f"n{len(nodes) - 1}"}


@settings(max_examples=100, deadline=None)
@given(broadcast_graphs(), st.booleans())
def test_plan_gives_each_layers_own_backward_bit_for_bit(data: dict, floats: bool) -> None:
    if floats:  # the same graph on Python floats, where every value is 0-d
        data = {**data, "inputs": {name: float(np.sum(value)) for name, value in data["inputs"].items()}}
    graph = cgraph.from_dict(data)
    grads = graph.backward(1.0)
    reached = {graph.output}
    for name, node in reversed(graph.spec.nodes.items()):
        if name in reached:
            reached.update(node.args)
    for name, layer in graph.layers.items():
        if name not in reached:
            continue  # its gradient is 0 without running its backward
        with np.errstate(all="ignore"):  # sub can make a 0, and pow and log of it are infinite
            generic = layer.backward(grads[name])  # the layer still holds its inputs from the run
        for planned, expected in zip(graph.input_grads[name], generic):
            planned, expected = np.asarray(planned), np.asarray(expected)  # a 0-d array or a numpy scalar
            assert (planned.shape, planned.dtype) == (expected.shape, expected.dtype)
            assert planned.tobytes() == expected.tobytes(), name


def _graph(inputs: dict) -> cgraph.Graph:
    nodes = {"y": {"op": "mul", "inputs": ["a", "b"]}, "z": {"op": "add", "inputs": ["y", "b"]}}
    return cgraph.from_dict({"inputs": inputs, "nodes": nodes})


@pytest.mark.parametrize(
    ("inputs", "finite"),
    [
        ({"a": 1.0, "b": 2.0}, True),
        ({"a": 1e308, "b": 1e308}, False),  # y overflows
        ({"a": 1e300, "b": 1.0}, True),  # values and gradients finite, their sum is not
        ({"a": np.nan, "b": 1.0}, False),
        ({"a": [1.0, 2.0], "b": [3.0, -np.inf]}, False),
        ({"a": [1.0, 2.0], "b": 3.0}, True),
        ({"a": np.ones(10_000), "b": 3.0}, True),  # a large array, checked by itself
        ({"a": np.append(np.ones(9_999), np.nan), "b": 3.0}, False),
        ({"a": {"value": [1.0, 2.0], "dtype": "float16"}, "b": {"value": 6e4, "dtype": "float16"}}, False),
    ],
)
def test_one_check_over_all_arrays_agrees_with_each_array_checked(inputs: dict, finite: bool) -> None:
    graph = _graph(inputs)
    graph.forward()
    each = all(np.isfinite(value).all() for value in graph.values.values())
    assert graph.all_finite() is each
    graph.backward(1.0)
    each = all(np.isfinite(array).all() for array in [*graph.values.values(), *graph.grads.values(),
                                                         *(g for gs in graph.input_grads.values() for g in gs)])
    assert graph.all_finite() is each is finite
    assert (graph.non_finite() == []) is finite


def test_set_input_of_the_same_shape_keeps_the_plan() -> None:
    graph = _graph({"a": [1.0, 2.0], "b": 3.0})
    plan = graph._plan
    graph.set_input("a", [5.0, 7.0])
    assert graph._plan is plan
    assert graph.backward(1.0)["b"] == 5.0 + 7.0 + 2
    graph.set_input("a", [[1.0], [2.0]])  # a new shape: a new plan
    assert graph._plan is not plan
    np.testing.assert_array_equal(graph.backward(1.0)["a"], [[3.0], [3.0]])
