"""The cgraph command: forward and backward passes of graph files, printed as text or JSON;
the chain rule explained, the graph drawn, and gradients checked."""

from __future__ import annotations

import gc
import os
import signal
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import click

from . import __version__

if TYPE_CHECKING:
    from .graph import Graph

FORMATS = ("text", "json", "jsonl")


def _parse_set(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for item in values:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got '{item}'", ctx, param)
        if any(name.strip() == seen for seen, _ in pairs):
            raise click.BadParameter(f"'{name.strip()}' is set twice", ctx, param)
        pairs.append((name.strip(), text))
    return pairs


def graph_options(*extra: str, formats: tuple[str, ...] = FORMATS, node_help: str = "Print only this input or node.") -> Callable:
    """The FILE argument (or -e/--expr in its place) and the options every command shares, with
    those of ``extra`` it asks for: "dout", "format" (one of ``formats``), "precision" and "full"."""
    options = [
        click.argument("file", metavar="[FILE]", required=False),
        click.option("-e", "--expr", "expressions", metavar="'NAME = EXPR'", multiple=True,
                     help="A node written as a formula, in place of FILE, such as 'f = (x + y) * z'; the names it "
                          "uses come from other formulas or --set. Repeatable; the last is the output."),
        click.option("--set", "sets", metavar="NAME=VALUE", multiple=True, callback=_parse_set,
                     help="Replace input NAME with VALUE (a number, a list like '[1, 2]', a mapping like "
                          "'{shape: [3, 2], random: normal, seed: 1}', or @file.npy). Repeatable."),
        click.option("--output", metavar="NAME", help="The output node (default: 'output:' in the file, or the one node that feeds no other)."),
        click.option("--node", "nodes", metavar="NAME", multiple=True, help=f"{node_help} Repeatable."),
    ]
    if "dout" in extra:
        options.append(click.option(
            "--dout", default="1", show_default=True, metavar="VALUE",
            help="Gradient injected at the output: a number, a list like '[[1, 0], [0, 1]]', or @file.npy."))
    if "format" in extra:
        options.append(click.option("--format", "fmt", type=click.Choice(formats), default="text", show_default=True,
                                    help="Output format."))
    if "precision" in extra:
        options.append(click.option("--precision", type=click.IntRange(0, 17), default=8, show_default=True,
                                    help="Digits after the point in text output."))
    if "full" in extra:
        options.append(click.option("--full", is_flag=True, help="Print large arrays in full instead of summarised (text output)."))
    options += [
        click.option("--strict", is_flag=True, help="Fail (exit 1) where a value or gradient is NaN or infinite."),
        click.option("--max-elements", type=click.IntRange(1), default=100_000_000, show_default=True,
                     help="Refuse arrays with more elements than this."),
    ]

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="cgraph", message="%(prog)s %(version)s")
def cli() -> None:
    """A computational-graph calculator: forward and backward passes of YAML graph files.

    \b
    Example:
      cgraph forward graphs/buy_apple_orange.yaml
      cgraph backward graphs/buy_apple_orange.yaml --dout 1
      cgraph backward graphs/buy_apple_orange.yaml --format json | jq .nodes.tax.grad
      cgraph explain graphs/fan_out.yaml
      cgraph dot graphs/buy_apple_orange.yaml --backward --render graph.svg
      cgraph check graphs/bias_batch.yaml
    """


@cli.command()
@graph_options("format", "precision", "full")
def forward(fmt: str, precision: int, full: bool, nodes: tuple[str, ...], **loading: Any) -> None:
    """Run the forward pass of FILE ('-' for standard input) and print every value.

    \b
    Example:
      $ cgraph forward graphs/buy_apple.yaml --node price
      forward, output 'price'
    \b
      price = mul(apple_price, tax)  MulLayer(x.shape=(), y.shape=()) -> out.shape=()
        value: 220.0
    """
    _print(_load(nodes=nodes, **loading), fmt, nodes, precision, full)


@cli.command()
@graph_options("dout", "format", "precision", "full")
def backward(fmt: str, precision: int, full: bool, nodes: tuple[str, ...], **loading: Any) -> None:
    """Run forward and backward passes of FILE ('-' for standard input); print values and gradients.

    The gradient of each value v is dL/dv for L = sum(dout * output).

    \b
    Example:
      $ cgraph backward graphs/buy_apple.yaml --node apple --format json
      {"output": "price", "dout": 1.0, "nodes": {"apple": {"op": "input", "inputs": [],
       "shape": [], "dtype": "float64", "value": 100.0, "grad": 2.2}}}
    """
    _print(_load(nodes=nodes, **loading), fmt, nodes, precision, full)


@cli.command()
@graph_options("dout", "format", "precision", formats=("text", "json"),
               node_help="Show only the steps about this input or node.")
def explain(fmt: str, precision: int, nodes: tuple[str, ...], **loading: Any) -> None:
    """Run FILE's passes and write out the chain rule: for every node, in backward order, the
    rule its layer applied for its value and for each input's gradient, with the numbers.

    Gradients summed over broadcast axes say so, and the gradient of a value used more than
    once is shown as the sum of its contributions.

    \b
    Example:
      $ cgraph explain graphs/buy_apple.yaml --node tax
      backward, output 'price', dout = 1
      (d v is the gradient of v; in each node's rules, dout is the gradient of that node)
    \b
      price = apple_price * tax            = 200 * 1.1 = 220
        d apple_price = dout * tax         = 1 * 1.1   = 1.1
        d tax         = dout * apple_price = 1 * 200   = 200
    """
    from . import explain as explaining

    graph = _load(nodes=nodes, **loading)
    steps = explaining.explain(graph, precision)
    if fmt == "json":
        _write([explaining.render_json(graph, steps, nodes)])
    else:
        _write(explaining.render_text(graph, steps, nodes, precision))


@cli.command()
@graph_options("dout", "precision", node_help="Draw only this input or node (and the edges between those drawn).")
@click.option("--backward", "with_grads", is_flag=True, help="Run the backward pass too and show gradients.")
@click.option("--render", "image", metavar="OUT.svg|OUT.png|OUT.pdf",
              help="Write an image with Graphviz's 'dot' program instead of DOT text.")
def dot(with_grads: bool, image: str | None, precision: int, nodes: tuple[str, ...], dout: str,
        **loading: Any) -> None:
    """Write FILE's graph as Graphviz DOT text: a box per input and node with its op, shape and,
    where small, value and (with --backward) gradient; edges from inputs to the nodes using them.

    \b
    Example:
      $ cgraph dot graphs/buy_apple_orange.yaml --backward > graph.dot
      $ cgraph dot graphs/buy_apple_orange.yaml --backward --render graph.svg
    """
    from . import dot as drawing

    context = click.get_current_context()
    if not with_grads and context.get_parameter_source("dout") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--dout goes with --backward", context)
    graph = _load(nodes=nodes, dout=dout if with_grads else None, **loading)
    text = drawing.to_dot(graph, with_grads, nodes, precision)
    if image is None:
        _write([text.rstrip("\n")])
    else:
        with _user_errors():
            drawing.render_image(text, image)


@cli.command()
@graph_options("dout", "format", formats=("text", "json"), node_help="Check only this input.")
@click.option("--eps", type=click.FloatRange(0, min_open=True), default=1e-6, show_default=True,
              help="Finite-difference step, relative: an element x is moved by eps * max(1, |x|).")
@click.option("--rtol", type=click.FloatRange(0), default=1e-5, show_default=True, help="Relative tolerance.")
@click.option("--atol", type=click.FloatRange(0), default=1e-8, show_default=True, help="Absolute tolerance.")
@click.option("--samples", type=click.IntRange(0), default=20, show_default=True,
              help="Check at most this many elements of each input, drawn at random; 0 checks all.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed for drawing the samples.")
def check(fmt: str, nodes: tuple[str, ...], eps: float, rtol: float, atol: float, samples: int, seed: int,
          **loading: Any) -> None:
    """Check every input's backward gradient against central finite differences in float64.

    An element passes where |analytic - numeric| <= atol + rtol * |numeric|. Each element
    checked costs two forward passes. Exits 1 when any input fails.

    \b
    Example:
      $ cgraph check graphs/fan_out.yaml
      check, output 'y', dout = 1
      ...
      input  shape  checked  max abs error  max rel error  result
      x      ()     1        1.48e-10       2.11e-11       PASS
    \b
      PASS: 1 input
    """
    from . import check as checking

    graph = _load(nodes=nodes, **loading)
    with _user_errors():
        report = checking.check(graph, nodes, eps, rtol, atol, samples, seed)
    if fmt == "json":
        _write([checking.render_json(graph, report)])
    else:
        _write(checking.render_text(graph, report))
    if not report.passed:
        sys.exit(1)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print a user error as one line on stderr and exit 1."""
    from .errors import CgraphError

    try:
        yield
    except CgraphError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    except MemoryError:
        click.echo("cgraph: error: out of memory: the graph's values do not fit (make its arrays smaller)", err=True)
        sys.exit(1)


def _load(
    *,
    file: str | None,
    expressions: tuple[str, ...],
    sets: list[tuple[str, str]],
    output: str | None,
    nodes: tuple[str, ...],
    strict: bool,
    max_elements: int,
    dout: str | None = None,
) -> Graph:
    """Load FILE with the shared options and run forward and, where ``dout`` is given, backward;
    warn about NaN and infinity (fail with ``strict``)."""
    from . import api
    from .arrays import parse_array_option, suggest
    from .errors import CgraphError

    if (file is None) == (not expressions):
        raise click.UsageError("give FILE or -e/--expr 'NAME = EXPR', not both" if expressions
                               else "missing FILE (or -e/--expr 'NAME = EXPR')")
    gc.disable()  # a run makes millions of objects and no reference cycles; the process ends soon after
    with _user_errors():
        overrides = {} if expressions else {
            name: parse_array_option(text, f"--set {name}", max_elements) for name, text in sets}
        if expressions:
            graph = api.from_expressions(expressions, dict(sets), output=output, max_elements=max_elements)
        elif file == "-":
            if sys.stdin is None:
                raise CgraphError("there is no standard input to read the graph from")
            if sys.stdin.isatty():
                click.echo("cgraph: reading the graph from standard input (end it with Ctrl-D)", err=True)
            text = api.decode(sys.stdin.buffer.read(), "<stdin>")
            graph = api.loads(text, source="<stdin>", base_dir=os.getcwd(), overrides=overrides,
                              output=output, max_elements=max_elements)
        else:
            graph = api.load(file, overrides=overrides, output=output, max_elements=max_elements)
        for name in nodes:
            if name not in graph.shapes:
                raise CgraphError(f"--node: unknown name '{name}'{suggest(name, graph.shapes)}")
        graph.forward()
        if dout is not None:
            graph.backward(parse_array_option(dout, "--dout", max_elements))
    problems = graph.non_finite()
    for name, message in problems:
        where = graph.spec.position(name)
        kind = "error" if strict else "warning"
        click.echo(f"{where}: {kind}: {message}" if where else f"cgraph: {kind}: {message}", err=True)
    if problems and strict:
        sys.exit(1)
    return graph


def _print(graph: Graph, fmt: str, nodes: tuple[str, ...], precision: int, full: bool) -> None:
    """The values (and gradients, after backward) in the format asked for."""
    from . import render

    if fmt == "json":
        _write([render.render_json(graph, nodes)])
    elif fmt == "jsonl":
        _write(render.render_jsonl(graph, nodes))
    else:
        _write(render.render_text(graph, nodes, precision, full))


def _write(lines: Iterable[str]) -> None:
    """Write lines to stdout in large chunks; a reader that went away ends the command quietly."""
    out = sys.stdout
    chunk: list[str] = []
    try:
        for line in lines:
            chunk.append(line)
            if len(chunk) >= 4096:
                out.write("\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            out.write("\n".join(chunk) + "\n")
        out.flush()
    except OSError as error:
        # Keep Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        if isinstance(error, BrokenPipeError):
            sys.exit(141)  # `cgraph ... | head`: stop quietly, as a program killed by SIGPIPE does
        click.echo(f"cgraph: error: cannot write the output: {error.strerror or error}", err=True)
        sys.exit(1)


def _interrupted(signum: int, frame: Any) -> None:
    print("cgraph: interrupted", file=sys.stderr)
    sys.exit(130)


def main() -> None:
    """Entry point: run the command; Ctrl-C ends it with one line and status 130."""
    signal.signal(signal.SIGINT, _interrupted)
    try:
        code = cli.main(prog_name="cgraph", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
