"""The commands that run a graph many times: train fits its inputs, sweep varies them."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

from . import signals
from .completion import complete_files, complete_names
from .console import progress, say, write_lines
from .options import (BUDGET_OPTIONS, EXPR_OPTION, FILE_ARGUMENT, SET_OPTION, FiniteFloatRange, graph_options, load_graph,
                      parse_set)

if TYPE_CHECKING:
    from .graph import Graph
    from .save import Guard


def optimizer_options(command: Callable) -> Callable:
    """The options of ``cgraph train`` that choose the optimizer and its settings."""
    options = [
        click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adagrad", "adam"]), default="sgd",
                     show_default=True, help="The update rule, as the book's common/optimizer.py."),
        click.option("--lr", type=FiniteFloatRange(0, min_open=True),
                     help="Learning rate  [default: 0.01; adam 0.001]"),
        click.option("--momentum", type=FiniteFloatRange(0), help="Momentum's decay of v  [default: 0.9]"),
        click.option("--beta1", type=FiniteFloatRange(0, 1, max_open=True), help="Adam's decay of m  [default: 0.9]"),
        click.option("--beta2", type=FiniteFloatRange(0, 1, max_open=True), help="Adam's decay of v  [default: 0.999]"),
        click.option("--eps", type=FiniteFloatRange(0), help="AdaGrad's and Adam's guard against division by 0  "
                                                             "[default: 1e-7]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@FILE_ARGUMENT
@EXPR_OPTION
@click.option("--param", "params", metavar="NAME", multiple=True, required=True,
              shell_complete=complete_names("inputs"), help="An input to train (weights, biases). Repeatable.")
@optimizer_options
@click.option("--steps", type=click.IntRange(0), default=100, show_default=True, help="Update steps.")
@click.option("--batch", "batch", metavar="NAME[,NAME...]", shell_complete=complete_names("inputs", listed=True),
              help="Inputs holding the data (and labels): each step draws --batch-size of their rows (first axis).")
@click.option("--batch-size", type=click.IntRange(1), help="Rows per step, drawn at random with replacement.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed for drawing the batches.")
@click.option("--metric", "metrics", metavar="NODE", multiple=True, shell_complete=complete_names("nodes"),
              help="A 0-d node to report with the loss (an accuracy). Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="text: a loss curve and a summary at the end; jsonl: one JSON object per step.")
@click.option("--every", type=click.IntRange(1), help="Report every K-th step (and the last)  [default: jsonl 1; "
                                                      "text: none, only the curve and summary]")
@click.option("--save", "save_path", metavar="OUT.npz", shell_complete=complete_files,
              help="Write the trained inputs to an .npz archive.")
@click.option("--write-graph", "graph_path", metavar="OUT.yaml", shell_complete=complete_files,
              help="Write a copy of FILE whose trained inputs are .npy files beside it.")
@click.option("--keep-going", is_flag=True, help="Go on where the loss or a gradient becomes NaN or infinite.")
@SET_OPTION
@click.option("--output", metavar="NAME", shell_complete=complete_names("nodes"),
              help="The loss node (default: 'output:' in the file, or the one node that feeds no other).")
@click.option("--max-elements", type=click.IntRange(1), default=100_000_000, show_default=True,
              help="Refuse arrays with more elements than this.")
@BUDGET_OPTIONS[0]
@BUDGET_OPTIONS[1]
def train(file: str | None, params: tuple[str, ...], optimizer: str, lr: float | None, momentum: float | None,
          beta1: float | None, beta2: float | None, eps: float | None, steps: int, batch: str | None,
          batch_size: int | None, seed: int, metrics: tuple[str, ...], fmt: str, every: int | None,
          save_path: str | None, graph_path: str | None, keep_going: bool, **loading: Any) -> None:
    """Minimise FILE's output, a 0-d loss, by changing the inputs named by --param, keeping the
    others fixed: each step runs forward and backward and updates them by the optimizer's rule.

    On a terminal a progress bar shows on stderr; at the end come a loss curve and a summary.
    Ctrl-C stops after the step under way and writes --save and --write-graph for it (exit 130).

    \b
    Examples:
      $ cgraph train graphs/spiral.yaml --param W1 --param b1 --param W2 --param b2 \\
          --optimizer adam --steps 500 --metric accuracy
      $ cgraph train graphs/spiral.yaml --param W1 --param b1 --param W2 --param b2 \\
          --steps 3 --format jsonl | jq -c '[.step, .loss]'
      [1,1.7917549600485108]
      [2,1.7224703270950896]
      [3,1.657103764739797]
    """
    import time

    from . import save
    from .optim import OPTIMIZERS
    from .train import History, Trainer, loss_curve

    context = click.get_current_context()
    applies = {"momentum": ("momentum",), "beta1": ("adam",), "beta2": ("adam",), "eps": ("adagrad", "adam")}
    settings = {"lr": lr, "momentum": momentum, "beta1": beta1, "beta2": beta2, "eps": eps}
    for key, optimizers in applies.items():
        if settings[key] is not None and optimizer not in optimizers:
            raise click.UsageError(f"--{key} goes with --optimizer {' or '.join(optimizers)}", context)
    if batch_size is not None and not batch:
        raise click.UsageError("--batch-size goes with --batch", context)
    if batch and batch_size is None:
        raise click.UsageError("--batch needs --batch-size", context)
    if graph_path is not None and file in ("-", None):
        raise click.UsageError(f"--write-graph copies a graph file; with the graph {'on standard input' if file else 'in -e formulas'}, "
                               "use --save", context)
    batch_names = [name.strip() for name in batch.split(",")] if batch else []

    def passes(graph: Graph) -> int:
        """The steps' work in passes over the whole graph, for the budget: a batch is a share of the rows."""
        inputs = graph.spec.inputs
        lengths = [inputs[name].value.shape[0] for name in batch_names if name in inputs and inputs[name].value.ndim]
        final = 1 if fmt == "text" else 0  # the loss after the last update, which the summary gives
        if not batch_size or not lengths:
            return steps + final
        rows = max(max(lengths), 1)
        return -(-steps * min(batch_size, rows) // rows) + final  # rounded up

    graph = load_graph(nodes=(), strict=False, run=False, file=file, forward_passes=passes, **loading)
    copied = [*graph.spec.overridden, *(name for name in params if name not in graph.spec.overridden)]
    save_guard, graph_guard = save.Guard(graph.spec), copy_guard(graph, graph_path, copied)
    if save_path is not None:
        save_guard.check(save_path, f"--save {save_path}")
    if graph_path is not None:
        save.check_graph_copy(graph_path, copied, graph_guard, f"--write-graph {graph_path}")
    for path in (save_path, graph_path):
        if path is not None:
            save.check_folder(path)
    rule = OPTIMIZERS[optimizer](**{key: value for key, value in settings.items() if value is not None})
    trainer = Trainer(graph, params, rule, batch_names, batch_size, seed, metrics, keep_going)

    def write_files(step: int) -> None:
        if save_path is not None:
            save.write_npz(save_path, trainer.params, save_guard, f"--save {save_path}")
        if graph_path is not None:
            from . import api
            from .yamlsafe import parse

            with open(file, "rb") as source:
                data = parse(api.decode(source.read(), file), file)
            overridden = {name: graph.spec.inputs[name].value for name in graph.spec.overridden}
            settings_text = ", ".join(f"{key} {value:g}" for key, value in rule.settings().items())
            comment = (f"{os.path.basename(file)} after {step} step{'s' * (step != 1)} of cgraph train "
                       f"({optimizer}: {settings_text});\nthe trained inputs ({', '.join(params)}) are in the .npy "
                       "files beside this one.")
            save.write_graph(graph_path, data, os.path.dirname(file) or ".", {**overridden, **trainer.params},
                             comment, graph_guard, f"--write-graph {graph_path}")

    every = every or (1 if fmt == "jsonl" else None)
    history = History()
    stop = {"asked": False}

    def on_interrupt(signum: int, frame: Any) -> None:
        if stop["asked"]:  # a second Ctrl-C: stop at once
            signals.stop(signum)
        stop["asked"] = True

    previous = signal.signal(signal.SIGINT, on_interrupt)
    started = time.perf_counter()
    with progress(steps, f"training ({optimizer})", every, lambda record: record and (
            f"loss {record.loss:.4g}  {record.step / (time.perf_counter() - started):,.0f} steps/s")) as bar:
        for _ in range(steps):
            if stop["asked"]:
                break
            record = trainer.step()
            history.add(record)
            bar.update(1, record)
            if every and (record.step % every == 0 or record.step == steps):
                if fmt == "jsonl":
                    write_lines([json_line(record.as_dict())])
                else:
                    shown = ", ".join(f"{key} {value:.6g}" for key, value in record.as_dict().items() if key != "step")
                    write_lines([f"step {record.step}: {shown}"])
        seconds = time.perf_counter() - started
        write_files(trainer.step_count)
    signal.signal(signal.SIGINT, previous)
    if fmt == "text":
        trained = trainer.evaluate() if trainer.step_count else None
        summary = history.summary(seconds, trained, batched=bool(batch_names))
        write_lines([*([""] if every else []), *loss_curve(history.groups), "", *summary])
    if stop["asked"]:
        held = [path for path in (save_path, graph_path) if path is not None]
        saved = f"; {' and '.join(held)} hold{'s' * (len(held) == 1)} the inputs after it" if held else ""
        say(f"cgraph: interrupted after step {trainer.step_count} of {steps}{saved}")
        sys.exit(130)


def copy_guard(graph: Graph, path: str | None, copied: list[str]) -> Guard:
    """The guard of ``train --write-graph PATH``: PATH may be the graph file itself, whose copy
    then replaces it, with the files of the inputs ``copied`` into .npy files; not a file any
    other input reads."""
    from .save import Guard, same_file

    spec = graph.spec
    if path is None or spec.graph_file is None or not same_file(path, spec.graph_file):
        return Guard(spec)
    kept = {item.file for name, item in spec.inputs.items() if name not in copied}
    replaced = {spec.graph_file, *(spec.inputs[name].file for name in copied if name in spec.inputs)}
    return Guard(spec, {path for path in replaced - kept if path})


@click.command()
@graph_options("dout", "precision", node_help="Report this input's or node's gradient (default: every input's).")
@click.option("--vary", "varies", metavar="NAME=SPEC", multiple=True, required=True, callback=parse_set,
              shell_complete=complete_names("inputs", suffix="="),
              help="Values for input NAME: START:STOP:NUM (inclusive), a list like '[1, 2, 3]', or @file.npy "
                   "(one per row). Repeatable: several make a grid.")
@click.option("--zip", "zipped", is_flag=True, help="Pair the --vary values (the first of each, the second, ...) "
                                                    "instead of trying every combination.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "text"]), default="jsonl", show_default=True,
              help="jsonl: one JSON object per point; text: a table.")
def sweep(varies: list[tuple[str, str]], zipped: bool, fmt: str, precision: int, nodes: tuple[str, ...], dout: str,
          strict: bool, **loading: Any) -> None:
    """Run FILE's forward and backward passes at many values of its inputs, in one process: each
    point's values, output and gradients, one JSON line per point.

    \b
    Example:
      $ cgraph sweep graphs/buy_apple_orange.yaml --vary tax=1:1.2:3 --node tax
      {"point":1,"set":{"tax":1.0},"output":650.0,"grads":{"tax":650.0}}
      {"point":2,"set":{"tax":1.1},"output":715.0000000000001,"grads":{"tax":650.0}}
      {"point":3,"set":{"tax":1.2},"output":780.0,"grads":{"tax":650.0}}
      $ cgraph sweep graphs/buy_apple.yaml --vary apple=[100,150] --vary tax=[1,1.1] --format text
    """
    from . import sweep as sweeping
    from .arrays import parse_array_option, suggest
    from .errors import CgraphError, diagnostic

    max_elements = loading["max_elements"]
    varied = {name: sweeping.parse_spec(text, f"--vary {name}", max_elements) for name, text in varies}
    total = sweeping.count(varied, zipped)
    graph = load_graph(nodes=nodes, strict=strict, run=False, forward_passes=lambda graph: total, **loading)
    for name in varied:
        if name not in graph.spec.inputs:
            kind = "a node, not an input" if name in graph.spec.nodes else f"not an input{suggest(name, graph.spec.inputs)}"
            raise CgraphError(f"--vary: '{name}' is {kind}")
    runner = sweeping.Sweep(graph, varied, nodes, parse_array_option(dout, "--dout", max_elements))
    every = max(1, total // 200)

    def results() -> Iterator[tuple[int, tuple[int, ...], dict[str, Any], Any, dict[str, Any]]]:
        with progress(total, "sweeping", every, lambda number: number and f"point {number:,}") as bar:
            for number, indices in enumerate(sweeping.points(runner.varied, zipped), 1):
                yield number, indices, *runner.run(number, indices)
                if number % every == 0:
                    bar.update(every, number)

    if fmt == "jsonl":
        write_lines(runner.json_line(number, indices, output, grads) for number, indices, _, output, grads in results())
    else:
        write_lines(sweeping.table(graph, ((point, output, grads) for _, _, point, output, grads in results()), precision))
    if runner.first_non_finite:
        point, name, message = runner.first_non_finite
        where = graph.spec.position(name) if name else None
        kind = "error" if strict else "warning"
        say(diagnostic(kind, f"{runner.non_finite_points:,} of {total:,} points gave NaN or infinity; at point "
                              f"{point}: {message}", where))
        if strict:
            sys.exit(1)


def json_line(data: dict[str, Any]) -> str:
    """One line of strict JSON: NaN and infinities as the strings "NaN", "Infinity", "-Infinity"."""
    from .render import json_bytes, json_value

    return json_bytes({key: json_value(value) for key, value in data.items()}).decode()


