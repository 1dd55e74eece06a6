"""Graph.set_input: an input replaced in place, checked like --set, with no parsing or rebuilding."""

from __future__ import annotations

import numpy as np
import pytest

import cgraph
from cgraph.errors import CgraphError

ROOT_GRAPHS = __import__("pathlib").Path(__file__).resolve().parent.parent / "graphs"


def test_set_input_changes_the_next_passes_by_hand():
    graph = cgraph.load(ROOT_GRAPHS / "buy_apple_orange.yaml")
    assert graph.forward() == pytest.approx(715.0)
    graph.set_input("tax", 1.2)
    # (100 * 2 + 150 * 3) * 1.2
    assert graph.forward() == pytest.approx(780.0)
    graph.set_input("apple_num", np.float64(4))
    grads = graph.backward()  # runs forward first: the values were cleared
    assert graph.values["price"] == pytest.approx((100 * 4 + 150 * 3) * 1.2)
    assert grads["tax"] == pytest.approx(100 * 4 + 150 * 3)
    assert grads["apple"] == pytest.approx(4 * 1.2)


def test_set_input_does_not_rebuild_layers_or_reparse():
    graph = cgraph.load(ROOT_GRAPHS / "two_layer_net.yaml")
    layers = dict(graph.layers)
    spec = graph.spec
    graph.forward()
    graph.set_input("x", np.zeros((3, 4)))
    graph.backward()
    assert graph.spec is spec and all(graph.layers[name] is layer for name, layer in layers.items())


def test_set_input_matches_a_fresh_load_with_the_same_value():
    rng = np.random.default_rng(0)
    graph = cgraph.load(ROOT_GRAPHS / "two_layer_net.yaml")
    x = rng.standard_normal(graph.shapes["x"])
    graph.set_input("x", x)
    grads = graph.backward()
    fresh = cgraph.load(ROOT_GRAPHS / "two_layer_net.yaml", overrides={"x": x})
    expected = fresh.backward()
    for name in expected:
        np.testing.assert_array_equal(grads[name], expected[name])


def test_set_input_converts_to_the_declared_dtype_and_keeps_arrays_of_it_uncopied():
    graph = cgraph.loads("inputs: {x: {value: [1, 2], dtype: float32}}\nnodes:\n  y: {op: mul, inputs: [x, x]}\n")
    graph.set_input("x", [3, 4])
    assert graph.forward().dtype == np.float32
    np.testing.assert_array_equal(graph.values["y"], [9, 16])
    mine = np.array([5, 6], np.float32)
    graph.set_input("x", mine)
    assert graph.spec.inputs["x"].value is mine


def test_a_new_shape_that_fits_every_node_is_taken():
    graph = cgraph.load(ROOT_GRAPHS / "two_layer_net.yaml")
    rows = 5
    x = np.ones((rows, graph.shapes["x"][1]))
    t = np.eye(graph.shapes["t"][1])[np.arange(rows) % graph.shapes["t"][1]]
    graph.set_inputs({"x": x, "t": t})  # checked together: neither fits the graph alone
    assert graph.shapes["x"] == x.shape and graph.shapes["a2"][0] == rows
    graph.backward()
    assert graph.grads["x"].shape == x.shape


def test_a_scalar_graph_given_an_array_runs_on_arrays():
    graph = cgraph.load(ROOT_GRAPHS / "buy_apple.yaml")
    graph.set_input("apple_num", [1, 2, 3])
    np.testing.assert_allclose(graph.forward(), [110.0, 220.0, 330.0])
    grads = graph.backward()
    np.testing.assert_allclose(grads["apple_num"], [110.0, 110.0, 110.0])  # apple * tax, per element
    assert grads["apple"] == pytest.approx((1 + 2 + 3) * 1.1)  # a 0-d input sums its broadcast gradient


def test_a_shape_that_does_not_fit_is_refused_before_anything_runs():
    graph = cgraph.load(ROOT_GRAPHS / "two_layer_net.yaml")
    graph.backward()
    before = graph.spec.inputs["x"].value
    declared = graph.shapes["x"]
    with pytest.raises(ValueError) as caught:
        graph.set_input("x", np.ones((3, 7)))
    assert isinstance(caught.value, CgraphError)
    message = caught.value.message
    assert message.startswith(f"set_input 'x' shape (3, 7) in place of {declared} does not fit the graph: node 'a1'")
    assert graph.spec.inputs["x"].value is before and graph.shapes["x"] == declared
    assert graph.grads  # nothing was cleared: the graph is as it was


def test_a_batch_of_another_size_given_alone_names_the_node_it_breaks():
    graph = cgraph.load(ROOT_GRAPHS / "two_layer_net.yaml")
    with pytest.raises(CgraphError) as caught:
        graph.set_input("x", np.ones((5, 4)))
    assert caught.value.message == (
        "set_input 'x' shape (5, 4) in place of (3, 4) does not fit the graph: node 'loss': softmax_with_loss "
        "cannot combine shapes a2 (5, 3) and t (3, 3): the labels 't' must be one-hot with the shape (5, 3) of "
        "the scores 'a2', or class indices with shape (5,)")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("taxes", 1.0, "set_input: 'taxes' is not an input (did you mean 'tax'?)"),
    ("price", 1.0, "set_input: 'price' is a node, not an input"),
    ("tax", [[1, 2], [3]], "set_input 'tax': ragged array: this row has 1 items where the first row has 2"),
    ("tax", "a lot", "set_input 'tax': expected a number or a list of numbers, got string 'a lot'"),
    ("tax", np.array(["a"]), "set_input 'tax': the array holds <U1 data; expected real numbers"),
])
def test_bad_values_are_clear_errors(name, value, message):
    graph = cgraph.load(ROOT_GRAPHS / "buy_apple.yaml")
    with pytest.raises(CgraphError) as caught:
        graph.set_input(name, value)
    assert caught.value.message == message


def test_an_array_over_the_element_limit_is_refused():
    graph = cgraph.load(ROOT_GRAPHS / "buy_apple.yaml", max_elements=10)
    with pytest.raises(CgraphError, match=r"over the limits"):
        graph.set_input("tax", np.ones(11))
