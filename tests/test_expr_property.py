"""Property test: random formulas over random broadcast-compatible inputs give the values numpy
gives for the same text (evaluated here with numpy functions, never with cgraph), and gradients
equal to central finite differences of that numpy evaluation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cgraph

# numpy's meaning of the op names the formulas call, for eval() of the same text
NUMPY = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "square": np.square,
    "exp": np.exp,
    "sum": np.sum,
    "__builtins__": {},
}
EPS = 1e-6
FD_RTOL = 1e-5
FD_ATOL = 1e-7
VALUES = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
NAMES = ["a", "b", "c"]


@st.composite
def formulas(draw, depth: int = 0) -> str:
    """A formula over NAMES and numbers whose value stays moderate: divisions are by 1 + a square."""
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from(NAMES))
        return repr(draw(st.sampled_from([0.5, 2, 3, 1.5, -1])))
    # Only smooth ops: at a kink (maximum's tie, relu's 0) finite differences give neither one-sided slope.
    kind = draw(st.sampled_from(["+", "-", "*", "/", "**", "neg", "call", "sum"]))
    inner = draw(formulas(depth + 1))
    if kind in ("+", "-", "*", "sum"):
        return f"({inner} {'+' if kind == 'sum' else kind} {draw(formulas(depth + 1))})"
    if kind == "/":
        return f"({inner} / (1 + square({draw(formulas(depth + 1))})))"
    if kind == "**":
        return f"tanh({inner}) ** {draw(st.sampled_from([2, 3]))}"
    if kind == "neg":
        return f"-{inner}"
    if kind == "sum" and any(name in inner for name in NAMES):  # inputs have at least one axis
        return f"sum({inner}, axis=-1, keepdims=True)"
    return f"{draw(st.sampled_from(['tanh', 'sigmoid', 'exp']))}(tanh({inner}))"


@st.composite
def cases(draw) -> tuple[str, dict[str, np.ndarray]]:
    base = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    inputs = {}
    for name in NAMES:
        drop = draw(st.integers(0, len(base) - 1))
        shape = tuple(size if draw(st.booleans()) else 1 for size in base[drop:])
        inputs[name] = draw(hnp.arrays(np.float64, shape, elements=VALUES))
    text = draw(formulas())
    if not any(name in text for name in NAMES) or text in NAMES:  # a node needs an op and an input
        text = f"{text} + a"
    return text, inputs


def numpy_value(text: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(eval(text, dict(NUMPY), {name: value.copy() for name, value in inputs.items()}))


@settings(max_examples=80, deadline=None)
@given(cases())
def test_formulas_match_numpy_and_finite_differences(case) -> None:
    text, inputs = case
    expected = numpy_value(text, inputs)
    graph = cgraph.from_dict({"inputs": inputs, "nodes": {"f": text}})
    value = graph.forward()
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12, err_msg=text)
    dout = np.random.default_rng(0).uniform(0.5, 1.5, size=expected.shape)
    grads = graph.backward(dout)
    for name, array in inputs.items():
        numeric = np.zeros(array.shape)
        for index in np.ndindex(array.shape):
            plus, minus = dict(inputs), dict(inputs)
            plus[name], minus[name] = array.copy(), array.copy()
            plus[name][index] += EPS
            minus[name][index] -= EPS
            numeric[index] = np.sum(dout * (numpy_value(text, plus) - numpy_value(text, minus))) / (2 * EPS)
        np.testing.assert_allclose(grads[name], numeric, rtol=FD_RTOL, atol=FD_ATOL, err_msg=f"{text}: d{name}")
