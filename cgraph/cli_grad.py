"""The commands of second order: grad writes a graph's gradient as a graph file, hessian prints
the second derivatives, by backward passes of that gradient graph."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from .completion import complete_files, complete_names, complete_value
from .console import progress, write_lines

if TYPE_CHECKING:
    from .spec import GraphSpec

WRT_OPTION = click.option("--wrt", "wrt", metavar="NAME", multiple=True, shell_complete=complete_names("inputs"),
                          help="An input to differentiate with respect to (default: every input with a path to "
                               "the output). Repeatable.")
OUTPUT_OPTION = click.option("--output", metavar="NAME", shell_complete=complete_names("nodes"),
                             help="The output node (default: 'output:' in the file, or the one node that feeds no other).")
DOUT_OPTION = click.option("--dout", default="1", show_default=True, metavar="VALUE", shell_complete=complete_value,
                           help="The gradient injected at the output, L = sum(dout * output): a number, a list, or @file.npy.")
MAX_ELEMENTS_OPTION = click.option("--max-elements", type=click.IntRange(1), default=100_000_000, show_default=True,
                                   help="Refuse arrays with more elements than this.")


def gradient_file(file: str, output: str | None, wrt: tuple[str, ...], dout_text: str, out_path: str | None,
                  max_elements: int) -> tuple[str, GraphSpec]:
    """The text of the graph file of FILE's gradient, as ``cgraph grad`` writes it, and FILE's spec."""
    from . import api
    from .arrays import parse_array_option
    from .errors import CgraphError
    from .gradient import dout_array, gradient_graph, subexpression_texts
    from .graphfile import render_gradient
    from .hessian import read_file

    text, data = read_file(file)
    graph = api.loads(text, source=file, base_dir=os.path.dirname(file) or ".", output=output,
                      max_elements=max_elements, graph_file=os.path.realpath(file))
    if any(item.value.dtype != "float64" for item in graph.spec.inputs.values()):
        graph.forward()  # for the output's dtype, which dout takes
    dout = dout_array(graph, parse_array_option(dout_text, "--dout", max_elements))
    gradient = gradient_graph(graph, list(wrt) if wrt else None)
    if not gradient.wrt:
        raise CgraphError(f"no input has a path to the output '{graph.output}': there is no gradient to write")
    return render_gradient(gradient, data, file, out_path, dout, subexpression_texts(data, file)), graph.spec


def refuse_overwriting(file: str, out_path: str) -> None:
    """A usage error where ``out_path`` is the input file itself."""
    if os.path.exists(out_path) and os.path.exists(file) and os.path.samefile(file, out_path):
        raise click.UsageError(f"-o {out_path} is the input file; write the gradient graph to another file")


@click.command()
@click.argument("file", type=click.Path())
@OUTPUT_OPTION
@WRT_OPTION
@DOUT_OPTION
@click.option("-o", "--out", "out_path", metavar="OUT.yaml", shell_complete=complete_files, help="Write the graph file here (whole or not at all) "
                                                                   "instead of to standard output.")
@MAX_ELEMENTS_OPTION
def grad(file: str, output: str | None, wrt: tuple[str, ...], dout: str, out_path: str | None,
         max_elements: int) -> None:
    """Write the gradient of FILE's output as a new graph file: FILE's inputs and nodes unchanged,
    an input 'dout', and a node grad_X = dL/dX, L = sum(dout * output), for each input X of --wrt,
    built from cgraph's own ops by each layer's gradient rules; its output is the first grad_X.

    Running it gives what 'cgraph backward FILE' gives; differentiating it again gives second
    derivatives: 'cgraph backward GRAD.yaml --dout V' gives the Hessian-vector product H·V.

    \b
    Example:
      $ cgraph grad graphs/buy_apple.yaml -o buy_apple_grad.yaml
      $ cgraph backward buy_apple_grad.yaml --output grad_apple --dout 1
    """
    if out_path is not None:
        refuse_overwriting(file, out_path)
        from .save import check_folder

        check_folder(out_path)
    text, spec = gradient_file(file, output, wrt, dout, out_path, max_elements)
    if out_path is None:
        write_lines([text.rstrip("\n")])
    else:
        from .save import Guard, atomic_write

        atomic_write(out_path, lambda handle: handle.write(text.encode("utf-8")), Guard(spec), f"-o {out_path}")


@click.command()
@click.argument("file", type=click.Path())
@OUTPUT_OPTION
@WRT_OPTION
@DOUT_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@click.option("--precision", type=click.IntRange(0, 17), default=6, show_default=True,
              help="Significant digits in text output.")
@click.option("--max-elements", type=click.IntRange(1), default=100_000_000, show_default=True,
              help="Refuse arrays with more elements than this, the Hessian's (elements of the --wrt inputs, "
                   "squared) among them.")
def hessian(file: str, output: str | None, wrt: tuple[str, ...], dout: str, fmt: str, precision: int,
            max_elements: int) -> None:
    """Print the Hessian of L = sum(dout * output) with respect to the inputs of --wrt (default:
    every input with a path to the output): for each pair of inputs X, Y the block
    d²L/dX dY of shape shape(X) + shape(Y), as torch.autograd.functional.hessian lays it out.

    Each row is what a backward pass of the gradient graph (as 'cgraph grad' writes it) from
    grad_X with a one-hot dout gives, computed for many rows at once; the result holds (elements
    of the inputs) squared numbers, and --max-elements refuses more.

    \b
    Example:
      $ cgraph hessian graphs/buy_apple.yaml --wrt apple --wrt tax
    """
    from . import hessian as hessians

    result = hessians.from_file(file, output, wrt, dout, max_elements, progress_bar)
    if fmt == "json":
        write_lines([hessians.render_json(result)])
    else:
        write_lines(hessians.render_text(result, precision))


def progress_bar(total: int) -> Any:
    """A progress bar on a terminal, over the Hessian's ``total`` rows."""
    return progress(total, "hessian", None, lambda item: None)

