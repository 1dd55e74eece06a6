"""Make lenet.onnx: a LeNet-sized MNIST classifier with fixed random weights, as an ONNX model.

    python graphs/make_lenet_onnx.py     # writes graphs/lenet.onnx (needs the onnx package)

The layers and tensor names are those torch.onnx.export gives the LeNet of PyTorch's tutorials
(conv1 6@5x5 with padding 2, max pool 2, conv2 16@5x5, max pool 2, flatten, fc1 400-120,
fc2 120-84, fc3 84-10, ReLU between them): input 'input' (batch, 1, 28, 28), parameters
'conv1.weight', ..., 'fc3.bias'. Its first output is the scores 'logits'; its second, 'loss', is
the cross-entropy of the scores against integer labels 'labels' (batch,), as PyTorch's
cross_entropy exports it. The weights are PyTorch's default initialisation, uniform within
±1/sqrt(fan_in), from a fixed seed, so the file is the same on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 0
OPSET = 17
LAYERS = {  # name: (weight shape, bias shape)
    "conv1": ((6, 1, 5, 5), (6,)),
    "conv2": ((16, 6, 5, 5), (16,)),
    "fc1": ((120, 400), (120,)),
    "fc2": ((84, 120), (84,)),
    "fc3": ((10, 84), (10,)),
}


def weights(seed: int = SEED) -> dict[str, np.ndarray]:
    """Every parameter by its name, float32, uniform within ±1/sqrt(fan_in)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for layer, (weight_shape, bias_shape) in LAYERS.items():
        bound = 1 / np.sqrt(np.prod(weight_shape[1:]))
        arrays[f"{layer}.weight"] = rng.uniform(-bound, bound, weight_shape).astype(np.float32)
        arrays[f"{layer}.bias"] = rng.uniform(-bound, bound, bias_shape).astype(np.float32)
    return arrays


def model(seed: int = SEED):
    """The ONNX ModelProto."""
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node
    nodes = [
        node("Conv", ["input", "conv1.weight", "conv1.bias"], ["/conv1/Conv_output_0"], kernel_shape=[5, 5],
             pads=[2, 2, 2, 2], strides=[1, 1]),
        node("Relu", ["/conv1/Conv_output_0"], ["/Relu_output_0"]),
        node("MaxPool", ["/Relu_output_0"], ["/pool/MaxPool_output_0"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["/pool/MaxPool_output_0", "conv2.weight", "conv2.bias"], ["/conv2/Conv_output_0"],
             kernel_shape=[5, 5], strides=[1, 1]),
        node("Relu", ["/conv2/Conv_output_0"], ["/Relu_1_output_0"]),
        node("MaxPool", ["/Relu_1_output_0"], ["/pool_1/MaxPool_output_0"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["/pool_1/MaxPool_output_0"], ["/flatten/Flatten_output_0"], axis=1),
        node("Gemm", ["/flatten/Flatten_output_0", "fc1.weight", "fc1.bias"], ["/fc1/Gemm_output_0"], transB=1),
        node("Relu", ["/fc1/Gemm_output_0"], ["/Relu_2_output_0"]),
        node("Gemm", ["/Relu_2_output_0", "fc2.weight", "fc2.bias"], ["/fc2/Gemm_output_0"], transB=1),
        node("Relu", ["/fc2/Gemm_output_0"], ["/Relu_3_output_0"]),
        node("Gemm", ["/Relu_3_output_0", "fc3.weight", "fc3.bias"], ["logits"], transB=1),
        node("SoftmaxCrossEntropyLoss", ["logits", "labels"], ["loss"], reduction="mean"),
    ]
    graph = helper.make_graph(
        nodes, "lenet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10]),
         helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(array, name) for name, array in weights(seed).items()],
    )
    made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="cgraph")
    made.ir_version = 8
    return made


def main() -> None:
    import onnx

    made = model()
    onnx.checker.check_model(made)
    path = Path(__file__).with_name("lenet.onnx")
    path.write_bytes(made.SerializeToString())
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
