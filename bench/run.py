"""cgraph's benchmarks: each figure against a baseline measured in the same run.

    python bench/run.py            # full sizes, a quarter of an hour; prints the README's table
    python bench/run.py --small    # tiny sizes, to check the benchmarks still run

PyTorch is optional (`pip install torch==2.13.0`); without it the figures that
compare against it are skipped. Times are medians of repeated runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np

import cgraph
from cgraph import render

try:
    import torch
except ImportError:
    torch = None

ROOT = Path(__file__).resolve().parent.parent
ROWS: list[tuple[str, str, str, str, str]] = []


def row(figure: str, value: str, baseline: str, ratio: float | None, target: float | None, better: str = "<=") -> None:
    """Record one line of the table; PASS/FAIL where there is a target."""
    if ratio is None:
        verdict = "-"
    elif target is None:
        verdict = ""
    else:
        verdict = "PASS" if (ratio <= target if better == "<=" else ratio >= target) else "FAIL"
    shown_ratio = "" if ratio is None else f"{ratio:.2f}x"
    shown_target = "" if target is None else f"{better} {target}x"
    ROWS.append((figure, value, baseline, f"{shown_ratio} {shown_target}".strip(), verdict))
    print(f"  {figure}: {value} vs {baseline}: {shown_ratio} {shown_target} {verdict}", file=sys.stderr)


def median_time(function: Callable[[], Any], repeat: int) -> float:
    """The median wall time of ``repeat`` calls, with the garbage collector as in normal use."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def command_time(args: list[str], repeat: int, stdin: str | None = None) -> float:
    """The median wall time of running a command, its output thrown away."""
    def run() -> None:
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, input=stdin, text=True)
    run()  # warm the file cache
    return median_time(run, repeat)


# --- graphs ----------------------------------------------------------------


def scalar_chain(count: int) -> dict:
    """x, then count nodes alternating `* c` and `+ c`."""
    nodes = {}
    previous = "x"
    for i in range(count):
        nodes[f"n{i}"] = {"op": "mul" if i % 2 == 0 else "add", "inputs": [previous, "c"]}
        previous = f"n{i}"
    return {"inputs": {"x": 1.0, "c": 1.0000001}, "nodes": nodes}


def chain_yaml(count: int, formulas: bool = False) -> str:
    """scalar_chain as a YAML file: nodes in the mapping form, or as formulas (`n1: n0 + c`)."""
    lines = ["inputs:", "  x: 1.0", "  c: 1.0000001", "nodes:"]
    previous = "x"
    for i in range(count):
        if formulas:
            lines.append(f"  n{i}: {previous} {'*' if i % 2 == 0 else '+'} c")
        else:
            lines.append(f"  n{i}: {{op: {'mul' if i % 2 == 0 else 'add'}, inputs: [{previous}, c]}}")
        previous = f"n{i}"
    return "\n".join(lines) + "\n"


def floor_loop(count: int) -> Callable[[], Any]:
    """The interpreter's floor: a bare loop over the same graph's plan, on Python floats,
    keeping every value and gradient, with no layer objects."""
    plan = [(i % 2 == 0, 2 + i - 1 if i else 0, 1) for i in range(count)]  # (is_mul, x index, y index)

    def run() -> None:
        values = [1.0, 1.0000001] + [0.0] * count
        for k, (is_mul, a, b) in enumerate(plan):
            values[2 + k] = values[a] * values[b] if is_mul else values[a] + values[b]
        grads = [0.0] * len(values)
        grads[-1] = 1.0
        for k in range(count - 1, -1, -1):
            is_mul, a, b = plan[k]
            grad = grads[2 + k]
            if is_mul:
                grads[a] += grad * values[b]
                grads[b] += grad * values[a]
            else:
                grads[a] += grad
                grads[b] += grad

    return run


def torch_chain(count: int) -> Callable[[], Any]:
    def run() -> None:
        x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        c = torch.tensor(1.0000001, dtype=torch.float64, requires_grad=True)
        value, kept = x, []
        for i in range(count):
            value = value * c if i % 2 == 0 else value + c
            value.retain_grad()
            kept.append(value)
        value.backward(torch.tensor(1.0, dtype=torch.float64))

    return run


def cgraph_run(graph: Any) -> Callable[[], Any]:
    def run() -> None:
        graph.forward()
        graph.backward(1.0)

    return run


# --- the benchmarks ----------------------------------------------------------


def bench_startup(invocations: int) -> None:
    print("start-up", file=sys.stderr)
    exe = Path(sys.executable).with_name("cgraph")
    command = shlex.join([str(exe)] if exe.exists() else [sys.executable, "-m", "cgraph"])
    example = shlex.quote(str(ROOT / "graphs" / "buy_apple.yaml"))
    loops = [f"for i in $(seq {invocations}); do {what} > /dev/null; done" for what in (
        f"{shlex.quote(sys.executable)} -c 'import numpy, yaml, click'", f"{command} backward {example}")]
    baseline, ours = paired_times(*(lambda loop=loop: subprocess.run(["sh", "-c", loop], check=True) for loop in loops), 1)
    row(f"start-up: {invocations} x cgraph backward buy_apple.yaml in a shell loop", f"{ours:.2f} s",
        f"{invocations} x python -c 'import numpy, yaml, click' {baseline:.2f} s", ours / baseline, 1.0)
    probe = (
        "import sys\nfrom cgraph.cli import cli\n"
        "for args in (['--version'], ['--help'], ['backward', '--help']):\n"
        "    try:\n        cli.main(args, prog_name='cgraph')\n    except SystemExit:\n        pass\n"
        "print(json.dumps(sorted({'numpy', 'yaml'} & set(sys.modules))), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", "import json\n" + probe], capture_output=True, text=True)
    heavy = json.loads(result.stderr.strip().splitlines()[-1])
    ROWS.append(("start-up: --version and --help import neither numpy nor yaml",
                 f"imported: {', '.join(heavy) or 'neither'}", "", "", "FAIL" if heavy else "PASS"))


def bench_per_node(sizes: tuple[int, int, int], repeat: int) -> float | None:
    small, middle, large = sizes
    print("per-node cost", file=sys.stderr)
    graph = cgraph.from_dict(scalar_chain(middle))
    ours = median_time(cgraph_run(graph), repeat) / middle
    floor = median_time(floor_loop(middle), repeat) / middle
    row(f"per node, {middle:,}-node scalar chain, forward + backward", f"{ours * 1e6:.2f} us",
        f"bare loop {floor * 1e6:.2f} us", ours / floor, 2.5)
    torch_total = None
    if torch is not None:
        torch.set_num_threads(2)
        torch_chain(1000)()
        torch_total = median_time(torch_chain(middle), repeat)
        row(f"per node, {middle:,}-node scalar chain", f"{ours * 1e6:.2f} us",
            f"PyTorch eager + retain_grad {torch_total / middle * 1e6:.2f} us", ours * middle / torch_total, 0.1)
    small_cost = median_time(cgraph_run(cgraph.from_dict(scalar_chain(small))), max(repeat, 20)) / small
    large_graph = cgraph.from_dict(scalar_chain(large))
    large_cost = median_time(cgraph_run(large_graph), max(1, repeat // 2)) / large
    del large_graph
    row(f"per node at {large:,} nodes vs at {small:,}", f"{large_cost * 1e6:.2f} us",
        f"{small_cost * 1e6:.2f} us", large_cost / small_cost, 1.5)
    return torch_total


def bench_end_to_end(count: int, torch_total: float | None, repeat: int, folder: Path) -> None:
    print("end to end", file=sys.stderr)
    exe = Path(sys.executable).with_name("cgraph")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cgraph"]
    yaml_path = folder / f"chain_{count}.yaml"
    json_path = folder / f"chain_{count}.json"
    yaml_path.write_text(chain_yaml(count))
    json_path.write_text(json.dumps(scalar_chain(count)))
    for path, target in ((yaml_path, 0.5), (json_path, 0.5)):
        ours = command_time([*command, "backward", str(path), "--format", "json"], repeat)
        if torch_total is None:
            row(f"cgraph backward {path.name} --format json", f"{ours:.2f} s", "PyTorch (not installed)", None, None)
        else:
            row(f"cgraph backward {path.name} --format json", f"{ours:.2f} s",
                f"PyTorch in-process forward + backward {torch_total:.2f} s", ours / torch_total, target)


def array_chain(shape: tuple[int, ...], param_shape: tuple[int, ...], count: int) -> dict:
    """v_{i+1} = v_i * w or v_i + b, over arrays."""
    nodes = {}
    previous = "x"
    for i in range(count):
        nodes[f"n{i}"] = {"op": "mul" if i % 2 == 0 else "add", "inputs": [previous, "w" if i % 2 == 0 else "b"]}
        previous = f"n{i}"
    inputs = {
        "x": {"shape": list(shape), "random": "uniform", "seed": 0},
        "w": {"shape": list(param_shape), "random": "uniform", "seed": 1},
        "b": {"shape": list(param_shape), "random": "uniform", "seed": 2},
    }
    return {"inputs": inputs, "nodes": nodes}


def numpy_floor(graph: Any, count: int, broadcast: bool) -> Callable[[], Any]:
    """The bandwidth floor: the same chain by hand in numpy, writing into buffers allocated
    once, keeping every value and gradient, with add's gradient passed on uncopied."""
    x, w, b = (graph.spec.inputs[name].value for name in ("x", "w", "b"))
    values = [np.empty_like(x) for _ in range(count)]
    grads = [np.empty_like(x) for _ in range(count)]
    grad_w, grad_b, scratch = np.empty_like(w), np.empty_like(b), np.empty_like(x)
    axes = tuple(range(x.ndim - w.ndim))

    def run() -> None:
        previous = x
        for i in range(count):
            (np.multiply if i % 2 == 0 else np.add)(previous, w if i % 2 == 0 else b, out=values[i])
            previous = values[i]
        grad = np.ones_like(x)
        grad_w.fill(0)
        grad_b.fill(0)
        for i in range(count - 1, -1, -1):
            below = values[i - 1] if i else x
            if i % 2 == 0:
                np.multiply(grad, below, out=scratch)
                np.add(grad_w, scratch.sum(axis=axes) if broadcast else scratch, out=grad_w)
                np.multiply(grad, w, out=grads[i])
                grad = grads[i]
            else:
                np.add(grad_b, grad.sum(axis=axes) if broadcast else grad, out=grad_b)

    return run


def torch_array_chain(graph: Any, count: int) -> Callable[[], Any]:
    x, w, b = (torch.from_numpy(np.array(graph.spec.inputs[n].value)).requires_grad_() for n in ("x", "w", "b"))

    def run() -> None:
        for tensor in (x, w, b):
            tensor.grad = None
        value, kept = x, []
        for i in range(count):
            value = value * w if i % 2 == 0 else value + b
            value.retain_grad()
            kept.append(value)
        value.backward(torch.ones_like(value))

    return run


def bench_arrays(elements: int, count: int, repeat: int) -> None:
    print("large arrays", file=sys.stderr)
    side = int(round(elements ** 0.5))
    cases = (
        ("full-size", (elements,), (elements,), 1.2, False),
        ("broadcast", (side, side), (side,), 1.5, True),
    )
    for label, shape, param_shape, target, broadcast in cases:
        graph = cgraph.from_dict(array_chain(shape, param_shape, count))
        run = cgraph_run(graph)
        run()
        ours = median_time(run, repeat)
        floor = median_time(numpy_floor(graph, count, broadcast), repeat)
        name = f"{count}-node chain over {shape} {'and ' + str(param_shape) if broadcast else ''}".rstrip()
        row(f"{label}: {name}", f"{ours:.3f} s", f"numpy by hand, out= buffers {floor:.3f} s", ours / floor, target)
        if torch is not None:
            torch.set_num_threads(2)
            torch_run = torch_array_chain(graph, count)
            torch_run()
            theirs = median_time(torch_run, repeat)
            row(f"{label}: same chain", f"{ours:.3f} s", f"PyTorch 2 threads {theirs:.3f} s", ours / theirs, 0.9)
        kept = sum(np.asarray(v).nbytes for v in graph.values.values()) + sum(
            np.asarray(g).nbytes for g in graph.grads.values())
        graph.values, graph.grads, graph.input_grads = {}, {}, {}
        gc.collect()
        tracemalloc.start()
        run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        row(f"{label}: peak memory of forward + backward", f"{peak / 2**20:.0f} MiB",
            f"values and gradients {kept / 2**20:.0f} MiB", peak / kept, 1.2)
        del graph, run
        gc.collect()


def bench_output(count: int, elements: int, repeat: int) -> None:
    print("output", file=sys.stderr)
    graph = cgraph.from_dict(scalar_chain(count))
    graph.backward(1.0)
    text_lines = sum(line.count("\n") + 1 for line in render.render_text(graph))
    text = median_time(lambda: sum(len(line) for line in render.render_text(graph)), repeat) / text_lines
    as_json = median_time(lambda: render.render_json(graph), repeat) / len(graph.values)
    row(f"text output, per printed line ({count:,}-node scalar chain, {text_lines:,} lines)",
        f"{text * 1e6:.2f} us", "2 us", text / 2e-6, 1.0)
    row(f"JSON output, per node entry ({count:,}-node scalar chain)", f"{as_json * 1e6:.2f} us", "2 us",
        as_json / 2e-6, 1.0)
    array = np.random.default_rng(0).random(elements)
    full = median_time(lambda: render.format_array(array, 8, True, 2), max(1, repeat // 2))
    row(f"text --full of one {elements:,}-element array", f"{full:.2f} s", "1 s", full / 1.0, 1.0)


def vector_chain_yaml(count: int) -> str:
    """x, a 2-element vector, then count nodes alternating `+ zero` and `* one` (0-d inputs)."""
    lines = ["inputs:", "  x: [1.0, 2.0]", "  one: 1.0", "  zero: 0.0", "nodes:"]
    previous = "x"
    for i in range(count):
        lines.append(f"  n{i}: {{op: {'add' if i % 2 == 0 else 'mul'}, inputs: [{previous}, {'zero' if i % 2 == 0 else 'one'}]}}")
        previous = f"n{i}"
    return "\n".join(lines) + "\n"


WIDE_OPS = ("mul", "add", "sub", "mul")
WIDE_PAIRS = (("a", "b"), ("c", "d"), ("a", "c"), ("b", "d"))


def wide_yaml(count: int) -> str:
    """count independent nodes of 3x3 arrays off 4 inputs, summed by a tree of count - 1 adds."""
    lines = ["inputs:", *(f"  {name}: {{shape: [3, 3], random: normal, seed: {k}}}" for k, name in enumerate("abcd")),
             "nodes:"]
    level = []
    for i in range(count):
        x, y = WIDE_PAIRS[i % 4]
        lines.append(f"  w{i}: {{op: {WIDE_OPS[i % 4]}, inputs: [{x}, {y}]}}")
        level.append(f"w{i}")
    sums = 0
    while len(level) > 1:
        following = []
        for k in range(0, len(level) - 1, 2):
            lines.append(f"  s{sums}: {{op: add, inputs: [{level[k]}, {level[k + 1]}]}}")
            following.append(f"s{sums}")
            sums += 1
        level = following + level[len(level) - len(level) % 2:]
    return "\n".join(lines) + "\n"


def torch_vector_chain(count: int) -> Callable[[], Any]:
    def run() -> None:
        x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        one = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        zero = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
        value, kept = x, []
        for i in range(count):
            value = value + zero if i % 2 == 0 else value * one
            value.retain_grad()
            kept.append(value)
        value.backward(torch.ones_like(value))

    return run


def torch_wide(count: int) -> Callable[[], Any]:
    def run() -> None:
        ops = {"mul": torch.mul, "add": torch.add, "sub": torch.sub}
        inputs = {name: torch.randn(3, 3, dtype=torch.float64, requires_grad=True) for name in "abcd"}
        level, kept = [], []
        for i in range(count):
            x, y = WIDE_PAIRS[i % 4]
            value = ops[WIDE_OPS[i % 4]](inputs[x], inputs[y])
            value.retain_grad()
            level.append(value)
        kept += level
        while len(level) > 1:
            following = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)]
            for value in following:
                value.retain_grad()
            kept += following
            level = following + level[len(level) - len(level) % 2:]
        level[0].backward(torch.ones_like(level[0]))

    return run


def numpy_call() -> float:
    """The time of one numpy ufunc call on 2-element arrays, the floor of an op on them."""
    x, y = np.array([1.0, 2.0]), np.array(1.0)

    def calls() -> None:
        for _ in range(10_000):
            np.multiply(x, y)
    calls()
    return min(median_time(calls, 5) for _ in range(3)) / 10_000


def bench_small_arrays(sizes: tuple[int, int, int], wide: int, repeat: int, folder: Path) -> None:
    """The chain over a 2-element vector and the wide graph of 3x3 arrays: in-process against
    one numpy call per op, and end to end against PyTorch in-process."""
    small, middle, large = sizes
    print("small arrays", file=sys.stderr)
    call = numpy_call()
    # the floor: one numpy call per op that needs one: every forward, and the backward of mul (add's passes dout on)
    floor = call * 1.5
    graph = cgraph.loads(vector_chain_yaml(middle))
    ours = median_time(cgraph_run(graph), repeat) / middle
    row(f"per node, {middle:,}-node chain over a 2-element vector, forward + backward", f"{ours * 1e6:.2f} us",
        f"1.5 numpy calls (one per op needing one) {floor * 1e6:.2f} us", ours / floor, 2.5)
    del graph
    small_cost = median_time(cgraph_run(cgraph.loads(vector_chain_yaml(small))), max(repeat, 20)) / small
    large_graph = cgraph.loads(vector_chain_yaml(large))
    large_cost = median_time(cgraph_run(large_graph), 1) / large
    del large_graph
    gc.collect()
    row(f"per node, 2-element chain at {large:,} nodes vs at {small:,}", f"{large_cost * 1e6:.2f} us",
        f"{small_cost * 1e6:.2f} us", large_cost / small_cost, 1.5)

    exe = Path(sys.executable).with_name("cgraph")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cgraph"]
    cases = (
        (f"vector_chain_{middle}.yaml", vector_chain_yaml(middle), torch_vector_chain(middle), (0.6, 1.0)),
        (f"wide_{wide}.yaml", wide_yaml(wide), torch_wide(wide), (0.6, 1.5)),
    )
    for name, text, theirs, targets in cases:
        path = folder / name
        path.write_text(text)
        if torch is None:
            baseline = None
        else:
            torch.set_num_threads(2)
            theirs()
            baseline = median_time(theirs, repeat)
        for fmt, target in zip(("json", "text"), targets):
            seconds = command_time([*command, "backward", str(path), "--format", fmt], repeat)
            if baseline is None:
                row(f"cgraph backward {name} --format {fmt}", f"{seconds:.2f} s", "PyTorch (not installed)", None, None)
            else:
                row(f"cgraph backward {name} --format {fmt}", f"{seconds:.2f} s",
                    f"PyTorch in-process forward + backward {baseline:.2f} s", seconds / baseline, target)


def bench_format(repeat: int) -> None:
    """The text view of small arrays against numpy's array2string."""
    print("formatting", file=sys.stderr)
    rng = np.random.default_rng(0)
    for array in (np.array([1.5, -2.25]), rng.standard_normal((3, 3))):
        def ours() -> None:
            for _ in range(1000):
                render.format_array(array, 8, False, 2)

        def numpys() -> None:
            for _ in range(1000):
                np.array2string(array, precision=8, threshold=render.SUMMARY_THRESHOLD, separator=" ")

        mine, theirs = paired_times(ours, numpys, max(repeat, 5))
        row(f"text of a {array.shape} array, as numpy writes it", f"{mine * 1e3:.1f} us",
            f"np.array2string {theirs * 1e3:.1f} us", mine / theirs, 0.15)


def bench_network(batch: int, sizes: tuple[int, int, int], repeat: int) -> None:
    """The two-layer net through the API against the same layers called by hand."""
    from cgraph.layers import AffineLayer, ReluLayer, SoftmaxWithLossLayer

    print("two-layer net", file=sys.stderr)
    data = two_layer_net(batch, sizes)
    graph = cgraph.from_dict(data)
    inputs = data["inputs"]
    layers = [AffineLayer(), ReluLayer(), AffineLayer(), SoftmaxWithLossLayer()]

    def by_hand() -> None:
        affine1, relu, affine2, loss = layers
        loss.forward(affine2.forward(relu.forward(affine1.forward(inputs["x"], inputs["W1"], inputs["b1"])),
                                     inputs["W2"], inputs["b2"]), inputs["t"])
        da2 = loss.backward(np.array(1.0))[0]
        affine1.backward(relu.backward(affine2.backward(da2)[0])[0])

    run = cgraph_run(graph)
    run(), by_hand()
    ours, hand = paired_times(run, by_hand, max(repeat * 40, 100))
    shape = "-".join(map(str, sizes))
    row(f"forward + backward through the API, two-layer net {shape}, batch {batch}", f"{ours * 1e3:.3f} ms",
        f"the layers called by hand {hand * 1e3:.3f} ms", ours / hand, 1.15)


def bench_mmap(elements: int, folder: Path) -> None:
    print("memory-mapped inputs", file=sys.stderr)
    for name in ("x", "w"):
        np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=np.float64, shape=(elements,))[:] = 0.5
    path = folder / "big.yaml"
    path.write_text("inputs:\n  x: {file: x.npy}\n  w: {file: w.npy}\nnodes:\n  y: {op: mul, inputs: [x, w]}\n")
    started = time.perf_counter()
    graph = cgraph.load(path, max_elements=elements)
    mapped = all(isinstance(graph.spec.inputs[name].value, np.memmap) for name in ("x", "w"))
    graph.backward(1.0)
    seconds = time.perf_counter() - started
    ok = mapped and float(graph.grads["x"][-1]) == 0.5
    ROWS.append((f"{elements:,}-element .npy inputs: memory-mapped, no copy, forward + backward",
                 f"{seconds:.2f} s", "", "", "PASS" if ok else "FAIL"))
    del graph


def bench_conv(batch: int, side: int, repeat: int) -> None:
    """conv2d and max_pool2d, forward and backward, against PyTorch with as many threads as numpy's BLAS."""
    print("convolution", file=sys.stderr)
    threads = os.cpu_count() or 1
    filters, size = 30, 5
    out_side = side - size + 1
    for dtype in ("float64", "float32"):
        conv = cgraph.from_dict({
            "inputs": {"x": {"shape": [batch, 1, side, side], "random": "uniform", "dtype": dtype},
                       "W": {"shape": [filters, 1, size, size], "random": "normal", "seed": 1, "scale": 0.01, "dtype": dtype},
                       "b": {"shape": [filters], "fill": 0, "dtype": dtype}},
            "nodes": {"c": {"op": "conv2d", "inputs": ["x", "W", "b"]}},
        })
        pool = cgraph.from_dict({
            "inputs": {"h": {"shape": [batch, filters, out_side, out_side], "random": "normal", "dtype": dtype}},
            "nodes": {"p": {"op": "max_pool2d", "inputs": ["h"], "size": 2}},
        })
        cases = (
            (conv, f"conv2d forward + backward, x ({batch}, 1, {side}, {side}), W ({filters}, 1, {size}, {size}), {dtype}",
             2.0, lambda x, W, b: torch.nn.functional.conv2d(x, W, b)),
            (pool, f"max_pool2d 2x2 forward + backward on ({batch}, {filters}, {out_side}, {out_side}), {dtype}",
             1.0, lambda h: torch.nn.functional.max_pool2d(h, 2)),
        )
        for graph, label, target, torch_op in cases:
            run = cgraph_run(graph)
            run()
            ours = median_time(run, repeat)
            if torch is None:
                row(label, f"{ours * 1e3:.1f} ms", "PyTorch (not installed)", None, None)
                continue
            torch.set_num_threads(threads)
            tensors = [torch.from_numpy(np.array(item.value)).requires_grad_() for item in graph.spec.inputs.values()]

            def torch_run() -> None:
                for tensor in tensors:
                    tensor.grad = None
                out = torch_op(*tensors)
                out.backward(torch.ones_like(out))

            # One after the other, not in turns: BLAS and OpenMP threads that spin after a call
            # would otherwise slow down whichever runs next.
            torch_run()
            theirs = median_time(torch_run, repeat)
            row(label, f"{ours * 1e3:.1f} ms", f"PyTorch {threads} threads {theirs * 1e3:.1f} ms", ours / theirs,
                target)


def paired_times(first: Callable[[], Any], second: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """The median wall times of two functions called in turn, so that a busy machine slows both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for function, kept in zip((first, second), times):
            started = time.perf_counter()
            function()
            kept.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def two_layer_net(rows: int, sizes: tuple[int, int, int], seed: int = 0) -> dict:
    """The book's two-layer net (Affine, ReLU, Affine, Softmax-with-Loss) on random data, as a dict."""
    features, hidden, classes = sizes
    rng = np.random.default_rng(seed)
    return {
        "inputs": {
            "x": rng.standard_normal((rows, features)),
            "t": np.eye(classes)[rng.integers(0, classes, rows)],
            "W1": 0.01 * rng.standard_normal((features, hidden)), "b1": np.zeros(hidden),
            "W2": 0.01 * rng.standard_normal((hidden, classes)), "b2": np.zeros(classes),
        },
        "nodes": {
            "a1": {"op": "affine", "inputs": ["x", "W1", "b1"]},
            "z1": {"op": "relu", "inputs": ["a1"]},
            "a2": {"op": "affine", "inputs": ["z1", "W2", "b2"]},
            "loss": {"op": "softmax_with_loss", "inputs": ["a2", "t"]},
        },
    }


def bench_training(batch: int, sizes: tuple[int, int, int], points: int, repeat: int) -> None:
    """set_input and a training step on the two-layer net; a sweep of buy_apple_orange.yaml."""
    from cgraph.layers import AffineLayer, ReluLayer, SoftmaxWithLossLayer
    from cgraph.optim import SGD
    from cgraph.sweep import Sweep, points as sweep_points
    from cgraph.train import Trainer

    print("training and sweeps", file=sys.stderr)
    shape = "-".join(map(str, sizes))
    data = two_layer_net(10 * batch, sizes)["inputs"]
    graph = cgraph.from_dict(two_layer_net(batch, sizes))
    inputs = {name: graph.spec.inputs[name].value for name in ("W1", "b1", "W2", "b2")}
    batches = [(data["x"][k * batch:(k + 1) * batch], data["t"][k * batch:(k + 1) * batch]) for k in range(10)]
    turn = iter(range(10**9))

    def through_api() -> None:
        x, t = batches[next(turn) % 10]
        graph.set_inputs({"x": x, "t": t})
        graph.forward()
        graph.backward()

    layers = [AffineLayer(), ReluLayer(), AffineLayer(), SoftmaxWithLossLayer()]

    def by_hand() -> None:
        x, t = batches[next(turn) % 10]
        affine1, relu, affine2, loss = layers
        loss.forward(affine2.forward(relu.forward(affine1.forward(x, inputs["W1"], inputs["b1"])), inputs["W2"],
                                     inputs["b2"]), t)
        da2 = loss.backward(1.0)[0]
        affine1.backward(relu.backward(affine2.backward(da2)[0])[0])

    repeats = max(repeat * 40, 100)
    through_api(), by_hand()
    ours, hand = paired_times(through_api, by_hand, repeats)
    row(f"set_input + forward + backward, two-layer net {shape}, batch {batch}", f"{ours * 1e3:.3f} ms",
        f"the layers called by hand {hand * 1e3:.3f} ms", ours / hand, 1.3)

    graph = cgraph.from_dict({**two_layer_net(batch, sizes), "inputs": {**two_layer_net(batch, sizes)["inputs"],
                                                                     "x": data["x"], "t": data["t"]}})
    trainer = Trainer(graph, ["W1", "b1", "W2", "b2"], SGD(), ["x", "t"], batch, seed=0)
    fixed = cgraph.from_dict(two_layer_net(batch, sizes))
    trainer.step()
    step, passes = paired_times(trainer.step, cgraph_run(fixed), repeats)
    row(f"train step (sgd, batch {batch} of {10 * batch} rows), two-layer net {shape}", f"{step * 1e3:.3f} ms",
        f"forward + backward through the API {passes * 1e3:.3f} ms", step / passes, 1.3)

    exe = Path(sys.executable).with_name("cgraph")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cgraph"]
    example = str(ROOT / "graphs" / "buy_apple_orange.yaml")
    swept = command_time([*command, "sweep", example, "--vary", f"tax=1:2:{points}"], repeat)
    once = command_time([*command, "backward", example], repeat)
    row(f"cgraph sweep buy_apple_orange.yaml, {points:,} points", f"{swept * 1e3:.0f} ms",
        f"one cgraph backward process {once * 1e3:.0f} ms", swept / once, 2.0)

    apple = cgraph.load(example)
    runner = Sweep(apple, {"tax": np.linspace(1, 2, points)}, [], np.asarray(1.0))
    indices = list(sweep_points(runner.varied, False))

    def sweep_all() -> None:
        for number, point in enumerate(indices, 1):
            _, output, grads = runner.run(number, point)
            runner.json_line(number, point, output, grads)

    per_point, bare = (total / points for total in paired_times(
        sweep_all, lambda: [cgraph_run(apple)() for _ in range(points)], max(3 * repeat, 15)))
    row("sweep, per point (set, forward, backward, JSON line), buy_apple_orange.yaml", f"{per_point * 1e6:.1f} us",
        f"forward + backward through the API {bare * 1e6:.1f} us", per_point / bare, 1.5)


def bench_formulas(count: int, repeat: int) -> None:
    """Loading a chain written as formulas against the same chain in the mapping form."""
    mapping, formulas = chain_yaml(count), chain_yaml(count, formulas=True)
    ours, theirs = paired_times(lambda: cgraph.loads(formulas), lambda: cgraph.loads(mapping), repeat)
    row(f"load {count:,} one-formula nodes (n1: n0 + c)", f"{ours:.2f} s", f"mapping form {theirs:.2f} s",
        ours / theirs, 1.5)


def mlp_model(sizes: tuple[int, ...], seed: int = 0) -> tuple[Any, list[tuple[np.ndarray, np.ndarray]]]:
    """An ONNX MLP as torch.onnx.export writes one (Gemm with transB, Relu between), float32, and
    its layers' (weight, bias)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    layers = [(rng.standard_normal((out, inp)).astype(np.float32) / np.float32(np.sqrt(inp)),
               rng.standard_normal(out).astype(np.float32) * np.float32(0.1)) for inp, out in zip(sizes, sizes[1:])]
    nodes, initializers, previous = [], [], "input"
    for i, (weight, bias) in enumerate(layers, 1):
        initializers += [numpy_helper.from_array(weight, f"fc{i}.weight"), numpy_helper.from_array(bias, f"fc{i}.bias")]
        out = f"/fc{i}/Gemm_output_0"
        nodes.append(helper.make_node("Gemm", [previous, f"fc{i}.weight", f"fc{i}.bias"], [out], transB=1))
        previous = out
        if i < len(layers):
            nodes.append(helper.make_node("Relu", [out], [f"/relu{i}/Relu_output_0"]))
            previous = f"/relu{i}/Relu_output_0"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", sizes[0]])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["batch", sizes[-1]])],
                              initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), layers


def bench_onnx(batch: int, sizes: tuple[int, ...], repeat: int, folder: Path) -> None:
    """ONNX models: loading against onnx.load, and the passes of an MLP and of LeNet (float32, as the
    models are) against PyTorch eager with the same weights, inputs and thread count."""
    print("onnx models", file=sys.stderr)
    shown = "-".join(map(str, sizes))
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        row(f"load a {shown} MLP model", "-", "onnx (not installed)", None, None)
        return
    model, layers = mlp_model(sizes)
    path = folder / "mlp.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(1).standard_normal((batch, sizes[0])).astype(np.float32)

    def onnx_load() -> list[np.ndarray]:
        """Every initializer as an array, all kept until the end, as a loaded graph keeps them."""
        return [numpy_helper.to_array(tensor) for tensor in onnx.load(str(path)).graph.initializer]

    # One after the other, not in turns: each allocates megabytes, which the next would fault in anew.
    onnx_load()
    theirs = median_time(onnx_load, repeat)
    ours = median_time(lambda: cgraph.load(str(path), overrides={"input": x}), repeat)
    parameters = sum(weight.size + bias.size for weight, bias in layers)
    row(f"load a {shown} MLP model ({parameters:,} parameters): read, spec, build", f"{ours * 1e3:.1f} ms",
        f"onnx.load + to_array {theirs * 1e3:.1f} ms", ours / theirs, 1.5)
    if torch is None:
        row(f"forward + backward, {shown} MLP model, batch {batch}", "-", "PyTorch (not installed)", None, None)
        return
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    mlp = torch.nn.Sequential(*[module for weight, bias in layers
                                for module in (torch.nn.Linear(weight.shape[1], weight.shape[0]), torch.nn.ReLU())][:-1])
    with torch.no_grad():
        for linear, (weight, bias) in zip(mlp[::2], layers):
            linear.weight.copy_(torch.from_numpy(weight)), linear.bias.copy_(torch.from_numpy(bias))
    lenet = torch_lenet()
    image = np.random.default_rng(2).standard_normal((batch, 1, 28, 28)).astype(np.float32)
    buffer = folder / "lenet.onnx"
    torch.onnx.export(lenet, (torch.from_numpy(image),), str(buffer), dynamo=False, input_names=["input"])
    cases = ((f"forward + backward, {shown} MLP model, batch {batch}, float32", path, mlp, x),
             (f"forward + backward, LeNet model (Conv, MaxPool, Gemm), batch {batch}, float32", buffer, lenet, image))
    for label, model_path, module, data in cases:
        graph = cgraph.load(str(model_path), overrides={"input": data})
        ones = np.ones(graph.shapes[graph.output], np.float32)

        def cgraph_passes() -> None:
            graph.forward()
            graph.backward(ones)

        tensor = torch.from_numpy(data).requires_grad_()

        def torch_passes() -> None:
            module.zero_grad(set_to_none=True)
            tensor.grad = None
            out = module(tensor)
            out.backward(torch.ones_like(out))

        cgraph_passes()
        ours = median_time(cgraph_passes, repeat)
        torch_passes()
        theirs = median_time(torch_passes, repeat)
        row(label, f"{ours * 1e3:.2f} ms", f"PyTorch eager {threads} threads {theirs * 1e3:.2f} ms", ours / theirs, 1.3)


def torch_lenet() -> Any:
    """A LeNet-5 (as tests/test_onnx_torch.py has it): two convolutions with max pooling, three linear layers."""
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10)).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="tiny sizes: check that the benchmarks run")
    small = parser.parse_args().small
    repeat = 3 if small else 5
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        bench_startup(3 if small else 100)
        torch_total = bench_per_node((100, 1_000, 10_000) if small else (1_000, 100_000, 1_000_000), repeat)
        bench_end_to_end(1_000 if small else 100_000, torch_total, repeat, folder)
        bench_small_arrays((100, 1_000, 10_000) if small else (1_000, 100_000, 1_000_000), 100 if small else 10_000,
                           repeat, folder)
        bench_format(repeat)
        bench_network(10 if small else 100, (20, 5, 3) if small else (784, 50, 10), repeat)
        bench_arrays(10_000 if small else 1_000_000, 10 if small else 100, repeat)
        bench_output(1_000 if small else 100_000, 10_000 if small else 1_000_000, repeat)
        bench_mmap(10_000 if small else 100_000_000, folder)
        bench_conv(4 if small else 100, 12 if small else 28, repeat if small else 20)
        bench_formulas(1_000 if small else 100_000, repeat)
        bench_training(10 if small else 100, (20, 5, 3) if small else (784, 50, 10), 100 if small else 1_000, repeat)
        bench_onnx(4 if small else 64, (20, 10, 5, 3) if small else (784, 1000, 200, 10), repeat if small else 20, folder)

    print(f"\ncgraph {cgraph.__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'not installed'}; {platform.machine()}, {os.cpu_count()} cores"
          f"{' (--small: sizes too small for the targets to mean anything)' if small else ''}\n")
    widths = [max(len(cells[i]) for cells in ROWS + [("figure", "cgraph", "baseline", "ratio / target", "")])
              for i in range(5)]
    header = ("figure", "cgraph", "baseline", "ratio / target", "")
    for cells in [header, tuple("-" * w for w in widths), *ROWS]:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |")


if __name__ == "__main__":
    main()
