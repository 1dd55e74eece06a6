"""The convolutional layers: shape errors that show their arithmetic, the pooling and dropout rules
worked out by hand, the costs they declare, and every op against PyTorch where it is installed.

Values and gradients of every op against loops and finite differences: OP_CASES in test_layers.py.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import cgraph
import loops
from cgraph.cli import cli
from cgraph.layers import AvgPool2dLayer, Conv2dLayer, DropoutLayer, MaxPool2dLayer


def conv_graph(x: list[int], w: list[int], stride: object = 1, pad: object = 0) -> str:
    return (f"inputs:\n  x: {{shape: {x}, fill: 1}}\n  W: {{shape: {w}, fill: 1}}\n  b: {{shape: [{w[0]}], fill: 0}}\n"
            f"nodes:\n  c1: {{op: conv2d, inputs: [x, W, b], stride: {stride}, pad: {pad}}}\n")


def one_node(x: list[int], node: str) -> str:
    return f"inputs:\n  x: {{shape: {x}, fill: 1}}\n  g: {{shape: [3], fill: 1}}\nnodes:\n  n: {node}\n"


# (graph text, the whole error line) for mistakes of shape and attribute: placed at the attribute
# at fault where the node writes one (a stride that does not divide, the pad beside a window too
# large), else at the node.
ERRORS = [
    (conv_graph([2, 1, 28, 28], [30, 1, 5, 5], stride=2),
     "<stdin>:6:47: error: node 'c1': conv2d cannot combine shapes x (2, 1, 28, 28), W (30, 1, 5, 5) and b (30,): "
     "(H + 2·pad − FH) / stride + 1 = (28 + 0 − 5) / 2 + 1 = 12.5 is not a whole number; try stride 1"),
    # 28 + 2·2 − 5 = 27 is a multiple of 3, and of no stride between 1 and 3.
    (conv_graph([2, 1, 28, 28], [30, 1, 5, 5], stride=3),
     "<stdin>:6:47: error: node 'c1': conv2d cannot combine shapes x (2, 1, 28, 28), W (30, 1, 5, 5) and b (30,): "
     "(H + 2·pad − FH) / stride + 1 = (28 + 0 − 5) / 3 + 1 = 8.66667 is not a whole number; try pad 2 or stride 1"),
    # rows fit; along the columns 10 − 3 = 7 is odd, and 10 + 2 − 3 = 9 too: no pad helps a stride of 2.
    (conv_graph([1, 1, 9, 10], [1, 1, 3, 3], stride=[2, 2], pad=[0, 1]),
     "<stdin>:6:47: error: node 'c1': conv2d cannot combine shapes x (1, 1, 9, 10), W (1, 1, 3, 3) and b (1,): "
     "(W + 2·pad − FW) / stride + 1 = (10 + 2 − 3) / 2 + 1 = 5.5 is not a whole number; try stride 1"),
    (conv_graph([1, 1, 3, 3], [1, 1, 5, 5]),
     "<stdin>:6:55: error: node 'c1': conv2d cannot combine shapes x (1, 1, 3, 3), W (1, 1, 5, 5) and b (1,): "
     "(H + 2·pad − FH) / stride + 1 = (3 + 0 − 5) / 1 + 1 = -1: the window of 5 does not fit in 3 (padded) along H"),
    (conv_graph([2, 3, 8, 8], [4, 1, 3, 3]),
     "<stdin>:6:3: error: node 'c1': conv2d cannot combine shapes x (2, 3, 8, 8), W (4, 1, 3, 3) and b (4,): "
     "'x' has 3 channels (axis 1 of (2, 3, 8, 8)) but the filters 'W' take 1 (axis 1 of (4, 1, 3, 3))"),
    (conv_graph([3, 8, 8], [4, 3, 3, 3]),
     "<stdin>:6:3: error: node 'c1': conv2d cannot combine shapes x (3, 8, 8), W (4, 3, 3, 3) and b (4,): "
     "conv2d takes a batch of images 'x' of shape (N, C, H, W), 4 dimensions; 'x' has 3; "
     "reshape a single image to (1, C, H, W)"),
    ("inputs: {x: {shape: [1, 1, 4, 4], fill: 1}, W: {shape: [2, 1, 3, 3], fill: 1}, b: [1, 2, 3]}\n"
     "nodes: {c: {op: conv2d, inputs: [x, W, b]}}\n",
     "<stdin>:2:9: error: node 'c': conv2d cannot combine shapes x (1, 1, 4, 4), W (2, 1, 3, 3) and b (3,): "
     "the bias 'b' must have shape (2,), one per filter (axis 0 of 'W' (2, 1, 3, 3)); it has shape (3,)"),
    # 5 + 2·pad − 2 is odd for every pad: only a stride helps.
    (one_node([1, 1, 5, 5], "{op: max_pool2d, inputs: [x], size: 2}"),
     "<stdin>:5:42: error: node 'n': max_pool2d cannot take shape x (1, 1, 5, 5): "
     "(H + 2·pad − size) / stride + 1 = (5 + 0 − 2) / 2 + 1 = 2.5 is not a whole number; try stride 1"),
    # pad 2 would make 5 + 4 − 3 a multiple of 3, but a pad is at most half the window, 1.
    (one_node([1, 1, 5, 5], "{op: avg_pool2d, inputs: [x], size: 3}"),
     "<stdin>:5:42: error: node 'n': avg_pool2d cannot take shape x (1, 1, 5, 5): "
     "(H + 2·pad − size) / stride + 1 = (5 + 0 − 3) / 3 + 1 = 1.66667 is not a whole number; try stride 2"),
    (one_node([1, 1, 4, 4], "{op: max_pool2d, inputs: [x], size: 2, pad: 2}"),
     "<stdin>:5:50: error: node 'n': max_pool2d: "
     "pad 2 is more than half the window 2; a window would hold nothing but padding"),
    (one_node([2, 4], "{op: batchnorm, inputs: [x, g, g]}"),
     "<stdin>:5:3: error: node 'n': batchnorm cannot combine shapes x (2, 4), g (3,) and g (3,): "
     "'g' has shape (3,) but 'x' (2, 4) has 4 features (axis 1); gamma and beta need shape (4,)"),
    (one_node([2, 4, 5, 5], "{op: batchnorm, inputs: [x, g, g]}"),
     "<stdin>:5:3: error: node 'n': batchnorm cannot combine shapes x (2, 4, 5, 5), g (3,) and g (3,): "
     "'g' has shape (3,) but 'x' (2, 4, 5, 5) has 4 channels (axis 1); gamma and beta need shape (4,)"),
    (one_node([2, 3, 5], "{op: batchnorm, inputs: [x, g, g]}"),
     "<stdin>:5:3: error: node 'n': batchnorm cannot combine shapes x (2, 3, 5), g (3,) and g (3,): "
     "batchnorm takes 'x' of shape (N, D) or (N, C, H, W); 'x' has 3 dimensions"),
    (one_node([3], "{op: batchnorm, inputs: [x, g, g]}"),
     "<stdin>:5:3: error: node 'n': batchnorm cannot combine shapes x (3,), g (3,) and g (3,): "
     "batchnorm takes 'x' of shape (N, D) or (N, C, H, W); 'x' has 1 dimension"),
    (one_node([0, 3], "{op: batchnorm, inputs: [x, g, g]}"),
     "<stdin>:5:3: error: node 'n': batchnorm cannot combine shapes x (0, 3), g (3,) and g (3,): "
     "'x' (0, 3) has no values per feature to take a mean of"),
    ("inputs: {x: 1}\nnodes: {n: {op: flatten, inputs: [x]}}\n",
     "<stdin>:2:9: error: node 'n': flatten cannot take shape x (): "
     "'x' is 0-d; flatten keeps the first axis (the batch) and joins the others"),
    (conv_graph([1, 1, 4, 4], [1, 1, 3, 3], stride=0),
     "<stdin>:6:47: error: node 'c1': conv2d attribute 'stride' must be an integer of at least 1 "
     "or a pair of them like [2, 1], got 0"),
    (conv_graph([1, 1, 4, 4], [1, 1, 3, 3], pad=[1, 2, 3]),
     "<stdin>:6:55: error: node 'c1': conv2d attribute 'pad' must be an integer of at least 0 "
     "or a pair of them like [2, 1], got [1, 2, 3]"),
    (one_node([2, 2, 4, 4], "{op: max_pool2d, inputs: [x]}"),
     "<stdin>:5:6: error: node 'n': op 'max_pool2d' needs the attribute 'size': "
     "the window: an integer, or a pair [rows, columns]"),
    (one_node([2, 3], "{op: dropout, inputs: [x], ratio: 1.5}"),
     "<stdin>:5:40: error: node 'n': dropout attribute 'ratio' must be a number from 0 to 1, got 1.5"),
    (one_node([2, 3], "{op: dropout, inputs: [x], seed: -1}"),
     "<stdin>:5:39: error: node 'n': dropout attribute 'seed' must be a non-negative integer, got -1"),
    (one_node([2, 3], "{op: batchnorm, inputs: [x, g, g], eps: 0}"),
     "<stdin>:5:46: error: node 'n': batchnorm attribute 'eps' must be a number greater than 0, got 0"),
]


@pytest.mark.parametrize(("text", "line"), ERRORS, ids=[line.split("error: ")[1][:60] for _, line in ERRORS])
def test_shape_and_attribute_errors_are_one_line_that_shows_why(text: str, line: str) -> None:
    result = CliRunner().invoke(cli, ["forward", "-"], input=text)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == line + "\n"


def test_a_graph_whose_arithmetic_fits_runs() -> None:
    # The first error's graph with the suggested stride 1: (28 − 5) / 1 + 1 = 24.
    graph = cgraph.loads(conv_graph([2, 1, 28, 28], [30, 1, 5, 5], stride=1))
    assert graph.forward().shape == (2, 30, 24, 24)
    # and with stride 3 and the suggested pad 2: (28 + 4 − 5) / 3 + 1 = 10.
    graph = cgraph.loads(conv_graph([2, 1, 28, 28], [30, 1, 5, 5], stride=3, pad=2))
    assert graph.forward().shape == (2, 30, 10, 10)


# --- pooling rules, by hand ----------------------------------------------------------


def test_max_pool_gradient_goes_to_the_first_maximum_in_row_major_order() -> None:
    layer = MaxPool2dLayer(size=2)
    x = np.array([[1.0, 3.0, 5.0, 5.0],
                  [3.0, 2.0, 5.0, 5.0],
                  [0.0, 0.0, -1.0, -2.0],
                  [0.0, 4.0, -3.0, -1.0]]).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(layer.forward(x)[0, 0], [[3, 5], [4, -1]])
    (dx,) = layer.backward(np.array([[10.0, 20.0], [30.0, 40.0]]).reshape(1, 1, 2, 2))
    # Ties: 3 at (0, 1) before (1, 0); 5 at (0, 2) first of four; -1 at (2, 2) before (3, 3).
    np.testing.assert_array_equal(dx[0, 0], [[0, 10, 20, 0],
                                             [0, 0, 0, 0],
                                             [0, 0, 40, 0],
                                             [0, 30, 0, 0]])


def test_max_pool_overlapping_windows_add_up_and_padding_is_never_the_maximum() -> None:
    layer = MaxPool2dLayer(size=3, stride=1, pad=1)
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: a 0 pad would win, -inf does not
    out = layer.forward(x)
    # Each 3x3 window (with the pad) holds x[0, 0] = -1 where it reaches it: the four top-left windows.
    np.testing.assert_array_equal(out[0, 0], [[-1, -1, -2], [-1, -1, -2], [-4, -4, -5]])
    (dx,) = layer.backward(np.ones((1, 1, 3, 3)))
    np.testing.assert_array_equal(dx[0, 0], [[4, 2, 0], [2, 1, 0], [0, 0, 0]])


def test_max_pool_nan_is_the_maximum_and_takes_the_gradient() -> None:
    layer = MaxPool2dLayer(size=2)
    x = np.array([[1.0, np.nan], [np.nan, 2.0]]).reshape(1, 1, 2, 2)
    assert np.isnan(layer.forward(x)).all()
    (dx,) = layer.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx[0, 0], [[0, 0], [1, 0]])  # the last NaN, as PyTorch


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("attrs", [{"size": 2}, {"size": [2, 3], "stride": [3, 5], "pad": [1, 0]},
                                   {"size": 3, "stride": 1, "pad": 1}, {"size": [1, 2]}])
def test_max_pool_signed_zeros_bit_for_bit(dtype: str, attrs: dict) -> None:
    # Windows full of ties between 0.0 and -0.0: the value is np.maximum folded over the window in
    # row-major order (numpy returns the second of two equal values, so the sign of the last zero),
    # the gradient goes to the first maximum, and dout * 0 (keeping dout's sign) to the rest.
    rng = np.random.default_rng(2)
    x = rng.choice(np.array([0.0, -0.0, -1.0]), (2, 2, 6, 8)).astype(dtype)
    dout_shape = cgraph.layers.REGISTRY["max_pool2d"](**attrs).out_shape(x.shape)
    dout = rng.choice(np.array([-1.5, 2.0, -0.0]), dout_shape).astype(dtype)
    layer = MaxPool2dLayer(**attrs)
    out, (dx,) = layer.forward(x), layer.backward(dout)
    (kh, kw), (sh, sw), (ph, pw) = (loops.pair(attrs.get(key, default)) for key, default in
                                    (("size", 0), ("stride", attrs["size"]), ("pad", 0)))
    padded = loops.padded(x, (ph, pw), -np.inf).astype(dtype)
    expected_dx = np.zeros(padded.shape, dtype)
    overlapping = sh < kh or sw < kw
    for n, c, i, j in np.ndindex(*dout_shape):
        window = padded[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
        value = window.flat[0]
        for element in window.flat[1:]:
            value = np.maximum(value, element)
        assert out[n, c, i, j].tobytes() == value.tobytes()
        first = np.argmax(window)
        for k in range(window.size):
            gradient = dout[n, c, i, j] * (k == first)
            target = (n, c, i * sh + k // kw, j * sw + k % kw)
            expected_dx[target] = expected_dx[target] + gradient if overlapping else gradient
    expected_dx = expected_dx[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    np.testing.assert_array_equal(dx, expected_dx)
    np.testing.assert_array_equal(np.signbit(dx), np.signbit(expected_dx))


def test_avg_pool_counts_padded_zeros() -> None:
    layer = AvgPool2dLayer(size=2, stride=1, pad=1)
    out = layer.forward(np.ones((1, 1, 2, 2)))
    # Corner windows hold one 1 of four, edge windows two, the middle four.
    np.testing.assert_array_equal(out[0, 0], [[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]])
    (dx,) = layer.backward(np.ones((1, 1, 3, 3)))
    np.testing.assert_array_equal(dx[0, 0], [[1, 1], [1, 1]])  # each x is in four windows, a quarter from each


def test_pool_stride_defaults_to_the_size_and_shows_it() -> None:
    text = one_node([1, 2, 6, 6], "{op: avg_pool2d, inputs: [x], size: [2, 3]}")
    entry = json.loads(CliRunner().invoke(cli, ["forward", "-", "--format", "json"], input=text).stdout)["nodes"]["n"]
    assert entry["shape"] == [1, 2, 3, 2]
    assert entry["attrs"] == {"size": [2, 3], "stride": [2, 3], "pad": 0}


# --- dropout ---------------------------------------------------------------------------


def test_dropout_keeps_about_one_minus_ratio_scaled_up() -> None:
    x = np.ones((100, 100))
    out = DropoutLayer(ratio=0.3, seed=5).forward(x)
    kept = out != 0
    assert 0.68 < kept.mean() < 0.72  # 7,000 expected of 10,000; the standard deviation is 46
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-15)
    layer = DropoutLayer(ratio=0.3, seed=5)
    layer.forward(x)
    (dx,) = layer.backward(np.full((100, 100), 2.0))
    np.testing.assert_array_equal(dx, np.where(kept, 2 / 0.7, 0.0))


def test_dropout_mask_comes_from_the_seed() -> None:
    x = np.arange(1.0, 201.0)
    first = DropoutLayer(seed=1).forward(x)
    np.testing.assert_array_equal(DropoutLayer(seed=1).forward(x), first)
    assert not np.array_equal(DropoutLayer(seed=2).forward(x), first)


def test_dropout_ratio_0_and_1() -> None:
    x = np.array([1.5, -2.0, 3.0])
    np.testing.assert_array_equal(DropoutLayer(ratio=0).forward(x), x)
    layer = DropoutLayer(ratio=1)
    np.testing.assert_array_equal(layer.forward(x), [0, 0, 0])
    np.testing.assert_array_equal(layer.backward(np.ones(3))[0], [0, 0, 0])


def test_dropout_in_a_graph_is_checked_with_its_mask_fixed() -> None:
    text = ("inputs: {x: {shape: [4, 5], random: normal, seed: 1}}\n"
            "nodes:\n  d: {op: dropout, inputs: [x], ratio: 0.4, seed: 3}\n  s: {op: mul, inputs: [d, d]}\n")
    result = CliRunner().invoke(cli, ["check", "-", "--samples", "0"], input=text)
    assert result.exit_code == 0, result.stdout
    assert "PASS: 1 input" in result.stdout
    # On scalars (run as Python floats) too: kept or not, by the seed's first draw.
    graph = cgraph.loads("inputs: {x: 2.0}\nnodes: {d: {op: dropout, inputs: [x], ratio: 0.5, seed: 0}}\n")
    kept = np.random.default_rng(0).random() >= 0.5
    assert graph.forward() == (4.0 if kept else 0.0)
    assert graph.backward()["x"] == (2.0 if kept else 0.0)


# --- dtypes and costs ------------------------------------------------------------------


def test_float32_images_stay_float32() -> None:
    text = ("inputs:\n  x: {shape: [2, 1, 6, 6], random: normal, dtype: float32}\n"
            "  W: {shape: [3, 1, 3, 3], random: normal, seed: 1, dtype: float32}\n  b: {value: [0, 0, 0], dtype: float32}\n"
            "nodes:\n  c: {op: conv2d, inputs: [x, W, b], pad: 1}\n  p: {op: max_pool2d, inputs: [c], size: 2}\n"
            "  a: {op: avg_pool2d, inputs: [p], size: 3}\n")
    graph = cgraph.loads(text)
    graph.backward()
    for name in ("c", "p", "a", "x", "W", "b"):
        assert graph.values[name].dtype == np.float32 and graph.grads[name].dtype == np.float32, name


def test_work_and_scratch_of_the_benchmark_convolution() -> None:
    conv = Conv2dLayer()
    shapes = ((100, 1, 28, 28), (30, 1, 5, 5), (30,))
    # 100 · 24 · 24 output pixels, each 30 filters of 1 · 5 · 5 multiply-adds, three times (out, dW, dx).
    assert conv.work(*shapes) == 3 * 100 * 24 * 24 * 30 * 25 == 129_600_000
    # im2col's matrix (57,600 columns of 25) and its gradient, and each image's dW (100, 30, 25); no padding.
    assert conv.scratch_elements(*shapes) == 2 * 57_600 * 25 + 100 * 30 * 25
    padded = Conv2dLayer(pad=1).scratch_elements((2, 3, 4, 4), (5, 3, 3, 3), (5,))
    assert padded == 2 * (2 * 4 * 4) * 27 + 2 * (2 * 3 * 6 * 6) + 2 * 5 * 27
    pool = MaxPool2dLayer(size=2)
    assert pool.work((100, 30, 24, 24)) == 2 * 100 * 30 * 12 * 12 * 4
    # The maxima over the columns from every position (100, 30, 24, 24), those of the windows' rows
    # (100, 30, 24, 12) or their gradient, and the positions (out's size).
    assert pool.scratch_elements((100, 30, 24, 24)) == 100 * 30 * 24 * 24 + 100 * 30 * 24 * 12 + 100 * 30 * 12 * 12


def test_im2col_counts_in_the_memory_budget_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # The value of out (2, 1, 56, 56) and the gradients of it, x (2, 3, 64, 64), W (1, 3, 9, 9) and b:
    # 298,912 bytes (filled inputs own no memory). im2col's matrix, 2 · 56 · 56 columns of 3 · 9 · 9, its
    # gradient and each image's dW (2, 1, 243): 3,048,678 elements, 24,389,424 bytes. In all 24,688,336 bytes, 23.5 MiB.
    text = conv_graph([2, 3, 64, 64], [1, 3, 9, 9])

    def refuse(*args: object) -> None:
        raise AssertionError("the convolution ran")

    monkeypatch.setattr(Conv2dLayer, "forward", refuse)
    result = CliRunner().invoke(cli, ["backward", "-", "--max-memory", "10M"], input=text)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == ("<stdin>: error: the graph's values and gradients need about 23.5 MiB, over the limit "
                             "of 10.0 MiB (raise it with --max-memory)\n")
    monkeypatch.undo()
    # With what writing them out holds, 512 bytes for each of the 2 · 31,092 values' and gradients'
    # elements (under a 65,536-element chunk), 31,838,208 bytes: 56,526,544 bytes, 53.91 MiB.
    assert CliRunner().invoke(cli, ["backward", "-", "--max-memory", "53M"], input=text).exit_code == 1
    assert CliRunner().invoke(cli, ["backward", "-", "--max-memory", "54M"], input=text).exit_code == 0


def test_convolution_work_counts_in_the_work_budget() -> None:
    # 3 · 2 · 56 · 56 · 1 · 243 = 4,572,288 multiply-adds.
    text = conv_graph([2, 3, 64, 64], [1, 3, 9, 9])
    result = CliRunner().invoke(cli, ["forward", "-", "--max-work", "4e6"], input=text)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == ("<stdin>:6:3: error: the graph needs about 4.6e+06 multiply-adds, most of it in node 'c1' "
                             "(conv2d), over the limit of 4e+06 (raise it with --max-work)\n")
    assert CliRunner().invoke(cli, ["forward", "-", "--max-work", "5e6"], input=text).exit_code == 0


def test_str_shows_the_shapes_and_attributes() -> None:
    layer = Conv2dLayer(stride=[1, 2], pad=1)
    layer.forward(np.zeros((2, 3, 5, 7)), np.zeros((4, 3, 3, 3)), np.zeros(4))
    # (5 + 2 − 3) / 1 + 1 = 5 rows, (7 + 2 − 3) / 2 + 1 = 4 columns
    assert str(layer) == ("Conv2dLayer(x.shape=(2, 3, 5, 7), W.shape=(4, 3, 3, 3), b.shape=(4,), stride=[1, 2], pad=1)"
                          " -> out.shape=(2, 4, 5, 4)")


# --- against PyTorch -----------------------------------------------------------------------

TORCH_OPS = """
import json, sys, torch
import torch.nn.functional as F
results = []
for case in json.load(sys.stdin):
    tensors = [torch.tensor(value, dtype=torch.float64, requires_grad=True) for value in case["inputs"]]
    op, attrs = case["op"], case["attrs"]
    if op == "conv2d":
        out = F.conv2d(*tensors, stride=attrs["stride"], padding=attrs["pad"])
    elif op == "batchnorm":
        x, gamma, beta = tensors
        out = F.batch_norm(x, None, None, gamma, beta, training=True, eps=attrs.get("eps", 1e-5))
    elif op == "flatten":
        out = torch.flatten(tensors[0], 1)
    else:
        pool = F.max_pool2d if op == "max_pool2d" else F.avg_pool2d
        out = pool(tensors[0], attrs["size"], attrs.get("stride"), attrs.get("pad", 0))
    out.backward(torch.tensor(case["dout"], dtype=torch.float64))
    results.append({"out": out.tolist(), "grads": [tensor.grad.tolist() for tensor in tensors]})
print(json.dumps(results))
"""

TORCH_CASES = [
    ("conv2d", [(2, 3, 7, 7), (4, 3, 3, 3), (4,)], {"stride": 1, "pad": 0}),
    ("conv2d", [(2, 3, 7, 7), (4, 3, 3, 3), (4,)], {"stride": 2, "pad": 1}),
    ("conv2d", [(2, 2, 6, 9), (3, 2, 3, 5), (3,)], {"stride": [1, 2], "pad": [2, 1]}),
    ("conv2d", [(3, 1, 28, 28), (5, 1, 5, 5), (5,)], {"stride": 1, "pad": 2}),
    ("max_pool2d", [(2, 3, 8, 8)], {"size": 2}),
    ("max_pool2d", [(2, 3, 7, 7)], {"size": 3, "stride": 2, "pad": 1}),
    ("max_pool2d", [(2, 2, 6, 9)], {"size": [2, 3], "stride": [1, 2], "pad": [1, 1]}),
    ("avg_pool2d", [(2, 3, 8, 8)], {"size": 2}),
    ("avg_pool2d", [(2, 3, 7, 7)], {"size": 3, "stride": 2, "pad": 1}),
    ("avg_pool2d", [(2, 2, 6, 9)], {"size": [2, 3], "stride": [1, 2], "pad": [1, 1]}),
    ("batchnorm", [(5, 4), (4,), (4,)], {}),
    ("batchnorm", [(3, 2, 4, 5), (2,), (2,)], {"eps": 0.01}),
    ("flatten", [(2, 3, 4, 5)], {}),
]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_ops_match_pytorch() -> None:
    rng = np.random.default_rng(14)
    cases, ours = [], []
    for op, shapes, attrs in TORCH_CASES:
        inputs = [rng.standard_normal(shape) for shape in shapes]
        if op == "max_pool2d":
            inputs[0] = np.round(inputs[0], 1)  # ties within windows, which the tie rule settles as PyTorch does
        layer = cgraph.layers.REGISTRY[op](**attrs)
        out = layer.forward(*inputs)
        dout = rng.standard_normal(out.shape)
        ours.append((out, layer.backward(dout)))
        cases.append({"op": op, "attrs": attrs, "inputs": [a.tolist() for a in inputs], "dout": dout.tolist()})
    # PyTorch runs in a child process, so that this one's memory stays small (see test_examples).
    result = subprocess.run([sys.executable, "-c", TORCH_OPS], input=json.dumps(cases), capture_output=True,
                            text=True, check=True)
    for (op, _, attrs), (out, grads), theirs in zip(TORCH_CASES, ours, json.loads(result.stdout)):
        np.testing.assert_allclose(out, theirs["out"], rtol=1e-12, atol=1e-12, err_msg=f"{op} {attrs}")
        for grad, their_grad in zip(grads, theirs["grads"]):
            np.testing.assert_allclose(grad, their_grad, rtol=1e-10, atol=1e-12, err_msg=f"{op} {attrs}")


def _numeric_gradient(loss, value: np.ndarray) -> np.ndarray:
    """Central differences of loss() in each element of ``value`` (changed in place and restored)."""
    numeric = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        saved = value[index]
        value[index] = saved + 1e-6
        plus = loss()
        value[index] = saved - 1e-6
        numeric[index] = (plus - loss()) / 2e-6
        value[index] = saved
    return numeric


def test_the_loop_references_backward_agree_with_their_forward() -> None:
    # The loop references used by test_layers.py and test_examples.py are checked themselves:
    # their backward loops against central differences of their forward loops.
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((1, 2, 4, 7)), rng.standard_normal((2, 2, 3, 3)), rng.standard_normal(2)
    dout = rng.standard_normal((1, 2, 4, 4))
    dx, dW, db = loops.conv2d_backward(x, W, dout, stride=[1, 2], pad=1)
    conv_loss = lambda: np.sum(dout * loops.conv2d(x, W, b, stride=[1, 2], pad=1))  # noqa: E731
    np.testing.assert_allclose(dx, _numeric_gradient(conv_loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dW, _numeric_gradient(conv_loss, W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, _numeric_gradient(conv_loss, b), rtol=1e-6, atol=1e-8)
    dpool = rng.standard_normal((1, 2, 5, 4))
    pool_loss = lambda: np.sum(dpool * loops.max_pool2d(x, size=[2, 3], stride=[1, 2], pad=[1, 1]))  # noqa: E731
    np.testing.assert_allclose(loops.max_pool2d_backward(x, dpool, size=[2, 3], stride=[1, 2], pad=[1, 1]),
                               _numeric_gradient(pool_loss, x), rtol=1e-6, atol=1e-8)


def test_expression_form_is_the_same_graph_as_the_mapping_form() -> None:
    inputs = ("inputs:\n  x: {random: uniform, shape: [2, 1, 8, 8], seed: 0}\n"
              "  W1: {random: normal, shape: [3, 1, 3, 3], seed: 1}\n  b1: [0.1, 0.2, 0.3]\n"
              "  g: [1.0, 2.0, 3.0]\n  z: [0.0, 0.5, -0.5]\n")
    mapping = cgraph.loads(inputs + (
        "nodes:\n  c: {op: conv2d, inputs: [x, W1, b1], stride: 1, pad: 1}\n  n: {op: batchnorm, inputs: [c, g, z]}\n"
        "  p: {op: max_pool2d, inputs: [n], size: 2}\n  a: {op: avg_pool2d, inputs: [p], size: [2, 1], stride: 1}\n"
        "  d: {op: dropout, inputs: [a], ratio: 0.25, seed: 4}\n  f: {op: flatten, inputs: [d]}\n"
        "  out: {op: sum, inputs: [f]}\n"))
    expression = cgraph.loads(inputs + (
        "nodes:\n  out: sum(flatten(dropout(avg_pool2d(max_pool2d(batchnorm(conv2d(x, W1, b1, stride=1, pad=1), g, z),"
        " size=2), size=[2, 1], stride=1), ratio=0.25, seed=4)))\n"))
    assert expression.forward() == mapping.forward()
    mapping_grads, expression_grads = mapping.backward(), expression.backward()
    for name in ("x", "W1", "b1", "g", "z"):
        np.testing.assert_array_equal(expression_grads[name], mapping_grads[name])
