"""Edge cases of the elementwise ops beyond mul and add: division by zero, ties, kinks,
extreme values, and the graph of Python floats.

Gradients in general are checked against finite differences in test_layers.py; here the
expected values are hand computations or independent numpy computations.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from typing import Iterator

import numpy as np
import pytest
from click.testing import CliRunner

import cgraph
from cgraph.cli import cli
from cgraph.layers import MaximumLayer, PowLayer, ReluLayer, SigmoidLayer


@contextlib.contextmanager
def no_warnings() -> Iterator[None]:
    """Fail on any warning: inf and NaN come silently, under the graph's np.errstate."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def graph_of(inputs: dict, nodes: dict) -> cgraph.Graph:
    return cgraph.from_dict({"inputs": inputs, "nodes": nodes})


# --- values at the edges --------------------------------------------------------------


def test_division_by_zero_is_inf_or_nan_with_the_warning():
    text = "inputs: {a: [1, 0, -1], z: 0}\nnodes: {q: {op: div, inputs: [a, z]}}\n"
    result = CliRunner().invoke(cli, ["backward", "-", "--format", "json"], input=text)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["nodes"]["q"]["value"] == ["Infinity", "NaN", "-Infinity"]
    assert "<stdin>:2:9: warning: node 'q' (div) produced NaN or infinity from finite inputs" in result.stderr
    strict = CliRunner().invoke(cli, ["backward", "-", "--strict"], input=text)
    assert strict.exit_code == 1 and "error: node 'q' (div)" in strict.stderr


OVERFLOWS = [
    ("div", [1.0, 0.0], math.inf),
    ("div", [0.0, 0.0], math.nan),
    ("log", [0.0], -math.inf),
    ("log", [-1.0], math.nan),
    ("sqrt", [-1.0], math.nan),
    ("exp", [1000.0], math.inf),
    ("pow", [0.0, -1.0], math.inf),
    ("pow", [-8.0, 1 / 3], math.nan),
    ("pow", [1e300, 2.0], math.inf),
    ("sigmoid", [-1000.0], 0.0),
    ("sigmoid", [1000.0], 1.0),
    ("tanh", [1000.0], 1.0),
]


@pytest.mark.parametrize(("op", "args", "expected"), OVERFLOWS)
def test_python_floats_give_inf_and_nan_not_exceptions(op, args, expected):
    names = [f"a{i}" for i in range(len(args))]
    graph = graph_of(dict(zip(names, args)), {"y": {"op": op, "inputs": names}})
    assert graph._floats  # the graph of 0-d values runs on Python floats
    with no_warnings():
        value = graph.forward()
        graph.backward()
    assert float(value) == expected or math.isnan(expected) and math.isnan(value)


def test_float_graph_gives_the_numbers_of_the_array_graph():
    # The same ops on 0-d values (Python floats) and on 1-element arrays (numpy) agree.
    nodes = {
        "d": {"op": "sub", "inputs": ["a", "b"]}, "q": {"op": "div", "inputs": ["d", "b"]},
        "p": {"op": "pow", "inputs": ["b", "a"]}, "m": {"op": "maximum", "inputs": ["q", "p"]},
        "n": {"op": "neg", "inputs": ["m"]}, "e": {"op": "exp", "inputs": ["n"]}, "l": {"op": "log", "inputs": ["b"]},
        "r": {"op": "sqrt", "inputs": ["b"]}, "u": {"op": "relu", "inputs": ["d"]}, "s": {"op": "sigmoid", "inputs": ["e"]},
        "t": {"op": "tanh", "inputs": ["l"]}, "x1": {"op": "mul", "inputs": ["u", "r"]},
        "x2": {"op": "add", "inputs": ["s", "t"]}, "out": {"op": "mul", "inputs": ["x1", "x2"]},
    }
    assert_float_graph_matches_array_graph(nodes)


def assert_float_graph_matches_array_graph(nodes: dict) -> None:
    floats = graph_of({"a": 2.5, "b": 1.5}, nodes)
    arrays = graph_of({"a": [2.5], "b": [1.5]}, nodes)
    assert floats._floats and not arrays._floats
    floats.backward()
    arrays.backward()
    for name in arrays.values:
        np.testing.assert_allclose(np.ravel(floats.values[name]), arrays.values[name], rtol=1e-15, err_msg=name)
        np.testing.assert_allclose(np.ravel(floats.grads[name]), arrays.grads[name], rtol=1e-15, err_msg=name)


def test_pow_with_a_constant_exponent_input():
    # x ** 2 with the exponent as an input holding 2: dx = 2x; dy = x**2 * log(x), NaN for x < 0
    # (x ** y has no real derivative in y there) and 0 at x = 0, as in PyTorch.
    graph = graph_of({"x": [-3.0, 0.0, 2.0], "two": 2}, {"y": {"op": "pow", "inputs": ["x", "two"]}})
    np.testing.assert_array_equal(graph.forward(), [9.0, 0.0, 4.0])
    grads = graph.backward(np.array([1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(grads["x"], [-6.0, 0.0, 4.0])
    assert math.isnan(grads["two"])
    layer = PowLayer()
    layer.forward(np.array([0.0, 2.0]), np.array(2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_allclose(layer.backward(np.ones(2))[1], 4.0 * math.log(2.0))


def test_pow_at_zero_exponent_has_zero_base_gradient():
    layer = PowLayer()
    np.testing.assert_array_equal(layer.forward(np.array([0.0, 3.0]), np.array([0.0, 0.0])), [1.0, 1.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        dx, dy = layer.backward(np.ones(2))
    np.testing.assert_array_equal(dx, [0.0, 0.0])
    np.testing.assert_allclose(dy, [0.0, math.log(3.0)])


def test_maximum_shares_the_gradient_at_ties():
    layer = MaximumLayer()
    np.testing.assert_array_equal(layer.forward(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])), [2, 2, 3])
    dx, dy = layer.backward(np.array([4.0, 4.0, 4.0]))
    np.testing.assert_array_equal(dx, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(dy, [4.0, 2.0, 0.0])
    # y broadcast: its gradient sums the shares of every row
    layer.forward(np.array([[1.0, 5.0], [2.0, 0.0]]), np.array([2.0, 1.0]))
    dx, dy = layer.backward(np.ones((2, 2)))
    np.testing.assert_array_equal(dx, [[0.0, 1.0], [0.5, 0.0]])
    np.testing.assert_array_equal(dy, [1.5, 1.0])


def test_relu_gradient_is_zero_at_and_below_zero():
    layer = ReluLayer()
    np.testing.assert_array_equal(layer.forward(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0])
    (dx,) = layer.backward(np.array([-5.0, -5.0, -5.0]))
    np.testing.assert_array_equal(dx, [0.0, 0.0, -5.0])
    assert not np.signbit(dx[:2]).any()  # zeros, not -0.0


def test_sigmoid_of_extreme_values_is_finite():
    layer = SigmoidLayer()
    with np.errstate(over="ignore"):
        out = layer.forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(layer.backward(np.ones(3))[0], [0.0, 0.25, 0.0])
