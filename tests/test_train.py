"""cgraph train: each optimizer against the book's formulas worked by hand, mini-batches against
the rows numpy draws, the spiral net against an independent numpy training, saves, errors, Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cgraph
from cgraph import save
from cgraph.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "graphs" / "spiral.yaml"

# L = sum((w - c)²), whose gradient is 2 (w - c): w starts at (3, -2), c is (1, 1).
QUADRATIC = """\
inputs:
  w: [3.0, -2.0]
  c: [1.0, 1.0]
nodes:
  d: {op: sub, inputs: [w, c]}
  sq: {op: mul, inputs: [d, d]}
  loss: {op: sum, inputs: [sq]}
"""
W0, C = np.array([3.0, -2.0]), np.array([1.0, 1.0])


def run(*args: str) -> object:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def trained(tmp_path: Path, *options: str, steps: int = 3) -> tuple[np.ndarray, list[float]]:
    """w after ``steps`` steps on the quadratic, and the loss reported at each step."""
    graph = tmp_path / "quadratic.yaml"
    graph.write_text(QUADRATIC)
    out = tmp_path / "w.npz"
    result = run("train", graph, "--param", "w", "--steps", str(steps), "--format", "jsonl", "--save", out, *options)
    assert result.exit_code == 0, result.output
    return np.load(out)["w"], [record["loss"] for record in jsonl(result.stdout)]


def grad(w: np.ndarray) -> np.ndarray:
    return 2 * (w - C)


# --- each optimizer: three updates worked out by hand with the book's rules -----------------


def test_sgd_is_w_minus_lr_times_the_gradient(tmp_path):
    w = W0.copy()
    losses = []
    for _ in range(3):
        losses.append(float(np.sum((w - C) ** 2)))
        w = w - 0.1 * grad(w)  # book: params[key] -= lr * grads[key]
    # by hand: w - c shrinks by 1 - 2 lr = 0.8 each step, from (2, -3)
    np.testing.assert_allclose(w, C + np.array([2.0, -3.0]) * 0.8 ** 3)
    got, reported = trained(tmp_path, "--lr", "0.1")
    np.testing.assert_allclose(got, w, rtol=1e-15)
    np.testing.assert_allclose(reported, losses, rtol=1e-15)


def test_sgd_default_learning_rate_is_the_book_s(tmp_path):
    got, _ = trained(tmp_path, steps=1)
    np.testing.assert_allclose(got, W0 - 0.01 * grad(W0), rtol=1e-15)


def test_momentum_keeps_a_velocity(tmp_path):
    lr, momentum = 0.1, 0.9
    w, v = W0.copy(), np.zeros(2)
    for _ in range(3):
        v = momentum * v - lr * grad(w)  # book: v = momentum * v - lr * grad; params += v
        w = w + v
    # step 1 by hand: v = -0.1 * (4, -6) = (-0.4, 0.6), w = (2.6, -1.4)
    got, _ = trained(tmp_path, "--optimizer", "momentum", "--lr", "0.1", steps=1)
    np.testing.assert_allclose(got, [2.6, -1.4], rtol=1e-15)
    got, _ = trained(tmp_path, "--optimizer", "momentum", "--lr", "0.1", "--momentum", "0.9")
    np.testing.assert_allclose(got, w, rtol=1e-15)
    defaults, _ = trained(tmp_path, "--optimizer", "momentum")
    w, v = W0.copy(), np.zeros(2)
    for _ in range(3):
        v = 0.9 * v - 0.01 * grad(w)
        w = w + v
    np.testing.assert_allclose(defaults, w, rtol=1e-15)


def test_adagrad_divides_by_the_root_of_the_summed_squares(tmp_path):
    lr, eps = 0.5, 1e-7
    w, h = W0.copy(), np.zeros(2)
    for _ in range(3):
        g = grad(w)
        h = h + g * g  # book: h += grad * grad; params -= lr * grad / (sqrt(h) + 1e-7)
        w = w - lr * g / (np.sqrt(h) + eps)
    # step 1 by hand: h = g², so w moves by lr * sign(g) (less a hair for eps): (2.5, -1.5)
    got, _ = trained(tmp_path, "--optimizer", "adagrad", "--lr", "0.5", steps=1)
    np.testing.assert_allclose(got, [2.5, -1.5], rtol=1e-7)
    got, _ = trained(tmp_path, "--optimizer", "adagrad", "--lr", "0.5")
    np.testing.assert_allclose(got, w, rtol=1e-15)
    got, _ = trained(tmp_path, "--optimizer", "adagrad", "--lr", "0.5", "--eps", "0.5", steps=1)
    np.testing.assert_allclose(got, W0 - 0.5 * grad(W0) / (np.abs(grad(W0)) + 0.5), rtol=1e-15)


def test_adam_is_the_book_s_with_its_bias_corrected_rate(tmp_path):
    lr, beta1, beta2, eps = 0.1, 0.8, 0.99, 1e-7
    w, m, v = W0.copy(), np.zeros(2), np.zeros(2)
    for t in range(1, 4):
        g = grad(w)
        lr_t = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)  # book: Adam.update
        m = m + (1 - beta1) * (g - m)
        v = v + (1 - beta2) * (g * g - v)
        w = w - lr_t * m / (np.sqrt(v) + eps)
    # step 1 by hand: m = 0.2 g, v = 0.01 g², lr_t = 0.1 * 0.1 / 0.2 = 0.05, so w moves 0.05 * 2 * sign(g)
    got, _ = trained(tmp_path, "--optimizer", "adam", "--lr", "0.1", "--beta1", "0.8", "--beta2", "0.99", steps=1)
    np.testing.assert_allclose(got, [2.9, -1.9], rtol=1e-7)
    got, _ = trained(tmp_path, "--optimizer", "adam", "--lr", "0.1", "--beta1", "0.8", "--beta2", "0.99")
    np.testing.assert_allclose(got, w, rtol=1e-14)
    got, _ = trained(tmp_path, "--optimizer", "adam", steps=1)  # defaults lr 0.001, beta1 0.9, beta2 0.999
    np.testing.assert_allclose(got, W0 - 0.001 * np.sign(grad(W0)), rtol=1e-6)


# --- mini-batches ----------------------------------------------------------------------------

BATCHED = """\
inputs:
  X: [[0], [1], [2], [3], [4], [5], [6], [7]]
  t: [[0], [1], [2], [3], [4], [5], [6], [7]]
  w: 1.0
nodes:
  wx: {op: mul, inputs: [X, w]}
  d: {op: sub, inputs: [wx, t]}
  sq: {op: mul, inputs: [d, d]}
  loss: {op: sum, inputs: [sq]}
  drawn: {op: sum, inputs: [X]}
output: loss
"""


def test_each_step_draws_the_same_random_rows_of_every_batch_input(tmp_path):
    graph = tmp_path / "batched.yaml"
    graph.write_text(BATCHED)
    result = run("train", graph, "--param", "w", "--batch", "X,t", "--batch-size", "3", "--seed", "7",
                 "--steps", "5", "--metric", "drawn", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    records = jsonl(result.stdout)
    # the same rows of X and t: w = 1 fits them exactly, so the loss is 0 and w never moves
    assert [record["loss"] for record in records] == [0.0] * 5
    # the rows drawn are those of numpy's generator with the seed, 3 per step with replacement
    rng = np.random.default_rng(7)
    assert [record["drawn"] for record in records] == [float(rng.integers(0, 8, 3).sum()) for _ in range(5)]


def test_without_batch_every_row_is_used(tmp_path):
    graph = tmp_path / "batched.yaml"
    graph.write_text(BATCHED)
    result = run("train", graph, "--param", "w", "--steps", "1", "--metric", "drawn", "--format", "jsonl")
    assert jsonl(result.stdout) == [{"step": 1, "loss": 0.0, "drawn": 28.0}]


# --- the spiral net --------------------------------------------------------------------------


def numpy_spiral_losses(steps: int) -> list[float]:
    """The spiral net trained full-batch by Adam with the book's defaults, written in numpy from
    the formulas (Affine, ReLU, Affine, Softmax-with-Loss), independently of cgraph."""
    x, t = np.load(ROOT / "graphs" / "spiral_X.npy"), np.load(ROOT / "graphs" / "spiral_t.npy")
    params = {
        "W1": np.random.default_rng(1).standard_normal((2, 100)), "b1": np.zeros(100),
        "W2": np.random.default_rng(2).standard_normal((100, 3)), "b2": np.zeros(3),
    }
    m = {key: np.zeros_like(value) for key, value in params.items()}
    v = {key: np.zeros_like(value) for key, value in params.items()}
    losses = []
    for step in range(1, steps + 1):
        a1 = x @ params["W1"] + params["b1"]
        z1 = np.maximum(a1, 0)
        scores = z1 @ params["W2"] + params["b2"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        losses.append(float(-np.sum(t * np.log(p)) / len(x)))
        dscores = (p - t) / len(x)
        dz1 = dscores @ params["W2"].T
        da1 = dz1 * (a1 > 0)
        grads = {"W2": z1.T @ dscores, "b2": dscores.sum(axis=0), "W1": x.T @ da1, "b1": da1.sum(axis=0)}
        lr_t = 0.001 * math.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step)
        for key in params:
            m[key] += 0.1 * (grads[key] - m[key])
            v[key] += 0.001 * (grads[key] ** 2 - v[key])
            params[key] -= lr_t * m[key] / (np.sqrt(v[key]) + 1e-7)
    return losses


def test_the_spiral_net_trains_as_numpy_does(tmp_path):
    steps = 300
    expected = numpy_spiral_losses(steps)
    assert expected[-1] < 0.5 * expected[0]  # the independent training itself learns
    out = tmp_path / "spiral.npz"
    result = run("train", SPIRAL, "--param", "W1", "--param", "b1", "--param", "W2", "--param", "b2",
                 "--optimizer", "adam", "--steps", str(steps), "--metric", "accuracy", "--format", "jsonl",
                 "--save", out)
    assert result.exit_code == 0, result.output
    records = jsonl(result.stdout)
    assert [record["step"] for record in records] == list(range(1, steps + 1))
    np.testing.assert_allclose([record["loss"] for record in records], expected, rtol=1e-9)
    assert records[-1]["loss"] <= expected[-1] * (1 + 1e-9)
    assert 0 <= records[-1]["accuracy"] <= 1 and records[-1]["accuracy"] > records[0]["accuracy"]
    assert sorted(np.load(out)) == ["W1", "W2", "b1", "b2"]


def test_text_output_has_a_curve_and_a_summary(tmp_path):
    graph = tmp_path / "quadratic.yaml"
    graph.write_text(QUADRATIC)
    result = run("train", graph, "--param", "w", "--steps", "40", "--lr", "0.1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    losses = [float(np.sum((C + np.array([2.0, -3.0]) * 0.8 ** k - C) ** 2)) for k in range(41)]
    assert lines[0].lstrip().startswith(f"{losses[0]:.4g} |█")  # the first column is the highest, and full
    assert lines[-7].lstrip().startswith("+---") and lines[-6].lstrip().startswith("step 1")
    assert lines[-6].endswith("step 40")
    assert f"loss: {losses[0]:.6g} at step 1, {losses[39]:.6g} at step 40 (each before its step's update)" in lines
    assert f"best: {losses[39]:.6g} at step 40" in lines
    # the loss of the trained parameters, after step 40's update, as forward of the trained graph gives
    assert lines[-2] == f"after step 40's update: loss {losses[40]:.6g} (as cgraph forward of the trained graph gives)"
    assert lines[-1].startswith("time: ") and "for 40 steps" in lines[-1]
    assert result.stderr == ""  # no progress bar where stderr is not a terminal


def test_every_thins_the_lines(tmp_path):
    graph = tmp_path / "quadratic.yaml"
    graph.write_text(QUADRATIC)
    result = run("train", graph, "--param", "w", "--steps", "10", "--every", "4", "--format", "jsonl")
    assert [record["step"] for record in jsonl(result.stdout)] == [4, 8, 10]
    result = run("train", graph, "--param", "w", "--steps", "10", "--every", "5", "--lr", "0.1")
    assert result.stdout.splitlines()[:2] == [f"step 5: loss {13 * 0.8 ** 8:.6g}", f"step 10: loss {13 * 0.64 ** 9:.6g}"]


# --- files -----------------------------------------------------------------------------------


def test_write_graph_gives_a_graph_that_backward_runs(tmp_path):
    out = tmp_path / "trained" / "spiral.yaml"
    out.parent.mkdir()
    result = run("train", SPIRAL, "--param", "W1", "--param", "b1", "--param", "W2", "--param", "b2",
                 "--optimizer", "adam", "--steps", "50", "--format", "jsonl", "--write-graph", out, "--save",
                 tmp_path / "p.npz")
    assert result.exit_code == 0, result.output
    saved = np.load(tmp_path / "p.npz")
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(np.load(out.parent / f"spiral.{name}.npy"), saved[name])
    text = out.read_text()
    assert text.startswith("# spiral.yaml after 50 steps of cgraph train (adam: lr 0.001, beta1 0.9, beta2 0.999")
    assert "  W1: {file: spiral.W1.npy}" in text
    again = run("backward", out, "--format", "json")
    assert again.exit_code == 0, again.output
    loaded = json.loads(again.stdout)["nodes"]
    # the trained net's loss, one step after the last reported: below where training started
    first = jsonl(result.stdout)[0]["loss"]
    assert loaded["loss"]["value"] < first
    np.testing.assert_array_equal(loaded["W1"]["value"], saved["W1"])
    np.testing.assert_array_equal(loaded["X"]["value"], np.load(ROOT / "graphs" / "spiral_X.npy"))


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    path = tmp_path / "out.npz"
    path.write_bytes(b"old")

    def half_then_interrupted(file) -> None:
        file.write(b"new, part")
        raise KeyboardInterrupt

    guard = save.Guard(cgraph.loads("inputs: {x: 1}\nnodes: {y: {op: neg, inputs: [x]}}\n").spec)
    with pytest.raises(KeyboardInterrupt):
        save.atomic_write(str(path), half_then_interrupted, guard, "--save out.npz")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.npz"]
    save.atomic_write(str(path), lambda file: file.write(b"new"), guard, "--save out.npz")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.npz"]


def test_ctrl_c_saves_the_last_complete_step_and_says_which(tmp_path):
    graph = tmp_path / "quadratic.yaml"
    graph.write_text(QUADRATIC)
    out = tmp_path / "w.npz"
    process = subprocess.Popen(
        [sys.executable, "-m", "cgraph", "train", str(graph), "--param", "w", "--steps", "100000000",
         "--lr", "0.001", "--save", str(out), "--format", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(3)]  # training is under way
    process.send_signal(signal.SIGINT)
    # read on through the same buffered stream: readline may already hold later lines, which
    # communicate() (reading the pipe itself) would miss
    stdout = "".join(lines) + process.stdout.read()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 130
    step = int(stderr.split("interrupted after step ")[1].split(" ")[0])
    assert stderr == f"cgraph: interrupted after step {step} of 100000000; {out} holds the inputs after it\n"
    assert json.loads(stdout.splitlines()[-1])["step"] == step
    # sgd on the quadratic: w - c shrinks by 1 - 2 lr each step
    np.testing.assert_allclose(np.load(out)["w"], C + (W0 - C) * (1 - 0.002) ** step, rtol=1e-9)


# --- errors ----------------------------------------------------------------------------------


def test_nan_in_the_loss_stops_with_the_step_and_the_node(tmp_path):
    graph = tmp_path / "log.yaml"
    graph.write_text("inputs:\n  w: 1.0\nnodes:\n  loss: {op: log, inputs: [w]}\n")
    # d log(w) / dw = 1 / w = 1, so one step of lr 10 takes w to -9, whose log is NaN
    result = run("train", graph, "--param", "w", "--lr", "10", "--steps", "5")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"{graph}:4:3: error: step 2: the loss is nan: node 'loss' (log) produced NaN "
                             "from finite inputs (lower --lr, or pass --keep-going to go on)\n")
    kept = run("train", graph, "--param", "w", "--lr", "10", "--steps", "3", "--keep-going", "--format", "jsonl")
    assert kept.exit_code == 0
    assert [record["loss"] for record in jsonl(kept.stdout)] == [0.0, "NaN", "NaN"]


@pytest.mark.parametrize(("args", "message"), [
    (["--param", "d"], "cgraph: error: --param: 'd' is a node, not an input"),
    (["--param", "ww"], "cgraph: error: --param: 'ww' is not an input (did you mean 'w'?)"),
    (["--param", "w", "--param", "w"], "cgraph: error: --param: 'w' is given twice"),
    (["--param", "w", "--metric", "sq"],
     "cgraph: error: --metric: 'sq' has shape (2,); a metric is a 0-d node (take its mean)"),
    (["--param", "w", "--metric", "loss"], "cgraph: error: --metric: 'loss' is the loss, reported already; name another node"),
    (["--param", "w", "--output", "sq"], "{file}:6:3: error: train minimises a 0-d loss, but the output 'sq' has "
                                         "shape (2,): make it one number with sum or mean, or choose another node "
                                         "with --output"),
    (["--param", "w", "--batch", "w", "--batch-size", "1"], "cgraph: error: --batch: 'w' is also a --param; a batch "
                                                            "is data, not trained"),
    (["--param", "w", "--batch", "c", "--batch-size", "3"],
     "{file}:5:3: error: set_input 'c' shape (3,) in place of (2,) does not fit the graph: node 'd': sub cannot "
     "combine shapes w (2,) and c (3,): they do not broadcast"),
    (["--param", "w", "--save", "nowhere/w.npz"], "cgraph: error: cannot write nowhere/w.npz: there is no folder nowhere"),
])
def test_user_errors_are_one_line(tmp_path, args, message):
    graph = tmp_path / "quadratic.yaml"
    graph.write_text(QUADRATIC)
    result = run("train", graph, *args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == message.format(file=graph) + "\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--momentum", "0.5"], "--momentum goes with --optimizer momentum"),
    (["--optimizer", "sgd", "--beta1", "0.5"], "--beta1 goes with --optimizer adam"),
    (["--eps", "1e-8"], "--eps goes with --optimizer adagrad or adam"),
    (["--batch-size", "4"], "--batch-size goes with --batch"),
    (["--batch", "c"], "--batch needs --batch-size"),
    (["--lr", "0"], "Invalid value for '--lr'"),
    (["--lr", "nan"], "Invalid value for '--lr': 'nan' is not a finite number."),
    (["--lr", "inf"], "Invalid value for '--lr': 'inf' is not a finite number."),
    (["--optimizer", "momentum", "--momentum", "nan"], "Invalid value for '--momentum'"),
    (["--optimizer", "adam", "--beta1", "nan"], "Invalid value for '--beta1'"),
    (["--optimizer", "adam", "--beta2", "nan"], "Invalid value for '--beta2'"),
    (["--optimizer", "adagrad", "--eps", "inf"], "Invalid value for '--eps'"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    graph = tmp_path / "quadratic.yaml"
    graph.write_text(QUADRATIC)
    result = run("train", graph, "--param", "w", *args)
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


def test_batch_inputs_must_have_as_many_rows(tmp_path):
    graph = tmp_path / "rows.yaml"
    graph.write_text("inputs:\n  X: [[1], [2], [3]]\n  t: [[1], [2]]\n  w: 1.0\n"
                     "nodes:\n  d: {op: mul, inputs: [X, w]}\n  loss: {op: sum, inputs: [d]}\n")
    result = run("train", graph, "--param", "w", "--batch", "X,t", "--batch-size", "2")
    assert result.stderr == ("cgraph: error: --batch: the inputs must have as many rows (first axis) as each other; "
                             "got 'X' 3, 't' 2\n")


def book_update(name: str, settings: dict, state: dict, step: int, key: str, param: np.ndarray, grad: np.ndarray
                ) -> np.ndarray:
    """``param`` after one update by the book's rule (common/optimizer.py), each a new array."""
    if name == "sgd":
        return param - settings["lr"] * grad
    if name == "momentum":
        v = state[key] = settings["momentum"] * state[key] - settings["lr"] * grad if key in state else -settings["lr"] * grad
        return param + v
    if name == "adagrad":
        h = state[key] = state[key] + grad * grad if key in state else grad * grad
        return param - settings["lr"] * grad / (np.sqrt(h) + settings["eps"])
    lr_t = settings["lr"] * math.sqrt(1.0 - settings["beta2"] ** step) / (1.0 - settings["beta1"] ** step)
    m, v = state.get((key, "m"), 0.0), state.get((key, "v"), 0.0)
    m = state[(key, "m")] = m + (1 - settings["beta1"]) * (grad - m)
    v = state[(key, "v")] = v + (1 - settings["beta2"]) * (grad * grad - v)
    return param - lr_t * m / (np.sqrt(v) + settings["eps"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "adam"])
def test_the_in_place_updates_are_the_book_s_rules_bit_for_bit(name, dtype):
    from cgraph.optim import OPTIMIZERS

    rng = np.random.default_rng(3)
    start = {"W": rng.standard_normal((5, 3)).astype(dtype), "b": np.asarray(rng.standard_normal(), dtype)}
    optimizer = OPTIMIZERS[name]()
    params, expected, state = {key: value.copy() for key, value in start.items()}, dict(start), {}
    for step in range(1, 7):
        grads = {key: rng.standard_normal(value.shape).astype(dtype) for key, value in start.items()}
        held = {key: value for key, value in params.items()}
        optimizer.update(params, grads)
        assert all(params[key] is held[key] for key in params)  # updated in place
        expected = {key: book_update(name, optimizer.settings(), state, step, key, expected[key], grads[key])
                    for key in expected}
    for key in start:
        assert params[key].dtype == dtype
        np.testing.assert_array_equal(params[key], expected[key])


def test_steps_draw_into_the_graph_s_inputs_without_setting_them_again(monkeypatch):
    from cgraph.optim import SGD
    from cgraph.train import Trainer

    graph = cgraph.loads(BATCHED)
    trainer = Trainer(graph, ["w"], SGD(), ["X", "t"], 3, seed=7, metrics=["drawn"])
    monkeypatch.setattr(graph, "set_inputs", lambda values: pytest.fail("set_inputs called in a step"))
    rng = np.random.default_rng(7)
    for _ in range(3):
        rows = rng.integers(0, 8, 3)
        assert trainer.step().metrics["drawn"] == float(np.arange(8.0)[rows].sum())
    monkeypatch.undo()
    graph.set_input("w", 2.0)  # replaced from outside: the next step trains the trainer's w again
    assert trainer.step().loss == 0.0 and graph.spec.inputs["w"].value is trainer.params["w"]


def test_the_trainer_from_python_keeps_the_file_s_arrays_untouched():
    from cgraph.optim import SGD
    from cgraph.train import Trainer

    graph = cgraph.loads(QUADRATIC)
    original = graph.spec.inputs["w"].value.copy()
    trainer = Trainer(graph, ["w"], SGD(lr=0.1))
    records = [trainer.step() for _ in range(2)]
    assert [record.step for record in records] == [1, 2]
    np.testing.assert_allclose(trainer.params["w"], C + (W0 - C) * 0.8 ** 2)
    np.testing.assert_array_equal(original, W0)


def test_the_work_budget_counts_the_batch_rows_not_the_data_set(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((1000, 20)))
    np.save(tmp_path / "t.npy", np.eye(3)[rng.integers(0, 3, 1000)])
    graph = tmp_path / "net.yaml"
    graph.write_text("inputs:\n  X: {file: X.npy}\n  t: {file: t.npy}\n  W: {fill: 0, shape: [20, 3]}\n"
                     "  b: {fill: 0, shape: [3]}\nnodes:\n  a: {op: affine, inputs: [X, W, b]}\n"
                     "  loss: {op: softmax_with_loss, inputs: [a, t]}\n")
    # a pass over all 1,000 rows is some 10^5 multiply-adds: 100 of them are over 10^6, 100 batches of 10 rows not
    full = run("train", graph, "--param", "W", "--steps", "100", "--max-work", "1e6")
    assert full.exit_code == 1 and "over the limit of 1e+06" in full.stderr
    batched = run("train", graph, "--param", "W", "--steps", "100", "--max-work", "1e6", "--batch", "X,t",
                  "--batch-size", "10")
    assert batched.exit_code == 0, batched.output


def test_an_infinite_gradient_stops_at_its_step_naming_the_node(tmp_path):
    graph = tmp_path / "sqrt.yaml"
    graph.write_text("inputs:\n  w: [0.0, 1.0]\nnodes:\n  r: {op: sqrt, inputs: [w]}\n  loss: {op: sum, inputs: [r]}\n")
    # the loss, sqrt(0) + sqrt(1) = 1, is finite; its gradient at w = 0, 1 / (2 sqrt(0)), is not
    result = run("train", graph, "--param", "w")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"{graph}:4:3: error: step 1: the gradient of 'w' holds NaN or infinity: "
                                    "node 'r' (sqrt) backward produced inf")


def test_the_training_modules_are_attributes_of_the_package():
    code = "import cgraph; print(cgraph.train.Trainer.__name__, cgraph.optim.Adam.__name__, cgraph.sweep.Sweep.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["Trainer", "Adam", "Sweep"], result.stderr


def test_write_graph_keeps_formulas_and_other_file_inputs(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0, 3.0]))
    graph = tmp_path / "fit.yaml"
    graph.write_text("inputs:\n  x: {file: x.npy}\n  y: [2, 4, 6]\n  w: 0.0\n"
                     "nodes:\n  loss: mean(square(w * x - y))\n")
    out = tmp_path / "out" / "fit.yaml"
    out.parent.mkdir()
    result = run("train", graph, "--param", "w", "--lr", "0.05", "--steps", "50", "--write-graph", out)
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[2:] == [
        "inputs:", "  x: {file: ../x.npy}", "  y: [2, 4, 6]", "  w: {file: fit.w.npy}", "nodes:",
        "  loss: mean(square(w * x - y))"]
    # w * x fits y = 2 x: gradient descent on the mean squared error takes w to 2
    forward = run("forward", out, "--format", "json")
    assert forward.exit_code == 0, forward.output
    assert json.loads(forward.stdout)["nodes"]["w"]["value"] == pytest.approx(2.0, abs=1e-6)


def test_history_keeps_bounded_groups_whose_means_are_the_losses_means(monkeypatch):
    from cgraph import train
    from cgraph.train import History, StepRecord, loss_curve

    monkeypatch.setattr(train, "KEPT_GROUPS", 2)
    history = History()
    losses = [float(k) for k in range(1, 11)]  # 1, 2, ..., 10
    for step, loss in enumerate(losses, 1):
        history.add(StepRecord(step, loss))
        assert len(history.groups) <= 2 * 2 + 1
    assert sum(total for total, _ in history.groups) == sum(losses)
    assert sum(count for _, count in history.groups) == 10 and history.steps == 10
    # steps merged in order: every group is a run of consecutive steps
    assert history.groups == [(1 + 2 + 3 + 4, 4), (5 + 6 + 7 + 8, 4), (9 + 10, 2)]
    lines = loss_curve(history.groups, width=3, height=2)
    assert lines[0].startswith("9.5 |") and lines[1].startswith("2.5 |")  # column means 2.5, 6.5, 9.5
    assert lines[-1].endswith("step 10")


def test_a_non_finite_group_is_drawn_as_a_question_mark():
    from cgraph.train import loss_curve

    lines = loss_curve([(3.0, 1), (float("nan"), 1), (1.0, 1)], height=2)
    # one row of eighths above the other: 3 fills both, 1 the lowest eighth of the bottom row
    assert lines[:2] == ["3 |█?", "1 |█?▁"]
