"""The commands that make the interactive page: html writes it, serve serves it and redraws it."""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any, Iterable

import click

from .completion import complete_files
from .console import say, write_lines
from .options import DOT_PRECISION, graph_options, find_problems, load_graph

if TYPE_CHECKING:
    from .graph import Graph

_PAGE_NODE_HELP = "Draw only this input or node and its neighbours (its inputs and the nodes using it)."
_CHECK_HELP = "Add cgraph check's result (PASS or FAIL, the largest errors) to each input's panel."
_FULL_HELP = ("Embed every array whole; by default one of more than 20,000 elements is embedded as its shape, "
              "minimum, maximum and a strided sample, which keeps the page small.")


@click.command()
@graph_options("dout", "precision", node_help=_PAGE_NODE_HELP, precision=DOT_PRECISION)
@click.option("-o", "--out", "out_path", metavar="OUT.html", shell_complete=complete_files,
              help="Write the page to this file (whole or not at all).")
@click.option("--check", "with_check", is_flag=True, help=_CHECK_HELP)
@click.option("--full", is_flag=True, help=_FULL_HELP)
def html(out_path: str | None, with_check: bool, full: bool, precision: int, nodes: tuple[str, ...],
         **loading: Any) -> None:
    """Write FILE's graph as one self-contained interactive HTML page: a box per input and node
    with its value and gradient (numbers with --precision digits, arrays as heatmaps), and the
    forward and backward passes to step through with the rules and numbers of cgraph explain.
    The page works offline.

    \b
    Example:
      $ cgraph html graphs/buy_apple_orange.yaml -o apple.html
    """
    from . import html as pages

    if out_path is None and sys.stdout is not None and sys.stdout.isatty():
        raise click.UsageError("the page is HTML for a browser: write it to a file with -o OUT.html "
                               "(or redirect standard output)")
    graph = load_graph(nodes=nodes, **loading)
    file = loading["file"] or "; ".join(loading["expressions"])  # the page's title names the formulas
    text = pages.page(page_data(graph, file, precision, nodes, with_check, full=full))
    if out_path is None:
        write_lines([text.rstrip("\n")])
    else:
        from .save import Guard, atomic_write

        atomic_write(out_path, lambda file: file.write(text.encode()), Guard(graph.spec), f"-o {out_path}")


@click.command()
@graph_options("dout", "precision", node_help=_PAGE_NODE_HELP, precision=DOT_PRECISION)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 to serve on; 0 picks a free one.")
@click.option("--check", "with_check", is_flag=True, help=_CHECK_HELP)
def serve(port: int, with_check: bool, precision: int, nodes: tuple[str, ...], file: str, strict: bool,
          **loading: Any) -> None:
    """Serve FILE's page (as cgraph html writes it) on 127.0.0.1 and redraw it in the browser
    whenever FILE, or a file it reads (a .npy input, --set @file.npy), is saved; a mistake in
    them, or one of them missing, shows in the page until it is fixed. A sampled array's panel
    can load all its values from the server. Prints the page's URL. Ctrl-C stops it.

    \b
    Example:
      $ cgraph serve graphs/two_layer_net.yaml --port 0
      http://127.0.0.1:40155/
    """
    from . import html as pages
    from . import serve as serving

    if file is None or file == "-":
        raise click.UsageError("serve watches a graph file for changes: give FILE (not standard input or -e)")

    def build() -> tuple[str, tuple[str, ...], serving.Arrays]:
        from .arrays import files_read_whole

        try:
            with files_read_whole():  # the files may be saved while they are read
                graph = load_graph(file=file, nodes=nodes, strict=False, **loading)  # warnings go to stderr too
        finally:
            gc.enable()  # load_graph pauses the collector for a short run; a server runs on
        problems = find_problems(graph, strict)
        if problems and strict:
            return pages.error_data(file, problems[0]), graph.spec.files, {}
        arrays = {name: {"value": graph.values[name], "grad": graph.grads[name]}
                  for name in pages.kept_names(graph, nodes)}  # for the page's "load all" of a sampled array
        return page_data(graph, file, precision, nodes, with_check, problems), graph.spec.files, arrays

    def announce(url: str) -> None:
        click.echo(url)
        say(f"cgraph: serving {file} at {url} (Ctrl-C stops)")

    serving.serve(file, build, port, announce)


def page_data(graph: Graph, file: str | None, precision: int, nodes: tuple[str, ...], with_check: bool,
              warnings: Iterable[str] = (), full: bool = False) -> str:
    """The data of FILE's page, with check's results of the inputs drawn where asked for."""
    from . import check as checking
    from . import html as pages

    report = None
    if with_check:
        inputs = [name for name in pages.kept_names(graph, nodes) if name in graph.spec.inputs]
        report = checking.check(graph, inputs)
    source = {"-": "<stdin>", None: "<expr>"}.get(file, file)
    return pages.page_data(graph, source, precision, nodes, report, warnings, full)


