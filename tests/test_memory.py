"""Memory of repeated runs: a run lets go of the last run's values and gradients before it makes
its own, so a graph run again holds one run's arrays at a time, and every value and gradient is kept."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import cgraph

COUNT, ELEMENTS = 20, 100_000


def chain() -> dict:
    """v_{i+1} = v_i * w or v_i + b over full-size arrays, as bench/run.py's chain."""
    nodes, previous = {}, "x"
    for i in range(COUNT):
        nodes[f"n{i}"] = {"op": "mul" if i % 2 == 0 else "add", "inputs": [previous, "w" if i % 2 == 0 else "b"]}
        previous = f"n{i}"
    inputs = {name: {"shape": [ELEMENTS], "random": "uniform", "seed": seed} for seed, name in enumerate("xwb")}
    return {"inputs": inputs, "nodes": nodes}


def by_hand(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[dict, dict]:
    """Every value and gradient of the chain for dout = 1, in numpy written out independently."""
    values, previous = {}, x
    for i in range(COUNT):
        previous = values[f"n{i}"] = previous * w if i % 2 == 0 else previous + b
    grads = {f"n{COUNT - 1}": np.ones_like(x)}
    grad_w, grad_b = np.zeros_like(w), np.zeros_like(b)
    for i in range(COUNT - 1, -1, -1):
        grad, below = grads[f"n{i}"], values[f"n{i - 1}"] if i else x
        if i % 2 == 0:
            grad_w += grad * below
            grads[f"n{i - 1}" if i else "x"] = grad * w
        else:
            grad_b += grad
            grads[f"n{i - 1}"] = grad
    return values, {**grads, "w": grad_w, "b": grad_b}


def test_a_second_run_holds_one_run_s_arrays_and_keeps_every_value_and_gradient() -> None:
    tracemalloc.start()  # before the first run, so that its arrays are traced when the second lets them go
    try:
        graph = cgraph.from_dict(chain())
        graph.forward()
        graph.backward()
        tracemalloc.reset_peak()
        graph.forward()
        graph.backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    kept = sum(np.asarray(value).nbytes for value in graph.values.values()) + sum(
        np.asarray(grad).nbytes for grad in graph.grads.values())
    # Holding the last run's arrays until this run's are made would take about 1.5 times as much.
    assert peak < 1.2 * kept
    inputs = {name: graph.spec.inputs[name].value for name in "xwb"}
    values, grads = by_hand(inputs["x"], inputs["w"], inputs["b"])
    for name, value in values.items():
        np.testing.assert_array_equal(graph.values[name], value)
    for name, grad in grads.items():
        np.testing.assert_allclose(graph.grads[name], grad, rtol=1e-12)


def test_a_failed_run_leaves_no_values_of_the_last_one() -> None:
    graph = cgraph.loads("inputs: {x: [[0.5, 2.0]], t: [1]}\nnodes:\n  y: {op: softmax_with_loss, inputs: [x, t]}\n")
    graph.backward()
    assert set(graph.values) == set(graph.grads) == {"x", "t", "y"}
    graph.spec.inputs["t"].value[0] = 5  # changed in place, unseen: the next forward pass fails
    with pytest.raises(cgraph.CgraphError, match="class indices"):
        graph.forward()
    assert graph.values == {} and graph.grads == {} and graph.input_grads == {}
