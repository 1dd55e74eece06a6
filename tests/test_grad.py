"""cgraph grad: the gradient written as a graph file, whose nodes' values are the gradients that
`backward` computes (the layers' numeric backward, the independent reference here), for every
registered op, every example graph and random graphs of every op."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import cgraph
from cgraph.cli import cli
from cgraph.cli_grad import gradient_file
from cgraph.gradient import gradient_graph
from cgraph.layers import REGISTRY
from test_layers import OP_CASES, _rand, _sample

ROOT = Path(__file__).resolve().parent.parent
RTOL = 1e-12


def _write(tmp_path: Path, inputs: dict[str, np.ndarray], nodes: dict, name: str = "g.json") -> Path:
    """A graph file (JSON, which graph files may be) of ``inputs`` and ``nodes``."""
    path = tmp_path / name
    path.write_text(json.dumps({"inputs": {key: np.asarray(value).tolist() for key, value in inputs.items()},
                                "nodes": nodes}))
    return path


def _gradients(text: str, names: list[str]) -> dict[str, np.ndarray]:
    """The value of each grad_NAME node of a gradient graph's text."""
    graph = cgraph.loads(text, source="<grad>")
    graph.forward()
    return {name: np.asarray(graph.values[f"grad_{name}"]) for name in names}


def assert_same_gradients(path: Path, dout: str = "1", rtol: float = RTOL) -> str:
    """grad's file for ``path`` gives backward's gradient of every input with a path to the output."""
    text = gradient_file(str(path), None, (), dout, None, 10**8)[0]
    graph = cgraph.load(path)
    names = gradient_graph(graph).wrt  # each input's gradient's node
    expected = graph.backward(_dout(dout))
    result = cgraph.loads(text, source="<grad>")
    result.forward()
    assert names, text
    for name, node in names.items():
        value = np.asarray(result.values[node])
        np.testing.assert_allclose(value, np.asarray(expected[name]), rtol=rtol, atol=1e-300, err_msg=name)
        assert value.shape == np.shape(expected[name])
    return text


def _dout(text: str) -> np.ndarray:
    return np.asarray(yaml.safe_load(text), dtype=np.float64)


def _cases():
    for op in sorted(OP_CASES):
        for i, (kinds, attrs) in enumerate(OP_CASES[op][1]):
            yield pytest.param(op, kinds, attrs, id=f"{op}-{i}")


@pytest.mark.parametrize(("op", "kinds", "attrs"), list(_cases()))
def test_every_op_rule_gives_the_layer_backward(op, kinds, attrs, tmp_path):
    """For each registered op and sample inputs, the emitted nodes' values equal the layer's backward
    for a random dout."""
    rng = np.random.default_rng(sum(map(ord, op)) + len(kinds))
    inputs = {f"x{i}": _sample(rng, kind) for i, kind in enumerate(kinds)}
    layer = REGISTRY[op](**attrs)
    out = np.asarray(layer.forward(*[value.copy() for value in inputs.values()]))
    dout = _rand(rng, out.shape)
    expected = layer.backward(dout.copy())
    path = _write(tmp_path, inputs, {"out": {"op": op, "inputs": list(inputs), **attrs}})
    dout_text = json.dumps(dout.tolist())
    text = gradient_file(str(path), None, (), dout_text, None, 10**8)[0]
    values = _gradients(text, list(inputs))
    for (name, value), grad in zip(values.items(), expected):
        np.testing.assert_allclose(value, np.asarray(grad, dtype=np.float64), rtol=RTOL, atol=1e-300,
                                   err_msg=f"{op}: {name}")
        assert value.shape == np.shape(grad)


def test_every_op_has_gradient_rules():
    for op, cls in REGISTRY.items():
        assert "grad_graph" in {key for klass in cls.__mro__[:-1] if klass.__name__ != "BaseLayer"
                                for key in vars(klass)}, op


EXAMPLES = sorted(path.name for path in (ROOT / "graphs").glob("*.yaml"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_graph(name):
    assert_same_gradients(ROOT / "graphs" / name)


def _assert_size_bound(path: Path) -> None:
    """The gradient graph of ``path`` has at most 3x its nodes plus one per input differentiated:
    nodes as the loaded graphs hold them, each op applied (a named entry or inside a formula)."""
    text = gradient_file(str(path), None, (), "1", None, 10**8)[0]
    original = cgraph.load(path)
    emitted = cgraph.loads(text, source="<grad>")  # its input files named from the working directory
    forward = len(original.spec.nodes)
    assert set(original.spec.nodes) <= set(emitted.spec.nodes)  # the forward nodes, reused
    bound = 3 * forward + len(gradient_graph(original).wrt)
    assert len(emitted.spec.nodes) <= bound, f"{path.name}: {len(emitted.spec.nodes)} nodes, bound {bound}"


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_s_gradient_graph_keeps_the_size_bound(name):
    _assert_size_bound(ROOT / "graphs" / name)


def test_the_benchmark_graphs_gradient_graphs_keep_the_size_bound(tmp_path):
    """bench/run.py's 2,000-node wide graph and two-layer net (at small sizes: shapes do not change the count)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    wide = tmp_path / "wide.yaml"
    wide.write_text(bench.wide_yaml(2000))
    _assert_size_bound(wide)
    _assert_size_bound(bench._net_file(bench.two_layer_net(4, (6, 5, 3)), tmp_path, "net"))


# Windows that leave rows or columns out (floor: true): of x itself, or of its padding only.
FLOOR_CASES = [
    ((1, 1, 6, 6), {"stride": 2}),  # 6 - 3 = 3: the last row and column of x left out
    ((1, 2, 9, 8), {"stride": 3, "pad": 1}),  # 9 + 2 - 3 = 8: x's last row left out; 8 + 2 - 3 = 7: a column of it
    ((2, 1, 8, 7), {"stride": 3, "pad": 1}),  # 8 + 2 - 3 = 7: only the padding's last row left out
    ((1, 1, 7, 5), {"stride": [2, 1], "pad": [1, 0]}),  # 7 + 2 - 3 = 6: all rows; 5 - 3 = 2: all columns
]


@pytest.mark.parametrize("op", ["conv2d", "max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(("shape", "attrs"), FLOOR_CASES)
def test_windows_that_leave_rows_out_have_rules(op, shape, attrs, tmp_path):
    """conv2d and the poolings with floor: true: the gradient graph's values are backward's, the
    rows and columns that no window reaches getting 0."""
    rng = np.random.default_rng(len(shape) + sum(shape))
    inputs = {"x": rng.standard_normal(shape)}
    if op == "conv2d":
        inputs |= {"W": rng.standard_normal((2, shape[1], 3, 3)), "b": rng.standard_normal(2)}
    else:
        attrs = {**attrs, "size": 3}
    path = _write(tmp_path, {**inputs, "c": rng.standard_normal(
        REGISTRY[op](**attrs, floor=True).out_shape(*(value.shape for value in inputs.values())))},
        {"out": {"op": op, "inputs": list(inputs), **attrs, "floor": True}, "loss": "sum(c * tanh(out))"})
    assert_same_gradients(path)


@pytest.mark.parametrize(("shape", "attrs"), [((2, 3, 6, 7), {"size": 3, "stride": 2, "pad": 1}),
                                            ((1, 2, 6, 7), {"size": 2}), ((1, 1, 6, 6), {"size": 2})])
def test_max_pooling_in_ceil_mode_has_rules_and_average_pooling_is_refused(shape, attrs, tmp_path):
    """max_pool2d with ceil: true (a window that hangs over the end): backward's gradient; avg_pool2d
    with ceil: true where that adds a window: refused in one line naming the node and its op."""
    rng = np.random.default_rng(sum(shape))
    nodes = {"m": {"op": "max_pool2d", "inputs": ["x"], **attrs, "ceil": True}, "loss": "sum(tanh(m) * m)"}
    assert_same_gradients(_write(tmp_path, {"x": rng.standard_normal(shape)}, nodes))
    nodes = {"a": {"op": "avg_pool2d", "inputs": ["x"], **attrs, "ceil": True}, "loss": "sum(tanh(a) * a)"}
    path = _write(tmp_path, {"x": rng.standard_normal(shape)}, nodes, "avg.json")
    if any((size - attrs["size"] + 2 * attrs.get("pad", 0)) % attrs.get("stride", attrs["size"]) for size in shape[2:]):
        result = CliRunner().invoke(cli, ["grad", str(path)])
        assert result.exit_code == 1 and result.stdout == "" and result.stderr.count("\n") == 1
        assert "node 'a': grad has no rule for the op avg_pool2d" in result.stderr
    else:  # the windows fit: ceil adds none
        assert_same_gradients(path)


def test_an_op_without_rules_is_refused_with_one_line(tmp_path, monkeypatch):
    monkeypatch.delattr(REGISTRY["tanh"], "grad_graph")
    path = _write(tmp_path, {"x": np.array([0.5])}, {"y": "sum(tanh(x))"})
    result = CliRunner().invoke(cli, ["grad", str(path)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "grad has no rule for the op tanh" in result.stderr


@pytest.mark.parametrize("command", ["grad", "hessian"])
def test_an_onnx_model_is_refused_with_one_line(command):
    model = str(ROOT / "graphs" / "lenet.onnx")
    result = CliRunner().invoke(cli, [command, model])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"{model}: error: the gradient graph is written for YAML and JSON graph files, "
                             f"not ONNX models; 'cgraph backward {model}' gives the gradients\n")


def test_buy_apple_reads_like_the_chain_rule():
    text = gradient_file(str(ROOT / "graphs" / "buy_apple.yaml"), None, (), "1", None, 10**8)[0]
    assert "  grad_apple_price: dout * tax  # from price = apple_price * tax" in text
    assert "  grad_apple: grad_apple_price * apple_num  # from apple_price = apple * apple_num" in text
    assert "\noutput: grad_apple\n" in text
    assert "# New names: dout, grad_apple_price, grad_tax, grad_apple, grad_apple_num." in text
    # the forward nodes are kept as they were and reused by name
    assert "  price: {op: mul, inputs: [apple_price, tax]}\n" in text
    values = _gradients(text, ["apple", "apple_num", "tax"])
    assert values["apple"] == pytest.approx(2.2) and values["apple_num"] == pytest.approx(110.0)
    assert values["tax"] == pytest.approx(200.0)


def test_names_that_collide_get_a_suffix(tmp_path):
    path = _write(tmp_path, {"x": np.array(3.0), "dout": np.array(2.0)},
                  {"grad_x": "x * dout", "y": "grad_x * x"})
    text = gradient_file(str(path), "y", ("x",), "1", None, 10**8)[0]
    assert "# New names: dout_2, grad_grad_x, grad_x_2." in text
    graph = cgraph.loads(text)
    assert graph.output == "grad_x_2"
    assert float(graph.forward()) == pytest.approx(2 * 3.0 * 2.0)  # y = x² dout: dy/dx = 2 x dout


def test_simplifications_leave_out_the_obvious(tmp_path):
    path = _write(tmp_path, {"x": np.array([1.0, 2.0]), "y": np.array([3.0, 4.0])},
                  {"s": "x + y", "n": "-(-s)", "m": "n * 1", "out": "sum(m)"})
    text = gradient_file(str(path), None, (), "1", None, 10**8)[0]
    emitted = text.split("  out: sum(m)\n")[1]
    assert "* 1" not in emitted and "--" not in emitted and "+ 0" not in emitted and "neg" not in emitted
    assert "sum_to" not in emitted and "reshape" not in emitted  # a sum over no axes is not written
    assert_same_gradients(path)


def test_dout_is_broadcast_to_the_output_shape(tmp_path):
    path = _write(tmp_path, {"x": np.array([[1.0, 2.0], [3.0, 4.0]])}, {"y": "x * x"})
    text = assert_same_gradients(path, dout="[1, -2]")
    assert "  dout: [[1.0, -2.0], [1.0, -2.0]]" in text
    assert "  dout: {fill: 3.0, shape: [2, 2]}" in gradient_file(str(path), None, (), "3", None, 10**8)[0]


def test_sub_expressions_of_formulas_are_reused_by_their_text(tmp_path):
    path = _write(tmp_path, {"x": np.array([0.5, -1.0]), "w": np.array([2.0, 3.0])},
                  {"y": "sum(exp(x * w) + x * w)"})
    text = assert_same_gradients(path)
    graph = cgraph.loads(text)
    assert sum(1 for node in graph.spec.nodes.values() if node.op == "exp") == 1  # exp(x * w) not made again


def test_cli_writes_a_file_and_never_the_input(tmp_path):
    source = ROOT / "graphs" / "buy_apple.yaml"
    out = tmp_path / "grad.yaml"
    result = CliRunner().invoke(cli, ["grad", str(source), "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == "" and out.read_text().startswith("# The gradient")
    copy = tmp_path / "copy.yaml"
    copy.write_text(source.read_text())
    refused = CliRunner().invoke(cli, ["grad", str(copy), "-o", str(copy)])
    assert refused.exit_code == 2 and "is the input file" in refused.stderr
    assert copy.read_text() == source.read_text()
    unknown = CliRunner().invoke(cli, ["grad", str(source), "--wrt", "aple"])
    assert unknown.exit_code == 1 and "--wrt: 'aple' is not an input" in unknown.stderr


def test_input_files_are_found_from_where_the_new_file_goes(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    np.save(folder / "x.npy", np.array([1.0, -2.0]))
    (folder / "g.yaml").write_text("inputs:\n  x: {file: x.npy}\nnodes:\n  y: sum(x * x)\n")
    out = tmp_path / "grad.yaml"
    assert CliRunner().invoke(cli, ["grad", str(folder / "g.yaml"), "-o", str(out)]).exit_code == 0
    np.testing.assert_allclose(cgraph.load(out).forward(), [2.0, -4.0])


# --- random graphs of every op ---------------------------------------------------------

CHAINABLE = sorted(OP_CASES)


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_built_from_every_op(seed, tmp_path):
    """Each op's sample case feeds a chain of elementwise ops and a sum, all in one graph: the
    gradient graph's values equal backward's, through fan-out and broadcasting."""
    rng = np.random.default_rng(seed)
    inputs, nodes, terms = {}, {}, []
    for k, op in enumerate(rng.permutation(CHAINABLE)):
        cases = OP_CASES[op][1]
        kinds, attrs = cases[int(rng.integers(len(cases)))]
        names = []
        for i, kind in enumerate(kinds):
            if kind[0] == "real" and inputs and rng.random() < 0.3:
                same = [name for name, value in inputs.items() if value.shape == kind[1]]
                if same:  # fan-out: an input used by several ops
                    names.append(str(rng.choice(same)))
                    continue
            name = f"i{k}_{i}"
            inputs[name] = _sample(rng, kind)
            names.append(name)
        nodes[f"n{k}"] = {"op": str(op), "inputs": names, **attrs}
        unary = str(rng.choice(["tanh", "sigmoid", "square", "exp"]))
        nodes[f"u{k}"] = f"sum({unary}(n{k}) * 0.5)"
        terms.append(f"u{k}")
    nodes["loss"] = " + ".join(terms)
    path = _write(tmp_path, inputs, nodes)
    assert_same_gradients(path, rtol=1e-11)
