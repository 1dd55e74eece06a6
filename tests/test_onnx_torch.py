"""Models exported from PyTorch: cgraph's gradient of every parameter and of the input, read
from the exported model, equals torch autograd's on the module itself."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (an optional test dependency)")
pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'cgraph-calc[onnx]')")

from cgraph import api  # noqa: E402

nn = torch.nn


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(self.flatten(x))))))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        return self.pool(torch.relu(x + self.conv2(torch.relu(self.conv1(x)))))


class StridedNet(nn.Module):
    """Windows that do not fit exactly, left out by PyTorch's floor rule: 28x28 through a kernel of
    3, stride 2, pad 1 gives 14x14; 14x14 max-pooled by 3, stride 2 gives 6x6; 6x6 average-pooled
    by 4, stride 3 (pad 1) gives 2x2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 2, stride=3)
        self.pool = nn.MaxPool2d(3, stride=2)
        self.average = nn.AvgPool2d(4, stride=3, padding=1)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        return self.average(x) + self.conv2(x)


class CeilNet(nn.Module):
    """Pooling in ceil mode, one more window at the end where the windows do not fit: 10x10 max-pooled
    by 3, stride 2, pad 1 gives 6x6 (floor: 5x5); average-pooled by 3, stride 2, pad 1 with and without
    the padding counted, 4x4 (floor: 3x3); the input average-pooled by 3, 4x4 (floor: 3x3)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.counted = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
        self.uncounted = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.average = nn.AvgPool2d(3, ceil_mode=True)

    def forward(self, x):
        pooled = self.pool(x)
        return self.counted(pooled) + self.uncounted(pooled) * 0.5 + self.average(x) * 0.25


class BatchNormNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 4)
        self.norm = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        return torch.log_softmax(self.out(torch.sigmoid(self.norm(self.fc(x)))), dim=1)


class CrossEntropy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 4)

    def forward(self, x, t):
        return nn.functional.cross_entropy(self.fc2(torch.tanh(self.fc1(x))), t)


class SoftmaxMlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x):
        h = nn.functional.leaky_relu(self.fc1(x), 0.25)  # exact in float32, as ONNX keeps attributes
        return torch.softmax(self.fc2(h), dim=1).sum(dim=0, keepdim=True) * 2 - h.mean()


def _batch_norm() -> nn.Module:
    model = BatchNormNet()
    with torch.no_grad():  # running statistics other than the initial 0 and 1
        model.norm.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3, 0.05]))
        model.norm.running_var.copy_(torch.tensor([0.5, 1.5, 2.0, 0.8]))
        model.norm.weight.copy_(torch.tensor([1.2, 0.7, -0.4, 1.0]))
    return model


MODELS = {
    "mlp": (lambda: nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 10)), [(4, 7)], 17),
    "lenet": (LeNet, [(2, 1, 28, 28)], 17),
    "residual": (Residual, [(2, 3, 6, 6)], 17),
    "strided": (StridedNet, [(2, 1, 28, 28)], 17),
    "ceil_mode": (CeilNet, [(2, 3, 10, 10)], 17),
    "ceil_mode_opset_19": (CeilNet, [(2, 3, 10, 10)], 19),
    "batchnorm": (_batch_norm, [(6, 5)], 17),
    "cross_entropy": (CrossEntropy, [(5, 6), "labels"], 17),
    "softmax_opset_11": (SoftmaxMlp, [(3, 4)], 11),
}


def _export(model: nn.Module, args: tuple, opset: int, names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, buffer, dynamo=False, opset_version=opset, input_names=names,
                          do_constant_folding=False)
    return buffer.getvalue()


def _inputs(shapes: list) -> list:
    generator = torch.Generator().manual_seed(3)
    return [torch.randint(0, 4, (5,), generator=generator) if shape == "labels"
            else torch.randn(*shape, generator=generator, dtype=torch.float64) for shape in shapes]


@pytest.mark.parametrize("name", MODELS)
def test_gradients_equal_torch_autograd(name: str) -> None:
    make, shapes, opset = MODELS[name]
    torch.manual_seed(0)
    model = make().double().eval()
    args = _inputs(shapes)
    names = [f"input_{i}" for i in range(len(args))]
    raw = _export(model, tuple(args), opset, names)

    for arg in args:
        arg.requires_grad_(arg.is_floating_point())
    out = model(*args)
    out.sum().backward()

    graph = api.loads(raw, source=f"{name}.onnx", overrides={n: a.detach().numpy() for n, a in zip(names, args)})
    value = graph.forward()
    grads = graph.backward()
    assert np.asarray(value).dtype == np.float64
    np.testing.assert_allclose(value, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    checked = 0
    for input_name, arg in zip(names, args):
        if arg.is_floating_point():
            np.testing.assert_allclose(grads[input_name], arg.grad.numpy(), rtol=1e-9, atol=1e-12)
        else:
            assert not np.any(grads[input_name])  # class labels: 0
        checked += 1
    for parameter_name, parameter in model.named_parameters():
        assert parameter_name in graph.spec.inputs, f"{parameter_name} is not an input of the graph"
        np.testing.assert_allclose(grads[parameter_name], parameter.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=parameter_name)
        checked += 1
    assert checked == len(args) + len(list(model.parameters()))


def test_float32_model_computes_in_float32() -> None:
    torch.manual_seed(0)
    model = LeNet().eval()
    x = torch.randn(2, 1, 28, 28)
    graph = api.loads(_export(model, (x,), 17, ["input"]), overrides={"input": x.numpy()})
    value = graph.forward()
    assert value.dtype == np.float32
    assert graph.backward()["fc1.weight"].dtype == np.float32
    np.testing.assert_allclose(value, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_cross_entropy_backward_through_the_command(tmp_path) -> None:
    torch.manual_seed(0)
    model = CrossEntropy().double()
    x, t = _inputs([(5, 6), "labels"])
    path = tmp_path / "loss.onnx"
    path.write_bytes(_export(model, (x, t), 17, ["x", "t"]))
    np.save(tmp_path / "x.npy", x.numpy())
    x.requires_grad_(True)
    model(x, t).backward()
    result = subprocess.run(
        [sys.executable, "-m", "cgraph", "backward", str(path), "--set", f"x=@{tmp_path / 'x.npy'}",
         "--set", f"t={t.tolist()}", "--format", "json", "--node", "fc1.weight", "--node", "x"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    import json

    nodes = json.loads(result.stdout)["nodes"]
    np.testing.assert_allclose(nodes["x"]["grad"], x.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(nodes["fc1.weight"]["grad"], model.fc1.weight.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_windows_that_do_not_fit_equal_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    torch.manual_seed(0)
    x = torch.randn(2, 1, 28, 28)
    raw = _export(StridedNet().eval(), (x,), 17, ["input"])
    (expected,) = ort.InferenceSession(raw, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
    assert expected.shape == (2, 4, 2, 2)
    value = api.loads(raw, overrides={"input": x.numpy()}).forward()
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [17, 19])
def test_ceil_mode_pooling_equals_onnxruntime(opset: int) -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    torch.manual_seed(0)
    x = torch.randn(2, 3, 10, 10)
    raw = _export(CeilNet().eval(), (x,), opset, ["input"])
    (expected,) = ort.InferenceSession(raw, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
    assert expected.shape == (2, 3, 4, 4)
    value = api.loads(raw, overrides={"input": x.numpy()}).forward()
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)
