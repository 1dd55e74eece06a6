"""cgraph onnx: graphs written as ONNX models, run by onnxruntime and read back by cgraph.

Every registered op is written (tests/test_layers.py's cases) and run by onnxruntime, whose float64
values must equal cgraph's within 1e-12 relative; so must every example graph's. Where
onnxruntime has no float64 kernel of an op (Conv), the onnx package's reference evaluator runs
the model instead. YAML -> ONNX -> cgraph gives the same values and gradients. onnx.checker
passes on every model written (the writer checks each one).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'cgraph-calc[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'cgraph-calc[test]')")

from test_layers import OP_CASES, _sample  # noqa: E402

from cgraph import api, onnx_writer  # noqa: E402
from cgraph.errors import CgraphError  # noqa: E402
from cgraph.graph import Graph  # noqa: E402
from cgraph.layers import REGISTRY  # noqa: E402
from cgraph.spec import GraphSpec, InputSpec, NodeSpec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "graphs").glob("*.yaml"))
RTOL = 1e-12


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cgraph", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _run_model(proto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model's outputs by onnxruntime, or by onnx's reference evaluator where onnxruntime has
    no kernel for an op at the model's dtype."""
    try:
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as error:  # NOT_IMPLEMENTED: no float64 kernel
        if "NOT_IMPLEMENTED" not in str(error):
            raise
        from onnx.reference import ReferenceEvaluator

        return [np.asarray(out) for out in ReferenceEvaluator(proto).run(None, feeds)]
    return session.run(None, feeds)


def _assert_close(actual, expected) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=1e-300)


def _op_graph(op: str, kinds, attrs) -> Graph:
    rng = np.random.default_rng(sum(map(ord, op)))
    names = [f"x{i}" for i in range(len(kinds))]
    inputs = {name: InputSpec(name, _sample(rng, kind), None) for name, kind in zip(names, kinds)}
    node = NodeSpec("out", op, tuple(names), None, dict(attrs))
    return Graph(GraphSpec("<op>", inputs, {"out": node}, "out"))


def _op_cases():
    for op in sorted(REGISTRY):
        for i, (kinds, attrs) in enumerate(OP_CASES[op][1]):
            yield pytest.param(op, kinds, attrs, id=f"{op}-{i}")


def test_every_registered_op_is_written_or_refused_with_a_reason() -> None:
    assert set(onnx_writer.EXPORT) | set(onnx_writer.REFUSED) == set(REGISTRY)
    assert not set(onnx_writer.EXPORT) & set(onnx_writer.REFUSED)
    assert all(reason for reason in onnx_writer.REFUSED.values())


@pytest.mark.parametrize(("op", "kinds", "attrs"), list(_op_cases()))
def test_registered_op_equals_onnxruntime(op, kinds, attrs) -> None:
    graph = _op_graph(op, kinds, attrs)
    if op in onnx_writer.REFUSED:
        with pytest.raises(CgraphError, match=f"op '{op}' cannot be written as ONNX: {onnx_writer.REFUSED[op]}"):
            onnx_writer.model(graph)
        return
    expected = graph.forward()
    proto = onnx_writer.model(graph)
    onnx.checker.check_model(proto, full_check=True)
    feeds = {name: item.value for name, item in graph.spec.inputs.items()}
    (actual,) = _run_model(proto, feeds)
    _assert_close(actual, expected)


@pytest.mark.parametrize(("op", "kinds", "attrs"), [case for case in _op_cases() if case.values[0] not in onnx_writer.REFUSED])
def test_registered_op_written_reads_back_with_the_same_values_and_gradients(op, kinds, attrs) -> None:
    """Every graph cgraph writes, cgraph reads: the model of each op's case, read back, gives the
    case's value and, for a gradient of the output chosen at random, every input's gradient."""
    graph = _op_graph(op, kinds, attrs)
    value = np.asarray(graph.forward())
    dout = np.random.default_rng(7).standard_normal(value.shape) if value.dtype.kind == "f" else 1.0
    grads = graph.backward(dout)
    feeds = {name: item.value for name, item in graph.spec.inputs.items()}
    again = api.loads(onnx_writer.model(graph).SerializeToString(), source=f"{op}.onnx", overrides=feeds)
    _assert_same(again.forward(), value, "value")
    grads_again = again.backward(dout)
    for name in feeds:
        _assert_same(grads_again[name], grads[name], f"{name} grad")


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(("attrs", "out_hw"), [({"size": 3, "stride": 2, "pad": 1, "ceil": True}, (4, 4)),
                                               ({"size": 2, "ceil": True}, (3, 4))])
def test_ceil_mode_pooling_is_written_as_ceil_mode(op, attrs, out_hw) -> None:
    """Windows over 6x7 images that do not fit exactly along one axis (6 + 2 − 3 = 5 rows by
    stride 2: 4 windows; 7 columns by 2: 4): onnxruntime's values in float32, and the model read
    back gives the values and gradients again."""
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 7))
    graph = Graph(GraphSpec("<op>", {"x": InputSpec("x", x.astype(np.float32), None)},
                            {"out": NodeSpec("out", op, ("x",), None, dict(attrs))}, "out"))
    expected = np.asarray(graph.forward())
    proto = onnx_writer.model(graph)
    assert [attr.i for attr in proto.graph.node[-1].attribute if attr.name == "ceil_mode"] == [1]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"x": x.astype(np.float32)})
    assert actual.shape == expected.shape == (2, 3, *out_hw)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
    graph = Graph(GraphSpec("<op>", {"x": InputSpec("x", x, None)},
                            {"out": NodeSpec("out", op, ("x",), None, dict(attrs))}, "out"))
    dout = np.random.default_rng(6).standard_normal(expected.shape)
    value, grad = graph.forward(), graph.backward(dout)["x"]
    again = api.loads(onnx_writer.model(graph).SerializeToString(), source="pool.onnx", overrides={"x": x})
    _assert_same(again.forward(), value, "value")
    _assert_same(again.backward(dout)["x"], grad, "x grad")


@pytest.mark.parametrize("op", sorted(set(REGISTRY) - set(onnx_writer.REFUSED)))
def test_registered_op_in_float32_equals_onnxruntime(op) -> None:
    """The first case of each op with float32 inputs: a float32 model, run by onnxruntime itself
    (it has float32 kernels of every op written, Conv too)."""
    kinds, attrs = OP_CASES[op][1][0]
    graph = _op_graph(op, kinds, attrs)
    for item in graph.spec.inputs.values():
        item.value = item.value.astype(np.float32)
    graph = Graph(graph.spec)
    expected = np.asarray(graph.forward())
    session = ort.InferenceSession(onnx_writer.model(graph).SerializeToString(), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {name: item.value for name, item in graph.spec.inputs.items()})
    assert actual.dtype == expected.dtype == (np.float64 if op == "cast" else np.float32)  # cast's case: to float64
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_graph_equals_onnxruntime(path: Path) -> None:
    graph = api.load(str(path))
    expected = graph.forward()
    proto = onnx_writer.model(graph)
    feeds = {name: item.value for name, item in graph.spec.inputs.items()}
    (actual,) = _run_model(proto, feeds)
    _assert_close(actual, expected)



def _assert_same(actual, expected, what: str) -> None:
    """Equal within 1e-12 of the array's largest magnitude (sums are taken in another order)."""
    expected = np.asarray(expected, dtype=float)
    np.testing.assert_allclose(np.asarray(actual, dtype=float), expected, rtol=RTOL,
                               atol=RTOL * float(np.max(np.abs(expected), initial=0.0)), err_msg=what)


def _feeding(spec) -> set[str]:
    """The output and the inputs and nodes it is computed from: what the written model holds."""
    found, pending = set(), [spec.output]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(spec.nodes[name].args if name in spec.nodes else ())
    return found - set(spec.constants)


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_yaml_to_onnx_to_cgraph_gives_the_same_gradients(path: Path) -> None:
    graph = api.load(str(path))
    graph.forward()
    graph.backward()
    first, *params = graph.spec.inputs  # one graph input, the others initializers
    proto = onnx_writer.model(graph, params)
    again = api.loads(proto.SerializeToString(), source="model.onnx",
                      overrides={first: graph.spec.inputs[first].value})
    again.forward()
    again.backward()
    names = _feeding(graph.spec)
    assert names <= set(again.values)
    for name in names:
        _assert_same(again.values[name], graph.values[name], f"{name} value")
        _assert_same(again.grads[name], graph.grads[name], f"{name} grad")


def _backward_json(*args: str) -> dict:
    result = run("backward", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    return {**document.get("inputs", {}), **document.get("nodes", {})}


@pytest.mark.parametrize("name", ["simple_convnet.yaml", "spiral.yaml"])
def test_backward_json_of_the_written_model_equals_the_graphs(name: str, tmp_path: Path) -> None:
    path = ROOT / "graphs" / name
    first, *params = api.load(str(path)).spec.inputs
    model = tmp_path / "model.onnx"
    written = run("onnx", str(path), "--params", ",".join(params), "-o", str(model))
    assert written.returncode == 0, written.stderr
    assert written.stdout == "" and written.stderr == ""
    np.save(tmp_path / "first.npy", api.load(str(path)).spec.inputs[first].value)
    feeding = _feeding(api.load(str(path)).spec)
    original = {name: entry for name, entry in _backward_json(str(path)).items() if name in feeding}
    again = _backward_json(str(model), "--set", f"{first}=@{tmp_path / 'first.npy'}")
    assert set(original) <= set(again)
    for entry, shown in original.items():
        for key in ("value", "grad"):
            _assert_same(again[entry][key], shown[key], f"{entry} {key}")


def test_formulas_are_written_and_the_numbers_take_the_inputs_dtype(tmp_path: Path) -> None:
    model = tmp_path / "f.onnx"
    result = run("onnx", "-e", "f = (x * 2 + 1) ** 2", "--set", "x=[1.5, -2]", "--node", "x * 2", "-o", str(model))
    assert result.returncode == 0, result.stderr
    proto = onnx.load(str(model))
    assert [value.name for value in proto.graph.output] == ["f", "x * 2"]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    f, doubled = session.run(None, {"x": np.array([1.5, -2.0])})
    np.testing.assert_allclose(f, (np.array([1.5, -2.0]) * 2 + 1) ** 2, rtol=RTOL)
    np.testing.assert_allclose(doubled, [3.0, -4.0], rtol=RTOL)


def test_float32_inputs_give_a_float32_model(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((3, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "w.npy", w)
    (tmp_path / "g.yaml").write_text("inputs:\n  x: {file: x.npy, dtype: float32}\n  w: {file: w.npy, dtype: float32}\nnodes:\n  y: tanh(x @ w) * 0.5\n")
    result = run("onnx", "g.yaml", "--params", "w", "-o", "g.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    proto = onnx.load(str(tmp_path / "g.onnx"))
    assert [tensor.name for tensor in proto.graph.initializer if tensor.name == "w"] == ["w"]
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.tanh(x @ w) * np.float32(0.5), rtol=1e-6)


def test_the_writer_never_writes_over_an_input_file(tmp_path: Path) -> None:
    source = (ROOT / "graphs" / "buy_apple.yaml").read_text()
    (tmp_path / "g.yaml").write_text(source)
    result = run("onnx", "g.yaml", "-o", "g.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "cgraph: error: -o g.yaml is the graph file being read; choose another name"
    assert (tmp_path / "g.yaml").read_text() == source


@pytest.mark.parametrize(("args", "message"), [
    (["--params", "nope"], "cgraph: error: --params: 'nope' is not an input"),
    (["--params", "price"], "cgraph: error: --params: 'price' is a node, not an input"),
    (["--node", "apple"], "cgraph: error: --node: 'apple' is an input; the graph outputs written are nodes"),
])
def test_wrong_names_are_one_error_line(args, message, tmp_path: Path) -> None:
    result = run("onnx", "graphs/buy_apple.yaml", *args, "-o", str(tmp_path / "m.onnx"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_missing_out_is_a_usage_error() -> None:
    result = run("onnx", "graphs/buy_apple.yaml")
    assert result.returncode == 2
    assert "-o" in result.stderr and result.stdout == ""
