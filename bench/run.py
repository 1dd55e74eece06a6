"""cgraph's benchmarks: each figure against a baseline measured in the same run.

    python bench/run.py            # full sizes, a quarter of an hour; prints the README's table
    python bench/run.py --small    # tiny sizes, to check the benchmarks still run
    python bench/run.py --only start-up,arrays   # some groups of rows only
    python bench/run.py --big-output   # also the 640 MB forward JSON (a minute more, 4 GB of memory)

PyTorch is optional (`pip install torch==2.13.0`); without it the figures that
compare against it are skipped. Times are medians of repeated runs.
"""

from __future__ import annotations

import argparse
import compileall
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
import warnings
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# This checkout's cgraph, here and in the commands timed, whichever cgraph is installed.
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import cgraph
from cgraph import render

try:
    import torch
except ImportError:
    torch = None

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


def command_cpu_time(args: list[str], repeat: int) -> float:
    """The median CPU time (user + system) of running a command, its output thrown away: steadier
    than wall time on a machine that others load."""
    import resource

    def used() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    times = []
    for _ in range(repeat + 1):  # the first warms the file cache
        before = used()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        times.append(used() - before)
    return statistics.median(times[1:])


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
        f"{small_cost * 1e6:.2f} us", large_cost / small_cost, 1.3)
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
        run, by_hand = cgraph_run(graph), numpy_floor(graph, count, broadcast)
        run(), by_hand()
        ours, floor = paired_times(run, by_hand, repeat)  # in turn: a busy machine slows both alike
        del by_hand
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
    as_json = median_time(lambda: deque(render.render_json(graph), maxlen=0), repeat) / len(graph.values)
    row(f"text output, per printed line ({count:,}-node scalar chain, {text_lines:,} lines)",
        f"{text * 1e6:.2f} us", "2 us", text / 2e-6, 1.0)
    row(f"JSON output, per node entry ({count:,}-node scalar chain)", f"{as_json * 1e6:.2f} us", "2 us",
        as_json / 2e-6, 1.0)
    array = np.random.default_rng(0).random(elements)
    full = median_time(lambda: render.format_array(array, 8, True, 2), max(1, repeat // 2))
    row(f"text --full of one {elements:,}-element array", f"{full:.2f} s", "1 s", full / 1.0, 1.0)


# Run a command, then write its peak resident memory (Linux's VmHWM, in kB) on stderr.
PEAK_RSS = """
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write(line)
atexit.register(peak)
"""
CGRAPH_PEAK = PEAK_RSS + """
sys.argv = ["cgraph", *sys.argv[1:]]
runpy.run_module("cgraph", run_name="__main__")
"""
# The same array as orjson writes it in one process, holding the whole text: the call's time and the text's length.
ORJSON_WHOLE = PEAK_RSS + """
import json, os, time
import numpy as np, orjson
array = np.random.default_rng(0).standard_normal(int(sys.argv[1]))
started = time.perf_counter()
text = orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY)
seconds = time.perf_counter() - started
os.write(1, text[:1])
print(json.dumps([seconds, len(text)]), file=sys.stderr)
"""


def peak_run(args: list[str]) -> tuple[float, int, str]:
    """Run a Python script (``args`` after the interpreter) from the root of the tree: its wall time,
    its peak resident memory in bytes and its stderr."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, check=True)
    seconds = time.perf_counter() - started
    peak = int(result.stderr.rsplit("VmHWM:", 1)[1].split()[0]) * 1024
    return seconds, peak, result.stderr


def bench_big_output(elements: int, folder: Path) -> None:
    """cgraph forward --format json of a graph holding one large input (and its sum), in a process of
    its own writing to /dev/null: its wall time against orjson.dumps of the same array in one process,
    and its peak resident memory against the array's bytes. Linux only (peak memory from /proc)."""
    print("big output", file=sys.stderr)
    if not Path("/proc/self/status").exists():
        ROWS.append(("forward --format json of a large input", "not measured: no /proc", "", "", "-"))
        return
    path = folder / "big_output.yaml"
    path.write_text(f"inputs:\n  a: {{shape: [{elements}], random: normal, seed: 0}}\n"
                    "nodes:\n  s: {op: sum, inputs: [a]}\n")
    command = ["-c", CGRAPH_PEAK, "forward", str(path), "--format", "json", "--max-elements", str(elements)]
    seconds, peak, _ = peak_run(command)
    without, _, _ = peak_run([*command, "--node", "s"])  # the same start, input and pass; one number written
    _, their_peak, stderr = peak_run(["-c", ORJSON_WHOLE, str(elements)])
    theirs, length = json.loads(stderr.splitlines()[0])
    writing = seconds - without
    array_bytes = elements * 8
    label = (f"forward --format json of a {array_bytes / 1e6:,.0f} MB input ({elements:,} elements, "
             f"{length / 1e9:.2f} GB of JSON)")
    row(f"{label}: time writing it", f"{writing:.2f} s (the run {seconds:.2f} s less the run with --node s "
        f"{without:.2f} s)", f"orjson.dumps of the array in one process {theirs:.2f} s", writing / theirs, 1.5)
    row(f"{label}: peak RSS", f"{peak / 1e9:.2f} GB", f"the array {array_bytes / 1e9:.2f} GB (orjson in one "
        f"process: {their_peak / 1e9:.2f} GB)", peak / array_bytes, 1.875)  # 1.2 GB for 640 MB


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

        column = [array.copy() for _ in range(10_000)]  # as the text view writes a run's arrays: together

        def together() -> None:
            render.format_column(column, 8)

        def numpys_column() -> None:
            for _ in range(1000):
                np.array2string(array, precision=8, threshold=render.SUMMARY_THRESHOLD, separator=" ")

        mine, theirs = paired_times(together, numpys_column, max(repeat, 5))
        row(f"text of 10,000 {array.shape} arrays written together, per array", f"{mine * 1e2:.1f} us",
            f"np.array2string {theirs * 1e3:.1f} us", mine / 10 / theirs, 0.15)


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
        f"forward + backward through the API {passes * 1e3:.3f} ms", step / passes, 1.15)

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


PAGE_BUDGET = 5_000_000  # bytes of SimpleConvNet's page
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# One step of the page's slider, timed in the page: the input event's handling and the next frame.
SLIDER_STEP = """async (slider, position) => {
  const started = performance.now();
  slider.value = String(position);
  slider.dispatchEvent(new Event("input"));
  await new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return performance.now() - started;
}"""


def chromium_path() -> str | None:
    """The system's Chromium (or CGRAPH_CHROMIUM's), or None."""
    import shutil

    for candidate in (os.environ.get("CGRAPH_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def write_page(graph_path: Path, out: Path) -> int:
    """Write ``graph_path``'s page to ``out`` with the CLI; its size in bytes."""
    subprocess.run([sys.executable, "-m", "cgraph", "html", str(graph_path), "-o", str(out)], check=True, cwd=ROOT)
    return out.stat().st_size


def bench_page(wide: int, repeat: int, folder: Path) -> None:
    """The page's budgets: SimpleConvNet's page size, and in Chromium a wide graph's first paint and
    slider step and the two-layer net's slider step (skipped without playwright or Chromium)."""
    size = write_page(ROOT / "graphs" / "simple_convnet.yaml", folder / "convnet.html")
    row("SimpleConvNet's page (cgraph html)", f"{size / 1e6:.2f} MB", f"budget {PAGE_BUDGET / 1e6:.0f} MB",
        size / PAGE_BUDGET, 1.0)
    count = (wide - 3) // 2  # 4 inputs, count nodes, count - 1 sums
    wide_path = folder / f"wide_{count}.yaml"
    wide_path.write_text(wide_yaml(count))
    boxes = 4 + 2 * count - 1
    wide_figure = f"page of a {boxes:,}-box wide graph in Chromium: first paint"
    wide_step = f"page of a {boxes:,}-box wide graph in Chromium: slider step"
    net_step = "page of the two-layer net in Chromium: slider step"
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        for figure in (wide_figure, wide_step, net_step):
            row(figure, "skipped", "no playwright or no Chromium", None, None)
        return
    write_page(wide_path, folder / "wide.html")
    write_page(ROOT / "graphs" / "two_layer_net.yaml", folder / "net.html")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        paints, steps = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            page.goto((folder / "wide.html").as_uri())
            page.wait_for_selector('body[data-state="ready"]', state="attached", timeout=60_000)
            page.evaluate("() => new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve, 0)))")
            paints.append(time.perf_counter() - started)
            steps.append(page.eval_on_selector("#slider", SLIDER_STEP, boxes // 2) / 1000)
        paint, step = statistics.median(paints), statistics.median(steps)
        row(wide_figure, f"{paint:.2f} s", "budget 2 s", paint / 2.0, 1.0)
        row(wide_step, f"{step * 1000:.0f} ms", "budget 2 s", step / 2.0, 1.0)
        page.goto((folder / "net.html").as_uri())
        page.wait_for_selector('body[data-state="ready"]', state="attached", timeout=60_000)
        positions = int(page.get_attribute("#slider", "max")) + 1
        times = [page.eval_on_selector("#slider", SLIDER_STEP, k % positions) / 1000 for k in range(1, 4 * positions)]
        step = statistics.median(times)
        row(net_step, f"{step * 1000:.1f} ms", "budget 50 ms", step / 0.05, 1.0)
        browser.close()


def bench_second_order(wide: int, batch: int, sizes: tuple[int, int, int], repeat: int, folder: Path) -> None:
    """cgraph grad of the wide graph end to end against cgraph backward of it; a Hessian-vector
    product through the gradient graph and the whole Hessian, each against PyTorch's double backward."""
    from cgraph import hessian

    print("second order", file=sys.stderr)
    exe = Path(sys.executable).with_name("cgraph")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cgraph"]
    path = folder / f"wide_{wide}.yaml"
    path.write_text(wide_yaml(wide))
    ours = command_cpu_time([*command, "grad", str(path)], repeat)
    theirs = command_cpu_time([*command, "backward", str(path), "--format", "json"], repeat)
    row(f"cgraph grad {path.name} (writes the gradient graph), CPU time", f"{ours:.2f} s",
        f"cgraph backward --format json {theirs:.2f} s", ours / theirs, 2.0)
    net_path = _net_file(two_layer_net(batch, sizes), folder, f"net_{batch}_{sizes[0]}_{sizes[1]}_{sizes[2]}")
    for label, graph_path in ((path.name, path), (f"two-layer net {'-'.join(map(str, sizes))}", net_path)):
        original, emitted, wrt = grad_node_counts(graph_path)
        bound = 3 * original + wrt
        row(f"cgraph grad {label}: nodes of the gradient graph", f"{emitted:,} nodes",
            f"bound 3 x {original:,} + {wrt} inputs = {bound:,}", emitted / bound, 1.0)
    if torch is None:
        for label in ("Hessian-vector product", "whole Hessian"):
            row(f"{label}, two-layer net", "-", "PyTorch (not installed)", None, None)
        return
    torch.set_num_threads(2)
    names = ["x", "W1", "b1", "W2", "b2"]
    for label, rows, shape, wrt, target in (
            ("Hessian-vector product", batch, sizes, ["W1"], 1.5),
            ("whole Hessian (batched over directions)", 10, (8, 5, 3), names, None),
            ("whole Hessian (batched over directions)", 10, (12, 8, 4), names, None)):
        data = two_layer_net(rows, shape)
        graph_path = _net_file(data, folder, f"net_{rows}_{shape[0]}_{shape[1]}_{shape[2]}")
        _, parsed = hessian.read_file(str(graph_path))
        graph = cgraph.load(graph_path)
        graph.forward()
        tensors = {name: torch.tensor(value, requires_grad=name != "t") for name, value in data["inputs"].items()}

        def loss(x, W1, b1, W2, b2):
            a2 = torch.relu(x @ W1 + b1) @ W2 + b2
            return -(tensors["t"] * torch.log_softmax(a2, dim=-1)).sum() / a2.shape[0]

        if wrt == ["W1"]:
            gradient, grads = hessian.gradient_of(graph, parsed, str(graph_path), names, np.array(1.0))
            gradient.output = grads["W1"]
            vector = np.random.default_rng(1).standard_normal(data["inputs"]["W1"].shape)
            direction = torch.tensor(vector)
            params = [tensors[name] for name in names]

            def ours_run() -> None:
                gradient.forward()
                gradient.backward(vector)

            def theirs_run() -> None:
                (grad_w1,) = torch.autograd.grad(loss(*params), tensors["W1"], create_graph=True)
                torch.autograd.grad((grad_w1 * direction).sum(), params)
        else:
            def ours_run() -> None:
                hessian.hessian(graph, parsed, str(graph_path), names, np.array(1.0))

            def theirs_run() -> None:
                torch.autograd.functional.hessian(loss, tuple(tensors[name].detach() for name in names))
        ours_run(), theirs_run()
        ours, theirs = paired_times(ours_run, theirs_run, max(repeat * 4, 10) if target else repeat)
        baseline = "torch.autograd.grad, create_graph" if target else "torch.autograd.functional.hessian"
        row(f"{label}, two-layer net {'-'.join(map(str, shape))}, batch {rows}", f"{ours * 1e3:.1f} ms",
            f"{baseline} {theirs * 1e3:.1f} ms", ours / theirs, target)


def grad_node_counts(path: Path) -> tuple[int, int, int]:
    """The nodes of the graph at ``path`` and of its gradient graph, as the loaded graphs hold them
    (each op applied, a named entry or inside a formula), and the number of inputs differentiated."""
    from cgraph.cli_grad import gradient_file
    from cgraph.gradient import reachable_inputs

    original = cgraph.load(path)
    text = gradient_file(str(path), None, (), "1", None, 10**9)[0]
    emitted = cgraph.loads(text, source="<grad>")  # its input files named from the working directory
    return len(original.spec.nodes), len(emitted.spec.nodes), len(reachable_inputs(original, original.output))


def _net_file(data: dict, folder: Path, stem: str) -> Path:
    """The two-layer net as a graph file whose inputs are .npy files beside it."""
    lines = ["inputs:"]
    for name, value in data["inputs"].items():
        np.save(folder / f"{stem}_{name}.npy", value)
        lines.append(f"  {name}: {{file: {stem}_{name}.npy}}")
    lines.append("nodes:")
    lines += [f"  {name}: {{op: {node['op']}, inputs: [{', '.join(node['inputs'])}]}}" for name, node in data["nodes"].items()]
    path = folder / f"{stem}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


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

    def cgraph_load() -> cgraph.Graph:
        return cgraph.load(str(path), overrides={"input": x})

    # In turns, one of each a round: the memory one load frees is there for the next to reuse or
    # fault in anew, alike for both, and a change of the machine's load weighs on both alike.
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(10 * repeat + 1):
        for load, taken in zip((onnx_load, cgraph_load), times):
            started = time.perf_counter()
            load()
            taken.append(time.perf_counter() - started)
    theirs, ours = (statistics.median(taken[1:]) for taken in times)  # the first round warms up
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
    with warnings.catch_warnings():  # the TorchScript exporter's notice that a newer one exists
        warnings.simplefilter("ignore", DeprecationWarning)
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


GROUPS = ("start-up", "per-node", "small-arrays", "format", "network", "arrays", "output", "mmap", "conv",
          "formulas", "training", "page", "second-order", "onnx")


def compile_package() -> None:
    """Byte-compile cgraph as an install does, so that the processes the rows start read its
    bytecode instead of compiling every module at every start (an editable install run with
    PYTHONDONTWRITEBYTECODE set would otherwise compile them each time, some 0.1-0.2 s)."""
    compileall.compile_dir(Path(cgraph.__file__).parent, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="tiny sizes: check that the benchmarks run")
    parser.add_argument("--only", default=",".join(GROUPS),
                        help=f"comma-separated groups of rows to run, of: {', '.join(GROUPS)} (all by default)")
    parser.add_argument("--big-output", action="store_true",
                        help="also write a 640 MB input as JSON (with --small, a small one is written anyway)")
    arguments = parser.parse_args()
    small, only = arguments.small, set(arguments.only.split(","))
    if only - set(GROUPS):
        parser.error(f"--only: unknown group(s) {', '.join(sorted(only - set(GROUPS)))}")
    repeat = 3 if small else 5
    torch_total = None
    compile_package()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        if "start-up" in only:
            bench_startup(3 if small else 100)
        if "per-node" in only:
            torch_total = bench_per_node((100, 1_000, 10_000) if small else (1_000, 100_000, 1_000_000), repeat)
            bench_end_to_end(1_000 if small else 100_000, torch_total, repeat, folder)
        if "small-arrays" in only:
            bench_small_arrays((100, 1_000, 10_000) if small else (1_000, 100_000, 1_000_000),
                               100 if small else 10_000, repeat, folder)
        if "format" in only:
            bench_format(repeat)
        if "network" in only:
            bench_network(10 if small else 100, (20, 5, 3) if small else (784, 50, 10), repeat)
        if "arrays" in only:
            bench_arrays(10_000 if small else 1_000_000, 10 if small else 100, repeat)
        if "output" in only:
            bench_output(1_000 if small else 100_000, 10_000 if small else 1_000_000, repeat)
            if small or arguments.big_output:
                bench_big_output(100_000 if small else 80_000_000, folder)
        if "mmap" in only:
            bench_mmap(10_000 if small else 100_000_000, folder)
        if "conv" in only:
            bench_conv(4 if small else 100, 12 if small else 28, repeat if small else 20)
        if "formulas" in only:
            bench_formulas(1_000 if small else 100_000, repeat)
        if "training" in only:
            bench_training(10 if small else 100, (20, 5, 3) if small else (784, 50, 10), 100 if small else 1_000,
                           repeat)
        if "page" in only:
            bench_page(100 if small else 2_000, repeat, folder)
        if "second-order" in only:
            bench_second_order(100 if small else 2_000, 10 if small else 100, (20, 5, 3) if small else (784, 50, 10),
                               repeat, folder)
        if "onnx" in only:
            bench_onnx(4 if small else 64, (20, 10, 5, 3) if small else (784, 1000, 200, 10),
                       repeat if small else 20, folder)

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
