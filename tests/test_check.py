"""`cgraph check`: backward gradients against central finite differences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import cgraph
from cgraph.check import DEFAULT_ATOL, DEFAULT_EPS, DEFAULT_RTOL, DEFAULT_SAMPLES, DEFAULT_SEED, check
from cgraph.cli import cli
from cgraph.layers import REGISTRY, AddLayer, MulLayer

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, ["check", *args], input=stdin)


def table(stdout: str) -> dict[str, list[str]]:
    """The result table: input name -> its row's cells."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("input "))
    rows = {}
    for line in lines[start + 1:]:
        if not line:
            break
        cells = line.split("  ")
        cells = [cell.strip() for cell in cells if cell.strip()]
        rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda path: path.name)
def test_every_example_passes(path: Path) -> None:
    result = run(str(path))
    assert result.exit_code == 0, result.stdout + result.stderr
    rows = table(result.stdout)
    assert list(rows) == list(cgraph.load(path).spec.inputs)
    assert all(row[-1] == "PASS" for row in rows.values())
    assert result.stdout.endswith(f"PASS: {len(rows)} input{'s' if len(rows) > 1 else ''}\n")


class WrongMulLayer(MulLayer):
    """mul with a wrong backward: y's gradient is dout * y instead of dout * x."""

    op = "wrongmul"

    def backward(self, dout: Any) -> tuple[Any, Any]:
        return dout * self.y, dout * self.y


class SlightlyOffMulLayer(MulLayer):
    """mul whose gradients are 1e-4 too large, relatively."""

    op = "offmul"

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx, dy = super().backward(dout)
        return dx * (1 + 1e-4), dy * (1 + 1e-4)


@pytest.fixture
def test_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, WrongMulLayer.op, WrongMulLayer)
    monkeypatch.setitem(REGISTRY, SlightlyOffMulLayer.op, SlightlyOffMulLayer)


def test_a_wrong_backward_fails(test_layers: None) -> None:
    # c = a * b at a = 2, b = 5: d a = b = 5 is right; the layer gives d b = b = 5 instead of a = 2,
    # an absolute error of 3 and a relative one of 3 / 5.
    graph = "inputs: {a: 2, b: 5}\nnodes: {c: {op: wrongmul, inputs: [a, b]}}\n"
    result = run("-", stdin=graph)
    assert result.exit_code == 1
    rows = table(result.stdout)
    assert rows["a"][-1] == "PASS"
    assert rows["b"] == ["b", "()", "1", "3.00e+00", "6.00e-01", "FAIL"]
    assert result.stdout.endswith("FAIL: 1 of 2 inputs (b)\n")


def test_a_wrong_backward_fails_on_arrays_and_in_json(test_layers: None) -> None:
    graph = "inputs: {a: [1, 2, 3], b: [4, 5, 6]}\nnodes: {c: {op: wrongmul, inputs: [a, b]}}\n"
    result = run("-", "--format", "json", stdin=graph)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["passed"] is False
    a, b = data["inputs"]
    assert a["passed"] is True and b["passed"] is False
    # d b should be a = [1, 2, 3]; the layer gives b = [4, 5, 6]: largest error 3, relative 3 / 4.
    assert b["max_abs_error"] == pytest.approx(3.0, rel=1e-6)
    assert b["max_rel_error"] == pytest.approx(0.75, rel=1e-6)


def test_tolerances_decide(test_layers: None) -> None:
    # Gradients off by 1e-4 relatively fail the default rtol 1e-5 and pass rtol 1e-3.
    graph = "inputs: {a: 2, b: 5}\nnodes: {c: {op: offmul, inputs: [a, b]}}\n"
    assert run("-", stdin=graph).exit_code == 1
    assert run("-", "--rtol", "1e-3", stdin=graph).exit_code == 0
    # ... and an absolute tolerance above the errors (5e-4 and 2e-4) passes too.
    assert run("-", "--atol", "1e-3", stdin=graph).exit_code == 0


BIG = "inputs: {x: {shape: [1000], random: normal, seed: 3}, w: {shape: [10, 1], fill: 2}}\nnodes: {y: {op: mul, inputs: [x, w]}}\n"


def test_large_inputs_are_sampled_and_the_output_says_so() -> None:
    result = run("-", "--samples", "5", stdin=BIG)
    assert result.exit_code == 0
    rows = table(result.stdout)
    assert rows["x"][2] == "5 of 1000" and rows["w"][2] == "5 of 10"
    assert "sampled at random, 5 elements of: x, w (--samples 5 --seed 0; --samples 0 checks every element)" in result.stdout
    assert run("-", "--samples", "5", stdin=BIG).stdout == result.stdout

    everything = run("-", "--samples", "0", "--format", "json", stdin=BIG)
    assert [(item["checked"], item["elements"]) for item in json.loads(everything.stdout)["inputs"]] == [(1000, 1000), (10, 10)]
    assert "sampled" not in run("-", "--samples", "0", stdin=BIG).stdout


class WrongAtFirstLayer(AddLayer):
    """add whose backward is wrong at the first element of x's gradient only."""

    op = "wrongfirst"

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx, dy = super().backward(dout)
        dx = np.array(dx, copy=True)
        dx.reshape(-1)[0] += 1
        return dx, dy


def test_only_the_sampled_elements_are_checked_and_the_seed_picks_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, WrongAtFirstLayer.op, WrongAtFirstLayer)
    graph = "inputs: {x: {shape: [1000], fill: 1}, z: 0}\nnodes: {y: {op: wrongfirst, inputs: [x, z]}}\n"
    assert run("-", "--samples", "0", stdin=graph).exit_code == 1
    # Half of x's elements per check: some seeds draw the wrong first element, some do not.
    codes = {run("-", "--samples", "500", "--seed", str(seed), stdin=graph).exit_code for seed in range(10)}
    assert codes == {0, 1}


def test_float32_inputs_are_checked_in_float64() -> None:
    graph = "inputs: {a: {value: [0.1, 0.7], dtype: float32}, b: 3.3}\nnodes: {c: {op: mul, inputs: [a, b]}}\n"
    result = run("-", "--rtol", "1e-9", stdin=graph)
    assert result.exit_code == 0, result.stdout
    assert "not float64: a (float32); the gradients checked are those of a float64 copy of the graph" in result.stdout


def test_dout_and_output_are_the_cores() -> None:
    # d a of out = a*b + c with dout [[0, 2], [0, 0]] is b * dout: checked against L = sum(dout * out).
    path = str(GRAPHS / "matrices.yaml")
    assert run(path, "--dout", "[[0, 2], [0, 0]]").exit_code == 0
    result = run(str(GRAPHS / "buy_apple_orange.yaml"), "--output", "apple_price")
    assert result.exit_code == 0
    assert table(result.stdout)["tax"][-1] == "PASS"


def test_node_option_checks_only_those_inputs() -> None:
    result = run(str(GRAPHS / "buy_apple_orange.yaml"), "--node", "tax", "--node", "apple")
    assert list(table(result.stdout)) == ["tax", "apple"]
    result = run(str(GRAPHS / "buy_apple_orange.yaml"), "--node", "price")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "cgraph: error: --node: 'price' is a node; check compares the gradients of inputs\n"


def test_check_leaves_the_graph_as_it_was() -> None:
    graph = cgraph.load(GRAPHS / "bias_batch.yaml")
    grads = graph.backward()
    values = {name: np.copy(value) for name, value in graph.values.items()}
    report = check(graph, samples=0)
    assert report.passed and [item.checked for item in report.inputs] == [6, 2, 2]
    assert graph.grads is grads
    for name, value in values.items():
        np.testing.assert_array_equal(graph.values[name], value)
        if name in graph.spec.inputs:
            np.testing.assert_array_equal(graph.spec.inputs[name].value, value)


def test_help_states_the_defaults() -> None:
    help_text = " ".join(run("--help").stdout.split())
    for option, default in [("--eps", DEFAULT_EPS), ("--rtol", DEFAULT_RTOL), ("--atol", DEFAULT_ATOL),
                            ("--samples", DEFAULT_SAMPLES), ("--seed", DEFAULT_SEED)]:
        assert f"[default: {default}" in help_text.split(option, 1)[1].split(" --", 1)[0]


def test_a_failing_input_shows_its_worst_element(test_layers: None) -> None:
    # c = a * b with the wrong d b = b = [[4, 5], [6, 7]] instead of a = [[1, 2], [3, 1]]: every error
    # is 3 or 6, and the element furthest outside atol + rtol * |numeric| is [1, 1]: error 6 against 1.
    graph = "inputs: {a: [[1, 2], [3, 1]], b: [[4, 5], [6, 7]]}\nnodes: {c: {op: wrongmul, inputs: [a, b]}}\n"
    result = run("-", stdin=graph)
    assert result.exit_code == 1
    assert "\nb: furthest outside the tolerance at [1, 1]: analytic 7, numeric 1\n" in result.stdout
    assert "a: furthest" not in result.stdout
    data = json.loads(run("-", "--format", "json", stdin=graph).stdout)
    worst = data["inputs"][1]["worst"]
    assert worst["index"] == [1, 1] and worst["analytic"] == 7.0 and worst["numeric"] == pytest.approx(1.0, rel=1e-8)


def test_class_index_labels_are_not_checked_and_the_output_says_why() -> None:
    # Labels given as class indices are whole numbers: x + h would not be one, and their gradient is
    # defined as 0. The scores x are checked as usual.
    graph = "inputs: {x: [[0.3, 2.9, 4.0], [0.2, 0.1, 0.7]], t: [2, 0]}\nnodes: {loss: {op: softmax_with_loss, inputs: [x, t]}}\n"
    result = run("-", stdin=graph)
    assert result.exit_code == 0, result.stdout + result.stderr
    rows = table(result.stdout)
    assert rows["x"][-1] == "PASS" and rows["t"] == ["t", "(2,)", "0", "-", "-", "SKIP"]
    assert "not checked: t, class indices for node 'loss' (softmax_with_loss)" in result.stdout
    assert result.stdout.endswith("PASS: 1 input, 1 not checked\n")
    data = json.loads(run("-", "--format", "json", stdin=graph).stdout)
    assert data["passed"] is True
    assert data["inputs"][1]["skipped"] == "class indices for node 'loss' (softmax_with_loss)"
    # One-hot labels are continuous: checked (d t = -log softmax(x) / N).
    onehot = run("-", "--set", "t=[[0, 0, 1], [1, 0, 0]]", stdin=graph)
    assert onehot.exit_code == 0 and table(onehot.stdout)["t"][-1] == "PASS"


@pytest.mark.parametrize("option", ["--eps", "--rtol", "--atol"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_tolerances_are_usage_errors(option: str, value: str) -> None:
    result = run(str(GRAPHS / "fan_out.yaml"), option, value)
    assert result.exit_code == 2 and result.stdout == ""
    assert f"Invalid value for '{option}'" in result.stderr
