"""Property test: gradients of random mul/add DAGs agree with finite differences.

Graphs are built with ``cgraph.from_dict`` and checked against an evaluator written
here with plain numpy (it never calls cgraph), by central differences of
L = sum(dout * output).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cgraph

OPS = {"mul": np.multiply, "add": np.add}

# Central differences with step EPS * max(1, |v|) (relative for large intermediate values).
# Gradients must satisfy |grad - fd| <= FD_ATOL + ROUNDOFF * S + FD_RTOL * |fd|, where
# S = sum(|dout * output|) bounds the rounding error of L: a difference of two L's, each
# rounded to about 1e-16 * S, divided by 2 * EPS, is off by at most about 1e-10 * S.
EPS = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-8
ROUNDOFF = 1e-9

VALUES = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def graphs(draw):
    """A dict for cgraph.from_dict: inputs with broadcast-compatible shapes, mul/add nodes, output."""
    base = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=3)))
    n_inputs = draw(st.integers(1, 4))
    inputs = {}
    for i in range(n_inputs):
        drop = draw(st.integers(0, len(base)))
        shape = tuple(size if draw(st.booleans()) else 1 for size in base[drop:])
        inputs[f"in{i}"] = draw(hnp.arrays(np.float64, shape, elements=VALUES))

    n_nodes = draw(st.integers(1, 6))
    available = list(inputs)
    nodes = {}
    for j in range(n_nodes):
        name = f"n{j}"
        op = draw(st.sampled_from(sorted(OPS)))
        # Any earlier value may be used, several times and twice in one node.
        args = [draw(st.sampled_from(available)), draw(st.sampled_from(available))]
        nodes[name] = (op, args)
        available.append(name)
    # Nodes are written in a random order: cgraph must sort them by dependency.
    order = draw(st.permutations(list(nodes)))
    output = draw(st.sampled_from(list(nodes)))
    dout_seed = draw(st.integers(0, 2**32 - 1))
    return inputs, {name: nodes[name] for name in order}, output, dout_seed


def evaluate(inputs, nodes, output, fixed=None):
    """Every value of the graph with plain numpy; ``fixed`` pins some nodes to given values."""
    fixed = fixed or {}
    values = dict(inputs)
    pending = dict(nodes)
    while pending:
        for name, (op, args) in list(pending.items()):
            if all(arg in values for arg in args):
                values[name] = fixed[name] if name in fixed else np.asarray(OPS[op](*[values[a] for a in args]))
                del pending[name]
    return values


def finite_difference(inputs, nodes, output, dout, target):
    """dL/d(target) for L = sum(dout * output), with target an input or a node held fixed."""
    base = evaluate(inputs, nodes, output)
    value = np.asarray(base[target], dtype=np.float64)
    result = np.zeros(value.shape)
    for pos in np.ndindex(value.shape):
        step = EPS * max(1.0, abs(float(value[pos])))
        plus, minus = value.copy(), value.copy()
        plus[pos] += step
        minus[pos] -= step
        if target in inputs:
            out_plus = evaluate({**inputs, target: plus}, nodes, output)[output]
            out_minus = evaluate({**inputs, target: minus}, nodes, output)[output]
        else:
            out_plus = evaluate(inputs, nodes, output, {target: plus})[output]
            out_minus = evaluate(inputs, nodes, output, {target: minus})[output]
        # Difference elementwise first, so output elements the target does not reach add nothing.
        result[pos] = np.sum(dout * (out_plus - out_minus)) / (plus[pos] - minus[pos])
    return result


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_random_dag_gradients_match_finite_differences(case):
    inputs, nodes, output, dout_seed = case
    data = {
        "inputs": {name: value.tolist() for name, value in inputs.items()},
        "nodes": {name: {"op": op, "inputs": list(args)} for name, (op, args) in nodes.items()},
        "output": output,
    }
    graph = cgraph.from_dict(data)

    expected = evaluate(inputs, nodes, output)
    out = np.asarray(graph.forward())
    assert out.shape == expected[output].shape
    np.testing.assert_allclose(out, expected[output], rtol=1e-12, atol=1e-300)

    rng = np.random.default_rng(dout_seed)
    dout = rng.uniform(-2.0, 2.0, size=out.shape)
    grads = graph.backward(dout)

    assert set(grads) == set(inputs) | set(nodes)
    scale = float(np.sum(np.abs(dout * expected[output])))
    for name in [*inputs, *nodes]:
        value = graph.values[name]
        grad = grads[name]
        assert np.shape(grad) == np.shape(value), f"{name}: gradient shape {np.shape(grad)}, value {np.shape(value)}"
        assert np.asarray(grad).dtype == np.asarray(value).dtype, f"{name}: gradient dtype differs from value's"
        numeric = finite_difference(inputs, nodes, output, dout, name)
        tolerance = FD_ATOL + ROUNDOFF * scale + FD_RTOL * np.abs(numeric)
        error = np.abs(np.asarray(grad, dtype=np.float64) - numeric)
        assert np.all(error <= tolerance), (
            f"gradient of {name} in {data}\n dout={dout!r}\n cgraph: {grad!r}\n finite difference: {numeric!r}"
        )

    # The output's own gradient is dout itself.
    np.testing.assert_array_equal(grads[output], dout)
