"""ONNX models through the commands: the example model, names as the model has them, dtypes,
and the errors of a model's missing or mismatched inputs and of ops cgraph does not map."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'cgraph-calc[onnx]')")
from onnx import TensorProto, helper  # noqa: E402

import cgraph  # noqa: E402
from cgraph.errors import CgraphError  # noqa: E402
from cgraph.layers import CastLayer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "graphs" / "lenet.onnx"
IMAGE = "input={shape: [2, 1, 28, 28], random: normal, seed: 0}"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cgraph", *args], capture_output=True, input=stdin, timeout=120,
                          cwd=ROOT)


def _model(nodes, inputs, outputs, initializers=(), opset: int = 17) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _image() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)


def test_example_model_is_small_and_made_by_its_script() -> None:
    sys.path.insert(0, str(ROOT / "graphs"))
    try:
        import make_lenet_onnx
    finally:
        sys.path.pop(0)
    assert LENET.stat().st_size < 300_000
    assert make_lenet_onnx.model().SerializeToString() == LENET.read_bytes()


def test_example_model_forward_equals_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    x, labels = _image(), np.array([3, 7])
    np.save(tmp_path / "x.npy", x)
    session = ort.InferenceSession(str(LENET), providers=["CPUExecutionProvider"])
    logits, loss = session.run(None, {"input": x, "labels": labels})
    for output, expected in (("logits", logits), ("loss", loss)):
        result = run("forward", str(LENET), "--set", f"input=@{tmp_path / 'x.npy'}", "--set", "labels=[3, 7]",
                     "--output", output, "--format", "json", "--node", output)
        assert result.returncode == 0, result.stderr
        entry = json.loads(result.stdout)["nodes"][output]
        assert entry["dtype"] == "float32"
        np.testing.assert_allclose(entry["value"], expected, rtol=1e-5, atol=1e-6)


def test_every_command_takes_the_example_model(tmp_path: Path) -> None:
    common = [str(LENET), "--set", IMAGE]
    loss = [*common, "--output", "loss", "--set", "labels=[3, 7]"]
    commands = [
        ["forward", *common, "--node", "/fc1/Gemm_output_0"],
        ["backward", *common, "--node", "fc1.weight", "--format", "json"],
        ["explain", *common, "--node", "logits"],
        ["check", *loss, "--samples", "2"],
        ["dot", *common],
        ["html", *common, "-o", str(tmp_path / "page.html")],
        ["lint", *common],
        ["train", *loss, "--param", "fc3.weight", "--param", "fc3.bias", "--steps", "3"],
        ["sweep", *loss, "--vary", "fc3.bias=[[0,0,0,0,0,0,0,0,0,0]]", "--node", "fc3.bias"],
    ]
    for command in commands:
        result = run(*command)
        assert result.returncode == 0, (command[0], result.stderr)
        assert command[0] == "lint" or result.stdout or (tmp_path / "page.html").exists()
    backward = json.loads(run(*commands[1]).stdout)
    assert backward["nodes"]["fc1.weight"]["shape"] == [120, 400]
    assert "/fc1/Gemm_output_0" in run(*commands[0]).stdout.decode()


def test_a_model_is_told_by_its_content_from_a_file_or_standard_input(tmp_path: Path) -> None:
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(LENET.read_bytes())
    by_name = run("forward", str(LENET), "--set", IMAGE, "--format", "json").stdout
    assert run("forward", str(renamed), "--set", IMAGE, "--format", "json").stdout == by_name
    assert run("forward", "-", "--set", IMAGE, "--format", "json", stdin=LENET.read_bytes()).stdout == by_name


def test_a_missing_input_is_named_with_its_dtype_and_shape() -> None:
    result = run("backward", str(LENET))
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.decode() == (
        f"{LENET}: error: input 'input' (float32, shape [batch, 1, 28, 28]) has no value; "
        "give it with --set 'input=@x.npy'\n")
    result = run("backward", str(LENET), "--output", "loss")
    assert result.stderr.decode() == (
        f"{LENET}: error: inputs 'input' (float32, shape [batch, 1, 28, 28]), 'labels' (int64, shape [batch]) "
        "have no values; give each with --set NAME=VALUE (such as --set 'input=@x.npy')\n")


def test_a_value_of_the_wrong_shape_or_dtype_is_refused_naming_both() -> None:
    result = run("forward", str(LENET), "--set", "input={shape: [2, 3, 28, 28], fill: 0}")
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.decode() == ("cgraph: error: --set input: a value of shape [2, 3, 28, 28] does not fit "
                                      "input 'input' (float32, shape [batch, 1, 28, 28])\n")
    result = run("forward", str(LENET), "--output", "loss", "--set", IMAGE, "--set", "labels=[1.5, 2]")
    assert result.stderr.decode() == ("cgraph: error: --set labels: input 'labels' (int64, shape [batch]) takes whole "
                                      "numbers; the value of dtype float64 has others\n")
    result = run("forward", str(LENET), "--output", "loss", "--set", IMAGE, "--set", "labels=[1, 2, 3]")
    assert "dimension 'batch' is 2 in input 'input' but 3 in input 'labels'" in result.stderr.decode()


def test_an_op_without_a_mapping_is_one_error_naming_node_op_opset_and_the_supported(tmp_path: Path) -> None:
    path = tmp_path / "erf.onnx"
    path.write_bytes(_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Erf", ["r"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]))
    result = run("forward", str(path), "--set", "x=[1, 2]")
    assert result.returncode == 1 and result.stdout == b""
    error = result.stderr.decode()
    assert error.startswith(f"{path}: error: node 'y' (Erf, opset 17): cgraph has no op for it; supported at opset 17: "
                            "Abs, Add, ArgMax, AveragePool, BatchNormalization, Cast, Clip, Concat, ConstantOfShape, Conv, ")
    assert error.count("\n") == 1 and "SoftmaxCrossEntropyLoss" in error


def test_float64_model_computes_in_float64_and_integer_initializers_are_attributes() -> None:
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [3, -1])
    graph = cgraph.loads(_model(
        [helper.make_node("Reshape", ["x", "shape"], ["/r"]),
         helper.make_node("Constant", [], ["axes"], value=helper.make_tensor("a", TensorProto.INT64, [1], [1])),
         helper.make_node("ReduceSum", ["/r", "axes"], ["y"], keepdims=0)],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [6])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [3])], [shape]), overrides={"x": np.arange(6.0)})
    assert list(graph.spec.inputs) == ["x"]  # the shape and the axes are attributes
    assert graph.spec.nodes["/r"].attrs == {"shape": [3, -1]}
    assert graph.spec.nodes["y"].attrs == {"axis": [1], "keepdims": False}
    value = graph.forward()
    assert value.dtype == np.float64
    np.testing.assert_array_equal(value, [1.0, 5.0, 9.0])


def test_cast_between_float_types_keeps_the_gradient_in_the_input_dtype() -> None:
    layer = CastLayer(dtype="float32")
    x = np.array([1.0 + 1e-12, 2.0])
    out = layer.forward(x)
    assert out.dtype == np.float32 and out.tolist() == [1.0, 2.0]
    (grad,) = layer.backward(np.ones(2, np.float32))
    assert grad.dtype == np.float64 and grad.tolist() == [1.0, 1.0]
    to_int = CastLayer(dtype="int64")
    assert to_int.forward(np.array([1.7, -1.7])).tolist() == [1, -1]
    assert to_int.backward(np.ones(2))[0].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(("data", "indices", "attrs", "problem"), [
    (np.ones(4), [[0], [2]], {}, "only updates of 1 dimension put into constant zeros"),
    (np.zeros(4), [[1], [1]], {}, "positions out of range or repeated"),
    (np.zeros(4), [[0], [5]], {}, "positions out of range or repeated"),
    (np.zeros(4), [[0], [2]], {"reduction": "add"}, "reduction 'add' is not supported"),
])
def test_scatter_nd_of_other_forms_than_the_writers_is_refused_by_name(data, indices, attrs, problem, tmp_path) -> None:
    path = tmp_path / "scatter.onnx"
    path.write_bytes(_model(
        [helper.make_node("ScatterND", ["data", "indices", "u"], ["y"], **attrs)],
        [helper.make_tensor_value_info("u", TensorProto.DOUBLE, [2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [4])],
        [onnx.numpy_helper.from_array(data, "data"),
         onnx.numpy_helper.from_array(np.array(indices, np.int64), "indices")], opset=18))
    result = run("forward", str(path), "--set", "u=[1, 2]")
    assert result.returncode == 1 and result.stdout == b""
    error = result.stderr.decode()
    assert error.startswith(f"{path}: error: node 'y' (ScatterND, opset 18): ") and problem in error, error
    assert error.count("\n") == 1


def test_scatter_nd_into_zeros_and_constant_of_shape_read_back_as_cgraph_ops() -> None:
    """ScatterND of runs of positions, and ConstantOfShape of Shape(x): scatter, add and zeros_like,
    with numpy's values and gradients (dL/du = dout at the positions; zeros_like's 0)."""
    graph = cgraph.loads(_model(
        [helper.make_node("ScatterND", ["data", "indices", "u"], ["s"]),
         helper.make_node("Shape", ["s"], ["shape"]),
         helper.make_node("ConstantOfShape", ["shape"], ["z"], value=helper.make_tensor("v", TensorProto.DOUBLE, [1], [0.0])),
         helper.make_node("Add", ["s", "z"], ["y"])],
        [helper.make_tensor_value_info("u", TensorProto.DOUBLE, [5])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [9])],
        [onnx.numpy_helper.from_array(np.zeros(9), "data"),
         onnx.numpy_helper.from_array(np.array([[8], [6], [4], [0], [1]], np.int64), "indices")], opset=18),
        overrides={"u": np.array([1.0, 2.0, 3.0, 4.0, 5.0])})
    assert {node.op for node in graph.spec.nodes.values()} == {"scatter", "index", "add", "zeros_like"}
    expected = np.zeros(9)
    expected[[8, 6, 4, 0, 1]] = [1.0, 2.0, 3.0, 4.0, 5.0]
    np.testing.assert_array_equal(graph.forward(), expected)
    dout = np.arange(9.0) + 10
    np.testing.assert_array_equal(graph.backward(dout)["u"], dout[[8, 6, 4, 0, 1]])
