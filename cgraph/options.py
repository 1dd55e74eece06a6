"""The options the commands share, their types and shell completion, and loading a graph as
they ask: the budget checked, the passes run, NaN and infinity reported."""

from __future__ import annotations

import gc
import math
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Callable

import click

from .completion import complete_names, complete_value
from .console import COLOR_OPTION, notice_if_slow, say

if TYPE_CHECKING:
    from .graph import Graph

FORMATS = ("text", "json", "jsonl")
DOT_PRECISION = 4  # digits in dot's boxes: enough to follow the numbers, narrow enough to read the picture
DEFAULT_MAX_WORK = 10**11  # as budget.DEFAULT_MAX_WORK, which --help must show without importing numpy


def parse_set(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for item in values:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got '{item}'", ctx, param)
        if any(name.strip() == seen for seen, _ in pairs):
            raise click.BadParameter(f"'{name.strip()}' is set twice", ctx, param)
        pairs.append((name.strip(), text))
    return pairs


class FiniteFloatRange(click.FloatRange):
    """A float in a range, refusing NaN and infinities (which every range comparison lets through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class Amount(click.ParamType):
    """A positive amount: a number (``1e11``), or with a suffix K, M, G or T, powers of 1024
    for bytes (``512M``, ``1.5GiB``) and of 1000 otherwise."""

    name = "amount"
    _PATTERN = re.compile(r"\s*((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)\s*([kmgt]?)(i?b)?\s*\Z", re.IGNORECASE)

    def __init__(self, of_bytes: bool) -> None:
        self.of_bytes = of_bytes
        self.name = "size" if of_bytes else "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = self._PATTERN.match(str(value))
        if match is None or (match.group(3) and not self.of_bytes):
            example = "a number of bytes, or with K, M, G or T: 512M, 2G" if self.of_bytes else "a number, such as 1e12"
            self.fail(f"expected {example}, got '{value}'", param, ctx)
        number, suffix = float(match.group(1)), match.group(2).upper()
        amount = number * (1024 if self.of_bytes else 1000) ** " KMGT".index(suffix or " ")
        if not 1 <= amount < 2**63:
            self.fail(f"'{value}' is out of range (1 to 2**63)", param, ctx)
        return int(amount)


BUDGET_OPTIONS = (
    click.option("--max-memory", type=Amount(of_bytes=True), metavar="SIZE",
                 help="Refuse graphs whose values and gradients, with what writing them out holds, need more "
                      "bytes than this, worked out before running; K, M, G suffixes accepted (2G).  [default: "
                      "half of the memory available when the command starts]"),
    click.option("--max-work", type=Amount(of_bytes=False), default=DEFAULT_MAX_WORK, metavar="N",
                 help="Refuse graphs needing more multiply-adds (matrix products) than this.  [default: 1e11]"),
)


FILE_ARGUMENT = click.argument("file", metavar="[FILE]", required=False, type=click.Path())
EXPR_OPTION = click.option(
    "-e", "--expr", "expressions", metavar="'NAME = EXPR'", multiple=True,
    help="A node written as a formula, in place of FILE, such as 'f = (x + y) * z'; the names it "
         "uses come from other formulas or --set. Repeatable; the last is the output.")
SET_OPTION = click.option(
    "--set", "sets", metavar="NAME=VALUE", multiple=True, callback=parse_set,
    shell_complete=complete_names("inputs", suffix="="),
    help="Replace input NAME with VALUE (a number, a list like '[1, 2]', a mapping like "
         "'{shape: [3, 2], random: normal, seed: 1}', or @file.npy). Repeatable.")


def graph_options(*extra: str, formats: tuple[str, ...] = FORMATS, node_help: str = "Print only this input or node.",
                  precision: int = 8, strict_help: str = "Fail (exit 1) where a value or gradient is NaN or infinite.",
                  ) -> Callable:
    """The FILE argument (or -e/--expr in its place) and the options every command shares, with
    those of ``extra`` it asks for: "dout", "format" (one of ``formats``), "precision"
    (``precision`` by default), "full" and "lint"."""
    options = [
        FILE_ARGUMENT,
        COLOR_OPTION,
        EXPR_OPTION,
        SET_OPTION,
        click.option("--output", metavar="NAME", shell_complete=complete_names("nodes"),
                     help="The output node (default: 'output:' in the file, or the one node that feeds no other)."),
        click.option("--node", "nodes", metavar="NAME", multiple=True, shell_complete=complete_names("inputs", "nodes"),
                     help=f"{node_help} Repeatable."),
    ]
    if "dout" in extra:
        options.append(click.option(
            "--dout", default="1", show_default=True, metavar="VALUE", shell_complete=complete_value,
            help="Gradient injected at the output: a number, a list like '[[1, 0], [0, 1]]', or @file.npy."))
    if "format" in extra:
        options.append(click.option("--format", "fmt", type=click.Choice(formats), default="text", show_default=True,
                                    help="Output format."))
    if "precision" in extra:
        options.append(click.option("--precision", type=click.IntRange(0, 17), default=precision, show_default=True,
                                    help="Digits after the point in text output."))
    if "lint" in extra:
        options.append(click.option("--lint", "with_lint", is_flag=True,
                                    help="Warn on stderr, before the output, about what 'cgraph lint' finds."))
    if "full" in extra:
        options.append(click.option("--full", is_flag=True, help="Print large arrays in full instead of summarised (text output)."))
    options += [
        click.option("--strict", is_flag=True, help=strict_help),
        click.option("--max-elements", type=click.IntRange(1), default=100_000_000, show_default=True,
                     help="Refuse arrays with more elements than this."),
        *BUDGET_OPTIONS,
    ]

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def load_graph(
    *,
    file: str | None,
    sets: list[tuple[str, str]],
    output: str | None,
    nodes: tuple[str, ...],
    strict: bool,
    max_elements: int,
    max_memory: int | None,
    max_work: int,
    dout: str | None = None,
    run: bool = True,
    forward_passes: Callable[[Graph], int] | None = None,
    expressions: tuple[str, ...] = (),
) -> Graph:
    """Load FILE, or the graph of the formulas in ``expressions``, with the shared options, check its
    cost against the budget and, where ``run``, run forward and, where ``dout`` is given, backward;
    warn about NaN and infinity (fail with ``strict``). ``forward_passes`` gives how many runs the
    command makes (1 by default)."""
    from . import api, budget
    from .arrays import read_array_option, suggest
    from .errors import CgraphError
    from .save import refuse_stdout_over_inputs

    if (file is None) == (not expressions):
        raise click.UsageError("give FILE or -e/--expr 'NAME = EXPR', not both" if expressions
                               else "missing FILE (or -e/--expr 'NAME = EXPR')")
    memory = budget.default_max_memory() if max_memory is None else max_memory
    gc.disable()  # a run makes millions of objects and no reference cycles; the process ends soon after
    read = {} if expressions else {name: read_array_option(text, f"--set {name}", max_elements) for name, text in sets}
    overrides = {name: array for name, (array, _) in read.items()}
    override_files = {name: path for name, (_, path) in read.items()}
    if expressions:
        graph = api.from_expressions(expressions, dict(sets), output=output, max_elements=max_elements)
    elif file == "-":
        if sys.stdin is None:
            raise CgraphError("there is no standard input to read the graph from")
        if sys.stdin.isatty():
            say("cgraph: reading the graph from standard input (end it with Ctrl-D)")
        graph = api.loads(sys.stdin.buffer.read(), source="<stdin>", base_dir=os.getcwd(), overrides=overrides,
                          output=output, max_elements=max_elements, override_files=override_files, max_memory=memory)
    else:
        graph = api.load(file, overrides=overrides, output=output, max_elements=max_elements,
                         override_files=override_files, max_memory=memory)
    for name in nodes:
        if name not in graph.shapes:
            raise CgraphError(f"--node: unknown name '{name}'{suggest(name, graph.shapes)}")
    budget.check_budget(graph, memory, max_work,
                        backward=dout is not None or not run,
                        forward_passes=forward_passes(graph) if forward_passes else 1)
    if dout is not None and run:
        gradient, dout_file = read_array_option(dout, "--dout", max_elements)
        if dout_file:
            graph.spec.files = (*graph.spec.files, dout_file)
    refuse_stdout_over_inputs(graph.spec)
    if not run:
        return graph
    with notice_if_slow("forward and backward passes" if dout is not None else "forward pass"):
        graph.forward()
        if dout is not None:
            graph.backward(gradient)
    problems = find_problems(graph, strict)
    for line in problems:
        say(line)
    if problems and strict:
        sys.exit(1)
    return graph


def find_problems(graph: Graph, strict: bool) -> list[str]:
    """Where NaN or infinity entered the graph, one line each as warnings; with ``strict``, the
    first cause as the one error line."""
    from .errors import diagnostic

    problems = graph.non_finite()
    if strict:
        problems = problems[:1]
    kind = "error" if strict else "warning"
    return [diagnostic(kind, message, graph.spec.position(name)) for name, message in problems]


