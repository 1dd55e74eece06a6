"""Every example in graphs/ gives the numbers worked out by hand (or published in the book)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cgraph
import loops
from click.testing import CliRunner
from cgraph.cli import cli

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def two_layer_net() -> tuple[dict, dict]:
    """Values and gradients of graphs/two_layer_net.yaml by the book's TwoLayerNet formulas (5.7), in numpy.

    The inputs are made as the file describes them: seeded standard normals, zero biases.
    """
    x = np.random.default_rng(0).standard_normal((3, 4))
    w1, b1 = np.random.default_rng(1).standard_normal((4, 5)), np.zeros(5)
    w2, b2 = np.random.default_rng(2).standard_normal((5, 3)), np.zeros(3)
    t = np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]])
    a1 = x @ w1 + b1
    z1 = np.maximum(a1, 0)
    a2 = z1 @ w2 + b2
    y = np.exp(a2 - a2.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    batch = x.shape[0]
    loss = -np.sum(t * np.log(y)) / batch  # the book adds 1e-7 inside the log; left out to compare exactly
    da2 = (y - t) / batch
    dz1 = da2 @ w2.T
    da1 = dz1 * (a1 > 0)
    values = {"a1": a1, "z1": z1, "a2": a2, "loss": loss}
    grads = {"a2": da2, "W2": z1.T @ da2, "b2": da2.sum(axis=0), "z1": dz1, "a1": da1,
             "W1": x.T @ da1, "b1": da1.sum(axis=0), "x": da1 @ w1.T, "t": -np.log(y) / batch}
    return values, grads


def simple_convnet() -> tuple[dict, dict]:
    """Values and gradients of graphs/simple_convnet.yaml by the book's SimpleConvNet (7.5), with the
    convolution and the pooling computed one output element at a time (tests/loops.py)."""
    x = np.random.default_rng(0).random((3, 1, 28, 28))
    t = np.eye(10)[[3, 1, 7]]
    w1, b1 = np.random.default_rng(1).standard_normal((30, 1, 5, 5)) * 0.01, np.zeros(30)
    w2, b2 = np.random.default_rng(2).standard_normal((4320, 100)) * 0.01, np.zeros(100)
    w3, b3 = np.random.default_rng(3).standard_normal((100, 10)) * 0.01, np.zeros(10)
    conv1 = loops.conv2d(x, w1, b1)
    relu1 = np.maximum(conv1, 0)
    pool1 = loops.max_pool2d(relu1, 2)
    flat = pool1.reshape(3, -1)
    affine1 = flat @ w2 + b2
    relu2 = np.maximum(affine1, 0)
    affine2 = relu2 @ w3 + b3
    y = np.exp(affine2) / np.exp(affine2).sum(axis=1, keepdims=True)
    loss = -np.sum(t * np.log(y)) / 3
    d_affine2 = (y - t) / 3
    d_relu2 = d_affine2 @ w3.T
    d_affine1 = d_relu2 * (affine1 > 0)
    d_flat = d_affine1 @ w2.T
    d_relu1 = loops.max_pool2d_backward(relu1, d_flat.reshape(pool1.shape), 2)
    d_conv1 = d_relu1 * (conv1 > 0)
    dx, dw1, db1 = loops.conv2d_backward(x, w1, d_conv1)
    values = {"conv1": conv1, "pool1": pool1, "flat": flat, "affine1": affine1, "affine2": affine2, "loss": loss}
    grads = {"affine2": d_affine2, "W3": relu2.T @ d_affine2, "b3": d_affine2.sum(axis=0), "affine1": d_affine1,
             "W2": flat.T @ d_affine1, "b2": d_affine1.sum(axis=0), "flat": d_flat, "relu1": d_relu1,
             "conv1": d_conv1, "W1": dw1, "b1": db1, "x": dx, "t": -np.log(y) / 3}
    return values, grads


def spiral_net() -> tuple[dict, dict]:
    """Values and gradients of graphs/spiral.yaml at its starting weights, in numpy: the same two-layer
    net on the 300 spiral points, and its accuracy, the share of rows whose largest score is the label's."""
    x, t = np.load(GRAPHS / "spiral_X.npy"), np.load(GRAPHS / "spiral_t.npy")
    w1, b1 = np.random.default_rng(1).standard_normal((2, 100)), np.zeros(100)
    w2, b2 = np.random.default_rng(2).standard_normal((100, 3)), np.zeros(3)
    a1 = x @ w1 + b1
    z1 = np.maximum(a1, 0)
    scores = z1 @ w2 + b2
    y = np.exp(scores - scores.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    loss = -np.sum(t * np.log(y)) / len(x)
    dscores = (y - t) / len(x)
    da1 = dscores @ w2.T * (a1 > 0)
    hit = [float(np.argmax(row) == np.argmax(label)) for row, label in zip(scores, t)]
    values = {"scores": scores, "loss": loss, "hit": hit, "accuracy": sum(hit) / len(hit)}
    grads = {"W2": z1.T @ dscores, "b2": dscores.sum(axis=0), "W1": x.T @ da1, "b1": da1.sum(axis=0),
             "hit": np.zeros(300), "accuracy": 0.0, "predicted": np.zeros(300)}
    return values, grads


SIGMOID_1 = 1 / (1 + math.exp(-1))


def tiny_net() -> tuple[dict, dict]:
    """tiny_net.yaml's values and gradients by the chain rule in numpy."""
    x, W, b, v = np.array([0.5, -1.0]), np.array([[0.3, -0.2], [0.8, 0.1]]), np.array([0.1, -0.1]), np.array([1.0, -0.5])
    h = np.tanh(x @ W + b)
    y = h @ v
    dy = y - 0.25
    da = dy * v * (1 - h * h)
    return ({"h": h, "y": y, "loss": 0.5 * dy * dy},
            {"y": dy, "h": dy * v, "W": np.outer(x, da), "b": da, "x": W @ da, "v": dy * h, "target": -dy})

# file -> (dout, expected values, expected gradients), all worked out by hand.
EXPECTED = {
    # "Deep Learning from Scratch", 5.4.1: price 220; d apple 2.2, d apple_num 110, d tax 200.
    "buy_apple.yaml": (1.0, {"apple_price": 200.0, "price": 220.0},
                       {"apple": 2.2, "apple_num": 110.0, "tax": 200.0, "apple_price": 1.1, "price": 1.0}),
    # 5.5.3: price 715; d apple 2.2, d apple_num 110, d orange 3.3, d orange_num 165, d tax 650.
    "buy_apple_orange.yaml": (1.0, {"apple_price": 200.0, "orange_price": 450.0, "all_price": 650.0, "price": 715.0},
                              {"apple": 2.2, "apple_num": 110.0, "orange": 3.3, "orange_num": 165.0, "tax": 650.0,
                               "apple_price": 1.1, "orange_price": 1.1, "all_price": 1.1}),
    # y = x * w + b with w broadcast over 3 rows: dw = column sums of x, db = 3 per column.
    "bias_batch.yaml": (1.0, {"xw": [[10, 200], [30, 400], [50, 600]], "y": [[10.5, 200.5], [30.5, 400.5], [50.5, 600.5]]},
                        {"w": [9.0, 12.0], "b": [3.0, 3.0], "x": [[10, 100]] * 3, "xw": [[1, 1]] * 3}),
    # y = x*x + x at x = 3: y = 12, dy/dx = 2x + 1 = 7.
    "fan_out.yaml": (1.0, {"square": 9.0, "y": 12.0}, {"x": 7.0, "square": 1.0}),
    # out = a*b + c with dout = I: da = b*I, db = a*I, dc = I.
    "matrices.yaml": ([[1, 0], [0, 1]], {"ab": [[5, 12], [21, 32]], "out": [[6, 13], [22, 33]]},
                      {"a": [[5, 0], [0, 8]], "b": [[1, 0], [0, 4]], "c": [[1, 0], [0, 1]]}),
    # y = log(1 + exp(x)): dy/dx = sigmoid(x); d one = sum of 1 / (1 + exp(x)).
    "softplus.yaml": (1.0, {"y": [math.log(1 + math.exp(v)) for v in (-2, 0, 1, 3)]},
                      {"x": [1 / (1 + math.exp(-v)) for v in (-2, 0, 1, 3)],
                       "one": sum(1 / (1 + math.exp(v)) for v in (-2, 0, 1, 3))}),
    # y = x @ W = [[4, 5], [10, 11]], s = y @ v = [-1, -1]; dy = outer(dout, v) = [[1, -1], [1, -1]],
    # dv = y.T @ dout = [14, 16], dx = dy @ W.T = [[1, -1, 0]] * 2, dW = x.T @ dy.
    "matmul.yaml": (1.0, {"y": [[4, 5], [10, 11]], "s": [-1, -1]},
                    {"y": [[1, -1], [1, -1]], "v": [14, 16], "x": [[1, -1, 0], [1, -1, 0]],
                     "W": [[5, -5], [7, -7], [9, -9]]}),
    # row means [2, 6], deviations [[-1, 0, 1], [-2, -1, 3]], squares summed per row [2, 14], mean 8.
    # d out / d x = deviation (2 * dev / 2 rows, less the row mean's share, which adds up to 0).
    "reduction.yaml": (1.0, {"row_mean": [[2], [6]], "row_sum": [2, 14], "out": 8.0},
                       {"x": [[-1, 0, 1], [-2, -1, 3]], "row_mean": [[0], [0]], "row_sum": [0.5, 0.5],
                        "sq": [[0.5] * 3] * 2, "dev": [[-1, 0, 1], [-2, -1, 3]]}),
    # The book's two-layer net, computed by its own formulas below; and the same net written as formulas.
    "two_layer_net.yaml": (1.0, *two_layer_net()),
    "two_layer_net_formulas.yaml": (1.0, *two_layer_net()),
    # CS231n's circuit (x + y) * z at x = -2, y = 5, z = -4: q = 3, f = -12; dx = dy = z, dz = q.
    "cs231n_circuit.yaml": (1.0, {"q": 3.0, "f": -12.0}, {"x": -4.0, "y": -4.0, "z": 3.0, "q": -4.0}),
    # CS231n's sigmoid neuron: dot = 2*-1 + -3*-2 - 3 = 1, f = 1 / (1 + e^-1); ddot = f (1 - f),
    # dw = ddot * [x0, x1, 1], dx = ddot * [w0, w1]; d(-dot) = -ddot.
    "sigmoid_neuron.yaml": (1.0, {"dot": 1.0, "f": SIGMOID_1, "-dot": -1.0, "exp(-dot)": math.exp(-1)},
                            {"dot": SIGMOID_1 * (1 - SIGMOID_1), "-dot": -SIGMOID_1 * (1 - SIGMOID_1),
                             "w": [-SIGMOID_1 * (1 - SIGMOID_1), -2 * SIGMOID_1 * (1 - SIGMOID_1),
                                   SIGMOID_1 * (1 - SIGMOID_1)],
                             "x": [2 * SIGMOID_1 * (1 - SIGMOID_1), -3 * SIGMOID_1 * (1 - SIGMOID_1)]}),
    # buy_apple.yaml's gradient graph: grad_apple = tax * apple_num = 2.2, whose own gradients are the
    # second derivatives: d apple_num = tax = 1.1, d tax = apple_num = 2, d apple = 0.
    "buy_apple_grad.yaml": (1.0, {"grad_apple_price": 1.1, "grad_tax": 200.0, "grad_apple": 2.2, "grad_apple_num": 110.0},
                            {"apple": 0.0, "apple_num": 1.1, "tax": 2.0, "dout": 2.2, "grad_apple_price": 2.0}),
    # h = tanh(x @ W + b), y = h @ v, loss = (y - 0.25)² / 2, by numpy below.
    "tiny_net.yaml": (1.0, *tiny_net()),
    # The book's SimpleConvNet, computed with loops above.
    "simple_convnet.yaml": (1.0, *simple_convnet()),
    # CS231n's spiral with a two-layer net and an accuracy node (no path to the loss: gradient 0).
    "spiral.yaml": (1.0, *spiral_net()),
}


# Absolute tolerances, beside the relative 1e-12, where the reference adds up in another order:
# the loops' sums of 25 products differ from im2col's by rounding, about 1e-17 where they nearly cancel.
ATOL = {"simple_convnet.yaml": 1e-16}


def test_spiral_data_is_what_its_generator_makes() -> None:
    sys.path.insert(0, str(GRAPHS))
    try:
        from make_spiral import spiral
    finally:
        sys.path.remove(str(GRAPHS))
    x, t = spiral()
    np.testing.assert_array_equal(np.load(GRAPHS / "spiral_X.npy"), x)
    np.testing.assert_array_equal(np.load(GRAPHS / "spiral_t.npy"), t)
    # 100 points per class, radius from 0 to 1 along each arm
    assert x.shape == (300, 2) and t.shape == (300, 3) and (t.sum(axis=0) == 100).all()
    np.testing.assert_allclose(np.hypot(x[:, 0], x[:, 1]), np.tile(np.linspace(0, 1, 100), 3), atol=1e-12)


def test_every_example_has_expected_numbers() -> None:
    assert sorted(path.name for path in GRAPHS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_values_and_gradients(name: str) -> None:
    dout, values, grads = EXPECTED[name]
    graph = cgraph.load(GRAPHS / name)
    graph.backward(dout)
    atol = ATOL.get(name, 0)
    for key, expected in values.items():
        np.testing.assert_allclose(graph.values[key], expected, rtol=1e-12, atol=atol)
    for key, expected in grads.items():
        np.testing.assert_allclose(graph.grads[key], expected, rtol=1e-12, atol=atol)
    assert graph.grads.keys() == {*graph.spec.inputs, *graph.spec.nodes}  # constants take none
    for key, grad in graph.grads.items():
        assert np.shape(grad) == np.shape(graph.values[key])


TORCH_NET = """
import json, sys, torch
tensors = {name: torch.tensor(value, dtype=torch.float64, requires_grad=True) for name, value in json.load(sys.stdin).items()}
hidden = torch.relu(tensors["x"] @ tensors["W1"] + tensors["b1"])
scores = hidden @ tensors["W2"] + tensors["b2"]
loss = torch.nn.functional.cross_entropy(scores, tensors["t"])  # probabilities as targets; the mean over rows
loss.backward()
print(json.dumps({"loss": loss.item(), "grads": {name: tensor.grad.tolist() for name, tensor in tensors.items()}}))
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_two_layer_net_matches_pytorch() -> None:
    # PyTorch runs in a child process: imported here, it would swell this process's memory,
    # which the processes that tests start inherit in their peak-memory count.
    graph = cgraph.load(GRAPHS / "two_layer_net.yaml")
    graph.backward(1.0)
    inputs = {name: np.asarray(graph.values[name]).tolist() for name in ("x", "t", "W1", "b1", "W2", "b2")}
    result = subprocess.run([sys.executable, "-c", TORCH_NET], input=json.dumps(inputs), capture_output=True,
                            text=True, check=True)
    torch_result = json.loads(result.stdout)
    np.testing.assert_allclose(graph.values["loss"], torch_result["loss"], rtol=1e-12)
    for name, grad in torch_result["grads"].items():
        np.testing.assert_allclose(graph.grads[name], grad, rtol=1e-10, atol=1e-14, err_msg=name)


def test_two_layer_net_with_class_indices() -> None:
    # The same net with labels as class indices [0, 2, 1]: the same loss and weight gradients, no label gradient.
    text = (GRAPHS / "two_layer_net.yaml").read_text().replace("[[1, 0, 0], [0, 0, 1], [0, 1, 0]]", "[0, 2, 1]")
    graph = cgraph.loads(text)
    graph.backward(1.0)
    values, grads = two_layer_net()
    np.testing.assert_allclose(graph.values["loss"], values["loss"], rtol=1e-12)
    for name in ("W1", "b1", "W2", "b2", "x"):
        np.testing.assert_allclose(graph.grads[name], grads[name], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(graph.grads["t"], [0.0, 0.0, 0.0])


TORCH_CONVNET = """
import json, sys, torch
import torch.nn.functional as F
tensors = {name: torch.tensor(value, dtype=torch.float64, requires_grad=True) for name, value in json.load(sys.stdin).items()}
hidden = F.max_pool2d(torch.relu(F.conv2d(tensors["x"], tensors["W1"], tensors["b1"])), 2).flatten(1)
hidden = torch.relu(hidden @ tensors["W2"] + tensors["b2"])
loss = F.cross_entropy(hidden @ tensors["W3"] + tensors["b3"], tensors["t"])
loss.backward()
print(json.dumps({"loss": loss.item(), "grads": {name: tensor.grad.tolist() for name, tensor in tensors.items()}}))
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_simple_convnet_matches_pytorch() -> None:
    graph = cgraph.load(GRAPHS / "simple_convnet.yaml")
    graph.backward(1.0)
    names = ("x", "t", "W1", "b1", "W2", "b2", "W3", "b3")
    inputs = {name: np.asarray(graph.values[name]).tolist() for name in names}
    result = subprocess.run([sys.executable, "-c", TORCH_CONVNET], input=json.dumps(inputs), capture_output=True,
                            text=True, check=True)
    torch_result = json.loads(result.stdout)
    np.testing.assert_allclose(graph.values["loss"], torch_result["loss"], rtol=1e-12)
    for name, grad in torch_result["grads"].items():
        scale = np.max(np.abs(grad))
        np.testing.assert_allclose(graph.grads[name], grad, rtol=1e-9, atol=1e-12 * scale, err_msg=name)


@pytest.mark.parametrize("command", ["forward", "backward", "explain", "dot", "check"])
def test_simple_convnet_runs_in_every_command(command: str) -> None:
    result = CliRunner().invoke(cli, [command, str(GRAPHS / "simple_convnet.yaml")])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    if command == "check":
        assert "PASS: 8 inputs" in result.stdout


def test_simple_convnet_text_shows_the_shapes_flowing_through() -> None:
    # The README's example: each node's line with its layer and the shapes it saw.
    result = CliRunner().invoke(cli, ["forward", str(GRAPHS / "simple_convnet.yaml")])
    lines = [line for line in result.stdout.splitlines() if " = " in line and not line.startswith(" ")]
    assert lines == [
        "conv1 = conv2d(x, W1, b1)  Conv2dLayer(x=x (3, 1, 28, 28), W=W1 (30, 1, 5, 5), b=b1 (30,), "
        "stride=1, pad=0) -> out (3, 30, 24, 24)",
        "relu1 = relu(conv1)  ReluLayer(x=conv1 (3, 30, 24, 24)) -> out (3, 30, 24, 24)",
        "pool1 = max_pool2d(relu1)  MaxPool2dLayer(x=relu1 (3, 30, 24, 24), size=2, stride=2, pad=0) "
        "-> out (3, 30, 12, 12)",
        "flat = flatten(pool1)  FlattenLayer(x=pool1 (3, 30, 12, 12)) -> out (3, 4320)",
        "affine1 = affine(flat, W2, b2)  AffineLayer(x=flat (3, 4320), W=W2 (4320, 100), b=b2 (100,)) "
        "-> out (3, 100)",
        "relu2 = relu(affine1)  ReluLayer(x=affine1 (3, 100)) -> out (3, 100)",
        "affine2 = affine(relu2, W3, b3)  AffineLayer(x=relu2 (3, 100), W=W3 (100, 10), b=b3 (10,)) "
        "-> out (3, 10)",
        "loss = softmax_with_loss(affine2, t)  SoftmaxWithLossLayer(x=affine2 (3, 10), t=t (3, 10)) -> out ()",
    ]


def test_simple_convnet_trains() -> None:
    params = [arg for name in ("W1", "b1", "W2", "b2", "W3", "b3") for arg in ("--param", name)]
    result = CliRunner().invoke(cli, ["train", str(GRAPHS / "simple_convnet.yaml"), *params, "--optimizer", "adam",
                                      "--lr", "0.001", "--steps", "5", "--format", "jsonl"])
    assert result.exit_code == 0, result.stderr
    losses = [json.loads(line)["loss"] for line in result.stdout.splitlines()]
    assert len(losses) == 5
    assert abs(losses[0] - math.log(10)) < 0.01  # the book's small initial weights: about ln 10
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))


def test_sigmoid_neuron_matches_the_notes_rounded() -> None:
    grads = cgraph.load(GRAPHS / "sigmoid_neuron.yaml").backward()
    np.testing.assert_allclose(grads["x"], [0.393, -0.590], atol=5e-4)
    np.testing.assert_allclose(grads["w"], [-0.197, -0.393, 0.197], atol=5e-4)


def test_two_layer_net_in_formulas_gives_the_same_json_as_the_mapping_form() -> None:
    def entries(name: str) -> dict:
        result = subprocess.run([sys.executable, "-m", "cgraph", "backward", str(GRAPHS / name), "--format", "json"],
                                capture_output=True, text=True, check=True)
        return json.loads(result.stdout)["nodes"]

    mapping, formulas = entries("two_layer_net.yaml"), entries("two_layer_net_formulas.yaml")
    shared = [name for name in mapping if name in formulas]
    assert shared == ["x", "t", "W1", "b1", "W2", "b2", "a1", "z1", "a2", "loss"]
    for name in shared:
        if mapping[name]["op"] == formulas[name]["op"]:  # inputs, relu, softmax_with_loss: the whole entry
            assert formulas[name] == mapping[name], name
        else:  # affine against matmul then add: the same numbers
            assert (mapping[name]["op"], formulas[name]["op"]) == ("affine", "add")
            for key in ("shape", "dtype", "value", "grad"):
                assert formulas[name][key] == mapping[name][key], (name, key)
    assert formulas["x @ W1"]["op"] == "matmul" and formulas["z1 @ W2"]["op"] == "matmul"
