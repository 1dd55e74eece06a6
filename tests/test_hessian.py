"""Second derivatives: cgraph hessian, Hessian-vector products through the gradient graph, and
check --order 2, against PyTorch's double backward (float64, where torch is installed) and
against central differences of cgraph's own gradients (always)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cgraph
from cgraph.cli import cli
from test_layers import _filter_shape, _unpooled_shape

try:
    import torch
except ImportError:  # an optional test dependency (the 'test' extra)
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed: the oracle of double backward")
ROOT = Path(__file__).resolve().parent.parent
RTOL = 1e-9

NET = """inputs:
  x: {random: normal, shape: [4, 3], seed: 0}
  t: [[1, 0], [0, 1], [0, 1], [1, 0]]
  W1: {random: normal, shape: [3, 5], seed: 1}
  b1: {random: normal, shape: [5], seed: 2}
  W2: {random: normal, shape: [5, 2], seed: 3}
  b2: [0.1, -0.2]
nodes:
  a1: {op: affine, inputs: [x, W1, b1]}
  z1: tanh(a1)
  a2: {op: affine, inputs: [z1, W2, b2]}
  loss: {op: softmax_with_loss, inputs: [a2, t]}
"""

# Every op of second order interest: smooth ones, reductions, shapes, and the kinks.
MIXED = """inputs:
  x: [[0.3, -1.2, 0.8], [1.5, -0.4, 0.2]]
  y: [0.5, -0.7, 1.1]
nodes:
  p: x * y + sigmoid(x) / (1 + square(y))
  q: sqrt(exp(x) + 1) - log(1 + y * y)
  r: softmax(p * q)
  s: maximum(p, q) + minimum(x, y) + abs(p) + relu(q) + clip(x, min=-1, max=1)
  m: mean(transpose(r) @ s, axis=0) * sum(x ** 3, axis=1, keepdims=True)
  c: concat(m, broadcast_to(y, shape=[2, 3]), axis=1)
  loss: sum(reshape(c, shape=[-1])[1:4] * stack(y, y, axis=0)[1, 0:3]) + sum(pow(c, 2)) / 7
"""


def _hessian_json(tmp_path: Path, text: str, *args: str) -> dict:
    path = tmp_path / "g.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["hessian", str(path), "--format", "json", *args])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _torch_inputs(text: str) -> dict:
    graph = cgraph.loads(text)
    return {name: torch.tensor(np.asarray(item.value, dtype=np.float64)) for name, item in graph.spec.inputs.items()}


def _net_loss(x, t, W1, b1, W2, b2):
    a2 = torch.tanh(x @ W1 + b1) @ W2 + b2
    return -(t * torch.log_softmax(a2, dim=-1)).sum() / a2.shape[0]


def _mixed_loss(x, y):
    p = x * y + torch.sigmoid(x) / (1 + y * y)
    q = torch.sqrt(torch.exp(x) + 1) - torch.log(1 + y * y)
    r = torch.softmax(p * q, dim=-1)
    s = torch.maximum(p, q) + torch.minimum(x, y) + torch.abs(p) + torch.relu(q) + torch.clamp(x, -1, 1)
    m = (r.T @ s).mean(dim=0) * (x ** 3).sum(dim=1, keepdim=True)
    c = torch.cat([m, y.broadcast_to(2, 3)], dim=1)
    return (c.reshape(-1)[1:4] * torch.stack([y, y], dim=0)[1, 0:3]).sum() + (c ** 2).sum() / 7


def _compare(ours: dict, theirs: tuple, names: list[str]) -> None:
    for i, x in enumerate(names):
        for j, y in enumerate(names):
            expected = theirs[i][j].numpy()
            np.testing.assert_allclose(np.asarray(ours[x][y], dtype=np.float64), expected, rtol=RTOL,
                                       atol=1e-12 * max(1.0, np.abs(expected).max(initial=0.0)), err_msg=f"{x}, {y}")


@needs_torch
def test_the_hessian_of_a_network_is_torchs(tmp_path):
    names = ["x", "t", "W1", "b1", "W2", "b2"]
    ours = _hessian_json(tmp_path, NET)
    assert ours["wrt"] == names and ours["output"] == "loss" and ours["dout"] == 1.0
    inputs = _torch_inputs(NET)
    theirs = torch.autograd.functional.hessian(_net_loss, tuple(inputs[name] for name in names))
    _compare(ours["hessian"], theirs, names)


@needs_torch
def test_the_hessian_through_every_kind_of_op_is_torchs(tmp_path):
    ours = _hessian_json(tmp_path, MIXED, "--dout", "2.5")
    inputs = _torch_inputs(MIXED)
    theirs = torch.autograd.functional.hessian(lambda x, y: 2.5 * _mixed_loss(x, y), (inputs["x"], inputs["y"]))
    _compare(ours["hessian"], theirs, ["x", "y"])


LOG_SOFTMAX = """inputs:
  x: [[0.3, -1.2, 0.8], [1.5, -0.4, 0.2]]
  g: [[0.5, -0.7, 1.1], [0.2, 0.9, -0.3]]
nodes:
  loss: sum(tanh(log_softmax_grad(g * x, log_softmax(x) * 0.7)) * x) + sum(log_softmax(x * g) ** 2)
"""


@needs_torch
def test_the_hessian_through_log_softmax_and_its_gradient_is_torchs(tmp_path):
    """log_softmax's rule is the op log_softmax_grad, whose own rules give the second derivatives."""
    def loss(x, g):
        y = torch.log_softmax(x, dim=-1) * 0.7
        grad = g * x - torch.exp(y) * (g * x).sum(dim=-1, keepdim=True)  # log_softmax_grad by its definition
        return (torch.tanh(grad) * x).sum() + (torch.log_softmax(x * g, dim=-1) ** 2).sum()

    ours = _hessian_json(tmp_path, LOG_SOFTMAX)
    inputs = _torch_inputs(LOG_SOFTMAX)
    _compare(ours["hessian"], torch.autograd.functional.hessian(loss, (inputs["x"], inputs["g"])), ["x", "g"])


@needs_torch
def test_kinks_follow_pytorch(tmp_path):
    # relu at 0, abs at 0 and maximum's ties: PyTorch's first derivatives (0, 0, half and half)
    # and second derivatives (0: the masks do not move).
    text = "inputs:\n  x: [0.0, 1.0, -2.0]\n  y: [0.0, 1.0, 3.0]\nnodes:\n" \
           "  loss: sum(relu(x) * y + abs(x) * y * y + maximum(x, y) * x)\n"
    ours = _hessian_json(tmp_path, text)
    x, y = (torch.tensor(value, dtype=torch.float64) for value in ([0.0, 1.0, -2.0], [0.0, 1.0, 3.0]))

    def loss(x, y):
        return (torch.relu(x) * y + torch.abs(x) * y * y + torch.maximum(x, y) * x).sum()

    _compare(ours["hessian"], torch.autograd.functional.hessian(loss, (x, y)), ["x", "y"])
    gradient = CliRunner().invoke(cli, ["grad", str(tmp_path / "g.yaml"), "--wrt", "x"])
    values = cgraph.loads(gradient.stdout).forward()
    xt = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(loss(xt, y), xt)
    np.testing.assert_allclose(values, expected.numpy(), rtol=RTOL)


@needs_torch
def test_hessian_vector_products_from_backward_of_the_gradient_graph(tmp_path):
    source = tmp_path / "net.yaml"
    source.write_text(NET)
    out = tmp_path / "net_grad.yaml"
    assert CliRunner().invoke(cli, ["grad", str(source), "-o", str(out)]).exit_code == 0
    v = np.random.default_rng(5).standard_normal((3, 5))
    np.save(tmp_path / "v.npy", v)
    result = CliRunner().invoke(cli, ["backward", str(out), "--output", "grad_W1", "--dout", f"@{tmp_path / 'v.npy'}",
                                      "--format", "json"])
    assert result.exit_code == 0, result.stderr
    ours = json.loads(result.stdout)["nodes"]
    inputs = {name: value.requires_grad_(True) for name, value in _torch_inputs(NET).items()}
    loss = _net_loss(*(inputs[name] for name in ["x", "t", "W1", "b1", "W2", "b2"]))
    (grad_w1,) = torch.autograd.grad(loss, inputs["W1"], create_graph=True)
    products = torch.autograd.grad((grad_w1 * torch.tensor(v)).sum(), list(inputs.values()))
    for name, product in zip(inputs, products):
        np.testing.assert_allclose(ours[name]["grad"], product.numpy(), rtol=RTOL, atol=1e-13, err_msg=name)


def test_the_hessian_is_central_differences_of_the_gradients(tmp_path):
    """Always, with or without torch: each row against (g(x + h) - g(x - h)) / 2h of backward's gradients."""
    ours = _hessian_json(tmp_path, MIXED)
    graph = cgraph.loads(MIXED)
    for y in ("x", "y"):
        original = np.array(graph.spec.inputs[y].value)
        for index in np.ndindex(original.shape):
            step = 1e-6
            sides = []
            for sign in (1, -1):
                moved = original.copy()
                moved[index] += sign * step
                graph.set_input(y, moved)
                sides.append(graph.backward(1.0))
            graph.set_input(y, original)
            for x in ("x", "y"):
                numeric = (np.asarray(sides[0][x]) - np.asarray(sides[1][x])) / (2 * step)
                column = np.asarray(ours["hessian"][x][y])[(Ellipsis, *index)]
                np.testing.assert_allclose(column, numeric, rtol=1e-5, atol=1e-7, err_msg=f"{x}, {y}{index}")


# Ops that the batched evaluation runs once per direction (convolutions, poolings, dropout, batchnorm)
# beside ones it batches (concat, stack, mean over axes).
CONVNET = """inputs:
  x: {random: normal, shape: [2, 1, 5, 5], seed: 0}
  W: {random: normal, shape: [2, 1, 3, 3], seed: 1}
  b: [0.1, -0.2]
  g: {random: normal, shape: [2], seed: 3}
  h: {random: normal, shape: [4], seed: 4}
nodes:
  c: conv2d(x, W, b, pad=1)
  p: {op: max_pool2d, inputs: [c], size: 2, stride: 1}
  q: {op: avg_pool2d, inputs: [c], size: 2, stride: 1}
  k: concat(p, q, axis=1)
  s: stack(sum(tanh(k), axis=[0, 2, 3]), h, axis=0)
  loss: sum(s * s) + sum(dropout(tanh(c), ratio=0.3) ** 2) + mean(batchnorm(c, g, b) ** 3)
"""


def _by_backward_passes(tmp_path: Path, text: str) -> dict:
    """The Hessian the slow way: one backward pass of the gradient graph from grad_X per element of
    X, with a one-hot dout (the gradients of its inputs are the row)."""
    path = tmp_path / "source.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["grad", str(path)])
    assert result.exit_code == 0, result.stderr
    gradient = cgraph.loads(result.stdout)
    names = [name for name in cgraph.loads(text).spec.inputs if f"grad_{name}" in gradient.spec.nodes]
    blocks: dict = {x: {} for x in names}
    for x in names:
        gradient.output = f"grad_{x}"
        shape = gradient.shapes[x]
        rows = []
        for index in np.ndindex(shape):
            one_hot = np.zeros(shape)
            one_hot[index] = 1.0
            rows.append(gradient.backward(one_hot))
        for y in names:
            blocks[x][y] = np.array([np.asarray(row[y]) for row in rows]).reshape(shape + gradient.shapes[y])
    return blocks


@pytest.mark.parametrize("text", [MIXED, NET, LOG_SOFTMAX, CONVNET, (ROOT / "graphs" / "two_layer_net.yaml").read_text()],
                         ids=["mixed", "net", "log_softmax", "convnet", "two_layer_net"])
def test_the_batched_hessian_is_one_backward_pass_per_element(text, tmp_path, monkeypatch):
    """All directions at once, and in batches of a few (a small BATCH_ELEMENTS): the numbers of one
    backward pass per element, within 1e-12."""
    from cgraph import hessian

    expected = _by_backward_passes(tmp_path, text)
    whole = _hessian_json(tmp_path, text)["hessian"]
    monkeypatch.setattr(hessian, "BATCH_ELEMENTS", 7)
    batches = _hessian_json(tmp_path, text)["hessian"]
    assert list(whole) == list(expected)
    for x in expected:
        for y in expected:
            for ours in (whole, batches):
                np.testing.assert_allclose(np.asarray(ours[x][y], dtype=np.float64), expected[x][y], rtol=1e-12,
                                           atol=1e-300, err_msg=f"{x}, {y}")


def test_the_hessian_is_symmetric_and_laid_out_by_shapes(tmp_path):
    ours = _hessian_json(tmp_path, NET, "--wrt", "W2", "--wrt", "b2")
    assert np.shape(ours["hessian"]["W2"]["b2"]) == (5, 2, 2)
    assert np.shape(ours["hessian"]["b2"]["W2"]) == (2, 5, 2)
    np.testing.assert_allclose(np.asarray(ours["hessian"]["W2"]["b2"]),
                               np.moveaxis(np.asarray(ours["hessian"]["b2"]["W2"]), 0, -1), rtol=1e-12, atol=1e-15)


def test_text_labels_elements(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("inputs:\n  w: [[1.0, 2.0]]\n  a: 3.0\nnodes:\n  y: sum(w * w * a)\n")
    result = CliRunner().invoke(cli, ["hessian", str(path)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    block = lines.index("d²L / dw dw")
    assert lines[block + 1].split() == ["w[0,0]", "w[0,1]"]
    assert lines[block + 2].split() == ["w[0,0]", "6", "0"]  # d²(a w²)/dw² = 2a
    assert lines[lines.index("d²L / dw da") + 2].split() == ["w[0,0]", "2"]  # 2 w


def test_too_large_a_hessian_is_refused_with_its_size(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("inputs:\n  x: {fill: 1, shape: [100]}\nnodes:\n  y: sum(x * x)\n")
    result = CliRunner().invoke(cli, ["hessian", str(path), "--max-elements", "9999"])
    assert result.exit_code == 1 and result.stdout == ""
    assert "the Hessian would hold 10,000 numbers (100 elements of x, squared), over --max-elements 9,999" in result.stderr


def test_check_order_2_passes_and_fails(tmp_path):
    assert CliRunner().invoke(cli, ["check", "--order", "2", str(ROOT / "graphs" / "two_layer_net.yaml")]).exit_code == 0
    path = tmp_path / "g.yaml"
    path.write_text(MIXED)
    result = CliRunner().invoke(cli, ["check", "--order", "2", str(path), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["passed"] is True
    # relu's kink at 0: the Hessian (0, as PyTorch's) differs from the finite differences across the kink
    kink = tmp_path / "kink.yaml"
    kink.write_text("inputs:\n  x: [0.0, 1.0]\nnodes:\n  y: sum(relu(x) * x)\n")
    failed = CliRunner().invoke(cli, ["check", "--order", "2", str(kink)])
    assert failed.exit_code == 1 and "FAIL: 1 of 1 blocks" in failed.stdout


# --- the convolutional layers and the ops of their gradients ----------------------------


def _torch_op(op: str, attrs: dict):
    """The op as a function of torch tensors, each made by PyTorch's own layers (the ops of the
    gradients as PyTorch's gradients of them, made differentiable with create_graph)."""
    from torch.nn import functional as F

    def tupled(value):
        return tuple(value) if isinstance(value, list) else value

    stride, pad = tupled(attrs.get("stride", 1)), tupled(attrs.get("pad", 0))
    if "size" in attrs:
        size = tupled(attrs["size"])
        stride = size if attrs.get("stride") is None else stride

    def gradient_of(forward, shape, g):
        start = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        return torch.autograd.grad(forward(start), start, g, create_graph=True)[0]

    def select(x, v):
        _, index = F.max_pool2d(x, size, stride, pad, return_indices=True)
        return v.flatten(2).gather(2, index.flatten(2)).reshape(index.shape)

    return {
        "conv2d": lambda x, W, b: F.conv2d(x, W, b, stride, pad),
        "conv2d_transpose": lambda x, W: F.conv_transpose2d(x, W, None, stride, pad),
        "conv2d_filter_grad": lambda x, g: torch.autograd.grad(
            F.conv2d(x, w := torch.zeros(_filter_shape(x.shape, g.shape, stride, pad), dtype=torch.float64,
                                         requires_grad=True), None, stride, pad), w, g, create_graph=True)[0],
        "max_pool2d": lambda x: F.max_pool2d(x, size, stride, pad),
        "max_pool2d_grad": lambda x, g: torch.autograd.grad(F.max_pool2d(x, size, stride, pad), x, g,
                                                            create_graph=True)[0],
        "max_pool2d_select": select,
        "avg_pool2d": lambda x: F.avg_pool2d(x, size, stride, pad),
        "avg_pool2d_grad": lambda g: gradient_of(lambda x: F.avg_pool2d(x, size, stride, pad),
                                                 _unpooled_shape(tuple(g.shape), size, stride, pad), g),
        "batchnorm": lambda x, gamma, beta: _batch_norm(x, gamma, beta, attrs.get("eps", 1e-5)),
    }[op]


def _batch_norm(x, gamma, beta, eps):
    """Training-mode batch normalisation by its definition (F.batch_norm refuses a batch of one)."""
    axes = [0] if x.ndim == 2 else [0, 2, 3]
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    mean = x.mean(dim=axes, keepdim=True)
    variance = ((x - mean) ** 2).mean(dim=axes, keepdim=True)
    return gamma.reshape(shape) * (x - mean) / torch.sqrt(variance + eps) + beta.reshape(shape)


CNN_OPS = ["conv2d", "conv2d_transpose", "conv2d_filter_grad", "max_pool2d", "max_pool2d_grad", "max_pool2d_select",
           "avg_pool2d", "avg_pool2d_grad", "batchnorm"]


def _cnn_cases():
    from test_layers import OP_CASES

    for op in CNN_OPS:
        for i, (kinds, attrs) in enumerate(OP_CASES[op][1]):
            yield pytest.param(op, kinds, attrs, id=f"{op}-{i}")


@needs_torch
@pytest.mark.parametrize(("op", "kinds", "attrs"), list(_cnn_cases()))
def test_second_derivatives_of_the_convolutional_ops_are_torchs(op, kinds, attrs, tmp_path):
    """The Hessian of sum(c * tanh(op(...))) for every input pair, against torch's double backward."""
    from test_layers import _sample

    rng = np.random.default_rng(len(op) + len(kinds))
    inputs = {f"x{i}": _sample(rng, kind) for i, kind in enumerate(kinds)}
    layer = cgraph.layers.REGISTRY[op](**attrs)
    weights = rng.standard_normal(np.shape(layer.forward(*inputs.values())))
    text = json.dumps({"inputs": {**{name: value.tolist() for name, value in inputs.items()}, "c": weights.tolist()},
                       "nodes": {"out": {"op": op, "inputs": list(inputs), **attrs}, "loss": "sum(c * tanh(out))"}})
    names = list(inputs)
    ours = _hessian_json(tmp_path, text, *(item for name in names for item in ("--wrt", name)))
    function = _torch_op(op, attrs)
    c = torch.tensor(weights)
    theirs = torch.autograd.functional.hessian(lambda *xs: (c * torch.tanh(function(*xs))).sum(),
                                               tuple(torch.tensor(value) for value in inputs.values()))
    _compare(ours["hessian"], theirs, names)


@needs_torch
def test_second_derivatives_of_max_pooling_in_ceil_mode_are_torchs(tmp_path):
    """A last window hanging over the end of 6 rows and 7 columns (size 3, stride 2, pad 1): PyTorch's ceil_mode."""
    from torch.nn import functional as F

    rng = np.random.default_rng(4)
    x, c = rng.standard_normal((2, 2, 6, 7)), rng.standard_normal((2, 2, 4, 4))
    text = json.dumps({"inputs": {"x": x.tolist(), "c": c.tolist()},
                       "nodes": {"m": {"op": "max_pool2d", "inputs": ["x"], "size": 3, "stride": 2, "pad": 1, "ceil": True},
                                 "loss": "sum(c * tanh(m) * m)"}})
    ours = _hessian_json(tmp_path, text, "--wrt", "x", "--wrt", "c")

    def loss(x, c):
        m = F.max_pool2d(x, 3, 2, 1, ceil_mode=True)
        return (c * torch.tanh(m) * m).sum()

    _compare(ours["hessian"], torch.autograd.functional.hessian(loss, (torch.tensor(x), torch.tensor(c))), ["x", "c"])


def test_a_convnet_s_gradient_graph_runs_and_equals_backward():
    graph = cgraph.load(ROOT / "graphs" / "simple_convnet.yaml")
    expected = graph.backward(1.0)
    result = CliRunner().invoke(cli, ["grad", str(ROOT / "graphs" / "simple_convnet.yaml")])
    assert result.exit_code == 0, result.stderr
    gradient = cgraph.loads(result.stdout)
    gradient.forward()
    for name in ("W1", "b1", "W2"):
        np.testing.assert_allclose(gradient.values[f"grad_{name}"], expected[name], rtol=1e-12, atol=1e-300)
