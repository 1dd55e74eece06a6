"""The cgraph command: forward and backward passes of graph files, printed as text or JSON;
the chain rule explained, the graph drawn, and gradients checked. The page's commands are in
cli_page, training's and sweeping's in cli_train."""

from __future__ import annotations

import importlib
import sys
from itertools import chain
from typing import TYPE_CHECKING, Any, Iterable

import click

from . import __version__, signals
from .completion import complete_files, complete_names
from .console import colored, paint, progress, say, user_errors, write_chunks, write_lines
from .options import DOT_PRECISION, FiniteFloatRange, graph_options, load_graph

if TYPE_CHECKING:
    from .graph import Graph


# Commands defined in modules of their own, imported only when one of them runs or is listed.
_ELSEWHERE = {
    "html": "cli_page", "serve": "cli_page", "train": "cli_train", "sweep": "cli_train",
    "grad": "cli_grad", "hessian": "cli_grad",
}


class _Commands(click.Group):
    """The command group: a user error anywhere in a command, its output included, is one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_ELSEWHERE])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _ELSEWHERE:
            return getattr(importlib.import_module(f".{_ELSEWHERE[cmd_name]}", __package__), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        with user_errors():
            return super().invoke(ctx)


@click.group(cls=_Commands, no_args_is_help=False, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="cgraph", message="%(prog)s %(version)s")
def cli() -> None:
    """A computational-graph calculator: forward and backward passes of YAML graph files.

    A graph file names its inputs and the nodes computed from them; price.yaml:

    \b
      inputs:
        apple: 100
        tax: 1.1
      nodes:
        price: {op: mul, inputs: [apple, tax]}

    runs forward and backward, the chain rule written out, with:

    \b
      $ cgraph explain price.yaml
      backward, output 'price', dout = 1
      (d v is the gradient of v; in each node's rules, dout is the gradient of that node)

    \b
      price = apple * tax      = 100 * 1.1 = 110
        d apple = dout * tax   = 1 * 1.1   = 1.1
        d tax   = dout * apple = 1 * 100   = 100

    A node may be a formula too ('price: apple * tax'). More, with the example graphs of graphs/:

    \b
      cgraph backward graphs/buy_apple_orange.yaml
      cgraph backward -e 'f = (x + y) * z' --set x=-2 --set y=5 --set z=-4
      cgraph html graphs/two_layer_net.yaml -o net.html
      cgraph train graphs/spiral.yaml --param W1 --param b1 --param W2 --param b2 --optimizer adam

    'cgraph COMMAND --help' tells of each command. The reference is in docs/ beside this
    program's source: docs/commands.md (commands and options), docs/format.md (graph files),
    docs/formulas.md, docs/ops.md (every op), docs/page.md, docs/training.md, docs/python.md.
    """


@cli.command()
@graph_options("format", "precision", "full", "lint")
def forward(fmt: str, precision: int, full: bool, with_lint: bool, nodes: tuple[str, ...], **loading: Any) -> None:
    """Run the forward pass of FILE ('-' for standard input) and print every value.

    \b
    Examples:
      $ cgraph forward graphs/buy_apple.yaml --node price
      forward, output 'price'

    \b
      price = mul(apple_price, tax)  MulLayer(x=apple_price (), y=tax ()) -> out ()
        value: 220.0
      $ cgraph forward graphs/buy_apple.yaml --format json | jq .nodes.price.value
      220.00000000000003
    """
    graph = load_graph(nodes=nodes, **loading)
    if with_lint:
        warn_lint(graph)
    print_values(graph, fmt, nodes, precision, full)


@cli.command()
@graph_options("dout", "format", "precision", "full", "lint")
def backward(fmt: str, precision: int, full: bool, with_lint: bool, nodes: tuple[str, ...], **loading: Any) -> None:
    """Run forward and backward passes of FILE ('-' for standard input); print values and gradients.

    The gradient of each value v is dL/dv for L = sum(dout * output).

    \b
    Examples:
      $ cgraph backward graphs/buy_apple.yaml
      $ cgraph backward graphs/buy_apple.yaml --dout 2 --format json | jq .nodes.apple.grad
      4.4
    """
    graph = load_graph(nodes=nodes, **loading)
    if with_lint:
        warn_lint(graph)
    print_values(graph, fmt, nodes, precision, full)


@cli.command("lint")
@graph_options(node_help="Report only the warnings about this input or node.",
               strict_help="Exit 1 where there is a warning.")
def lint_command(nodes: tuple[str, ...], strict: bool, **loading: Any) -> None:
    """Warn about what runs without error but may not be what was meant, without running FILE's
    passes: broadcasts that make a node larger than every one of its inputs, inputs and nodes with
    no path to the output (their gradient is 0), float16 or float32 mixed with float64, and names
    that differ only by case or by a lookalike letter. One line per warning on stdout; exit 0, or 1
    with --strict where there is one.

    \b
    Examples:
      $ cgraph lint graphs/two_layer_net.yaml --strict
      $ cgraph lint -e 'err = a - b' --set 'a=[1, 2, 3]' --set 'b=[[1], [2], [3]]'
      <expr 1>:1:9: warning: node 'err': sub broadcasts (3,) and (3, 1) to (3, 3): did you mean (3,) and (3,)?
    """
    graph = load_graph(nodes=nodes, strict=strict, run=False, **loading)
    lines = lint_lines(graph, nodes)
    write_lines(lines)
    if strict and lines:
        sys.exit(1)


def lint_lines(graph: Graph, nodes: Iterable[str] = ()) -> list[str]:
    """lint's warnings about ``graph`` (those about ``nodes`` if given) as ``FILE:LINE:COL: warning: ...`` lines."""
    from .errors import diagnostic
    from .lint import lint

    wanted = set(nodes)
    return [diagnostic("warning", warning.message, graph.spec.position(warning.name)) for warning in lint(graph)
            if not wanted or wanted.intersection(warning.names)]


def warn_lint(graph: Graph) -> None:
    """lint's warnings on stderr, for --lint."""
    for line in lint_lines(graph):
        say(line)


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

    graph = load_graph(nodes=nodes, **loading)
    steps = explaining.explain(graph, precision)
    if fmt == "json":
        write_lines([explaining.render_json(graph, steps, nodes)])
    else:
        write_lines(explaining.render_text(graph, steps, nodes, precision))


@cli.command("onnx")
@graph_options(node_help="Write this node as a graph output too, after the output.")
@click.option("-o", "--out", "out_path", metavar="OUT.onnx", required=True, shell_complete=complete_files,
              help="Write the model to this file (whole or not at all).")
@click.option("--params", "params", metavar="NAME,...", multiple=True, shell_complete=complete_names("inputs", listed=True),
              help="Inputs to write as initializers holding their values (the model's parameters), "
                   "separated by commas; the others are graph inputs. Repeatable.")
def onnx_command(out_path: str, params: tuple[str, ...], nodes: tuple[str, ...], **loading: Any) -> None:
    """Write FILE's graph as an ONNX model, for onnxruntime, Netron and the tools that read ONNX:
    each input a graph input (or, with --params, an initializer holding its value), the output
    a graph output, and every node one ONNX op or the ONNX ops of its formula.

    \b
    Example:
      $ cgraph onnx graphs/two_layer_net.yaml --params W1,b1,W2,b2 -o two_layer_net.onnx
    """
    from . import onnx_writer

    graph = load_graph(nodes=nodes, **loading)
    names = [name.strip() for group in params for name in group.split(",") if name.strip()]
    onnx_writer.write(graph, out_path, names, nodes, f"-o {out_path}")


@cli.command()
@graph_options("dout", "precision", "full", node_help="Draw only this input or node (and the edges between those drawn).",
               precision=DOT_PRECISION)
@click.option("--backward", "with_grads", is_flag=True, help="Run the backward pass too and show gradients.")
@click.option("--render", "image", metavar="OUT.svg|OUT.png|OUT.pdf", shell_complete=complete_files,
              help="Write an image with Graphviz's 'dot' program instead of DOT text.")
def dot(with_grads: bool, image: str | None, precision: int, full: bool, nodes: tuple[str, ...], dout: str,
        **loading: Any) -> None:
    """Write FILE's graph as Graphviz DOT text: a box per input and node with its op, shape,
    value and (with --backward) gradient; edges from inputs to the nodes using them, labelled
    with the gradient each carried back. Arrays of more than 6 elements are shown by their shape
    (`(3, 4) array`), or with --full in full.

    \b
    Examples:
      $ cgraph dot graphs/buy_apple_orange.yaml --backward > graph.dot
      $ cgraph dot graphs/buy_apple_orange.yaml --backward --render graph.svg
    """
    from . import dot as drawing

    context = click.get_current_context()
    if not with_grads and context.get_parameter_source("dout") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--dout goes with --backward", context)
    graph = load_graph(nodes=nodes, dout=dout if with_grads else None, **loading)
    text = drawing.to_dot(graph, with_grads, nodes, precision, full)
    if image is None:
        write_lines([text.rstrip("\n")])
    else:
        from .save import Guard

        with signals.stopping_by_exception():  # so that the temporary file is removed and dot stopped
            drawing.render_image(text, image, Guard(graph.spec))


@cli.command()
@graph_options("dout", "format", formats=("text", "json"), node_help="Check only this input.")
@click.option("--eps", type=FiniteFloatRange(0, min_open=True), default=1e-6, show_default=True,
              help="Finite-difference step, relative: an element x is moved by eps * max(1, |x|).")
@click.option("--rtol", type=FiniteFloatRange(0), default=1e-5, show_default=True, help="Relative tolerance.")
@click.option("--atol", type=FiniteFloatRange(0), default=1e-8, show_default=True, help="Absolute tolerance.")
@click.option("--samples", type=click.IntRange(0), default=20, show_default=True,
              help="Check at most this many elements of each input, drawn at random; 0 checks all.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed for drawing the samples.")
@click.option("--order", type=click.IntRange(1, 2), default=1, show_default=True,
              help="2: check the Hessian, from backward passes of the gradient graph (as 'cgraph grad' writes it), "
                   "against central differences of the gradients, for the inputs of --node (default: all with a "
                   "path to the output).")
def check(fmt: str, nodes: tuple[str, ...], eps: float, rtol: float, atol: float, samples: int, seed: int,
          order: int, **loading: Any) -> None:
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

    if order == 2:
        check_second_order(fmt, nodes, eps, rtol, atol, loading)
        return

    def elements(graph: Graph) -> int:  # to be checked, at most
        sizes = [graph.spec.inputs[name].value.size for name in nodes or graph.spec.inputs if name in graph.spec.inputs]
        return sum(min(size, samples) if samples else size for size in sizes)

    graph = load_graph(nodes=nodes, forward_passes=lambda graph: 1 + 2 * elements(graph), **loading)
    with progress(elements(graph), "checking", None, lambda item: None) as bar:
        report = checking.check(graph, nodes, eps, rtol, atol, samples, seed, progress=bar.update)
    if fmt == "json":
        write_lines([checking.render_json(graph, report)])
    else:
        write_lines(checking.render_text(graph, report))
    if not report.passed:
        sys.exit(1)


def check_second_order(fmt: str, nodes: tuple[str, ...], eps: float, rtol: float, atol: float,
                       loading: dict[str, Any]) -> None:
    """check --order 2: exit 1 where a block of the Hessian fails."""
    from . import hessian as hessians
    from .arrays import parse_array_option
    from .cli_grad import progress_bar
    from .gradient import dout_array, reachable_inputs

    file = loading["file"]
    if file is None or file == "-":
        raise click.UsageError("--order 2 needs FILE, a graph file: the gradient graph is written from it")
    dout = loading.pop("dout")
    graph = load_graph(nodes=nodes, **loading)
    wrt = [name for name in nodes if name in graph.spec.inputs] or reachable_inputs(graph, graph.output)
    hessians.check_size(graph, wrt, loading["max_elements"])
    _, data = hessians.read_file(file)
    dout_value = dout_array(graph, parse_array_option(dout, "--dout", loading["max_elements"]))
    checks = hessians.check_second_order(graph, data, file, wrt, dout_value, eps, rtol, atol, progress_bar)
    if fmt == "json":
        write_lines([hessians.render_check_json(graph, checks)])
    else:
        write_lines(hessians.render_check_text(graph, checks))
    if not all(check.passed for check in checks):
        sys.exit(1)


def print_values(graph: Graph, fmt: str, nodes: tuple[str, ...], precision: int, full: bool) -> None:
    """The values (and gradients, after backward) in the format asked for."""
    from . import render

    if fmt == "json":
        write_chunks(chain(render.render_json(graph, nodes), [b"\n"]))
    elif fmt == "jsonl":
        write_chunks(render.render_jsonl(graph, nodes))
    else:
        blocks = render.render_text(graph, nodes, precision, full)
        write_lines(paint(blocks) if colored(sys.stdout) else blocks)


def main() -> None:
    """Entry point: run the command; Ctrl-C ends it with one line and status 130; usage
    errors are one line with status 2."""
    signals.install()
    try:
        code = cli.main(prog_name="cgraph", standalone_mode=False)
    except click.ClickException as error:
        say(_usage_line(error))
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        say("cgraph: interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_line(error: click.ClickException) -> str:
    """A click error as one printable line, with where to find help for a usage error."""
    from .errors import printable

    message = error.format_message()
    context = getattr(error, "ctx", None)
    if isinstance(error, click.UsageError) and context is not None:
        message += f" (see '{context.command_path} --help')"
    return printable(f"cgraph: error: {message}")
