"""Unit tests of cgraph.layers: MulLayer, AddLayer, sum_to, str(layer), out_shape, and every registered op.

Expected values are hand computations or independent numpy computations, never the
program's own output.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import loops
from cgraph.layers import REGISTRY, AddLayer, MulLayer, sum_to

# Finite differences (test_registered_op_matches_finite_difference): central difference of
# L = sum(dout * forward(...)) in float64 with step EPS; gradients must agree within
# numpy.testing.assert_allclose(rtol=FD_RTOL, atol=FD_ATOL).
EPS = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-8

# Pairs of broadcast-compatible shapes (x, y) and the shape numpy gives for x * y.
BROADCAST_CASES = [
    ((), (), ()),
    ((3,), (3,), (3,)),
    ((2, 3), (2, 3), (2, 3)),
    ((3, 2), (2,), (3, 2)),
    ((2,), (3, 2), (3, 2)),
    ((4, 1, 3), (5, 1), (4, 5, 3)),
    ((), (2, 3), (2, 3)),
    ((2, 3), (), (2, 3)),
    ((3, 1), (1, 4), (3, 4)),
    ((1, 1), (2, 3), (2, 3)),
    ((2, 1, 3), (2, 4, 3), (2, 4, 3)),
    ((1,), (2, 2, 2), (2, 2, 2)),
]


def _rand(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values of magnitude in [0.5, 1.5] with random signs: away from 0 and from kinks."""
    return np.asarray(rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape), dtype=np.float64)


# --- scalars, by hand ---------------------------------------------------------------


def test_mul_scalars_by_hand():
    layer = MulLayer()
    out = layer.forward(np.array(3.0), np.array(-4.0))
    assert float(out) == -12.0
    dx, dy = layer.backward(np.array(2.0))
    # d(x*y)/dx = y, d(x*y)/dy = x, times dout = 2.
    assert float(dx) == -8.0
    assert float(dy) == 6.0
    assert np.shape(dx) == () and np.shape(dy) == ()


def test_add_scalars_by_hand():
    layer = AddLayer()
    out = layer.forward(np.array(3.0), np.array(-4.0))
    assert float(out) == -1.0
    dx, dy = layer.backward(np.array(2.5))
    assert float(dx) == 2.5
    assert float(dy) == 2.5
    assert np.shape(dx) == () and np.shape(dy) == ()


def test_mul_apple_example_by_hand():
    # The book's example: 2 apples at 100 each, tax 1.1.
    apple_mul = MulLayer()
    tax_mul = MulLayer()
    apple_price = apple_mul.forward(np.array(100.0), np.array(2.0))
    price = tax_mul.forward(apple_price, np.array(1.1))
    assert float(price) == pytest.approx(220.0)
    dapple_price, dtax = tax_mul.backward(np.array(1.0))
    dapple, dnum = apple_mul.backward(dapple_price)
    assert float(dapple) == pytest.approx(2.2)
    assert float(dnum) == pytest.approx(110.0)
    assert float(dtax) == pytest.approx(200.0)


# --- arrays, by hand ----------------------------------------------------------------


def test_mul_same_shape_arrays_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[5.0, -1.0], [0.5, 2.0]])
    dout = np.array([[1.0, 2.0], [3.0, -1.0]])
    layer = MulLayer()
    np.testing.assert_array_equal(layer.forward(x, y), [[5.0, -2.0], [1.5, 8.0]])
    dx, dy = layer.backward(dout)
    np.testing.assert_array_equal(dx, [[5.0, -2.0], [1.5, -2.0]])  # dout * y
    np.testing.assert_array_equal(dy, [[1.0, 4.0], [9.0, -4.0]])  # dout * x


def test_mul_row_broadcast_by_hand():
    # x (3, 2) times y (2,): y is repeated down the rows, so dy sums dout * x over rows.
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = np.array([10.0, -1.0])
    dout = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 3.0]])
    layer = MulLayer()
    np.testing.assert_array_equal(layer.forward(x, y), [[10.0, -2.0], [30.0, -4.0], [50.0, -6.0]])
    dx, dy = layer.backward(dout)
    assert dx.shape == (3, 2)
    assert dy.shape == (2,)
    np.testing.assert_array_equal(dx, [[10.0, 0.0], [0.0, -1.0], [20.0, -3.0]])
    # column 0: 1*1 + 0*3 + 2*5 = 11; column 1: 0*2 + 1*4 + 3*6 = 22
    np.testing.assert_array_equal(dy, [11.0, 22.0])


def test_add_row_broadcast_by_hand():
    x = np.zeros((3, 2))
    y = np.array([1.0, 2.0])
    dout = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    layer = AddLayer()
    np.testing.assert_array_equal(layer.forward(x, y), [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    dx, dy = layer.backward(dout)
    assert dx.shape == (3, 2) and dy.shape == (2,)
    np.testing.assert_array_equal(dx, dout)
    np.testing.assert_array_equal(dy, [9.0, 12.0])


def test_add_scalar_and_matrix_by_hand():
    x = np.array(7.0)
    y = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    dout = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 2.0]])
    layer = AddLayer()
    np.testing.assert_array_equal(layer.forward(x, y), [[8.0, 9.0, 10.0], [11.0, 12.0, 13.0]])
    dx, dy = layer.backward(dout)
    assert np.shape(dx) == ()
    assert float(dx) == 7.0  # sum of dout
    np.testing.assert_array_equal(dy, dout)


def test_mul_scalar_and_matrix_by_hand():
    x = np.array(2.0)
    y = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    dout = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    layer = MulLayer()
    np.testing.assert_array_equal(layer.forward(x, y), 2.0 * y)
    dx, dy = layer.backward(dout)
    assert np.shape(dx) == ()
    assert float(dx) == 1.0 * 1.0 + 2.0 * 6.0  # sum(dout * y)
    assert dy.shape == (2, 3)
    np.testing.assert_array_equal(dy, 2.0 * dout)


def test_mul_column_times_row_by_hand():
    # outer product: x (2, 1) * y (1, 3)
    x = np.array([[1.0], [2.0]])
    y = np.array([[3.0, 4.0, 5.0]])
    dout = np.ones((2, 3))
    layer = MulLayer()
    np.testing.assert_array_equal(layer.forward(x, y), [[3.0, 4.0, 5.0], [6.0, 8.0, 10.0]])
    dx, dy = layer.backward(dout)
    assert dx.shape == (2, 1) and dy.shape == (1, 3)
    np.testing.assert_array_equal(dx, [[12.0], [12.0]])  # row sums of y
    np.testing.assert_array_equal(dy, [[3.0, 3.0, 3.0]])  # column sums of x


# --- arrays, against independent numpy computations ---------------------------------


def _independent_reduce(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` back to ``shape`` one axis at a time, without cgraph's sum_to."""
    result = grad
    while result.ndim > len(shape):
        result = result.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and result.shape[axis] != 1:
            result = result.sum(axis=axis, keepdims=True)
    assert result.shape == shape
    return result


@pytest.mark.parametrize(("xs", "ys", "outs"), BROADCAST_CASES)
def test_mul_broadcast_against_numpy(xs, ys, outs):
    rng = np.random.default_rng(abs(hash((xs, ys))) % 2**32)
    x, y, dout = _rand(rng, xs), _rand(rng, ys), _rand(rng, outs)
    layer = MulLayer()
    out = layer.forward(x, y)
    assert np.shape(out) == outs
    np.testing.assert_allclose(out, x * y, rtol=1e-15, atol=0)
    dx, dy = layer.backward(dout)
    assert np.shape(dx) == xs
    assert np.shape(dy) == ys
    np.testing.assert_allclose(dx, _independent_reduce(dout * y, xs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dy, _independent_reduce(dout * x, ys), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("xs", "ys", "outs"), BROADCAST_CASES)
def test_add_broadcast_against_numpy(xs, ys, outs):
    rng = np.random.default_rng(abs(hash((ys, xs))) % 2**32)
    x, y, dout = _rand(rng, xs), _rand(rng, ys), _rand(rng, outs)
    layer = AddLayer()
    out = layer.forward(x, y)
    assert np.shape(out) == outs
    np.testing.assert_allclose(out, x + y, rtol=1e-15, atol=0)
    dx, dy = layer.backward(dout)
    assert np.shape(dx) == xs
    assert np.shape(dy) == ys
    np.testing.assert_allclose(dx, _independent_reduce(np.broadcast_to(dout, outs), xs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dy, _independent_reduce(np.broadcast_to(dout, outs), ys), rtol=1e-12, atol=1e-14)


def test_mul_dy_for_row_vector_is_column_sum():
    # The case named in the brief: y (2,) broadcast against x (3, 2).
    rng = np.random.default_rng(1)
    x, y, dout = _rand(rng, (3, 2)), _rand(rng, (2,)), _rand(rng, (3, 2))
    layer = MulLayer()
    layer.forward(x, y)
    dx, dy = layer.backward(dout)
    np.testing.assert_allclose(dy, (dout * x).sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(dx, dout * y, rtol=1e-13)


def test_mul_three_d_against_two_d():
    # x (4, 1, 3) with y (5, 1): out (4, 5, 3).
    rng = np.random.default_rng(2)
    x, y, dout = _rand(rng, (4, 1, 3)), _rand(rng, (5, 1)), _rand(rng, (4, 5, 3))
    layer = MulLayer()
    layer.forward(x, y)
    dx, dy = layer.backward(dout)
    assert dx.shape == (4, 1, 3) and dy.shape == (5, 1)
    # out[i, j, k] = x[i, 0, k] * y[j, 0]
    expected_dx = np.einsum("ijk,j->ik", dout, y[:, 0])[:, None, :]
    expected_dy = np.einsum("ijk,ik->j", dout, x[:, 0, :])[:, None]
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12)
    np.testing.assert_allclose(dy, expected_dy, rtol=1e-12)


def test_backward_does_not_modify_inputs_or_dout():
    rng = np.random.default_rng(3)
    for cls in (MulLayer, AddLayer):
        x, y, dout = _rand(rng, (3, 2)), _rand(rng, (2,)), _rand(rng, (3, 2))
        saved = (x.copy(), y.copy(), dout.copy())
        layer = cls()
        layer.forward(x, y)
        layer.backward(dout)
        layer.backward(dout)
        for before, after in zip(saved, (x, y, dout)):
            np.testing.assert_array_equal(before, after)


def test_backward_can_run_twice_with_same_result():
    rng = np.random.default_rng(4)
    x, y, dout = _rand(rng, (4, 1, 3)), _rand(rng, (5, 1)), _rand(rng, (4, 5, 3))
    for cls in (MulLayer, AddLayer):
        layer = cls()
        layer.forward(x, y)
        first = [g.copy() for g in layer.backward(dout)]
        second = layer.backward(dout)
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)


# --- sum_to -------------------------------------------------------------------------


def test_sum_to_same_shape_is_unchanged():
    grad = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(sum_to(grad, (2, 3)), grad)


def test_sum_to_drops_leading_axes():
    grad = np.arange(6.0).reshape(2, 3)  # [[0, 1, 2], [3, 4, 5]]
    result = sum_to(grad, (3,))
    assert result.shape == (3,)
    np.testing.assert_array_equal(result, [3.0, 5.0, 7.0])


def test_sum_to_keeps_size_one_axes():
    grad = np.arange(6.0).reshape(2, 3)
    rows = sum_to(grad, (2, 1))
    assert rows.shape == (2, 1)
    np.testing.assert_array_equal(rows, [[3.0], [12.0]])
    cols = sum_to(grad, (1, 3))
    assert cols.shape == (1, 3)
    np.testing.assert_array_equal(cols, [[3.0, 5.0, 7.0]])


def test_sum_to_scalar_shape():
    grad = np.arange(6.0).reshape(2, 3)
    result = sum_to(grad, ())
    assert np.shape(result) == ()
    assert float(result) == 15.0
    one = sum_to(grad, (1, 1))
    assert one.shape == (1, 1) and float(one[0, 0]) == 15.0


def test_sum_to_mixed_leading_and_inner_axes():
    grad = np.arange(24.0).reshape(2, 3, 4)
    result = sum_to(grad, (3, 1))
    assert result.shape == (3, 1)
    # element [j, 0] = sum over i, k of grad[i, j, k]
    expected = np.array([[sum(grad[i, j, k] for i in range(2) for k in range(4))] for j in range(3)])
    np.testing.assert_array_equal(result, expected)
    inner = sum_to(grad, (1, 3, 1))
    assert inner.shape == (1, 3, 1)
    np.testing.assert_array_equal(inner, expected[None, :, :])


def test_sum_to_grad_already_size_one_on_axis():
    grad = np.arange(3.0).reshape(1, 3)
    result = sum_to(grad, (1, 3))
    np.testing.assert_array_equal(result, grad)
    result = sum_to(np.arange(3.0).reshape(3, 1), (1,))
    assert result.shape == (1,)
    np.testing.assert_array_equal(result, [3.0])


@pytest.mark.parametrize(("xs", "ys", "outs"), BROADCAST_CASES)
def test_sum_to_matches_independent_reduce(xs, ys, outs):
    rng = np.random.default_rng(5)
    grad = _rand(rng, outs)
    for shape in (xs, ys):
        result = sum_to(grad, shape)
        assert np.shape(result) == shape
        np.testing.assert_allclose(result, _independent_reduce(grad, shape), rtol=1e-12, atol=1e-14)


# --- str and out_shape --------------------------------------------------------------


@pytest.mark.parametrize("cls", [MulLayer, AddLayer])
@pytest.mark.parametrize(("xs", "ys", "outs"), [((3, 2), (2,), (3, 2)), ((4, 1, 3), (5, 1), (4, 5, 3)), ((), (2, 3), (2, 3))])
def test_str_after_forward_names_class_and_shapes(cls, xs, ys, outs):
    layer = cls()
    before = str(layer)
    assert cls.__name__ in before
    layer.forward(np.ones(xs), np.ones(ys))
    text = str(layer)
    assert cls.__name__ in text
    assert "->" in text
    inputs_part, output_part = text.split("->", 1)
    assert str(xs) in inputs_part
    assert str(ys) in inputs_part
    assert str(outs) in output_part
    # the x shape is written before the y shape
    assert inputs_part.index(f"x.shape={xs}") < inputs_part.index(f"y.shape={ys}")


@pytest.mark.parametrize("cls", [MulLayer, AddLayer])
def test_out_shape_rejects_incompatible_shapes(cls):
    with pytest.raises(ValueError):
        cls().out_shape((3, 2), (3,))
    with pytest.raises(ValueError):
        cls().out_shape((2, 3), (4, 3))


@pytest.mark.parametrize("cls", [MulLayer, AddLayer])
@pytest.mark.parametrize(("xs", "ys", "outs"), BROADCAST_CASES)
def test_out_shape_matches_numpy(cls, xs, ys, outs):
    assert tuple(cls().out_shape(xs, ys)) == outs
    assert tuple(cls().out_shape(ys, xs)) == outs


def test_registry_names_mul_and_add():
    assert REGISTRY["mul"] is MulLayer
    assert REGISTRY["add"] is AddLayer
    for op, cls in REGISTRY.items():
        assert cls.op == op


# --- every registered op against finite differences ---------------------------------


def real(*shape: int) -> tuple:
    """An input of ``shape`` with magnitudes in [0.5, 1.5] and random signs (away from 0 and kinks)."""
    return ("real", shape)


def positive(*shape: int) -> tuple:
    """An input of ``shape`` with values in [0.5, 1.5] (for log, sqrt and the base of pow)."""
    return ("positive", shape)


def index(*shape: int, classes: int) -> tuple:
    """Class indices in [0, classes) as floats: not differentiable, so their gradient must be 0."""
    return ("index", shape, classes)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _cross_entropy(x: np.ndarray, t: np.ndarray) -> float:
    """Mean cross-entropy of softmax(x) over the rows of x, for one-hot or index labels t."""
    log_p = np.log(_softmax(x))
    rows = int(np.prod(x.shape[:-1]))
    if t.shape == x.shape:
        return -np.sum(t * log_p) / rows
    picked = [log_p[pos][int(t[pos])] for pos in np.ndindex(t.shape)]
    return -sum(picked) / rows


BINARY = [(real(*xs), real(*ys)) for xs, ys, _ in BROADCAST_CASES]
UNARY = [(real(),), (real(3),), (real(2, 3),), (real(2, 1, 3),)]
POSITIVE = [(positive(),), (positive(3),), (positive(2, 3),), (positive(2, 1, 3),)]
REDUCTIONS = [
    ((real(2, 3),), {}),
    ((real(2, 3),), {"axis": 0}),
    ((real(2, 3),), {"axis": -1, "keepdims": True}),
    ((real(2, 3, 4),), {"axis": [0, 2]}),
    ((real(2, 3, 4),), {"axis": [2, -3], "keepdims": True}),
    ((real(2, 3),), {"axis": []}),
    ((real(2, 1, 3),), {"axis": 1}),
    ((real(2, 1, 3),), {"keepdims": True}),
    ((real(),), {}),
    ((real(),), {"axis": None, "keepdims": True}),
]

POOLS = [
    ((real(1, 2, 4, 4),), {"size": 2}),
    ((real(2, 1, 5, 5),), {"size": 3, "stride": 2, "pad": 1}),
    ((real(1, 1, 4, 6),), {"size": [2, 3], "stride": [1, 3], "pad": [1, 0]}),
    # windows that do not fit exactly: the last rows and columns left out (PyTorch's floor rule)
    ((real(1, 2, 5, 7),), {"size": 2, "floor": True}),
    ((real(2, 1, 6, 6),), {"size": 3, "stride": 2, "pad": 1, "floor": True}),
]

# (x, W) of conv2d_transpose and (x, g) of conv2d_filter_grad that conv2d's cases above give.
CONV_TRANSPOSES = [
    ((real(1, 2, 2, 2), real(2, 1, 3, 3)), {}),
    ((real(2, 3, 3, 3), real(3, 2, 3, 3)), {"stride": 2, "pad": 1}),
    ((real(1, 2, 5, 2), real(2, 2, 2, 3)), {"stride": [1, 2], "pad": [1, 0]}),
]
CONV_FILTER_GRADS = [
    ((real(1, 1, 4, 4), real(1, 2, 2, 2)), {}),
    ((real(2, 2, 5, 5), real(2, 3, 3, 3)), {"stride": 2, "pad": 1}),
    ((real(1, 2, 4, 5), real(1, 2, 5, 2)), {"stride": [1, 2], "pad": [1, 0]}),
]
POOL_GRADS = [  # POOLS with a gradient of the pooled shape
    ((real(1, 2, 4, 4), real(1, 2, 2, 2)), {"size": 2}),
    ((real(2, 1, 5, 5), real(2, 1, 3, 3)), {"size": 3, "stride": 2, "pad": 1}),
    ((real(1, 1, 4, 6), real(1, 1, 5, 2)), {"size": [2, 3], "stride": [1, 3], "pad": [1, 0]}),
]


def _transposed_shape(x_shape, w_shape, stride, pad):
    (sh, sw), (ph, pw) = loops.pair(stride), loops.pair(pad)
    return (x_shape[0], w_shape[1], (x_shape[2] - 1) * sh + w_shape[2] - 2 * ph, (x_shape[3] - 1) * sw + w_shape[3] - 2 * pw)


def _filter_shape(x_shape, g_shape, stride, pad):
    (sh, sw), (ph, pw) = loops.pair(stride), loops.pair(pad)
    return (g_shape[1], x_shape[1], x_shape[2] + 2 * ph - (g_shape[2] - 1) * sh, x_shape[3] + 2 * pw - (g_shape[3] - 1) * sw)


def _unpooled_shape(g_shape, size, stride=None, pad=0):
    size, pad = loops.pair(size), loops.pair(pad)
    stride = size if stride is None else loops.pair(stride)
    return (*g_shape[:2], *((g_shape[2 + a] - 1) * stride[a] + size[a] - 2 * pad[a] for a in range(2)))


# Per op: an independent numpy reference for the value, and sample cases of (inputs, attributes).
# An op without an entry fails test_registered_op_matches_finite_difference: a new op gets tested.
OP_CASES: dict[str, tuple] = {
    "mul": (np.multiply, [(inputs, {}) for inputs in BINARY]),
    "add": (np.add, [(inputs, {}) for inputs in BINARY]),
    "sub": (np.subtract, [(inputs, {}) for inputs in BINARY]),
    "div": (np.divide, [(inputs, {}) for inputs in BINARY]),
    "maximum": (np.maximum, [(inputs, {}) for inputs in BINARY]),
    "pow": (np.power, [((positive(*xs), real(*ys)), {}) for xs, ys, _ in BROADCAST_CASES]),
    "neg": (np.negative, [(inputs, {}) for inputs in UNARY]),
    "exp": (np.exp, [(inputs, {}) for inputs in UNARY]),
    "log": (np.log, [(inputs, {}) for inputs in POSITIVE]),
    "sqrt": (np.sqrt, [(inputs, {}) for inputs in POSITIVE]),
    "relu": (lambda x: np.where(x > 0, x, 0.0), [(inputs, {}) for inputs in UNARY]),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), [(inputs, {}) for inputs in UNARY]),
    "tanh": (np.tanh, [(inputs, {}) for inputs in UNARY]),
    "matmul": (np.matmul, [
        ((real(3), real(3)), {}),
        ((real(2, 3), real(3)), {}),
        ((real(3), real(3, 4)), {}),
        ((real(2, 3), real(3, 4)), {}),
        ((real(2, 2, 3), real(3, 4)), {}),
        ((real(3), real(2, 3, 4)), {}),
        ((real(2, 4, 3), real(3)), {}),
        ((real(1, 2, 3), real(4, 3, 2)), {}),
        ((real(2, 1, 2, 3), real(3, 3, 1)), {}),
    ]),
    "sum": (lambda x, axis=None, keepdims=False: np.sum(x, axis=None if axis is None else tuple(np.atleast_1d(axis)),
                                                        keepdims=keepdims), REDUCTIONS),
    "mean": (lambda x, axis=None, keepdims=False: np.mean(x, axis=None if axis is None else tuple(np.atleast_1d(axis)),
                                                          keepdims=keepdims), REDUCTIONS),
    "transpose": (lambda x, axes=None: np.transpose(x, axes), [
        ((real(2, 3),), {}),
        ((real(2, 3, 4),), {}),
        ((real(2, 3, 4),), {"axes": [1, 0, 2]}),
        ((real(2, 3, 4),), {"axes": [-1, 0, 1]}),
        ((real(3),), {}),
        ((real(),), {}),
        ((real(),), {"axes": []}),
    ]),
    "reshape": (lambda x, shape: np.reshape(x, shape), [
        ((real(2, 3),), {"shape": [3, 2]}),
        ((real(2, 3),), {"shape": [-1]}),
        ((real(2, 6),), {"shape": [2, -1, 2]}),
        ((real(2, 3),), {"shape": 6}),
        ((real(1, 1),), {"shape": []}),
        ((real(),), {"shape": [1, -1]}),
    ]),
    "affine": (lambda x, w, b: x @ w + b, [
        ((real(2, 3), real(3, 4), real(4)), {}),
        ((real(3), real(3, 4), real(4)), {}),
        ((real(5, 2, 3), real(3, 4), real(4)), {}),
        ((real(2, 3), real(3, 4), real(1, 4)), {}),
        ((real(2, 3), real(3, 4), real()), {}),
        ((real(2, 3), real(3, 4), real(2, 4)), {}),
        ((real(2, 3), real(3), real(2)), {}),
    ]),
    "softmax": (_softmax, [((real(3),), {}), ((real(2, 3),), {}), ((real(2, 2, 3),), {}), ((real(1),), {})]),
    "softmax_with_loss": (_cross_entropy, [
        ((real(2, 3), real(2, 3)), {}),
        ((real(3), real(3)), {}),
        ((real(2, 2, 4), real(2, 2, 4)), {}),
        ((real(2, 3), index(2, classes=3)), {}),
        ((real(3), index(classes=3)), {}),
        ((real(2, 2, 4), index(2, 2, classes=4)), {}),
        ((real(4, 1), index(4, classes=1)), {}),
    ]),
    "abs": (np.abs, [(inputs, {}) for inputs in UNARY]),
    "square": (lambda x: x * x, [(inputs, {}) for inputs in UNARY]),
    "minimum": (np.minimum, [(inputs, {}) for inputs in BINARY]),
    "clip": (lambda x, min=None, max=None: np.minimum(np.maximum(x, -np.inf if min is None else min),
                                                      np.inf if max is None else max), [
        ((real(2, 3),), {"min": -1.2, "max": 0.7}),
        ((real(3),), {"min": 0}),
        ((real(3),), {"max": 0.25}),
        ((real(2, 2),), {"min": None, "max": None}),
        ((real(),), {"min": -0.75, "max": 0.75}),
    ]),
    # Python's own indexing of the key's text, independent of cgraph's key reader.
    "index": (lambda x, key: eval(f"x[{key}]", {"x": x}), [
        ((real(3),), {"key": 0}),
        ((real(3, 4),), {"key": "-1"}),
        ((real(3, 4),), {"key": ":, 1:3"}),
        ((real(5),), {"key": "::2"}),
        ((real(5),), {"key": "4:0:-2"}),
        ((real(2, 3, 4),), {"key": "..., 0"}),
        ((real(2, 3, 4),), {"key": "1, ..., 1:"}),
        ((real(2, 3),), {"key": "..."}),
    ]),
    "concat": (lambda *xs, axis=0: np.concatenate(xs, axis=axis), [
        ((real(3),), {}),
        ((real(2), real(3), real(1)), {}),
        ((real(2, 3), real(2, 1)), {"axis": 1}),
        ((real(2, 2), real(1, 2)), {"axis": -2}),
    ]),
    "stack": (lambda *xs, axis=0: np.stack(xs, axis=axis), [
        ((real(),), {}),
        ((real(), real()), {}),
        ((real(3), real(3)), {}),
        ((real(2, 3), real(2, 3), real(2, 3)), {"axis": -1}),
        ((real(2, 3), real(2, 3)), {"axis": 1}),
    ]),
    "argmax": (lambda x, axis=None: np.argmax(x, axis=axis).astype(np.float64), [
        ((real(2, 3),), {}),
        ((real(2, 3),), {"axis": 0}),
        ((real(2, 3),), {"axis": 1}),
        ((real(2, 3, 4),), {"axis": -2}),
        ((real(3),), {"axis": 0}),
        ((real(),), {}),
    ]),
    "equal": (lambda x, y: np.equal(x, y).astype(np.float64), [(inputs, {}) for inputs in BINARY]),
    # The convolutional layers against straightforward loops (tests/loops.py).
    "conv2d": (loops.conv2d, [
        ((real(1, 1, 4, 4), real(2, 1, 3, 3), real(2)), {}),
        ((real(2, 2, 5, 5), real(3, 2, 3, 3), real(3)), {"stride": 2, "pad": 1}),
        ((real(1, 2, 4, 5), real(2, 2, 2, 3), real(2)), {"stride": [1, 2], "pad": [1, 0]}),
        ((real(2, 1, 3, 3), real(1, 1, 1, 1), real(1)), {"stride": 1, "pad": 0}),
        ((real(1, 1, 6, 6), real(2, 1, 3, 3), real(2)), {"stride": 2, "floor": True}),
        ((real(1, 2, 6, 5), real(1, 2, 3, 3), real(1)), {"stride": 2, "pad": 1, "floor": True}),
    ]),
    # conv2d's gradients as ops: the loops' backward, its x's or W's shape given by the arithmetic of sizes.
    "conv2d_transpose": (lambda x, W, stride=1, pad=0: loops.conv2d_backward(
        np.zeros(_transposed_shape(x.shape, W.shape, stride, pad)), W, x, stride, pad)[0], CONV_TRANSPOSES),
    "conv2d_filter_grad": (lambda x, g, stride=1, pad=0: loops.conv2d_backward(
        x, np.zeros(_filter_shape(x.shape, g.shape, stride, pad)), g, stride, pad)[1], CONV_FILTER_GRADS),
    "max_pool2d": (loops.max_pool2d, POOLS),
    "max_pool2d_grad": (lambda x, g, **attrs: loops.max_pool2d_backward(x, g, **attrs), POOL_GRADS),
    "max_pool2d_select": (loops.max_pool2d_select, [((x, x), attrs) for (x,), attrs in POOLS]),
    "avg_pool2d_grad": (lambda g, **attrs: loops.avg_pool2d_backward(_unpooled_shape(g.shape, **attrs), g, **attrs),
                        [((g,), attrs) for (_, g), attrs in POOL_GRADS]),
    "avg_pool2d": (loops.avg_pool2d, POOLS),
    "batchnorm": (loops.batchnorm, [
        ((real(4, 3), real(3), real(3)), {}),
        ((real(1, 2), real(2), real(2)), {}),
        ((real(2, 3, 2, 2), real(3), real(3)), {"eps": 0.1}),
    ]),
    # The mask by its definition: kept where the seed's uniform draw is at least ratio.
    "dropout": (lambda x, ratio=0.5, seed=0: x * (np.random.default_rng(seed).random(x.shape) >= ratio) / (1 - ratio), [
        ((real(),), {}),
        ((real(3, 4),), {}),
        ((real(2, 3, 4),), {"ratio": 0.2, "seed": 7}),
    ]),
    # The ops of gradient graphs, by numpy's own functions.
    "sum_to": (lambda x, shape: np.sum(x, axis=tuple(i for i in range(x.ndim) if i < x.ndim - len(shape)
                                                    or shape[i - x.ndim + len(shape)] == 1), keepdims=True).reshape(shape), [
        ((real(2, 3),), {"shape": [3]}),
        ((real(2, 3),), {"shape": [2, 1]}),
        ((real(2, 3),), {"shape": []}),
        ((real(4, 2, 3),), {"shape": [1, 3]}),
        ((real(2, 3),), {"shape": [2, 3]}),
    ]),
    "broadcast_to": (lambda x, shape: np.broadcast_to(x, shape), [
        ((real(3),), {"shape": [2, 3]}),
        ((real(2, 1),), {"shape": [2, 4]}),
        ((real(),), {"shape": [3]}),
        ((real(1, 3),), {"shape": [2, 2, 3]}),
    ]),
    "scatter": (lambda x, key, shape: _scattered(x, key, shape), [
        ((real(3),), {"key": "1", "shape": [4, 3]}),
        ((real(2),), {"key": "1:5:2", "shape": [6]}),
        ((real(2, 2),), {"key": "..., 0:2", "shape": [2, 3]}),
    ]),
    "gemm": (lambda x, y, trans_x=False, trans_y=False: np.swapaxes(x, -1, -2) @ y if trans_x and not trans_y
             else x @ np.swapaxes(y, -1, -2) if trans_y and not trans_x
             else np.swapaxes(x, -1, -2) @ np.swapaxes(y, -1, -2) if trans_x else x @ y, [
        ((real(2, 3), real(3, 4)), {}),
        ((real(3, 2), real(3, 4)), {"trans_x": True}),
        ((real(2, 3), real(4, 3)), {"trans_y": True}),
        ((real(3, 2), real(4, 3)), {"trans_x": True, "trans_y": True}),
        ((real(2, 2, 3), real(4, 3)), {"trans_y": True}),
        ((real(3, 2), real(2, 3, 4)), {"trans_x": True}),
    ]),
    "greater": (lambda x, y: (x > y).astype(np.float64), [(inputs, {}) for inputs in BINARY]),
    "sign": (np.sign, [(inputs, {}) for inputs in UNARY]),
    "zeros_like": (np.zeros_like, [(inputs, {}) for inputs in UNARY]),
    "identity": (lambda x: x, [(inputs, {}) for inputs in UNARY]),
    "one_hot": (lambda t, classes: np.eye(classes)[t.astype(int)], [
        ((index(3, classes=4),), {"classes": 4}),
        ((index(2, 3, classes=2),), {"classes": 2}),
        ((index(classes=3),), {"classes": 3}),
    ]),
    # A cast to float64 of float64 inputs: the values unchanged; other dtypes are checked in tests/test_onnx.py.
    "cast": (lambda x, dtype: x.astype(dtype), [((real(2, 3),), {"dtype": "float64"}), ((real(),), {"dtype": "float64"})]),
    "log_softmax": (lambda x: np.log(_softmax(x)), [((real(3),), {}), ((real(2, 3),), {}), ((real(2, 2, 3),), {})]),
    # log_softmax's vector-Jacobian product with the Jacobian written out: d out_j / d x_i = [i = j] - softmax(x)_i
    "log_softmax_grad": (lambda g, y: np.einsum("...i,...ij->...j", g, np.eye(y.shape[-1]) - np.exp(y)[..., None, :]), [
        ((real(3), real(3)), {}), ((real(2, 3), real(2, 3)), {}), ((real(2, 2, 3), real(2, 2, 3)), {})]),
    "flatten": (lambda x: x.reshape(x.shape[0], -1), [
        ((real(3),), {}),
        ((real(3, 4),), {}),
        ((real(2, 3, 2, 2),), {}),
    ]),
}


def _scattered(x: np.ndarray, key: str, shape: list[int]) -> np.ndarray:
    out = np.zeros(shape)
    exec(f"out[{key}] = x", {"out": out, "x": x})  # Python's own indexing of the key's text
    return out


def _sample(rng: np.random.Generator, kind: tuple) -> np.ndarray:
    if kind[0] == "real":
        return _rand(rng, kind[1])
    if kind[0] == "positive":
        return rng.uniform(0.5, 1.5, size=kind[1])
    return rng.integers(0, kind[2], size=kind[1]).astype(np.float64)


def _registry_cases():
    for op in sorted(REGISTRY):
        if op not in OP_CASES:
            yield pytest.param(op, None, None, id=f"{op}-no-cases")
            continue
        for i, (kinds, attrs) in enumerate(OP_CASES[op][1]):
            shapes = "-".join(str(kind[1]) for kind in kinds)
            yield pytest.param(op, kinds, attrs, id=f"{op}-{i}-{shapes}{'-' if attrs else ''}{attrs or ''}")


def test_every_op_with_cases_is_registered():
    assert sorted(OP_CASES) == sorted(REGISTRY)


def _loss(cls, attrs, inputs, dout):
    """L = sum(dout * forward(...)) with a fresh layer."""
    out = cls(**attrs).forward(*[np.array(a, copy=True) for a in inputs])
    return float(np.sum(dout * np.asarray(out, dtype=np.float64)))


@pytest.mark.parametrize(("op", "kinds", "attrs"), list(_registry_cases()))
def test_registered_op_matches_finite_difference(op, kinds, attrs):
    if kinds is None:
        pytest.fail(f"op '{op}' has no sample inputs: add it to OP_CASES in tests/test_layers.py")
    cls = REGISTRY[op]
    reference = OP_CASES[op][0]
    assert cls.takes(len(kinds))
    rng = np.random.default_rng(sum(map(ord, op)) * 1000 + len(str(kinds)) + len(str(attrs)))
    inputs = [_sample(rng, kind) for kind in kinds]
    saved = [a.copy() for a in inputs]

    layer = cls(**attrs)
    out = np.asarray(layer.forward(*inputs))
    expected = np.asarray(reference(*inputs, **attrs))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15)
    assert tuple(cls(**attrs).out_shape(*[a.shape for a in inputs])) == expected.shape
    dout = _rand(rng, out.shape)
    grads = layer.backward(dout.copy())
    assert len(grads) == len(inputs)

    for i, (value, grad, kind) in enumerate(zip(inputs, grads, kinds)):
        assert np.shape(grad) == value.shape, f"gradient {i} of {op} has shape {np.shape(grad)}, input {value.shape}"
        if kind[0] == "index":
            np.testing.assert_array_equal(grad, np.zeros(value.shape))
            continue
        numeric = np.zeros(value.shape)
        for pos in np.ndindex(value.shape):
            plus = [a.copy() for a in inputs]
            minus = [a.copy() for a in inputs]
            plus[i][pos] += EPS
            minus[i][pos] -= EPS
            numeric[pos] = (_loss(cls, attrs, plus, dout) - _loss(cls, attrs, minus, dout)) / (2 * EPS)
        np.testing.assert_allclose(
            np.asarray(grad, dtype=np.float64), numeric, rtol=FD_RTOL, atol=FD_ATOL,
            err_msg=f"op {op}, gradient of argument {layer.args[i]!r}",
        )

    # neither pass modified its arguments
    for before, after in zip(saved, inputs):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("op", sorted(OP_CASES))
def test_rules_use_only_the_inputs_the_output_and_attributes(op):
    cls = REGISTRY[op]
    names = {*cls.args, "out"}
    placeholders = re.compile(r"\{(\w+)\}")
    assert cls.formula and len(cls.grad_formulas) == len(cls.args)
    for rule in (cls.formula, *cls.grad_formulas):
        assert set(placeholders.findall(rule)) <= names | set(cls.attrs), rule
    # a layer object has its attributes' values filled in
    layer = cls(**OP_CASES[op][1][-1][1])
    for rule in (layer.formula, *layer.grad_formulas):
        assert set(placeholders.findall(rule)) <= names, rule
