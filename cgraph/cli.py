"""The cgraph command: forward and backward passes of graph files, printed as text or JSON."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Callable, Iterable

import click

from . import __version__

FORMATS = ("text", "json", "jsonl")


def _parse_set(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for item in values:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got '{item}'", ctx, param)
        pairs.append((name.strip(), text))
    return pairs


def graph_options(command: Callable) -> Callable:
    """The FILE argument and the options that forward and backward share."""
    options = [
        click.argument("file", metavar="FILE"),
        click.option("--set", "sets", metavar="NAME=VALUE", multiple=True, callback=_parse_set,
                     help="Replace input NAME with VALUE (a number, a list like '[1, 2]', or @file.npy). Repeatable."),
        click.option("--output", metavar="NAME", help="The output node (default: 'output:' in the file, or the one node that feeds no other)."),
        click.option("--node", "nodes", metavar="NAME", multiple=True, help="Print only this input or node. Repeatable."),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Output format."),
        click.option("--precision", type=click.IntRange(0, 17), default=8, show_default=True, help="Digits after the point in text output."),
        click.option("--full", is_flag=True, help="Print large arrays in full instead of summarised (text output)."),
        click.option("--strict", is_flag=True, help="Fail (exit 1) where a value or gradient is NaN or infinite."),
        click.option("--max-elements", type=click.IntRange(1), default=100_000_000, show_default=True,
                     help="Refuse arrays with more elements than this."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="cgraph", message="%(prog)s %(version)s")
def cli() -> None:
    """A computational-graph calculator: forward and backward passes of YAML graph files.

    \b
    Example:
      cgraph forward graphs/buy_apple_orange.yaml
      cgraph backward graphs/buy_apple_orange.yaml --dout 1
      cgraph backward graphs/buy_apple_orange.yaml --format json | jq .nodes.tax.grad
    """


@cli.command()
@graph_options
def forward(**options: Any) -> None:
    """Run the forward pass of FILE ('-' for standard input) and print every value.

    \b
    Example:
      $ cgraph forward graphs/buy_apple.yaml --node price
      forward, output 'price'
    \b
      price = mul(apple_price, tax)  MulLayer(x.shape=(), y.shape=()) -> out.shape=()
        value: 220.0
    """
    _run(backward=False, dout=None, **options)


@cli.command()
@graph_options
@click.option("--dout", default="1", show_default=True, metavar="VALUE",
              help="Gradient injected at the output: a number, a list like '[[1, 0], [0, 1]]', or @file.npy.")
def backward(dout: str, **options: Any) -> None:
    """Run forward and backward passes of FILE ('-' for standard input); print values and gradients.

    The gradient of each value v is dL/dv for L = sum(dout * output).

    \b
    Example:
      $ cgraph backward graphs/buy_apple.yaml --node apple --format json
      {"output": "price", "dout": 1.0, "nodes": {"apple": {"op": "input", "inputs": [],
       "shape": [], "dtype": "float64", "value": 100.0, "grad": 2.2}}}
    """
    _run(backward=True, dout=dout, **options)


def _run(
    *,
    backward: bool,
    dout: str | None,
    file: str,
    sets: list[tuple[str, str]],
    output: str | None,
    nodes: tuple[str, ...],
    fmt: str,
    precision: int,
    full: bool,
    strict: bool,
    max_elements: int,
) -> None:
    import gc

    from . import api, render
    from .arrays import parse_array_option, suggest
    from .errors import CgraphError

    gc.disable()  # a run makes millions of objects and no reference cycles; the process ends soon after

    try:
        overrides = {name: parse_array_option(text, f"--set {name}", max_elements) for name, text in sets}
        if file == "-":
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
        if backward:
            graph.backward(parse_array_option(dout, "--dout", max_elements))
    except CgraphError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    problems = graph.non_finite()
    for name, message in problems:
        where = graph.spec.position(name)
        kind = "error" if strict else "warning"
        click.echo(f"{where}: {kind}: {message}" if where else f"cgraph: {kind}: {message}", err=True)
    if problems and strict:
        sys.exit(1)

    if fmt == "json":
        _write([render.render_json(graph, nodes)])
    elif fmt == "jsonl":
        _write(render.render_jsonl(graph, nodes))
    else:
        _write(render.render_text(graph, nodes, precision, full))


def _write(lines: Iterable[str]) -> None:
    """Write lines to stdout in large chunks."""
    out = sys.stdout
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= 4096:
            out.write("\n".join(chunk) + "\n")
            chunk.clear()
    if chunk:
        out.write("\n".join(chunk) + "\n")
    out.flush()


def _interrupted(signum: int, frame: Any) -> None:
    print("cgraph: interrupted", file=sys.stderr)
    sys.exit(130)


def main() -> None:
    """Entry point: run the command; Ctrl-C and a closed pipe end it quietly."""
    signal.signal(signal.SIGINT, _interrupted)
    try:
        code = cli.main(prog_name="cgraph", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except BrokenPipeError:
        # The reader went away (`cgraph ... | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)
    sys.exit(code if isinstance(code, int) else 0)
