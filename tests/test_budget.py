"""The whole graph's memory and work, worked out from shapes before running, and the limits on them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cgraph
from cgraph.budget import OUTPUT_ELEMENT_BYTES, estimate, format_bytes
from cgraph.cli import cli
from cgraph.options import Amount
from cgraph.layers import AffineLayer, MatmulLayer
from cgraph.render import CHUNK_ELEMENTS

ROOT = Path(__file__).resolve().parent.parent


def _distinct_bytes(*collections) -> int:
    """The bytes of the distinct arrays a run keeps, each counted once."""
    seen: dict[int, int] = {}
    for collection in collections:
        for item in collection:
            for array in item if isinstance(item, tuple) else (item,):
                if isinstance(array, np.ndarray):
                    seen[id(array)] = array.nbytes
    return sum(seen.values())


def test_memory_is_the_values_and_the_gradients_kept() -> None:
    # y = x * x, z = y + x, over 1000 float64 values: three values of 8000 bytes; in backward,
    # x is used three times (its gradient is the sum of three kept contributions), y once (its
    # gradient is the one mul's backward gave) and z is the output (dout): 4 + 1 + 1 arrays.
    graph = cgraph.loads("inputs: {x: {random: normal, shape: [1000]}}\n"
                         "nodes: {y: {op: mul, inputs: [x, x]}, z: {op: add, inputs: [y, x]}}\n")
    assert estimate(graph, backward=False).memory == 3 * 8000
    assert estimate(graph, backward=True).memory == 3 * 8000 + 6 * 8000
    graph.backward()
    kept = _distinct_bytes(graph.values.values(), graph.grads.values(), graph.input_grads.values())
    assert kept <= estimate(graph).memory  # add passes dout on, so some of those arrays are one


def test_float32_inputs_count_four_bytes_and_memory_mapped_files_and_fills_none(tmp_path: Path) -> None:
    np.save(tmp_path / "big.npy", np.ones(1000))
    (tmp_path / "g.yaml").write_text("inputs: {a: {file: big.npy}, b: {fill: 1, shape: [1000], dtype: float32}}\n"
                                     "nodes: {c: {op: mul, inputs: [b, b]}}\n")
    graph = cgraph.load(tmp_path / "g.yaml")
    assert isinstance(graph.spec.inputs["a"].value, np.memmap)
    # b is one number broadcast, a is on disk; c is counted at the widest input dtype, float64.
    assert estimate(graph, backward=False).memory == 8000
    graph = cgraph.loads("inputs: {b: {value: [1, 2, 3, 4], dtype: float32}}\nnodes: {c: {op: mul, inputs: [b, b]}}\n")
    assert estimate(graph, backward=False).memory == 4 * 4 + 4 * 4


def test_matmul_and_affine_work_is_three_products() -> None:
    # forward x @ y: n * k * m multiply-adds; backward dout @ y.T and x.T @ dout: as many each.
    assert MatmulLayer().work((2, 3), (3, 4)) == 3 * 2 * 3 * 4
    assert MatmulLayer().work((3,), (3,)) == 3 * 3
    assert MatmulLayer().work((5, 2, 3), (3, 4)) == 3 * 5 * 2 * 3 * 4
    assert AffineLayer().work((10, 784), (784, 50), (50,)) == 3 * 10 * 784 * 50
    graph = cgraph.load(ROOT / "graphs" / "two_layer_net.yaml")
    shapes = graph.shapes
    expected = sum(3 * shapes[node.args[0]][0] * shapes[node.args[0]][1] * shapes[node.args[1]][1]
                   for node in graph.spec.nodes.values() if node.op == "affine")
    assert expected > 0 and estimate(graph).work == expected
    assert estimate(graph, forward_passes=7).work == 7 * expected


BIG_PRODUCT = ("inputs:\n  a: {fill: 1, shape: [10000, 10000]}\n  b: {fill: 1, shape: [10000, 10000]}\n"
               "nodes:\n  p: {op: matmul, inputs: [a, b]}\n")


def test_a_huge_product_is_refused_by_default_before_running(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(BIG_PRODUCT)
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["forward", str(path), "--max-memory", "1T"])  # only the default work limit
    assert time.perf_counter() - started < 20, "hang guard, not a benchmark"
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"{path}:5:3: error: the graph needs about 3e+12 multiply-adds, most of it in node 'p' "
                             "(matmul), over the limit of 1e+11 (raise it with --max-work)\n")


def test_the_memory_limit_counts_every_node(tmp_path: Path) -> None:
    # 20 nodes of 1,000,000 float64 each: every array is under --max-elements, the graph is 160 MB
    # of values and as much again of gradients.
    lines = ["inputs: {x: {random: normal, shape: [1000000]}}", "nodes:"]
    lines += [f"  n{i}: {{op: tanh, inputs: [{'x' if i == 0 else f'n{i - 1}'}]}}" for i in range(20)]
    path = tmp_path / "g.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["backward", str(path), "--max-memory", "100M"])
    assert result.exit_code == 1 and result.stdout == ""
    needed = 21 * 8_000_000 * 2
    assert result.stderr == (f"{path}: error: the graph's values and gradients need about {format_bytes(needed)}, "
                             "over the limit of 100.0 MiB (raise it with --max-memory)\n")
    assert CliRunner().invoke(cli, ["forward", str(path), "--max-memory", "200M", "--node", "n19"]).exit_code == 0


@pytest.mark.parametrize("text, of_bytes, expected", [
    ("1000", True, 1000), ("1K", True, 1024), ("512M", True, 512 * 2**20), ("1.5G", True, 3 * 2**29),
    ("2GiB", True, 2 * 2**30), ("1g", True, 2**30), ("1e12", False, 10**12), ("5M", False, 5_000_000),
])
def test_amounts_take_suffixes(text: str, of_bytes: bool, expected: int) -> None:
    assert Amount(of_bytes).convert(text, None, None) == expected


@pytest.mark.parametrize("option, value", [("--max-memory", "lots"), ("--max-memory", "0"), ("--max-memory", "-1G"),
                                           ("--max-work", "nan"), ("--max-work", "inf"), ("--max-work", "1GB")])
def test_bad_amounts_are_usage_errors(option: str, value: str) -> None:
    result = CliRunner().invoke(cli, ["forward", str(ROOT / "graphs" / "buy_apple.yaml"), option, value])
    assert result.exit_code == 2
    assert result.stdout == ""


def test_help_states_the_defaults() -> None:
    text = subprocess.run([sys.executable, "-m", "cgraph", "forward", "--help"], capture_output=True, text=True).stdout
    assert "half of the memory" in " ".join(text.split())
    assert "1e11" in text


def test_a_graph_of_scalars_is_counted_at_once() -> None:
    # y = x * x, z = y + x: three 0-d values; in backward a gradient per value and one per node input (4).
    graph = cgraph.loads("inputs: {x: 2}\nnodes: {y: {op: mul, inputs: [x, x]}, z: {op: add, inputs: [y, x]}}\n")
    assert estimate(graph, backward=False).memory == 3 * 8
    assert estimate(graph).memory == (3 + 3 + 4) * 8


def test_the_memory_limit_counts_what_writing_the_output_holds(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("inputs: {a: {random: normal, shape: [1000000]}}\nnodes: {b: {op: mul, inputs: [a, a]}}\n")
    arrays = 2 * 1_000_000 * 8  # a and b, float64
    writing = OUTPUT_ELEMENT_BYTES * CHUNK_ELEMENTS  # a chunk of the million elements at a time
    above_arrays = arrays + 2**20
    result = CliRunner().invoke(cli, ["forward", str(path), "--full", "--max-memory", str(above_arrays)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"{path}: error: the graph's values need about {format_bytes(arrays)} and writing them "
                             f"out up to {format_bytes(writing)} more, over the limit of {format_bytes(above_arrays)} "
                             "(raise it with --max-memory)\n")
    result = CliRunner().invoke(cli, ["forward", str(path), "--max-memory", str(arrays + writing)])
    assert result.exit_code == 0, result.stderr


def test_what_a_small_graph_writes_out_is_counted_by_its_elements() -> None:
    graph = cgraph.loads("inputs: {a: [1, 2, 3]}\nnodes: {b: {op: mul, inputs: [a, a]}}\n")
    assert estimate(graph, backward=False).output == OUTPUT_ELEMENT_BYTES * 6
    assert estimate(graph).output == OUTPUT_ELEMENT_BYTES * 12
