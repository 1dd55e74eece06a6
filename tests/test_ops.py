"""Edge cases of the ops beyond mul and add: attributes, shapes, division by zero, ties, kinks,
extreme values, labels, and the graph of Python floats.

Gradients in general are checked against finite differences in test_layers.py; here the
expected values are hand computations or independent numpy computations.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from click.testing import CliRunner

import cgraph
from cgraph.cli import cli
from cgraph.errors import CgraphError
from cgraph.layers import (
    REGISTRY,
    MaximumLayer,
    MeanLayer,
    PowLayer,
    ReluLayer,
    ReshapeLayer,
    SigmoidLayer,
    SoftmaxLayer,
    SoftmaxWithLossLayer,
    SumLayer,
    TransposeLayer,
    read_axis,
    read_bool,
    read_shape,
)


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
    assert "<stdin>:2:9: warning: node 'q' (div) produced inf at [0] from finite inputs" in result.stderr
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


# --- attributes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (0, 0), (-1, -1), ([0, 2], (0, 2)), ([], ()), ((1,), (1,)), (np.int64(1), 1)],
)
def test_read_axis_accepts(value, expected):
    assert read_axis(value) == expected


@pytest.mark.parametrize("value", ["0", 1.0, True, [0, 1.5], [None], {"a": 1}, list(range(33))])
def test_read_axis_refuses(value):
    with pytest.raises(ValueError, match="must be an integer, a list of integers or null"):
        read_axis(value)


def test_read_bool_and_shape():
    assert read_bool(True) is True and read_bool(np.bool_(False)) is False
    for bad in (1, 0, "true", None):
        with pytest.raises(ValueError, match="must be true or false"):
            read_bool(bad)
    assert read_shape([2, -1, 0]) == (2, -1, 0)
    assert read_shape(6) == (6,)
    assert read_shape([]) == ()
    for bad in ([-2], [-1, -1], "6", [2.0], None):
        with pytest.raises(ValueError, match="one of which may be -1"):
            read_shape(bad)


def test_layer_keeps_attributes_and_fills_them_into_its_rules():
    layer = SumLayer(axis=[0, 1], keepdims=True)
    assert layer.axis == (0, 1) and layer.keepdims is True
    assert layer.formula == "sum({x}, axis=[0, 1], keepdims=True)"
    assert SumLayer.formula == "sum({x}, axis={axis}, keepdims={keepdims})"
    default = MeanLayer()
    assert default.axis is None and default.keepdims is False
    assert TransposeLayer(axes=[1, 0]).grad_formulas == ("transpose(dout) by the inverse order of axes=[1, 0]",)


def test_layer_refuses_unknown_missing_and_bad_attributes():
    with pytest.raises(TypeError, match="SumLayer has no attribute 'axes'"):
        SumLayer(axes=0)
    with pytest.raises(TypeError, match="ReshapeLayer needs the attribute 'shape'"):
        ReshapeLayer()
    with pytest.raises(ValueError, match="sum attribute 'keepdims' must be true or false"):
        SumLayer(keepdims="no")
    with pytest.raises(TypeError):
        REGISTRY["mul"](axis=0)


def test_str_shows_attributes_and_shapes():
    layer = SumLayer(axis=0)
    assert str(layer) == "SumLayer(axis=0, keepdims=False) (not run)"
    layer.forward(np.ones((2, 3)))
    assert str(layer) == "SumLayer(x.shape=(2, 3), axis=0, keepdims=False) -> out.shape=(3,)"


def test_attributes_are_written_in_the_node_and_shown_in_the_output():
    text = "inputs: {x: [[1, 2, 3], [4, 5, 6]]}\nnodes: {s: {op: sum, inputs: [x], axis: 0}}\n"
    result = CliRunner().invoke(cli, ["backward", "-", "--format", "json"], input=text)
    entry = json.loads(result.stdout)["nodes"]["s"]
    assert entry["attrs"] == {"axis": 0, "keepdims": False}
    assert entry["value"] == [5.0, 7.0, 9.0]
    assert entry["grad"] == [1.0, 1.0, 1.0]
    assert "attrs" not in json.loads(result.stdout)["nodes"]["x"]
    text_out = CliRunner().invoke(cli, ["forward", "-"], input=text).stdout
    assert "s = sum(x)  SumLayer(x=x (2, 3), axis=0, keepdims=False) -> out (3,)" in text_out


def test_attributes_from_json_and_from_a_dict():
    data = {"inputs": {"x": [[1, 2], [3, 4]]}, "nodes": {"t": {"op": "transpose", "inputs": ["x"], "axes": [1, 0]},
                                                        "r": {"op": "reshape", "inputs": ["t"], "shape": [-1]}}}
    np.testing.assert_array_equal(cgraph.loads(json.dumps(data)).forward(), [1, 3, 2, 4])
    np.testing.assert_array_equal(cgraph.from_dict(data).forward(), [1, 3, 2, 4])


def test_bad_attribute_in_json_is_reported_with_its_position():
    text = '{"inputs": {"x": [1, 2]},\n "nodes": {"s": {"op": "sum", "inputs": ["x"], "axis": "0"}}}\n'
    with pytest.raises(CgraphError, match="sum attribute 'axis' must be") as caught:
        cgraph.loads(text, source="g.json")
    assert (caught.value.pos.line, caught.value.pos.col) == (2, 56)  # the value "0"


# --- shapes ---------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)),
    ((1, 2, 3), (4, 3, 2)), ((2, 1, 2, 3), (3, 3, 1)), ((0, 3), (3, 2)), ((2, 0), (0, 3)),
]
MATMUL_BAD = [((), (3,)), ((3,), ()), ((3,), (4,)), ((2, 3), (2, 3)), ((2, 2, 3), (3, 3, 4)), ((3,), (2, 4))]


@pytest.mark.parametrize(("xs", "ys"), MATMUL_SHAPES)
def test_matmul_out_shape_matches_numpy(xs, ys):
    expected = np.matmul(np.ones(xs), np.ones(ys)).shape
    assert REGISTRY["matmul"]().out_shape(xs, ys) == expected


@pytest.mark.parametrize(("xs", "ys"), MATMUL_BAD)
def test_matmul_out_shape_refuses_what_numpy_refuses(xs, ys):
    with pytest.raises(ValueError):
        np.matmul(np.ones(xs), np.ones(ys))
    with pytest.raises(ValueError):
        REGISTRY["matmul"]().out_shape(xs, ys)


REDUCTION_ATTRS = [{}, {"axis": 0}, {"axis": -1}, {"axis": [0, 2]}, {"axis": []}, {"keepdims": True},
                   {"axis": [-1, 0], "keepdims": True}, {"axis": None}]


@pytest.mark.parametrize("attrs", REDUCTION_ATTRS)
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_reduction_shape_and_value_match_numpy(op, attrs):
    x = np.arange(24.0).reshape(2, 3, 4)
    axis = attrs.get("axis")
    axis = tuple(axis) if isinstance(axis, list) else axis
    expected = getattr(np, op)(x, axis=axis, keepdims=attrs.get("keepdims", False))
    layer = REGISTRY[op](**attrs)
    assert layer.out_shape(x.shape) == expected.shape
    np.testing.assert_array_equal(layer.forward(x), expected)
    (dx,) = layer.backward(np.ones(expected.shape))
    count = x.size // max(expected.size, 1)
    np.testing.assert_allclose(dx, np.full(x.shape, 1.0 if op == "sum" else 1.0 / count))


@pytest.mark.parametrize("axis", [3, -4, [0, 0], [1, -2]])
def test_reduction_refuses_bad_axes(axis):
    with pytest.raises(ValueError, match="out of range|given twice"):
        SumLayer(axis=axis).out_shape((2, 3, 4))


def test_reduction_of_a_0d_value():
    assert SumLayer().out_shape(()) == ()
    with pytest.raises(ValueError, match="out of range"):
        SumLayer(axis=0).out_shape(())
    layer = MeanLayer()
    assert layer.forward(2.5) == 2.5
    assert layer.backward(4.0) == (4.0,)


def test_sum_gradient_repeats_dout_along_the_summed_axis_by_hand():
    layer = SumLayer(axis=1)
    layer.forward(np.arange(6.0).reshape(2, 3))
    (dx,) = layer.backward(np.array([1.0, -2.0]))
    np.testing.assert_array_equal(dx, [[1, 1, 1], [-2, -2, -2]])
    keep = SumLayer(axis=0, keepdims=True)
    keep.forward(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(keep.backward(np.array([[1.0, 2.0, 3.0]]))[0], [[1, 2, 3], [1, 2, 3]])


def test_mean_of_an_empty_axis_is_nan_without_a_warning():
    graph = graph_of({"x": {"shape": [2, 0], "fill": 1}}, {"m": {"op": "mean", "inputs": ["x"], "axis": 1}})
    with no_warnings():
        np.testing.assert_array_equal(graph.forward(), [np.nan, np.nan])
        assert graph.backward()["x"].shape == (2, 0)


@pytest.mark.parametrize(
    ("shape", "axes", "expected"),
    [((2, 3), None, (3, 2)), ((2, 3, 4), None, (4, 3, 2)), ((2, 3, 4), [1, 0, 2], (3, 2, 4)),
     ((2, 3, 4), [-1, 0, 1], (4, 2, 3)), ((3,), None, (3,)), ((), None, ()), ((), [], ())],
)
def test_transpose_shape_value_and_gradient(shape, axes, expected):
    x = np.arange(float(math.prod(shape))).reshape(shape)
    layer = TransposeLayer(axes=axes)
    assert layer.out_shape(shape) == expected
    out = layer.forward(x)
    np.testing.assert_array_equal(out, np.transpose(x, axes))
    # the gradient puts each element of dout back where its value came from
    (dx,) = layer.backward(out)
    np.testing.assert_array_equal(dx, x)


@pytest.mark.parametrize("axes", [[0], [0, 1, 1], [0, 2], [0, 1, 3], [0, -3, 1]])
def test_transpose_refuses_what_is_not_an_order_of_the_axes(axes):
    with pytest.raises(ValueError, match="are not an order of the 3 dimensions"):
        TransposeLayer(axes=axes).out_shape((2, 3, 4))


@pytest.mark.parametrize(
    ("shape", "new", "expected"),
    [((2, 3), [3, 2], (3, 2)), ((2, 3), [-1], (6,)), ((2, 6), [2, -1, 2], (2, 3, 2)), ((1, 1), [], ()),
     ((), [1, -1], (1, 1)), ((0, 3), [3, 0], (3, 0)), ((0, 3), [-1, 3], (0, 3))],
)
def test_reshape_infers_minus_one_as_numpy_does(shape, new, expected):
    x = np.zeros(shape)
    assert ReshapeLayer(shape=new).out_shape(shape) == expected == np.reshape(x, new).shape


@pytest.mark.parametrize(("shape", "new"), [((2, 3), [4, 2]), ((2, 3), [4, -1]), ((2, 3), [])])
def test_reshape_refuses_shapes_of_another_size(shape, new):
    with pytest.raises(ValueError):
        np.reshape(np.zeros(shape), new)
    with pytest.raises(ValueError, match="elements, which do not"):
        ReshapeLayer(shape=new).out_shape(shape)


@pytest.mark.parametrize("shape", [(0, 3), (2, 3), (0,)])
def test_reshape_refuses_minus_one_beside_zero_whatever_the_input(shape):
    with pytest.raises(ValueError):  # numpy too: nothing fits an empty array's -1 beside a 0, unambiguously
        np.reshape(np.zeros(shape), [0, -1])
    with pytest.raises(ValueError, match="has -1 beside a 0"):
        ReshapeLayer(shape=[0, -1])


def test_float_graph_of_reductions_and_transposes_gives_the_numbers_of_the_array_graph():
    nodes = {
        "m": {"op": "mul", "inputs": ["a", "b"]}, "s": {"op": "sum", "inputs": ["m"]},
        "me": {"op": "mean", "inputs": ["b"], "keepdims": True}, "t": {"op": "transpose", "inputs": ["s"]},
        "out": {"op": "div", "inputs": ["t", "me"]},
    }
    assert_float_graph_matches_array_graph(nodes)


# --- network layers ------------------------------------------------------------------


def test_softmax_is_stable_and_rows_sum_to_one():
    layer = SoftmaxLayer()
    with no_warnings():
        out = layer.forward(np.array([[1000.0, 1000.0], [0.0, math.log(3.0)], [-1000.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.25, 0.75], [0.0, 1.0]], rtol=1e-15)
    # a dout that is the same along a row changes nothing: the gradient is 0
    np.testing.assert_allclose(layer.backward(np.full((3, 2), 7.0))[0], np.zeros((3, 2)), atol=1e-12)


def test_softmax_with_loss_by_hand():
    # scores [0, log 3]: softmax [1/4, 3/4]; label class 1: loss -log(3/4); dx = (p - t) / 1
    layer = SoftmaxWithLossLayer()
    loss = layer.forward(np.array([0.0, math.log(3.0)]), np.array([0.0, 1.0]))
    assert loss == pytest.approx(-math.log(0.75), rel=1e-15)
    dx, dt = layer.backward(np.array(2.0))
    np.testing.assert_allclose(dx, [0.5, -0.5], rtol=1e-15)
    np.testing.assert_allclose(dt, [2 * math.log(4.0), -2 * math.log(0.75)], rtol=1e-15)
    # the same with the class index 1, and for a batch of two rows the mean
    index = SoftmaxWithLossLayer()
    assert index.forward(np.array([0.0, math.log(3.0)]), np.array(1.0)) == pytest.approx(-math.log(0.75), rel=1e-15)
    dx, dt = index.backward(np.array(2.0))
    np.testing.assert_allclose(dx, [0.5, -0.5], rtol=1e-15)
    assert dt.shape == () and dt == 0.0
    batch = SoftmaxWithLossLayer()
    x = np.array([[0.0, math.log(3.0)], [0.0, 0.0]])
    assert batch.forward(x, np.array([1.0, 0.0])) == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2, rel=1e-15)
    np.testing.assert_allclose(batch.backward(np.array(1.0))[0], [[0.125, -0.125], [-0.25, 0.25]], rtol=1e-15)


def test_softmax_with_loss_is_stable_for_large_scores():
    layer = SoftmaxWithLossLayer()
    with no_warnings():
        assert layer.forward(np.array([[1000.0, 0.0]]), np.array([[1.0, 0.0]])) == 0.0
        assert layer.forward(np.array([[0.0, 1000.0]]), np.array([[1.0, 0.0]])) == 1000.0
        dx, _ = layer.backward(np.array(1.0))
    np.testing.assert_array_equal(dx, [[-1.0, 1.0]])


def test_softmax_with_loss_soft_labels_gradient():
    # rows of t need not sum to 1: L = -sum(t * log p) / N, dL/dx = (p * sum(t) - t) / N
    x = np.array([[0.5, -1.0, 2.0]])
    t = np.array([[0.2, 0.3, 0.1]])
    layer = SoftmaxWithLossLayer()
    layer.forward(x, t)
    p = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(layer.backward(np.array(1.0))[0], p * 0.6 - t, rtol=1e-13)


@pytest.mark.parametrize(
    ("labels", "found"),
    [([0, 3], "found 3 at index [1]"), ([0.5, 1], "found 0.5 at index [0]"), ([-1, 0], "found -1 at index [0]"),
     ([0, ".nan"], "found nan at index [1]")],
)
def test_class_index_labels_are_checked_when_the_graph_runs(labels, found):
    text = (
        "inputs:\n  x: [[1, 2, 3], [4, 5, 6]]\n"
        f"  t: [{', '.join(map(str, labels))}]\n"
        "nodes:\n  loss: {op: softmax_with_loss, inputs: [x, t]}\n"
    )
    graph = cgraph.loads(text, source="g.yaml")
    with pytest.raises(CgraphError) as caught:
        graph.forward()
    message = caught.value.message
    assert message.startswith("node 'loss': the labels 't' are class indices, which must be whole numbers from 0 to 2")
    assert found in message
    assert (caught.value.pos.line, caught.value.pos.col) == (5, 3)
    result = CliRunner().invoke(cli, ["backward", "-"], input=text)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"<stdin>:5:3: error: {message}\n"


def test_forward_errors_of_a_json_graph_are_placed_too():
    data = {"inputs": {"x": [1.0, 2.0], "t": 2}, "nodes": {"loss": {"op": "softmax_with_loss", "inputs": ["x", "t"]}}}
    graph = cgraph.loads(json.dumps(data, indent=1), source="g.json")
    with pytest.raises(CgraphError, match="found 2$") as caught:
        graph.forward()
    assert (caught.value.pos.line, caught.value.pos.col) == (10, 3)  # the key "loss"


def test_affine_is_the_book_s_layer_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b = np.array([0.5, 0.0, -0.5])
    layer = REGISTRY["affine"]()
    np.testing.assert_array_equal(layer.forward(x, w, b), [[5.5, 2.0, -1.5], [11.5, 4.0, -3.5]])
    dout = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    dx, dw, db = layer.backward(dout)
    np.testing.assert_array_equal(dx, dout @ w.T)  # [[1, 2], [-1, 1]]
    np.testing.assert_array_equal(dx, [[1.0, 2.0], [-1.0, 1.0]])
    np.testing.assert_array_equal(dw, [[1.0, 3.0, 3.0], [2.0, 4.0, 4.0]])
    np.testing.assert_array_equal(db, [1.0, 1.0, 1.0])
    assert str(layer) == "AffineLayer(x.shape=(2, 2), W.shape=(2, 3), b.shape=(3,)) -> out.shape=(2, 3)"


def test_the_op_table_lists_exactly_the_registered_ops():
    ops_doc = (Path(__file__).resolve().parent.parent / "docs" / "ops.md").read_text()
    table = re.findall(r"^\| `(\w+)` \|", ops_doc, re.MULTILINE)
    assert len(table) == len(set(table)), "an op is listed twice"
    assert set(table) == set(REGISTRY)
