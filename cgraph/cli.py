"""The cgraph command: forward and backward passes of graph files, printed as text or JSON;
the chain rule explained, the graph drawn, and gradients checked."""

from __future__ import annotations

import gc
import io
import math
import os
import re
import signal
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import click

from . import __version__, signals

if TYPE_CHECKING:
    from .graph import Graph

FORMATS = ("text", "json", "jsonl")
DOT_PRECISION = 4  # digits in dot's boxes: enough to follow the numbers, narrow enough to read the picture
DEFAULT_MAX_WORK = 10**11  # as budget.DEFAULT_MAX_WORK, which --help must show without importing numpy


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


def _complete_names(*sections: str) -> Callable:
    """Shell completion of the names in the graph file given on the command line: those of
    ``sections`` ("inputs", "nodes"); a last argument "=" is put after each (``--set NAME=``)."""
    suffix = sections[-1] if sections[-1] == "=" else ""
    sections = tuple(section for section in sections if section != "=")

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        from .yamlsafe import parse, quick_parse

        # While an option's value is being completed, click leaves FILE among the unparsed arguments.
        path = ctx.params.get("file") or next(iter(ctx.args), None)
        try:
            with open(path, encoding="utf-8-sig") as file:
                text = file.read()
            data = quick_parse(text)
            data = parse(text, path) if data is None else data
            names = [name for section in sections for name in (data.get(section) or {})]
        except Exception:  # no file yet, or not a graph: nothing to offer, and no traceback while typing
            return []
        return [CompletionItem(f"{name}{suffix}") for name in names
                if isinstance(name, str) and name.startswith(incomplete)]

    return complete


# --- colour -----------------------------------------------------------------------------

_color_mode = "auto"  # --color, set before the command runs


def _set_color(ctx: click.Context, param: click.Parameter, value: str) -> None:
    global _color_mode
    _color_mode = value


COLOR_OPTION = click.option(
    "--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
    callback=_set_color, expose_value=False, is_eager=True,
    help="Colour errors, warnings and the text output's headings, values and gradients; auto: only on a "
         "terminal, and not where NO_COLOR is set.")


def _colored(stream: Any) -> bool:
    """Whether to colour what goes to ``stream``."""
    if _color_mode != "auto":
        return _color_mode == "always"
    if os.environ.get("NO_COLOR"):
        return False
    return stream is not None and _is_terminal(stream)


_LABEL = re.compile(r"  (\S[^:]*:)( +)(.*)\Z", re.DOTALL)


def _paint(block: str) -> str:
    """A block of the text output in colour: headings bold, values blue, gradients red."""
    painted = []
    color = None
    for line in block.split("\n"):
        label = _LABEL.match(line)
        if line[:1] not in ("", " "):
            painted.append(click.style(line, bold=True))
        elif label:
            color = "blue" if label.group(1) == "value:" else "red"
            painted.append(f"  {click.style(label.group(1), fg=color, bold=True)}{label.group(2)}"
                           f"{click.style(label.group(3), fg=color)}")
        elif line and color:
            painted.append(click.style(line, fg=color))
        else:
            painted.append(line)
    return "\n".join(painted)


_KINDS = {": error: ": "red", ": warning: ": "yellow"}


def _paint_kind(line: str) -> str:
    """A diagnostic line with its ``error:`` or ``warning:`` in colour."""
    for kind, color in _KINDS.items():
        if kind in line:
            return line.replace(kind, f": {click.style(kind.strip(': ') + ':', fg=color, bold=True)} ", 1)
    return line


BUDGET_OPTIONS = (
    click.option("--max-memory", type=Amount(of_bytes=True), metavar="SIZE",
                 help="Refuse graphs whose values and gradients need more bytes than this, worked out "
                      "before running; K, M, G suffixes accepted (2G).  [default: half of the memory "
                      "available when the command starts]"),
    click.option("--max-work", type=Amount(of_bytes=False), default=DEFAULT_MAX_WORK, metavar="N",
                 help="Refuse graphs needing more multiply-adds (matrix products) than this.  [default: 1e11]"),
)


FILE_ARGUMENT = click.argument("file", metavar="[FILE]", required=False, type=click.Path())
EXPR_OPTION = click.option(
    "-e", "--expr", "expressions", metavar="'NAME = EXPR'", multiple=True,
    help="A node written as a formula, in place of FILE, such as 'f = (x + y) * z'; the names it "
         "uses come from other formulas or --set. Repeatable; the last is the output.")
SET_OPTION = click.option(
    "--set", "sets", metavar="NAME=VALUE", multiple=True, callback=_parse_set,
    shell_complete=_complete_names("inputs", "="),
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
        click.option("--output", metavar="NAME", shell_complete=_complete_names("nodes"),
                     help="The output node (default: 'output:' in the file, or the one node that feeds no other)."),
        click.option("--node", "nodes", metavar="NAME", multiple=True, shell_complete=_complete_names("inputs", "nodes"),
                     help=f"{node_help} Repeatable."),
    ]
    if "dout" in extra:
        options.append(click.option(
            "--dout", default="1", show_default=True, metavar="VALUE",
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


class _Commands(click.Group):
    """The command group: a user error anywhere in a command, its output included, is one line."""

    def invoke(self, ctx: click.Context) -> Any:
        with _user_errors():
            return super().invoke(ctx)


@click.group(cls=_Commands, no_args_is_help=False, context_settings={"help_option_names": ["-h", "--help"]})
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
      cgraph train graphs/spiral.yaml --param W1 --param b1 --param W2 --param b2 --optimizer adam --steps 2000
      cgraph sweep graphs/buy_apple_orange.yaml --vary tax=1:2:1000
    """


@cli.command()
@graph_options("format", "precision", "full", "lint")
def forward(fmt: str, precision: int, full: bool, with_lint: bool, nodes: tuple[str, ...], **loading: Any) -> None:
    """Run the forward pass of FILE ('-' for standard input) and print every value.

    \b
    Example:
      $ cgraph forward graphs/buy_apple.yaml --node price
      forward, output 'price'
    \b
      price = mul(apple_price, tax)  MulLayer(x.shape=(), y.shape=()) -> out.shape=()
        value: 220.0
    """
    graph = _load(nodes=nodes, **loading)
    if with_lint:
        _warn_lint(graph)
    _print(graph, fmt, nodes, precision, full)


@cli.command()
@graph_options("dout", "format", "precision", "full", "lint")
def backward(fmt: str, precision: int, full: bool, with_lint: bool, nodes: tuple[str, ...], **loading: Any) -> None:
    """Run forward and backward passes of FILE ('-' for standard input); print values and gradients.

    The gradient of each value v is dL/dv for L = sum(dout * output).

    \b
    Example:
      $ cgraph backward graphs/buy_apple.yaml --node apple --format json
      {"output":"price","dout":1.0,"nodes":{"apple":{"op":"input","inputs":[],"shape":[],
      "dtype":"float64","value":100.0,"grad":2.2}}}
    """
    graph = _load(nodes=nodes, **loading)
    if with_lint:
        _warn_lint(graph)
    _print(graph, fmt, nodes, precision, full)


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
    Example:
      $ cgraph lint model.yaml
      model.yaml:5:3: warning: node 'err': sub broadcasts (3,) and (3, 1) to (3, 3): did you mean (3,) and (3,)?
    """
    graph = _load(nodes=nodes, strict=strict, run=False, **loading)
    lines = _lint_lines(graph, nodes)
    _write(lines)
    if strict and lines:
        sys.exit(1)


def _lint_lines(graph: Graph, nodes: Iterable[str] = ()) -> list[str]:
    """lint's warnings about ``graph`` (those about ``nodes`` if given) as ``FILE:LINE:COL: warning: ...`` lines."""
    from .errors import diagnostic
    from .lint import lint

    wanted = set(nodes)
    return [diagnostic("warning", warning.message, graph.spec.position(warning.name)) for warning in lint(graph)
            if not wanted or wanted.intersection(warning.names)]


def _warn_lint(graph: Graph) -> None:
    """lint's warnings on stderr, for --lint."""
    for line in _lint_lines(graph):
        _say(line)


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
@graph_options("dout", "precision", "full", node_help="Draw only this input or node (and the edges between those drawn).",
               precision=DOT_PRECISION)
@click.option("--backward", "with_grads", is_flag=True, help="Run the backward pass too and show gradients.")
@click.option("--render", "image", metavar="OUT.svg|OUT.png|OUT.pdf",
              help="Write an image with Graphviz's 'dot' program instead of DOT text.")
def dot(with_grads: bool, image: str | None, precision: int, full: bool, nodes: tuple[str, ...], dout: str,
        **loading: Any) -> None:
    """Write FILE's graph as Graphviz DOT text: a box per input and node with its op, shape,
    value and (with --backward) gradient; edges from inputs to the nodes using them, labelled
    with the gradient each carried back. Arrays of more than 6 elements are shown by their shape
    (`(3, 4) array`), or with --full in full.

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
    text = drawing.to_dot(graph, with_grads, nodes, precision, full)
    if image is None:
        _write([text.rstrip("\n")])
    else:
        with signals.stopping_by_exception():  # so that the temporary file is removed and dot stopped
            drawing.render_image(text, image)


@cli.command()
@graph_options("dout", "format", formats=("text", "json"), node_help="Check only this input.")
@click.option("--eps", type=FiniteFloatRange(0, min_open=True), default=1e-6, show_default=True,
              help="Finite-difference step, relative: an element x is moved by eps * max(1, |x|).")
@click.option("--rtol", type=FiniteFloatRange(0), default=1e-5, show_default=True, help="Relative tolerance.")
@click.option("--atol", type=FiniteFloatRange(0), default=1e-8, show_default=True, help="Absolute tolerance.")
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

    def elements(graph: Graph) -> int:  # to be checked, at most
        sizes = [graph.spec.inputs[name].value.size for name in nodes or graph.spec.inputs if name in graph.spec.inputs]
        return sum(min(size, samples) if samples else size for size in sizes)

    graph = _load(nodes=nodes, forward_passes=lambda graph: 1 + 2 * elements(graph), **loading)
    with _progress(elements(graph), "checking", None, lambda item: None) as bar:
        report = checking.check(graph, nodes, eps, rtol, atol, samples, seed, progress=bar.update)
    if fmt == "json":
        _write([checking.render_json(graph, report)])
    else:
        _write(checking.render_text(graph, report))
    if not report.passed:
        sys.exit(1)


_PAGE_NODE_HELP = "Draw only this input or node and its neighbours (its inputs and the nodes using it)."
_CHECK_HELP = "Add cgraph check's result (PASS or FAIL, the largest errors) to each input's panel."


@cli.command()
@graph_options("dout", "precision", node_help=_PAGE_NODE_HELP)
@click.option("-o", "--out", "out_path", metavar="OUT.html", help="Write the page to this file (whole or not at all).")
@click.option("--check", "with_check", is_flag=True, help=_CHECK_HELP)
def html(out_path: str | None, with_check: bool, precision: int, nodes: tuple[str, ...], **loading: Any) -> None:
    """Write FILE's graph as one self-contained interactive HTML page: the graph drawn as
    cgraph dot draws it, every value and gradient in full, and the forward and backward passes
    to step through with the rules and numbers of cgraph explain. The page works offline.

    \b
    Example:
      $ cgraph html graphs/buy_apple_orange.yaml -o apple.html
    """
    from . import html as pages

    if out_path is None and sys.stdout is not None and sys.stdout.isatty():
        raise click.UsageError("the page is HTML for a browser: write it to a file with -o OUT.html "
                               "(or redirect standard output)")
    graph = _load(nodes=nodes, **loading)
    file = loading["file"] or "; ".join(loading["expressions"])  # the page's title names the formulas
    text = pages.page(_page_data(graph, file, precision, nodes, with_check))
    if out_path is None:
        _write([text.rstrip("\n")])
    else:
        from .save import atomic_write

        atomic_write(out_path, lambda file: file.write(text.encode()))


@cli.command()
@graph_options("dout", "precision", node_help=_PAGE_NODE_HELP)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 to serve on; 0 picks a free one.")
@click.option("--check", "with_check", is_flag=True, help=_CHECK_HELP)
def serve(port: int, with_check: bool, precision: int, nodes: tuple[str, ...], file: str, strict: bool,
          **loading: Any) -> None:
    """Serve FILE's page (as cgraph html writes it) on 127.0.0.1 and redraw it in the browser
    whenever FILE is saved; a mistake in the file shows in the page until it is fixed.
    Prints the page's URL. Ctrl-C stops it.

    \b
    Example:
      $ cgraph serve graphs/two_layer_net.yaml --port 0
      http://127.0.0.1:40155/
    """
    from . import html as pages
    from . import serve as serving

    if file is None or file == "-":
        raise click.UsageError("serve watches a graph file for changes: give FILE (not standard input or -e)")

    def build() -> str:
        try:
            graph = _load(file=file, nodes=nodes, strict=False, **loading)  # warnings go to stderr too
        finally:
            gc.enable()  # _load pauses the collector for a short run; a server runs on
        problems = _problems(graph, strict)
        if problems and strict:
            return pages.error_data(file, problems[0])
        return _page_data(graph, file, precision, nodes, with_check, problems)

    def announce(url: str) -> None:
        click.echo(url)
        _say(f"cgraph: serving {file} at {url} (Ctrl-C stops)")

    serving.serve(file, build, port, announce)


def _page_data(graph: Graph, file: str | None, precision: int, nodes: tuple[str, ...], with_check: bool,
               warnings: Iterable[str] = ()) -> str:
    """The data of FILE's page, with check's results of the inputs drawn where asked for."""
    from . import check as checking
    from . import html as pages

    report = None
    if with_check:
        inputs = [name for name in pages.kept_names(graph, nodes) if name in graph.spec.inputs]
        report = checking.check(graph, inputs)
    source = {"-": "<stdin>", None: "<expr>"}.get(file, file)
    return pages.page_data(graph, source, precision, nodes, report, warnings)


def _optimizer_options(command: Callable) -> Callable:
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


@cli.command()
@FILE_ARGUMENT
@EXPR_OPTION
@click.option("--param", "params", metavar="NAME", multiple=True, required=True,
              help="An input to train (weights, biases). Repeatable.")
@_optimizer_options
@click.option("--steps", type=click.IntRange(0), default=100, show_default=True, help="Update steps.")
@click.option("--batch", "batch", metavar="NAME[,NAME...]",
              help="Inputs holding the data (and labels): each step draws --batch-size of their rows (first axis).")
@click.option("--batch-size", type=click.IntRange(1), help="Rows per step, drawn at random with replacement.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed for drawing the batches.")
@click.option("--metric", "metrics", metavar="NODE", multiple=True,
              help="A 0-d node to report with the loss (an accuracy). Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="text: a loss curve and a summary at the end; jsonl: one JSON object per step.")
@click.option("--every", type=click.IntRange(1), help="Report every K-th step (and the last)  [default: jsonl 1; "
                                                      "text: none, only the curve and summary]")
@click.option("--save", "save_path", metavar="OUT.npz", help="Write the trained inputs to an .npz archive.")
@click.option("--write-graph", "graph_path", metavar="OUT.yaml",
              help="Write a copy of FILE whose trained inputs are .npy files beside it.")
@click.option("--keep-going", is_flag=True, help="Go on where the loss or a gradient becomes NaN or infinite.")
@SET_OPTION
@click.option("--output", metavar="NAME", help="The loss node (default: 'output:' in the file, or the one node "
                                               "that feeds no other).")
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
    Example:
      cgraph train graphs/spiral.yaml --param W1 --param b1 --param W2 --param b2 \\
          --optimizer adam --lr 0.01 --steps 2000 --metric accuracy
      cgraph train graphs/spiral.yaml --param W1 --param b1 --param W2 --param b2 --format jsonl | jq .loss
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
        if not batch_size or not lengths:
            return steps
        rows = max(max(lengths), 1)
        return -(-steps * min(batch_size, rows) // rows)  # rounded up

    graph = _load(nodes=(), strict=False, run=False, file=file, forward_passes=passes, **loading)
    for path in (save_path, graph_path):
        if path is not None:
            save.check_folder(path)
    rule = OPTIMIZERS[optimizer](**{key: value for key, value in settings.items() if value is not None})
    trainer = Trainer(graph, params, rule, batch_names, batch_size, seed, metrics, keep_going)

    def write_files(step: int) -> None:
        if save_path is not None:
            save.write_npz(save_path, trainer.params)
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
                             comment)

    every = every or (1 if fmt == "jsonl" else None)
    history = History()
    stop = {"asked": False}

    def on_interrupt(signum: int, frame: Any) -> None:
        if stop["asked"]:  # a second Ctrl-C: stop at once
            signals.stop(signum)
        stop["asked"] = True

    previous = signal.signal(signal.SIGINT, on_interrupt)
    started = time.perf_counter()
    with _progress(steps, f"training ({optimizer})", every, lambda record: record and (
            f"loss {record.loss:.4g}  {record.step / (time.perf_counter() - started):,.0f} steps/s")) as bar:
        for _ in range(steps):
            if stop["asked"]:
                break
            record = trainer.step()
            history.add(record)
            bar.update(1, record)
            if every and (record.step % every == 0 or record.step == steps):
                if fmt == "jsonl":
                    _write([_json_line(record.as_dict())])
                else:
                    shown = ", ".join(f"{key} {value:.6g}" for key, value in record.as_dict().items() if key != "step")
                    _write([f"step {record.step}: {shown}"])
        seconds = time.perf_counter() - started
        write_files(trainer.step_count)
    signal.signal(signal.SIGINT, previous)
    if fmt == "text":
        _write([*([""] if every else []), *loss_curve(history.groups), "", *history.summary(seconds)])
    if stop["asked"]:
        held = [path for path in (save_path, graph_path) if path is not None]
        saved = f"; {' and '.join(held)} hold{'s' * (len(held) == 1)} the inputs after it" if held else ""
        _say(f"cgraph: interrupted after step {trainer.step_count} of {steps}{saved}")
        sys.exit(130)


def _progress(length: int, label: str, every: int | None, show: Callable[[Any], str | None]) -> Any:
    """click's progress bar on stderr, only where stderr is a terminal, redrawn every ``every`` items
    (or 200 times in all); ``show`` describes the latest item."""
    return click.progressbar(length=length, label=label, file=sys.stderr, hidden=not sys.stderr.isatty(),
                             show_pos=True, update_min_steps=every or max(1, length // 200), item_show_func=show)


@cli.command()
@graph_options("dout", "precision", node_help="Report this input's or node's gradient (default: every input's).")
@click.option("--vary", "varies", metavar="NAME=SPEC", multiple=True, required=True, callback=_parse_set,
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
    graph = _load(nodes=nodes, strict=strict, run=False, forward_passes=lambda graph: total, **loading)
    for name in varied:
        if name not in graph.spec.inputs:
            kind = "a node, not an input" if name in graph.spec.nodes else f"not an input{suggest(name, graph.spec.inputs)}"
            raise CgraphError(f"--vary: '{name}' is {kind}")
    runner = sweeping.Sweep(graph, varied, nodes, parse_array_option(dout, "--dout", max_elements))
    every = max(1, total // 200)

    def results() -> Iterator[tuple[int, tuple[int, ...], dict[str, Any], Any, dict[str, Any]]]:
        with _progress(total, "sweeping", every, lambda number: number and f"point {number:,}") as bar:
            for number, indices in enumerate(sweeping.points(runner.varied, zipped), 1):
                yield number, indices, *runner.run(number, indices)
                if number % every == 0:
                    bar.update(every, number)

    if fmt == "jsonl":
        _write(runner.json_line(number, indices, output, grads) for number, indices, _, output, grads in results())
    else:
        _write(sweeping.table(graph, ((point, output, grads) for _, _, point, output, grads in results()), precision))
    if runner.first_non_finite:
        point, name, message = runner.first_non_finite
        where = graph.spec.position(name) if name else None
        kind = "error" if strict else "warning"
        _say(diagnostic(kind, f"{runner.non_finite_points:,} of {total:,} points gave NaN or infinity; at point "
                              f"{point}: {message}", where))
        if strict:
            sys.exit(1)


def _json_line(data: dict[str, Any]) -> str:
    """One line of strict JSON: NaN and infinities as the strings "NaN", "Infinity", "-Infinity"."""
    from .render import json_bytes, json_value

    return json_bytes({key: json_value(value) for key, value in data.items()}).decode()


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print a user error, or running out of memory, as one line on stderr and exit 1."""
    from .errors import CgraphError

    try:
        yield
    except CgraphError as error:
        _say(str(error))
        sys.exit(1)
    except MemoryError:
        _say("cgraph: error: out of memory: the graph's values do not fit (make its arrays smaller)")
        sys.exit(1)


SLOW_SECONDS = 2.0  # a run longer than this shows that it is running, on a terminal


@contextmanager
def _notice_if_slow(what: str) -> Iterator[None]:
    """On a terminal, from SLOW_SECONDS into ``what`` on, a line on stderr counting the seconds,
    erased when it ends. (The passes report no progress of their own: their loop over the nodes
    is kept free of it, so this counts time, not nodes.)"""
    stream = sys.stderr
    if stream is None or not _is_terminal(stream):
        yield
        return
    import threading
    import time

    done = threading.Event()
    started = time.monotonic()

    def count() -> None:
        shown = False
        while not done.wait(SLOW_SECONDS if not shown else 1.0):
            shown = True
            _try_write(stream, f"\rcgraph: {what} running, {time.monotonic() - started:.0f} s")
        if shown:
            _try_write(stream, "\r\x1b[K")

    thread = threading.Thread(target=count, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _is_terminal(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


def _try_write(stream: Any, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass


def _say(line: str) -> None:
    """Write one line to stderr; a closed or broken stderr loses it rather than failing the run."""
    stream = sys.stderr
    if stream is not None:
        _try_write(stream, (_paint_kind(line) if _colored(stream) else line) + "\n")


def _load(
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
    from .arrays import parse_array_option, suggest
    from .errors import CgraphError

    if (file is None) == (not expressions):
        raise click.UsageError("give FILE or -e/--expr 'NAME = EXPR', not both" if expressions
                               else "missing FILE (or -e/--expr 'NAME = EXPR')")
    gc.disable()  # a run makes millions of objects and no reference cycles; the process ends soon after
    overrides = {} if expressions else {
        name: parse_array_option(text, f"--set {name}", max_elements) for name, text in sets}
    if expressions:
        graph = api.from_expressions(expressions, dict(sets), output=output, max_elements=max_elements)
    elif file == "-":
        if sys.stdin is None:
            raise CgraphError("there is no standard input to read the graph from")
        if sys.stdin.isatty():
            _say("cgraph: reading the graph from standard input (end it with Ctrl-D)")
        text = api.decode(sys.stdin.buffer.read(), "<stdin>")
        graph = api.loads(text, source="<stdin>", base_dir=os.getcwd(), overrides=overrides,
                          output=output, max_elements=max_elements)
    else:
        graph = api.load(file, overrides=overrides, output=output, max_elements=max_elements)
    for name in nodes:
        if name not in graph.shapes:
            raise CgraphError(f"--node: unknown name '{name}'{suggest(name, graph.shapes)}")
    budget.check_budget(graph, budget.default_max_memory() if max_memory is None else max_memory, max_work,
                        backward=dout is not None or not run,
                        forward_passes=forward_passes(graph) if forward_passes else 1)
    if not run:
        return graph
    with _notice_if_slow("forward and backward passes" if dout is not None else "forward pass"):
        graph.forward()
        if dout is not None:
            graph.backward(parse_array_option(dout, "--dout", max_elements))
    problems = _problems(graph, strict)
    for line in problems:
        _say(line)
    if problems and strict:
        sys.exit(1)
    return graph


def _problems(graph: Graph, strict: bool) -> list[str]:
    """Where NaN or infinity entered the graph, one line each as warnings; with ``strict``, the
    first cause as the one error line."""
    from .errors import diagnostic

    problems = graph.non_finite()
    if strict:
        problems = problems[:1]
    kind = "error" if strict else "warning"
    return [diagnostic(kind, message, graph.spec.position(name)) for name, message in problems]


def _print(graph: Graph, fmt: str, nodes: tuple[str, ...], precision: int, full: bool) -> None:
    """The values (and gradients, after backward) in the format asked for."""
    from . import render

    if fmt == "json":
        _write([render.render_json(graph, nodes)])
    elif fmt == "jsonl":
        _write(render.render_jsonl(graph, nodes))
    else:
        blocks = render.render_text(graph, nodes, precision, full)
        _write(map(_paint, blocks) if _colored(sys.stdout) else blocks)


def _write(lines: Iterable[str]) -> None:
    """Write lines to stdout in large chunks; a reader that went away ends the command quietly
    with status 141, as a program killed by SIGPIPE does."""
    out = sys.stdout
    if out is None:
        raise _no_output("standard output is closed")
    chunk: list[str] = []
    try:
        for line in lines:
            chunk.append(line)
            if len(chunk) >= 4096:
                _write_text(out, "\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            _write_text(out, "\n".join(chunk) + "\n")
        out.flush()
    except OSError as error:
        # Keep Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        if isinstance(error, BrokenPipeError):
            sys.exit(141)
        raise _no_output(error.strerror or str(error)) from None


def _write_text(out: Any, text: str) -> None:
    """Write all of ``text``: straight to the file descriptor where there is one, since a
    buffered stream may drop the rest of a large write to a pipe that closed without a word.
    Characters the stream's encoding cannot hold are written as escapes (``\\u82f9``)."""
    try:
        descriptor = out.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        out.write(text)
        return
    out.flush()
    data = memoryview(text.encode(out.encoding or "utf-8", "backslashreplace"))
    while data:
        data = data[os.write(descriptor, data):]


def _no_output(reason: str) -> Exception:
    from .errors import CgraphError

    return CgraphError(f"cannot write the output: {reason}")


def main() -> None:
    """Entry point: run the command; Ctrl-C ends it with one line and status 130; usage
    errors are one line with status 2."""
    signals.install()
    try:
        code = cli.main(prog_name="cgraph", standalone_mode=False)
    except click.ClickException as error:
        _say(_usage_line(error))
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        _say("cgraph: interrupted")
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
