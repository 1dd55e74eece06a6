"""cgraph sweep: the points a SPEC gives, grids and --zip, each point's output and gradients worked
out by hand, the table, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cgraph
from cgraph.cli import cli

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
BUY_APPLE = str(GRAPHS / "buy_apple.yaml")  # price = apple * apple_num * tax; 100, 2, 1.1


def run(*args: str):
    return CliRunner().invoke(cli, ["sweep", *map(str, args)])


def lines(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_range_is_inclusive_like_linspace_and_gradients_are_by_hand():
    records = lines(run(BUY_APPLE, "--vary", "tax=1:1.5:6"))
    taxes = np.linspace(1, 1.5, 6)  # 1, 1.1, ..., 1.5
    assert [record["point"] for record in records] == [1, 2, 3, 4, 5, 6]
    assert [record["set"] for record in records] == [{"tax": tax} for tax in taxes.tolist()]
    for record, tax in zip(records, taxes):
        assert record["output"] == pytest.approx(200 * tax)
        # d price / d apple = apple_num * tax, / d apple_num = apple * tax, / d tax = apple * apple_num
        assert record["grads"] == pytest.approx({"apple": 2 * tax, "apple_num": 100 * tax, "tax": 200.0})


def test_several_vary_make_a_grid_first_name_outermost():
    records = lines(run(BUY_APPLE, "--vary", "apple=[100, 150]", "--vary", "apple_num=[1, 2, 3]", "--node", "tax"))
    assert [(record["set"]["apple"], record["set"]["apple_num"]) for record in records] == [
        (100.0, 1.0), (100.0, 2.0), (100.0, 3.0), (150.0, 1.0), (150.0, 2.0), (150.0, 3.0)]
    assert [record["grads"] for record in records] == [{"tax": a * n} for a in (100, 150) for n in (1, 2, 3)]


def test_zip_pairs_the_values():
    records = lines(run(BUY_APPLE, "--vary", "apple=[100, 150]", "--vary", "apple_num=0:1:2", "--zip"))
    assert [record["set"] for record in records] == [{"apple": 100.0, "apple_num": 0.0},
                                                     {"apple": 150.0, "apple_num": 1.0}]
    assert [record["output"] for record in records] == pytest.approx([0.0, 165.0])


def test_npy_rows_set_an_array_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "graph.yaml").write_text("inputs:\n  x: [0, 0]\n  w: [1, 2]\nnodes:\n"
                                         "  xw: {op: mul, inputs: [x, w]}\n  s: {op: sum, inputs: [xw]}\n")
    np.save(tmp_path / "xs.npy", np.array([[1.0, 1.0], [3.0, -1.0], [0.5, 2.0]]))
    records = lines(run("graph.yaml", "--vary", "x=@xs.npy", "--node", "w", "--node", "xw"))
    assert [record["set"]["x"] for record in records] == [[1.0, 1.0], [3.0, -1.0], [0.5, 2.0]]
    assert [record["output"] for record in records] == [3.0, 1.0, 4.5]  # x · (1, 2)
    assert [record["grads"]["w"] for record in records] == [[1.0, 1.0], [3.0, -1.0], [0.5, 2.0]]  # d s / d w = x
    assert all(record["grads"]["xw"] == [1.0, 1.0] for record in records)


def test_a_thousand_points_in_one_process():
    records = lines(run(str(GRAPHS / "buy_apple_orange.yaml"), "--vary", "tax=0:999:1000", "--node", "tax"))
    assert len(records) == 1000 and records[-1]["point"] == 1000
    # price = 650 * tax, and d price / d tax = 650 at every point
    assert [record["output"] for record in records] == pytest.approx([650.0 * k for k in range(1000)])
    assert {record["grads"]["tax"] for record in records} == {650.0}


def test_text_format_is_a_table():
    result = run(BUY_APPLE, "--vary", "apple=[100, 150]", "--vary", "tax=[1, 1.1]", "--format", "text")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "apple  tax  price  d apple  d apple_num  d tax",
        "100    1    200    2        100          200",
        "100    1.1  220    2.2      110          200",
        "150    1    300    2        150          300",
        "150    1.1  330    2.2      165          300",
    ]


def test_text_table_is_written_as_the_points_come():
    """A long sweep's table is never held whole: its first rows come out before the last points are run."""
    from cgraph.sweep import TABLE_BLOCK, table

    graph = cgraph.loads("inputs: {x: 1}\nnodes: {f: x * 2}\n")
    produced = []

    def rows():
        for k in range(TABLE_BLOCK * 3):
            produced.append(k)
            yield {"x": float(k)}, 2.0 * k, {"x": 2.0}

    lines = table(graph, rows(), 8)
    assert next(lines).split() == ["x", "f", "d", "x"]
    first_block = [next(lines) for _ in range(TABLE_BLOCK)]
    assert len(produced) == TABLE_BLOCK  # the first block sets the widths; no later point was run yet
    assert first_block[0].split() == ["0", "0", "2"]
    rest = list(lines)
    assert len(rest) == TABLE_BLOCK * 2 and rest[-1].split() == [str(TABLE_BLOCK * 3 - 1), str(2 * (TABLE_BLOCK * 3 - 1)), "2"]


def test_dout_scales_the_gradients():
    records = lines(run(BUY_APPLE, "--vary", "tax=[2]", "--dout", "3", "--node", "apple"))
    assert records == [{"point": 1, "set": {"tax": 2.0}, "output": 400.0, "grads": {"apple": 12.0}}]


def test_nan_at_some_points_is_written_and_reported_once(tmp_path):
    graph = tmp_path / "log.yaml"
    graph.write_text("inputs:\n  x: 1.0\nnodes:\n  y: {op: log, inputs: [x]}\n")
    result = run(graph, "--vary", "x=[1, 0, -1]")
    assert [record["output"] for record in lines(result)] == [0.0, "-Infinity", "NaN"]
    assert result.stderr == (f"{graph}:4:3: warning: 2 of 3 points gave NaN or infinity; at point 2: node 'y' (log) "
                             "produced -inf from finite inputs\n")
    assert run(graph, "--vary", "x=[1, 0]", "--strict").exit_code == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--vary", "price=0:1:2"], "cgraph: error: --vary: 'price' is a node, not an input"),
    (["--vary", "taxes=0:1:2"], "cgraph: error: --vary: 'taxes' is not an input (did you mean 'tax'?)"),
    (["--vary", "tax=0:1:0"], "cgraph: error: --vary tax: NUM must be a whole number of at least 1, got '0'"),
    (["--vary", "tax=0:1:2.5"], "cgraph: error: --vary tax: NUM must be a whole number of at least 1, got '2.5'"),
    (["--vary", "tax=a:1:2"], "cgraph: error: --vary tax: START and STOP must be finite numbers, got 'a'"),
    (["--vary", "tax=1.5"], "cgraph: error: --vary tax: expected START:STOP:NUM, a list of values such as "
                            "'[1, 2, 3]', or @file.npy"),
    (["--vary", "tax=[]"], "cgraph: error: --vary tax: there are no values (one per row) to try"),
    (["--vary", "tax=@missing.npy"], "cgraph: error: --vary tax: file not found: missing.npy"),
    (["--vary", "tax=[1, 2]", "--vary", "apple=[1]", "--zip"],
     "cgraph: error: --zip: every --vary needs as many values; got 'tax' 2, 'apple' 1"),
    (["--vary", "tax=[[1, 2], [3, 4]]", "--vary", "apple=[[1, 2, 3]]"],
     "{file}:8:3: error: --vary 'tax' shape (2,) in place of (), 'apple' shape (3,) in place of () does not fit "
     "the graph: node 'price': mul cannot combine shapes apple_price (3,) and tax (2,): they do not broadcast"),
])
def test_errors_are_one_line_with_nothing_on_stdout(args, message):
    result = run(BUY_APPLE, *args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == message.format(file=BUY_APPLE) + "\n"


def test_vary_is_required_and_well_formed():
    assert run(BUY_APPLE).exit_code == 2
    result = run(BUY_APPLE, "--vary", "tax")
    assert result.exit_code == 2 and "expected NAME=VALUE" in result.stderr


def test_a_line_of_floats_is_the_general_line():
    import cgraph
    from cgraph import sweep

    graph = cgraph.loads("inputs:\n  x: 2\n  c: 1\nnodes:\n  y: {op: mul, inputs: [x, c]}\n")
    runner = sweep.Sweep(graph, {"c": np.array([0.5, 1.5])}, [], np.asarray(1.0))
    fast = [runner.json_line(number, indices, *runner.run(number, indices)[1:])
            for number, indices in enumerate(sweep.points(runner.varied, False), 1)]
    runner._finite_values = False  # as where some value is NaN: every number goes through json_value
    general = [runner.json_line(number, indices, *runner.run(number, indices)[1:])
               for number, indices in enumerate(sweep.points(runner.varied, False), 1)]
    assert fast == general == ['{"point":1,"set":{"c":0.5},"output":1.0,"grads":{"x":0.5,"c":2.0}}',
                               '{"point":2,"set":{"c":1.5},"output":3.0,"grads":{"x":1.5,"c":2.0}}']
