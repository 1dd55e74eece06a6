"""The passes' bookkeeping: values and gradients read by name from the pass's lists, gradients
worked out for some inputs only (as training asks), and a matrix product leaving out dx."""

from __future__ import annotations

import numpy as np
import pytest

import cgraph
from cgraph.errors import CgraphError
from cgraph.layers import AffineLayer, MatmulLayer

RNG = np.random.default_rng(7)
X, W1, B1 = RNG.standard_normal((6, 4)), RNG.standard_normal((4, 5)), RNG.standard_normal(5)
W2, B2 = RNG.standard_normal((5, 3)), RNG.standard_normal(3)
T = np.eye(3)[RNG.integers(0, 3, 6)]


def net() -> cgraph.Graph:
    return cgraph.from_dict({
        "inputs": {"x": X, "t": T, "W1": W1, "b1": B1, "W2": W2, "b2": B2},
        "nodes": {
            "a1": {"op": "affine", "inputs": ["x", "W1", "b1"]},
            "z1": {"op": "relu", "inputs": ["a1"]},
            "a2": {"op": "affine", "inputs": ["z1", "W2", "b2"]},
            "loss": {"op": "softmax_with_loss", "inputs": ["a2", "t"]},
        },
    })


def by_hand() -> dict[str, np.ndarray]:
    """The net's gradients as the book's layers work them out, written here in numpy."""
    a1 = X @ W1 + B1
    z1 = np.maximum(a1, 0)
    a2 = z1 @ W2 + B2
    y = np.exp(a2 - a2.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    da2 = (y - T) / len(X)
    dz1 = da2 @ W2.T
    da1 = dz1 * (a1 > 0)
    return {"W1": X.T @ da1, "b1": da1.sum(axis=0), "W2": z1.T @ da2, "b2": da2.sum(axis=0), "x": da1 @ W1.T}


def test_backward_of_some_inputs_only_gives_their_gradients() -> None:
    graph = net()
    graph.forward()
    grads = graph.backward(only=("W1", "b1", "W2", "b2"))
    expected = by_hand()
    assert list(grads) == ["W1", "b1", "W2", "b2"]
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, expected[name], rtol=1e-12, atol=1e-15)
    assert not graph.input_grads
    full = graph.backward()  # and the full pass after it has every gradient again
    np.testing.assert_allclose(full["x"], expected["x"], rtol=1e-12, atol=1e-15)
    assert set(graph.input_grads) == {"a1", "z1", "a2", "loss"}


def test_backward_of_a_node_or_an_unknown_name_is_refused() -> None:
    graph = net()
    for name, said in (("a1", "'a1' is not an input"), ("W3", "'W3' is not an input")):
        with pytest.raises(CgraphError, match=said):
            graph.backward(only=(name,))


def test_partial_steps_leave_out_only_the_unwanted_product() -> None:
    dout = RNG.standard_normal((6, 5))
    matmul = MatmulLayer()
    matmul.forward(X, W1)
    dx, dw = matmul.partial_backward_step(((6, 4), (4, 5)), (6, 5), (False, True))(dout)
    assert dx is None
    np.testing.assert_allclose(dw, X.T @ dout, rtol=1e-12)
    affine = AffineLayer()
    affine.forward(X, W1, B1)
    dx, dw, db = affine.partial_backward_step(((6, 4), (4, 5), (5,)), (6, 5), (False, True, True))(dout)
    assert dx is None
    np.testing.assert_allclose(dw, X.T @ dout, rtol=1e-12)
    np.testing.assert_allclose(db, dout.sum(axis=0), rtol=1e-12)


def test_values_and_gradients_read_like_dicts() -> None:
    graph = cgraph.loads("inputs:\n  a: 2.0\n  b: 3.0\nnodes:\n  p: a * b\n  q: p + 1\n")
    graph.backward()
    assert dict(graph.values) == {"a": 2.0, "b": 3.0, **dict.fromkeys([*graph.spec.constants], 1.0), "p": 6.0, "q": 7.0}
    assert dict(graph.grads) == {"a": 3.0, "b": 2.0, "p": 1.0, "q": 1.0}  # constants take no gradient
    assert [*graph.grads.items()] == [("a", 3.0), ("b", 2.0), ("p", 1.0), ("q", 1.0)]
    assert graph.input_grads["q"] == (1.0, None) and graph.input_grads["p"] == (3.0, 2.0)
    assert "p" in graph.values and "z" not in graph.grads and len(graph.grads) == 4
    with pytest.raises(KeyError):
        graph.grads["z"]
